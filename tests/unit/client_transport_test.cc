// Choosing kube::Client's transport (ClientOptions::transport and
// LEASEHOLD_KUBE_TRANSPORT): what each refuses, before any connection.
// What the transports do on the wire is tested on the real control plane
// (tests/integration: the default everywhere, kube.curl.* on libcurl) and
// in h2_client_test.cc (the default's fallback to libcurl).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <future>
#include <string>
#include <utility>
#include <vector>

#include "kube/client.h"

namespace leasehold::kube {
namespace {

class ClientTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : kVars) {
      if (const char* old = std::getenv(v)) saved_.emplace_back(v, old);
      unsetenv(v);
    }
  }
  void TearDown() override {
    for (const char* v : kVars) unsetenv(v);
    for (auto& [k, v] : saved_) setenv(k.c_str(), v.c_str(), 1);
  }
  static ClusterConfig https() {
    ClusterConfig c;
    c.server = "https://127.0.0.1:1";  // nothing listens; nothing is sent by create
    c.source = "test-kubeconfig";
    return c;
  }
  static constexpr const char* kVars[] = {"LEASEHOLD_KUBE_TRANSPORT", "https_proxy", "HTTPS_PROXY", "all_proxy",
                                          "ALL_PROXY"};
  std::vector<std::pair<std::string, std::string>> saved_;
};

TEST_F(ClientTransportTest, TheEnvironmentChoosesWhenTheOptionsDoNot) {
  setenv("LEASEHOLD_KUBE_TRANSPORT", "http2", 1);
  auto c = Client::create(https());
  ASSERT_TRUE(c.ok()) << c.error().message();
  setenv("LEASEHOLD_KUBE_TRANSPORT", "curl", 1);
  EXPECT_TRUE(Client::create(https()).ok());
  setenv("LEASEHOLD_KUBE_TRANSPORT", "auto", 1);
  EXPECT_TRUE(Client::create(https()).ok());
  setenv("LEASEHOLD_KUBE_TRANSPORT", "h3", 1);
  auto bad = Client::create(https());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), Code::kInvalid);
  EXPECT_NE(bad.error().message().find("LEASEHOLD_KUBE_TRANSPORT=h3: expected auto, curl or http2"), std::string::npos)
      << bad.error().message();
}

TEST_F(ClientTransportTest, Http2RefusesPlainHttpAndProxiesNamingWhy) {
  ClientOptions o;
  o.transport = Transport::kHttp2;
  ClusterConfig plain = https();
  plain.server = "http://127.0.0.1:1";
  auto r = Client::create(plain, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("speaks only https://"), std::string::npos) << r.error().message();

  ClusterConfig proxied = https();
  proxied.proxy_url = "http://user:secret@proxy.example:3128";
  r = Client::create(proxied, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("sets proxy-url"), std::string::npos) << r.error().message();
  EXPECT_EQ(r.error().message().find("secret"), std::string::npos) << "no password in the message";

  setenv("HTTPS_PROXY", "http://proxy.example:3128", 1);
  r = Client::create(https(), o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("HTTPS_PROXY is set"), std::string::npos) << r.error().message();

  // The default (auto) takes libcurl for all three.
  unsetenv("HTTPS_PROXY");
  o.transport = Transport::kAuto;
  EXPECT_TRUE(Client::create(proxied, o).ok());
  EXPECT_TRUE(Client::create(plain, o).ok());
  setenv("HTTPS_PROXY", "http://proxy.example:3128", 1);
  EXPECT_TRUE(Client::create(https(), o).ok());

  // The explicit option wins over the environment, and curl serves all three.
  setenv("LEASEHOLD_KUBE_TRANSPORT", "http2", 1);
  o.transport = Transport::kCurl;
  EXPECT_TRUE(Client::create(proxied, o).ok());
  EXPECT_TRUE(Client::create(plain, o).ok());
}

TEST_F(ClientTransportTest, Http2ToNoServerFailsTheRequestWithUnavailable) {
  ClientOptions o;
  o.transport = Transport::kHttp2;
  auto c = Client::create(https(), o);
  ASSERT_TRUE(c.ok()) << c.error().message();
  std::promise<Result<HttpResponse>> p;
  (*c)->request("GET", "/version", "", std::chrono::seconds(5),
                [&](Result<HttpResponse> r) { p.set_value(std::move(r)); });
  auto f = p.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  auto r = f.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kUnavailable) << r.error().message();
  EXPECT_NE(r.error().message().find("GET https://127.0.0.1:1/version: cannot connect to 127.0.0.1:1"),
            std::string::npos)
      << r.error().message();
}

}  // namespace
}  // namespace leasehold::kube
