// Internal: where the Kubernetes API server is and how to authenticate.
//
// Discovery order (load_cluster_config): an explicit kubeconfig path; the
// KUBECONFIG variable (colon-separated files merged as kubectl merges them:
// the first to define a name or current-context wins);
// in-cluster (KUBERNETES_SERVICE_HOST/_PORT and the service-account files);
// ~/.kube/config. Errors name the file and the field.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "leasehold/error.h"

namespace leasehold::kube {

// A client.authentication.k8s.io/v1 exec credential plugin.
struct ExecConfig {
  std::string command;
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env;
};

struct ClusterConfig {
  std::string server;  // https://host:port
  std::string ca_pem;  // empty: the system trust store
  bool insecure_skip_tls_verify = false;
  std::string tls_server_name;
  std::string token;       // a static bearer token
  std::string token_file;  // re-read on every request (bound tokens rotate)
  // Run for a token; its answer is cached until expirationTimestamp, and run
  // again after a 401.
  std::optional<ExecConfig> exec;
  std::string client_cert_pem;
  std::string client_key_pem;
  std::string ns = "default";
  std::string source;  // where this came from, for messages
};

struct ConfigOptions {
  std::string kubeconfig;  // explicit path; empty: discover
  std::string context;     // empty: current-context
  // In-cluster file locations (overridable for tests).
  std::string sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
};

Result<ClusterConfig> load_cluster_config(const ConfigOptions& options);
// Parses one kubeconfig document; `dir` resolves relative paths.
Result<ClusterConfig> parse_kubeconfig(const std::string& text, const std::string& dir,
                                       const std::string& context, const std::string& source);
std::string base64_decode(std::string_view in, bool* ok);

}  // namespace leasehold::kube
