// libFuzzer: the kubeconfig parser (YAML). Any input gives a config or an
// error; never a crash or an exception escaping.
#include <cstdint>
#include <string>

#include "kube/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  std::string text(reinterpret_cast<const char*>(data), size);
  auto c = leasehold::kube::parse_kubeconfig(text, "/nonexistent", "", "fuzz");
  if (c.ok() && c->server.empty()) __builtin_trap();  // a config always names a server
  return 0;
}
