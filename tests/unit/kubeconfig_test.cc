// Kubeconfig discovery and parsing (no server needed).
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "kube/config.h"

namespace leasehold::kube {
namespace {

namespace fs = std::filesystem;

class KubeconfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("leasehold-kubeconfig-" + std::to_string(::getpid()));
    fs::create_directories(root_ / "one");
    fs::create_directories(root_ / "two");
    unsetenv("KUBECONFIG");
    unsetenv("KUBERNETES_SERVICE_HOST");
  }
  void TearDown() override {
    fs::remove_all(root_);
    unsetenv("KUBECONFIG");
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
  }
  std::string write(const fs::path& p, const std::string& text) {
    std::ofstream(p) << text;
    return p.string();
  }
  fs::path root_;
};

TEST_F(KubeconfigTest, ReadsAContextWithRelativeFilesAndData) {
  write(root_ / "one" / "ca.crt", "CA-PEM");
  auto path = write(root_ / "one" / "config", R"(
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: c
  cluster: {server: "https://10.0.0.1:6443", certificate-authority: ca.crt}
contexts:
- name: dev
  context: {cluster: c, user: u, namespace: team-a}
users:
- name: u
  user: {token: secret-token, client-certificate-data: Q0VSVA==, client-key-data: S0VZ}
)");
  auto c = load_cluster_config({path, ""});
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->server, "https://10.0.0.1:6443");
  EXPECT_EQ(c->ca_pem, "CA-PEM");
  EXPECT_EQ(c->ns, "team-a");
  EXPECT_EQ(c->token, "secret-token");
  EXPECT_EQ(c->client_cert_pem, "CERT");
  EXPECT_EQ(c->client_key_pem, "KEY");
  auto other = load_cluster_config({path, "missing"});
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.error().message().find("context \"missing\" not found"), std::string::npos);
}

TEST_F(KubeconfigTest, MergesKubeconfigListLikeKubectl) {
  write(root_ / "one" / "ca.crt", "CA-ONE");
  auto first = write(root_ / "one" / "config", R"(
current-context: x
clusters:
- name: c
  cluster: {server: "https://first:6443", certificate-authority: ca.crt}
contexts:
- name: x
  context: {cluster: c, user: u}
)");
  auto second = write(root_ / "two" / "config", R"(
current-context: y
clusters:
- name: c
  cluster: {server: "https://second:6443"}
users:
- name: u
  user: {tokenFile: token}
)");
  std::string list = first + ":" + (root_ / "absent").string() + ":" + second;
  setenv("KUBECONFIG", list.c_str(), 1);
  auto c = load_cluster_config({});
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->server, "https://first:6443");        // the first file's cluster wins
  EXPECT_EQ(c->ca_pem, "CA-ONE");                    // resolved against the first file's folder
  EXPECT_EQ(c->token_file, (root_ / "two" / "token").string());  // and the second's
  EXPECT_EQ(c->ns, "default");
}

TEST_F(KubeconfigTest, InClusterConfigFromTheServiceAccountFiles) {
  write(root_ / "one" / "token", "sa-token\n");
  write(root_ / "one" / "ca.crt", "SA-CA");
  write(root_ / "one" / "namespace", "prod\n");
  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  ConfigOptions o;
  o.sa_dir = (root_ / "one").string();
  auto c = load_cluster_config(o);
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
  EXPECT_EQ(c->token_file, (root_ / "one" / "token").string());
  EXPECT_EQ(c->ca_pem, "SA-CA");
  EXPECT_EQ(c->ns, "prod");
}

TEST_F(KubeconfigTest, ClearErrors) {
  auto missing = load_cluster_config({(root_ / "nope").string(), ""});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("cannot read"), std::string::npos);
  auto garbage = load_cluster_config({write(root_ / "g", "{{{"), ""});
  ASSERT_FALSE(garbage.ok());
  EXPECT_NE(garbage.error().message().find("not valid YAML"), std::string::npos);
  auto noserver = load_cluster_config({write(root_ / "ns", "current-context: a\ncontexts:\n- name: a\n  context: {cluster: c}\nclusters:\n- name: c\n  cluster: {}\n"), ""});
  ASSERT_FALSE(noserver.ok());
  EXPECT_NE(noserver.error().message().find("has no server"), std::string::npos);
  auto badb64 = load_cluster_config({write(root_ / "b", "current-context: a\ncontexts:\n- name: a\n  context: {cluster: c}\nclusters:\n- name: c\n  cluster: {server: 'https://x', certificate-authority-data: '***'}\n"), ""});
  ASSERT_FALSE(badb64.ok());
  EXPECT_NE(badb64.error().message().find("not base64"), std::string::npos);
}

}  // namespace
}  // namespace leasehold::kube
