#include "kube/config.h"

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include "backends/backends.h"
#include "core/base64.h"

namespace leasehold::kube {

Result<std::string> read_file(const std::string& path, const std::string& what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Error::invalid(what + ": cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

namespace {

// The folder a kubeconfig's relative paths are resolved against.
std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::string resolve(const std::string& dir, const std::string& p) {
  if (p.empty() || p[0] == '/' || dir.empty()) return p;
  return dir + "/" + p;
}

YAML::Node find_named(const YAML::Node& list, const std::string& name) {
  if (!list || !list.IsSequence()) return YAML::Node();
  for (const auto& item : list) {
    if (item["name"] && item["name"].as<std::string>() == name) return item;
  }
  return YAML::Node();
}

std::string str(const YAML::Node& n, const char* key) {
  return n && n[key] && n[key].IsScalar() ? n[key].as<std::string>() : std::string();
}

// Rewrites the relative paths of one kubeconfig's entries against its own
// directory, so entries from several files can be merged.
void absolutize(YAML::Node list, const char* inner, const std::string& dir) {
  if (!list || !list.IsSequence()) return;
  for (auto item : list) {
    YAML::Node n = item[inner];
    if (!n || !n.IsMap()) continue;
    for (const char* key : {"certificate-authority", "client-certificate", "client-key", "tokenFile"}) {
      if (n[key] && n[key].IsScalar()) n[key] = resolve(dir, n[key].as<std::string>());
    }
    if (n["exec"] && n["exec"]["command"] && n["exec"]["command"].IsScalar()) {
      std::string cmd = n["exec"]["command"].as<std::string>();
      if (cmd.find('/') != std::string::npos) n["exec"]["command"] = resolve(dir, cmd);
    }
  }
}

// Merges KUBECONFIG files as kubectl does: the first file to define a name
// (cluster, user, context) or current-context wins.
Result<std::string> merge_kubeconfigs(const std::vector<std::string>& paths) {
  YAML::Node merged;
  merged["apiVersion"] = "v1";
  merged["kind"] = "Config";
  std::set<std::string> seen[3];
  const char* lists[3] = {"clusters", "users", "contexts"};
  const char* inner[3] = {"cluster", "user", "context"};
  for (const auto& path : paths) {
    auto text = read_file(path, "KUBECONFIG");
    if (!text) return text.error();
    YAML::Node doc;
    try {
      doc = YAML::Load(*text);
      if (!doc.IsMap()) return Error::invalid(path + ": not a kubeconfig (not a mapping)");
      std::string dir = dir_of(path);
      if (!merged["current-context"] && doc["current-context"] && !doc["current-context"].as<std::string>().empty()) {
        merged["current-context"] = doc["current-context"];
      }
      for (int i = 0; i < 3; ++i) {
        YAML::Node list = doc[lists[i]];
        if (!list || !list.IsSequence()) continue;
        absolutize(list, inner[i], dir);
        for (const auto& item : list) {
          std::string name = item["name"] ? item["name"].as<std::string>() : "";
          if (name.empty() || !seen[i].insert(name).second) continue;
          merged[lists[i]].push_back(item);
        }
      }
    } catch (const std::exception& e) {
      return Error::invalid(path + ": malformed kubeconfig: " + e.what());
    }
  }
  return YAML::Dump(merged);
}

}  // namespace

Result<ClusterConfig> parse_kubeconfig(const std::string& text, const std::string& dir,
                                       const std::string& context, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const std::exception& e) {
    return Error::invalid(source + ": not valid YAML: " + e.what());
  }
  try {
    if (!root.IsMap()) return Error::invalid(source + ": not a kubeconfig (not a mapping)");
    std::string ctx_name = context.empty() ? str(root, "current-context") : context;
    if (ctx_name.empty()) return Error::invalid(source + ": no current-context and no context given");
    YAML::Node ctx = find_named(root["contexts"], ctx_name);
    if (!ctx || !ctx["context"]) return Error::invalid(source + ": context \"" + ctx_name + "\" not found");
    std::string cluster_name = str(ctx["context"], "cluster");
    std::string user_name = str(ctx["context"], "user");
    YAML::Node cluster = find_named(root["clusters"], cluster_name)["cluster"];
    if (!cluster) return Error::invalid(source + ": cluster \"" + cluster_name + "\" not found");
    ClusterConfig c;
    c.source = source + " (context " + ctx_name + ")";
    c.server = str(cluster, "server");
    if (c.server.empty()) return Error::invalid(source + ": cluster \"" + cluster_name + "\" has no server");
    if (auto data = str(cluster, "certificate-authority-data"); !data.empty()) {
      auto pem = base64_decode(data);
      if (!pem) return Error::invalid(source + ": certificate-authority-data is not base64");
      c.ca_pem = std::move(*pem);
    } else if (auto file = str(cluster, "certificate-authority"); !file.empty()) {
      auto pem = read_file(resolve(dir, file), source + ": certificate-authority");
      if (!pem) return pem.error();
      c.ca_pem = *pem;
    }
    if (YAML::Node n = cluster["insecure-skip-tls-verify"]; n && !n.IsNull()) {
      bool v = false;
      if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v)) {
        return Error::invalid(source + ": cluster \"" + cluster_name +
                              "\": insecure-skip-tls-verify: want true or false");
      }
      c.insecure_skip_tls_verify = v;
    }
    if (c.insecure_skip_tls_verify && !c.ca_pem.empty()) {
      return Error::invalid(source + ": cluster \"" + cluster_name +
                            "\": insecure-skip-tls-verify: true may not be combined with a certificate-authority");
    }
    c.tls_server_name = str(cluster, "tls-server-name");
    c.proxy_url = str(cluster, "proxy-url");
    if (!c.proxy_url.empty()) {
      auto scheme_end = c.proxy_url.find("://");
      std::string scheme = scheme_end == std::string::npos ? "" : c.proxy_url.substr(0, scheme_end);
      if (scheme != "http" && scheme != "https" && scheme != "socks5") {
        return Error::invalid(source + ": cluster \"" + cluster_name + "\": proxy-url \"" +
                              redact_url(c.proxy_url) + "\": want an http://, https:// or socks5:// URL");
      }
      if (c.proxy_url.size() == scheme_end + 3) {
        return Error::invalid(source + ": cluster \"" + cluster_name + "\": proxy-url \"" +
                              redact_url(c.proxy_url) + "\" names no host");
      }
    }
    std::string ns = str(ctx["context"], "namespace");
    if (!ns.empty()) c.ns = ns;
    YAML::Node user = find_named(root["users"], user_name)["user"];
    if (user) {
      c.token = str(user, "token");
      if (auto f = str(user, "tokenFile"); !f.empty()) c.token_file = resolve(dir, f);
      for (auto [data_key, file_key, dst] :
           {std::tuple{"client-certificate-data", "client-certificate", &c.client_cert_pem},
            std::tuple{"client-key-data", "client-key", &c.client_key_pem}}) {
        if (auto data = str(user, data_key); !data.empty()) {
          auto pem = base64_decode(data);
          if (!pem) return Error::invalid(source + ": " + data_key + " is not base64");
          *dst = std::move(*pem);
        } else if (auto file = str(user, file_key); !file.empty()) {
          auto pem = read_file(resolve(dir, file), source + ": " + file_key);
          if (!pem) return pem.error();
          *dst = *pem;
        }
      }
      if (YAML::Node ex = user["exec"]; ex) {
        ExecConfig e;
        e.command = str(ex, "command");
        if (e.command.empty()) return Error::invalid(source + ": user \"" + user_name + "\": exec without command");
        // kubectl resolves a command with a path separator against the file's directory.
        if (e.command.find('/') != std::string::npos) e.command = resolve(dir, e.command);
        std::string api = str(ex, "apiVersion");
        if (!api.empty() && api != "client.authentication.k8s.io/v1" &&
            api != "client.authentication.k8s.io/v1beta1") {
          return Error::invalid(source + ": exec apiVersion \"" + api + "\" is not supported");
        }
        if (!api.empty()) e.api_version = api;
        if (ex["args"] && ex["args"].IsSequence()) {
          for (const auto& a : ex["args"]) e.args.push_back(a.as<std::string>());
        }
        if (ex["env"] && ex["env"].IsSequence()) {
          for (const auto& kv : ex["env"]) e.env.emplace_back(str(kv, "name"), str(kv, "value"));
        }
        c.exec = std::move(e);
      }
    }
    return c;
  } catch (const std::exception& e) {
    return Error::invalid(source + ": malformed kubeconfig: " + e.what());
  }
}

std::string redact_url(const std::string& url) {
  auto scheme_end = url.find("://");
  size_t host_start = scheme_end == std::string::npos ? 0 : scheme_end + 3;
  size_t host_end = url.find_first_of("/?#", host_start);
  if (host_end == std::string::npos) host_end = url.size();
  auto at = url.rfind('@', host_end);
  if (at == std::string::npos || at < host_start) return url;
  return url.substr(0, host_start) + "REDACTED@" + url.substr(at + 1);
}

Result<ExecCredential> parse_exec_credential(std::string_view json, const std::string& command) {
  std::string what = "exec plugin " + command + ": ";
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Error(Code::kUnauthorized, what + "output is not a JSON ExecCredential (" + std::to_string(json.size()) +
                                          " bytes)");
  }
  if (auto k = j.find("kind"); k != j.end() && (!k->is_string() || *k != "ExecCredential")) {
    return Error(Code::kUnauthorized, what + "output kind is not ExecCredential");
  }
  if (auto a = j.find("apiVersion"); a != j.end() && (!a->is_string() || (*a != "client.authentication.k8s.io/v1" &&
                                                                           *a != "client.authentication.k8s.io/v1beta1"))) {
    return Error(Code::kUnauthorized, what + "output apiVersion is not client.authentication.k8s.io/v1 or v1beta1");
  }
  auto st = j.find("status");
  if (st == j.end() || !st->is_object()) return Error(Code::kUnauthorized, what + "output has no status");
  ExecCredential c;
  for (auto [key, dst] : {std::pair{"token", &c.token}, std::pair{"clientCertificateData", &c.client_cert_pem},
                          std::pair{"clientKeyData", &c.client_key_pem}}) {
    auto f = st->find(key);
    if (f == st->end() || f->is_null()) continue;
    if (!f->is_string()) return Error(Code::kUnauthorized, what + "status." + key + " is not a string");
    *dst = f->get<std::string>();
  }
  if (c.client_cert_pem.empty() != c.client_key_pem.empty()) {
    return Error(Code::kUnauthorized, what + (c.client_cert_pem.empty() ? "status.clientKeyData without clientCertificateData"
                                                                        : "status.clientCertificateData without clientKeyData"));
  }
  if (c.token.empty() && c.client_cert_pem.empty()) {
    return Error(Code::kUnauthorized, what + "status has neither token nor clientCertificateData/clientKeyData");
  }
  if (!c.client_cert_pem.empty() && c.client_cert_pem.find("-----BEGIN") == std::string::npos) {
    return Error(Code::kUnauthorized, what + "status.clientCertificateData is not PEM");
  }
  if (!c.client_key_pem.empty() && c.client_key_pem.find("-----BEGIN") == std::string::npos) {
    return Error(Code::kUnauthorized, what + "status.clientKeyData is not PEM");
  }
  if (auto e = st->find("expirationTimestamp"); e != st->end() && !e->is_null()) {
    auto t = e->is_string() ? backends::parse_micro_time(e->get<std::string>()) : Result<WallTime>(Error::invalid(""));
    if (!t) return Error(Code::kUnauthorized, what + "status.expirationTimestamp is not an RFC 3339 time");
    c.expiry = *t;
  }
  return c;
}

Result<ClusterConfig> load_cluster_config(const ConfigOptions& o) {
  auto from_file = [&](const std::string& path) -> Result<ClusterConfig> {
    auto text = read_file(path, "kubeconfig");
    if (!text) return text.error();
    return parse_kubeconfig(*text, dir_of(path), o.context, path);
  };
  if (!o.kubeconfig.empty()) return from_file(o.kubeconfig);
  if (const char* env = std::getenv("KUBECONFIG"); env && *env) {
    std::string list = env;
    std::vector<std::string> files;
    size_t start = 0;
    while (start <= list.size()) {
      size_t end = list.find(':', start);
      if (end == std::string::npos) end = list.size();
      std::string p = list.substr(start, end - start);
      if (!p.empty() && std::ifstream(p)) files.push_back(p);  // missing files are skipped, as kubectl does
      start = end + 1;
    }
    if (files.empty()) return Error::invalid("KUBECONFIG names no readable file: " + list);
    if (files.size() == 1) return from_file(files[0]);
    auto merged = merge_kubeconfigs(files);
    if (!merged) return merged.error();
    return parse_kubeconfig(*merged, "", o.context, "KUBECONFIG=" + list);
  }
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host && *host && port && *port) {
    ClusterConfig c;
    std::string h = host;
    if (h.find(':') != std::string::npos) h = "[" + h + "]";
    c.server = "https://" + h + ":" + port;
    c.token_file = o.sa_dir + "/token";
    if (!std::ifstream(c.token_file)) {
      return Error::invalid("in-cluster config (KUBERNETES_SERVICE_HOST is set): cannot read the service-account token " +
                            c.token_file);
    }
    auto ca = read_file(o.sa_dir + "/ca.crt", "in-cluster CA");
    if (!ca) return ca.error();
    c.ca_pem = *ca;
    if (auto ns = read_file(o.sa_dir + "/namespace", "in-cluster namespace"); ns && !ns->empty()) {
      c.ns = *ns;
      while (!c.ns.empty() && (c.ns.back() == '\n' || c.ns.back() == ' ')) c.ns.pop_back();
    }
    c.source = "in-cluster service account (" + o.sa_dir + ")";
    return c;
  }
  if (const char* home = std::getenv("HOME"); home && *home) {
    std::string p = std::string(home) + "/.kube/config";
    if (std::ifstream(p)) return from_file(p);
  }
  return Error::invalid("no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, run in a "
                        "cluster, or create ~/.kube/config");
}

ServerUrl split_server(const std::string& server) {
  ServerUrl u;
  auto se = server.find("://");
  u.scheme = server.substr(0, se);
  size_t hs = se + 3;
  size_t he = server.find('/', hs);
  std::string authority = server.substr(hs, he == std::string::npos ? std::string::npos : he - hs);
  u.prefix = he == std::string::npos ? "" : server.substr(he);
  if (auto at = authority.rfind('@'); at != std::string::npos) authority = authority.substr(at + 1);
  size_t colon = authority.rfind(':');
  if (colon != std::string::npos && authority.find(']', colon) == std::string::npos) {
    u.host = authority.substr(0, colon);
    u.port = authority.substr(colon + 1);
  } else {
    u.host = authority;
    u.port = u.scheme == "https" ? "443" : "80";
  }
  return u;
}

}  // namespace leasehold::kube
