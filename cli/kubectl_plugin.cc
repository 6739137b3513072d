// kubectl leasehold: the admin commands (status, observe, release, handoff)
// as a kubectl plugin. kubectl runs `kubectl-leasehold` from PATH for
// `kubectl leasehold ...`; main() comes here when argv[0]'s base name is
// kubectl-leasehold (a copy of the binary or a link to it).
//
// kubectl's conventions, translated into the commands' own flags:
//   NAME, lease/NAME, configmap/NAME (cm/), endpoints/NAME (ep/), or a lock URL
//   -n/--namespace NS   default: the kubeconfig context's namespace, else "default"
//   --context CTX       the kubeconfig context (--kube-context)
//   --kubeconfig FILE   as kubectl (and $KUBECONFIG)
//   -o json|yaml|wide   output (default: the table)
// Every other argument is passed through unchanged.
#include <cstdio>
#include <string>
#include <vector>

#include "cli.h"
#include "kube/config.h"

namespace leasehold::cli {
namespace {

int plugin_usage(const std::string& error) {
  std::FILE* to = error.empty() ? stdout : stderr;
  if (!error.empty()) std::fprintf(stderr, "kubectl leasehold: %s\n\n", error.c_str());
  std::fprintf(to,
               "usage: kubectl leasehold COMMAND [TYPE/]NAME [-n NAMESPACE] [--context CTX] [--kubeconfig FILE]\n"
               "                         [-o json|yaml|wide] [flags]\n\n"
               "commands:\n"
               "  status    who holds the lock\n"
               "  observe   one line per change of holder, until interrupted\n"
               "  release   free the lock (a held lock only with --force)\n"
               "  handoff   hand the lock to a named standby (--to IDENTITY)\n\n"
               "TYPE is lease (default), configmap (cm) or endpoints (ep); NAME may also be a lock URL.\n"
               "See `kubectl leasehold COMMAND --help` for a command's flags.\n");
  return error.empty() ? 0 : 2;
}

// "lease/x" -> ("k8s", "x"); "x" -> ("k8s", "x"); an unknown TYPE -> error.
bool split_type(const std::string& arg, std::string& scheme, std::string& name, std::string& error) {
  auto slash = arg.find('/');
  scheme = "k8s";
  name = arg;
  if (slash == std::string::npos) return true;
  std::string type = arg.substr(0, slash);
  name = arg.substr(slash + 1);
  if (type == "lease" || type == "leases" || type == "lease.coordination.k8s.io") scheme = "k8s";
  else if (type == "configmap" || type == "configmaps" || type == "cm") scheme = "configmap";
  else if (type == "endpoints" || type == "ep") scheme = "endpoints";
  else {
    error = "\"" + type + "\" in \"" + arg + "\" is not a lock type (lease, configmap or endpoints)";
    return false;
  }
  return true;
}

}  // namespace

int kubectl_plugin_main(const std::vector<std::string>& in) {
  if (in.empty()) return plugin_usage("which command? status, observe, release or handoff");
  const std::string& cmd = in[0];
  if (cmd == "help" || cmd == "-h" || cmd == "--help") return plugin_usage("");
  if (cmd != "status" && cmd != "observe" && cmd != "release" && cmd != "handoff") {
    return plugin_usage("unknown command \"" + cmd + "\" (status, observe, release or handoff)");
  }
  std::string ns, context, kubeconfig, target;
  std::vector<std::string> rest;
  // "-n X", "-nX", "--namespace X", "--namespace=X"; the same shapes for the others.
  auto value = [&](size_t& i, const std::string& a, const char* shortf, const char* longf, std::string& out) {
    std::string l = std::string("--") + longf;
    if ((shortf && a == shortf) || a == l) {
      if (i + 1 >= in.size()) return -1;
      out = in[++i];
      return 1;
    }
    if (a.starts_with(l + "=")) {
      out = a.substr(l.size() + 1);
      return 1;
    }
    if (shortf && a.size() > 2 && a.starts_with(shortf) && a[1] != '-') {
      out = a.substr(2);
      return 1;
    }
    return 0;
  };
  std::string output;
  bool help = false;
  for (size_t i = 1; i < in.size(); ++i) {
    const std::string& a = in[i];
    int r = 0;
    for (auto [s, l, out] : {std::tuple{"-n", "namespace", &ns}, std::tuple{(const char*)nullptr, "context", &context},
                             std::tuple{(const char*)nullptr, "kubeconfig", &kubeconfig},
                             std::tuple{"-o", "output", &output}}) {
      if ((r = value(i, a, s, l, *out)) != 0) {
        if (r < 0) return plugin_usage(std::string("--") + l + " needs a value");
        break;
      }
    }
    if (r) continue;
    if (a == "-h" || a == "--help") help = true;
    if (!a.starts_with("-") && target.empty()) {
      target = a;
      continue;
    }
    rest.push_back(a);
  }
  std::vector<std::string> args;
  if (!kubeconfig.empty()) args.push_back("--kubeconfig=" + kubeconfig);
  if (!context.empty()) args.push_back("--kube-context=" + context);
  if (!output.empty()) args.push_back("--output=" + output);
  if (help) {
    args.push_back("--help");
  } else {
    if (target.empty()) return plugin_usage(cmd + ": which lock? e.g. kubectl leasehold " + cmd + " my-app -n prod");
    std::string url = target;
    if (target.find("://") == std::string::npos) {
      std::string scheme, name, error;
      if (!split_type(target, scheme, name, error)) return plugin_usage(error);
      if (ns.empty()) {
        // kubectl's default: the namespace of the kubeconfig context in use.
        kube::ConfigOptions o;
        o.kubeconfig = kubeconfig;
        o.context = context;
        auto cfg = kube::load_cluster_config(o);
        if (!cfg) {
          std::fprintf(stderr, "kubectl leasehold: %s\n", cfg.error().message().c_str());
          return 1;
        }
        ns = cfg->ns;
      }
      url = scheme + "://" + ns + "/" + name;
    } else if (!ns.empty()) {
      return plugin_usage("-n " + ns + " with a lock URL (" + target + "): the URL names its namespace");
    }
    args.push_back(url);
  }
  args.insert(args.end(), rest.begin(), rest.end());
  if (cmd == "status") return status_command(args);
  if (cmd == "observe") return observe_command(args);
  if (cmd == "release") return release_command(args);
  return handoff_command(args);
}

}  // namespace leasehold::cli
