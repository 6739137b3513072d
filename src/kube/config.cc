#include "kube/config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

namespace leasehold::kube {
namespace {

Result<std::string> read_file(const std::string& path, const std::string& what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Error::invalid(what + ": cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

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

std::string base64_decode(std::string_view in, bool* ok) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int val = 0, bits = -8;
  *ok = true;
  for (char c : in) {
    if (c == '=' || c == '\n' || c == '\r' || c == ' ') continue;
    auto pos = kAlphabet.find(c);
    if (pos == std::string::npos) {
      *ok = false;
      return {};
    }
    val = (val << 6) + static_cast<int>(pos);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xFF));
      bits -= 8;
    }
  }
  return out;
}

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
    bool ok = true;
    if (auto data = str(cluster, "certificate-authority-data"); !data.empty()) {
      c.ca_pem = base64_decode(data, &ok);
      if (!ok) return Error::invalid(source + ": certificate-authority-data is not base64");
    } else if (auto file = str(cluster, "certificate-authority"); !file.empty()) {
      auto pem = read_file(resolve(dir, file), source + ": certificate-authority");
      if (!pem) return pem.error();
      c.ca_pem = *pem;
    }
    c.insecure_skip_tls_verify = str(cluster, "insecure-skip-tls-verify") == "true";
    c.tls_server_name = str(cluster, "tls-server-name");
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
          *dst = base64_decode(data, &ok);
          if (!ok) return Error::invalid(source + ": " + data_key + " is not base64");
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

}  // namespace leasehold::kube
