// libFuzzer: the kubeconfig parser (YAML) and the exec plugin's ExecCredential
// output (JSON). Any input gives a value or an error; never a crash or an
// exception escaping.
#include <cstdint>
#include <string>

#include "kube/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  std::string text(reinterpret_cast<const char*>(data), size);
  auto c = leasehold::kube::parse_kubeconfig(text, "/nonexistent", "", "fuzz");
  if (c.ok() && c->server.empty()) __builtin_trap();  // a config always names a server
  if (c.ok() && c->insecure_skip_tls_verify && !c->ca_pem.empty()) __builtin_trap();  // refused combination
  auto e = leasehold::kube::parse_exec_credential(text, "fuzz");
  if (e.ok() && e->token.empty() && e->client_cert_pem.empty()) __builtin_trap();  // some credential
  if (e.ok() && e->client_cert_pem.empty() != e->client_key_pem.empty()) __builtin_trap();  // both or neither
  (void)leasehold::kube::redact_url(text);
  return 0;
}
