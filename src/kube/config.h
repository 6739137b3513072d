// Internal: where the Kubernetes API server is and how to authenticate.
//
// Discovery order (load_cluster_config): an explicit kubeconfig path; the
// KUBECONFIG variable (colon-separated files merged as kubectl merges them:
// the first to define a name or current-context wins);
// in-cluster (KUBERNETES_SERVICE_HOST/_PORT and the service-account files);
// ~/.kube/config. Errors name the file and the field, never a credential.
//
// Threading: plain functions and values; safe from any thread (discovery reads
// the environment: do not change it concurrently).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "leasehold/clock.h"
#include "leasehold/error.h"

namespace leasehold::kube {

// A client.authentication.k8s.io/v1 exec credential plugin.
struct ExecConfig {
  std::string api_version = "client.authentication.k8s.io/v1";  // or v1beta1
  std::string command;
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env;
};

// What an exec plugin printed: a token, or a client certificate and key
// (PEM), or both; cached until `expiry` (none: until a 401).
struct ExecCredential {
  std::string token;
  std::string client_cert_pem;
  std::string client_key_pem;
  std::optional<WallTime> expiry;
};

// Parses a client.authentication.k8s.io/v1 or v1beta1 ExecCredential as the
// plugin `command` printed it. Errors name the command and the field, never
// the output (it holds secrets).
Result<ExecCredential> parse_exec_credential(std::string_view json, const std::string& command);

// A server URL split as scheme://authority/prefix (for tls-server-name).
// `host` keeps IPv6 brackets; `port` defaults to the scheme's.
struct ServerUrl {
  std::string scheme, host, port, prefix;
};
ServerUrl split_server(const std::string& server);

// Runs the plugin (stdin /dev/null, KUBERNETES_EXEC_INFO set, the kubeconfig's
// env added) and parses what it printed. Blocks the calling thread for at most
// `timeout` (then the plugin is killed). `pid` holds the plugin's process
// while it runs, -1 after, so another thread may kill it. Errors are
// Unauthorized and name the command, never the output.
Result<ExecCredential> run_exec_plugin(const ExecConfig& e, Clock& clock, Duration timeout, std::atomic<pid_t>& pid);

struct ClusterConfig {
  std::string server;  // https://host:port[/prefix]
  std::string ca_pem;  // empty: the system trust store
  // kubeconfig insecure-skip-tls-verify: only an explicit YAML true turns
  // verification off; it may not be combined with a CA (as client-go refuses).
  bool insecure_skip_tls_verify = false;
  // kubeconfig tls-server-name: the name the server certificate is verified
  // against (and sent as SNI) while connecting to the server URL's host.
  std::string tls_server_name;
  // kubeconfig proxy-url: http://, https:// (CONNECT tunnel) or socks5://
  // (the proxy resolves the name); may carry user:password. Empty: curl's
  // https_proxy / no_proxy environment variables apply, as in client-go.
  std::string proxy_url;
  std::string token;       // a static bearer token
  std::string token_file;  // read again when it changes (bound tokens rotate; credentials.h)
  // Run for a token or a client certificate and key; its answer is cached
  // until expirationTimestamp, and it runs again after a 401. Its
  // certificate replaces client_cert_pem/client_key_pem.
  std::optional<ExecConfig> exec;
  std::string client_cert_pem;
  std::string client_key_pem;
  std::string ns = "default";
  std::string source;  // where this came from, for messages
};

struct ConfigOptions {
  std::string kubeconfig;  // explicit path; empty: discover
  std::string context;     // empty: current-context
  // In-cluster file locations (overridable for tests): token, ca.crt, namespace.
  std::string sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
};

// The whole of file `path`; Invalid "WHAT: cannot read PATH" when it cannot
// be read.
Result<std::string> read_file(const std::string& path, const std::string& what);

// `url` without its user:password, for messages.
std::string redact_url(const std::string& url);

Result<ClusterConfig> load_cluster_config(const ConfigOptions& options);
// Parses one kubeconfig document; `dir` resolves relative paths.
Result<ClusterConfig> parse_kubeconfig(const std::string& text, const std::string& dir,
                                       const std::string& context, const std::string& source);

}  // namespace leasehold::kube
