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
    unsetenv("KUBERNETES_SERVICE_PORT");
    if (const char* h = std::getenv("HOME")) home_ = h;
    setenv("HOME", (root_ / "home").c_str(), 1);  // no ~/.kube/config unless a test writes one
  }
  void TearDown() override {
    fs::remove_all(root_);
    unsetenv("KUBECONFIG");
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    setenv("HOME", home_.c_str(), 1);
  }
  // A one-context kubeconfig whose cluster server is `server`, plus `cluster_extra` YAML.
  std::string kubeconfig(const fs::path& p, const std::string& server, const std::string& cluster_extra = "") {
    fs::create_directories(p.parent_path());
    return write(p, "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\n"
                    "clusters:\n- name: k\n  cluster:\n    server: " + server + "\n" + cluster_extra +
                    "users:\n- name: u\n  user: {token: t}\n");
  }
  void in_cluster_files() {
    write(root_ / "one" / "token", "sa-token\n");
    write(root_ / "one" / "ca.crt", "SA-CA");
    write(root_ / "one" / "namespace", "prod\n");
  }
  ConfigOptions sa_opts() {
    ConfigOptions o;
    o.sa_dir = (root_ / "one").string();
    return o;
  }
  std::string home_;
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

// ---- discovery order: explicit path, KUBECONFIG, in-cluster, ~/.kube/config ----

TEST_F(KubeconfigTest, DiscoveryOrderExplicitPathFirst) {
  in_cluster_files();
  auto explicit_path = kubeconfig(root_ / "explicit", "https://explicit:1");
  setenv("KUBECONFIG", kubeconfig(root_ / "env", "https://env:1").c_str(), 1);
  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  kubeconfig(root_ / "home" / ".kube" / "config", "https://home:1");
  ConfigOptions o = sa_opts();
  o.kubeconfig = explicit_path;
  auto c = load_cluster_config(o);
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->server, "https://explicit:1");
}

TEST_F(KubeconfigTest, DiscoveryOrderKubeconfigVariableBeforeInCluster) {
  in_cluster_files();
  setenv("KUBECONFIG", kubeconfig(root_ / "env", "https://env:1").c_str(), 1);
  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  kubeconfig(root_ / "home" / ".kube" / "config", "https://home:1");
  auto c = load_cluster_config(sa_opts());
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->server, "https://env:1");
}

TEST_F(KubeconfigTest, DiscoveryOrderInClusterBeforeHome) {
  in_cluster_files();
  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  kubeconfig(root_ / "home" / ".kube" / "config", "https://home:1");
  auto c = load_cluster_config(sa_opts());
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
  EXPECT_EQ(c->source, "in-cluster service account (" + (root_ / "one").string() + ")");
}

TEST_F(KubeconfigTest, DiscoveryOrderHomeLastAndOnlyWithBothServiceVariables) {
  in_cluster_files();
  kubeconfig(root_ / "home" / ".kube" / "config", "https://home:1");
  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);  // no _PORT: not in a cluster
  auto c = load_cluster_config(sa_opts());
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->server, "https://home:1");
  setenv("KUBECONFIG", "", 1);  // empty means unset
  c = load_cluster_config(sa_opts());
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->server, "https://home:1");
}

TEST_F(KubeconfigTest, DiscoveryWithNothingNamesEveryPlaceTried) {
  auto c = load_cluster_config(sa_opts());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code(), Code::kInvalid);
  for (const char* place : {"--kubeconfig", "KUBECONFIG", "cluster", "~/.kube/config"}) {
    EXPECT_NE(c.error().message().find(place), std::string::npos) << c.error().message();
  }
}

TEST_F(KubeconfigTest, InClusterWithoutATokenFileIsAnError) {
  write(root_ / "one" / "ca.crt", "SA-CA");
  setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  auto c = load_cluster_config(sa_opts());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message().find((root_ / "one" / "token").string()), std::string::npos) << c.error().message();
  write(root_ / "one" / "token", "t");
  c = load_cluster_config(sa_opts());
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->server, "https://[fd00::1]:443");
  EXPECT_EQ(c->ns, "default") << "no namespace file: default";
}

// ---- cluster fields: proxy-url, tls-server-name, insecure-skip-tls-verify ----

TEST_F(KubeconfigTest, ProxyUrlAndTlsServerName) {
  auto c = load_cluster_config({kubeconfig(root_ / "p", "https://10.0.0.1:6443",
                                           "    proxy-url: socks5://proxy.local:1080\n"
                                           "    tls-server-name: kubernetes.default.svc\n"), ""});
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->proxy_url, "socks5://proxy.local:1080");
  EXPECT_EQ(c->tls_server_name, "kubernetes.default.svc");
  EXPECT_FALSE(c->insecure_skip_tls_verify);
  for (const char* good : {"http://user:pw@127.0.0.1:3128", "https://proxy:443"}) {
    auto g = load_cluster_config({kubeconfig(root_ / "g", "https://h:1", std::string("    proxy-url: ") + good + "\n"), ""});
    ASSERT_TRUE(g.ok()) << good << ": " << g.error().message();
    EXPECT_EQ(g->proxy_url, good);
  }
}

TEST_F(KubeconfigTest, ABadProxyUrlIsNamedWithoutItsPassword) {
  auto c = load_cluster_config({kubeconfig(root_ / "p", "https://h:1", "    proxy-url: ftp://me:hunter2@proxy:21\n"), ""});
  ASSERT_FALSE(c.ok());
  const std::string& m = c.error().message();
  EXPECT_NE(m.find("proxy-url"), std::string::npos) << m;
  EXPECT_NE(m.find("cluster \"k\""), std::string::npos) << m;
  EXPECT_EQ(m.find("hunter2"), std::string::npos) << m;
  auto nohost = load_cluster_config({kubeconfig(root_ / "q", "https://h:1", "    proxy-url: 'http://'\n"), ""});
  EXPECT_FALSE(nohost.ok());
}

TEST_F(KubeconfigTest, InsecureSkipTlsVerifyOnlyWhenTrue) {
  struct Case {
    const char* yaml;
    bool want;
  } cases[] = {{"", false}, {"    insecure-skip-tls-verify: false\n", false},
               {"    insecure-skip-tls-verify: true\n", true}, {"    insecure-skip-tls-verify: True\n", true},
               {"    insecure-skip-tls-verify:\n", false}};
  for (const auto& k : cases) {
    auto c = load_cluster_config({kubeconfig(root_ / "i", "https://h:1", k.yaml), ""});
    ASSERT_TRUE(c.ok()) << k.yaml << c.error().message();
    EXPECT_EQ(c->insecure_skip_tls_verify, k.want) << k.yaml;
  }
  for (const char* bad : {"    insecure-skip-tls-verify: sure\n", "    insecure-skip-tls-verify: [true]\n"}) {
    auto c = load_cluster_config({kubeconfig(root_ / "i", "https://h:1", bad), ""});
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_NE(c.error().message().find("insecure-skip-tls-verify"), std::string::npos) << c.error().message();
  }
  // As client-go: a CA and insecure together are refused.
  auto both = load_cluster_config({kubeconfig(root_ / "i", "https://h:1",
                                              "    insecure-skip-tls-verify: true\n"
                                              "    certificate-authority-data: Q0E=\n"), ""});
  ASSERT_FALSE(both.ok());
  EXPECT_NE(both.error().message().find("may not be combined"), std::string::npos) << both.error().message();
}

TEST(RedactUrlTest, DropsUserInfoOnly) {
  EXPECT_EQ(redact_url("http://u:secret@proxy:3128"), "http://REDACTED@proxy:3128");
  EXPECT_EQ(redact_url("http://proxy:3128/a@b"), "http://proxy:3128/a@b");
  EXPECT_EQ(redact_url("socks5://proxy"), "socks5://proxy");
  EXPECT_EQ(redact_url("u:p@host"), "REDACTED@host");
}

// ---- exec credential plugin output ----

TEST(ExecCredentialTest, TokenWithExpiry) {
  auto c = parse_exec_credential(R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",
      "status":{"token":"tok","expirationTimestamp":"2030-01-02T03:04:05Z"}})", "/bin/plugin");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->token, "tok");
  ASSERT_TRUE(c->expiry.has_value());
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(c->expiry->time_since_epoch()).count(), 1893553445);
}

TEST(ExecCredentialTest, ClientCertificateAndKey) {
  auto c = parse_exec_credential(R"({"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential",
      "status":{"clientCertificateData":"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                "clientKeyData":"-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\n"}})", "p");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_TRUE(c->token.empty());
  EXPECT_NE(c->client_cert_pem.find("BEGIN CERTIFICATE"), std::string::npos);
  EXPECT_NE(c->client_key_pem.find("PRIVATE KEY"), std::string::npos);
  EXPECT_FALSE(c->expiry.has_value()) << "no expirationTimestamp: cached until a 401";
}

TEST(ExecCredentialTest, ErrorsNameTheFieldAndNeverTheSecret) {
  const std::string secret = "s3cr3t-K3Y-MATERIAL";
  struct Case {
    std::string json, want;
  } cases[] = {
      {"not json " + secret, "not a JSON ExecCredential"},
      {R"({"kind":"Secret","status":{"token":")" + secret + R"("}})", "kind"},
      {R"({"apiVersion":"v2","status":{"token":")" + secret + R"("}})", "apiVersion"},
      {R"({"status":{}})", "neither token nor"},
      {R"({"status":{"token":42}})", "status.token is not a string"},
      {R"({"status":{"clientCertificateData":"-----BEGIN CERTIFICATE-----)" + secret + R"("}})",
       "without clientKeyData"},
      {R"({"status":{"clientKeyData":"-----BEGIN KEY-----)" + secret + R"("}})", "without clientCertificateData"},
      {R"({"status":{"clientCertificateData":")" + secret + R"(","clientKeyData":")" + secret + R"("}})", "not PEM"},
      {R"({"status":{"token":")" + secret + R"(","expirationTimestamp":"tomorrow"}})", "expirationTimestamp"},
  };
  for (const auto& k : cases) {
    auto c = parse_exec_credential(k.json, "/usr/bin/plugin");
    ASSERT_FALSE(c.ok()) << k.json;
    EXPECT_EQ(c.error().code(), Code::kUnauthorized);
    EXPECT_NE(c.error().message().find(k.want), std::string::npos) << c.error().message();
    EXPECT_NE(c.error().message().find("/usr/bin/plugin"), std::string::npos) << c.error().message();
    EXPECT_EQ(c.error().message().find(secret), std::string::npos) << c.error().message();
  }
}

TEST_F(KubeconfigTest, ExecApiVersionIsKept) {
  auto path = write(root_ / "e", "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\n"
                                 "clusters:\n- name: k\n  cluster: {server: 'https://h:1'}\n"
                                 "users:\n- name: u\n  user:\n    exec:\n"
                                 "      apiVersion: client.authentication.k8s.io/v1beta1\n      command: ./plug\n"
                                 "      args: [a, b]\n      env: [{name: X, value: 'y'}]\n");
  auto c = load_cluster_config({path, ""});
  ASSERT_TRUE(c.ok()) << c.error().message();
  ASSERT_TRUE(c->exec.has_value());
  EXPECT_EQ(c->exec->api_version, "client.authentication.k8s.io/v1beta1");
  EXPECT_EQ(c->exec->command, root_.string() + "/./plug");
  EXPECT_EQ(c->exec->args, (std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace leasehold::kube
