#include "kube/objects.h"

#include <cstdio>
#include <ctime>

#include "backends/backends.h"

namespace leasehold::kube {
namespace {

using nlohmann::json;
using backends::format_micro_time;
using backends::parse_micro_time;

constexpr size_t kMaxBody = 4 << 20;
constexpr size_t kMaxReason = 128;
constexpr size_t kMaxMessage = 1024;
constexpr std::string_view kCandidateGroup = "coordination.k8s.io/";

// Serialises strings that came from callers (possibly invalid UTF-8) without
// throwing: invalid bytes become U+FFFD.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Parses `body` as one object of `kind` (its "kind", when present, must match).
Result<json> parse_object(std::string_view body, const std::string& kind) {
  if (body.size() > kMaxBody) {
    return Error::invalid(kind + " body of " + std::to_string(body.size()) +
                          " bytes is too large (at most 4 MiB)");
  }
  auto j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error::invalid(kind + " body is not valid JSON");
  if (!j.is_object()) return Error::invalid(kind + " body is not a JSON object");
  if (auto k = j.find("kind"); k != j.end()) {
    if (!k->is_string() || k->get_ref<const std::string&>() != kind) {
      std::string got = k->is_string() ? k->get<std::string>().substr(0, 64) : k->type_name();
      return Error::invalid(kind + " body: kind is \"" + got + "\", expected \"" + kind + "\"");
    }
  }
  return j;
}

// An optional object member: nullptr when absent or null.
Result<const json*> get_object(const json& parent, const std::string& where, const char* key) {
  auto it = parent.find(key);
  if (it == parent.end() || it->is_null()) return static_cast<const json*>(nullptr);
  if (!it->is_object()) return Error::invalid(where + key + ": not an object");
  return &*it;
}

Result<void> get_string(const json& parent, const std::string& where, const char* key,
                        std::string& out, bool required = false) {
  auto it = parent.find(key);
  if (it == parent.end() || it->is_null()) {
    if (required) return Error::invalid(where + key + ": missing");
    return {};
  }
  if (!it->is_string()) return Error::invalid(where + key + ": not a string");
  out = it->get<std::string>();
  if (required && out.empty()) return Error::invalid(where + key + ": empty");
  return {};
}

Result<void> get_time(const json& parent, const std::string& where, const char* key,
                      std::optional<WallTime>& out) {
  std::string s;
  if (auto r = get_string(parent, where, key, s); !r) return r;
  if (s.empty()) return {};
  auto t = parse_micro_time(s);
  if (!t) return Error::invalid(where + key + ": " + t.error().message());
  out = *t;
  return {};
}

struct Meta {
  std::string name, ns, uid, resource_version;
};

// metadata.name and metadata.resourceVersion are required (every object the
// server returns has both); namespace and uid are read when present.
Result<Meta> read_meta(const json& j, const std::string& kind) {
  const std::string where = kind + " metadata.";
  auto m = get_object(j, kind + " ", "metadata");
  if (!m) return m.error();
  if (!*m) return Error::invalid(kind + " metadata: missing");
  Meta meta;
  for (auto r : {get_string(**m, where, "name", meta.name, true),
                 get_string(**m, where, "namespace", meta.ns),
                 get_string(**m, where, "uid", meta.uid),
                 get_string(**m, where, "resourceVersion", meta.resource_version, true)}) {
    if (!r) return r.error();
  }
  return meta;
}

// metav1.Time: RFC 3339 in whole seconds, UTC ("2026-11-23T12:00:00Z").
std::string format_time(WallTime t) {
  std::string micro = format_micro_time(t);  // "YYYY-MM-DDTHH:MM:SS.ffffffZ"
  return micro.substr(0, 19) + "Z";
}

// Kubernetes label syntax (apimachinery validation.IsQualifiedName / IsValidLabelValue).
bool is_label_name(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(s.front()) || !alnum(s.back())) return false;
  for (char c : s) {
    if (!alnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
std::string cut_utf8(std::string_view s, size_t max) {
  if (s.size() <= max) return std::string(s);
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return std::string(s.substr(0, n));
}

Result<void> check_candidate_spec(const LeaseCandidateSpec& s) {
  if (s.lease_name.empty()) return Error::invalid("LeaseCandidate spec.leaseName: empty");
  if (s.binary_version.empty()) return Error::invalid("LeaseCandidate spec.binaryVersion: empty");
  if (s.strategy.empty()) return Error::invalid("LeaseCandidate spec.strategy: empty");
  if (s.strategy == "OldestEmulationVersion" && s.emulation_version.empty()) {
    return Error::invalid(
        "LeaseCandidate spec.emulationVersion: empty (strategy OldestEmulationVersion needs it)");
  }
  return {};
}

void write_candidate_spec(json& spec, const LeaseCandidateSpec& s) {
  spec["leaseName"] = s.lease_name;
  spec["binaryVersion"] = s.binary_version;
  spec["strategy"] = s.strategy;
  if (!s.emulation_version.empty()) spec["emulationVersion"] = s.emulation_version;
  else spec.erase("emulationVersion");
  if (s.ping_time) spec["pingTime"] = format_micro_time(*s.ping_time);
  else spec.erase("pingTime");
  if (s.renew_time) spec["renewTime"] = format_micro_time(*s.renew_time);
  else spec.erase("renewTime");
}

}  // namespace

bool is_dns_subdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  while (start <= s.size()) {
    size_t dot = s.find('.', start);
    std::string_view part = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
    if (part.empty() || part.size() > 63) return false;
    auto lower_alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    if (!lower_alnum(part.front()) || !lower_alnum(part.back())) return false;
    for (char c : part) {
      if (!lower_alnum(c) && c != '-') return false;
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

bool is_dns_label(std::string_view s) { return s.size() <= 63 && s.find('.') == s.npos && is_dns_subdomain(s); }

std::string_view api_version(LeaseCandidateVersion v) {
  return v == LeaseCandidateVersion::kV1Alpha2 ? "coordination.k8s.io/v1alpha2"
                                               : "coordination.k8s.io/v1beta1";
}

// ---------------------------------------------------------------------------
// LeaseCandidate

Result<LeaseCandidate> decode_lease_candidate(std::string_view body) {
  const std::string kind = "LeaseCandidate";
  auto j = parse_object(body, kind);
  if (!j) return j.error();
  LeaseCandidate c;
  std::string api;
  if (auto r = get_string(*j, kind + " ", "apiVersion", api); !r) return r.error();
  if (api.empty() || api == api_version(LeaseCandidateVersion::kV1Beta1)) {
    c.version = LeaseCandidateVersion::kV1Beta1;
  } else if (api == api_version(LeaseCandidateVersion::kV1Alpha2)) {
    c.version = LeaseCandidateVersion::kV1Alpha2;
  } else {
    return Error::invalid("LeaseCandidate apiVersion: \"" + api.substr(0, 64) +
                          "\" is not supported (want " + std::string(kCandidateGroup) +
                          "v1beta1 or v1alpha2)");
  }
  auto meta = read_meta(*j, kind);
  if (!meta) return meta.error();
  c.name = meta->name;
  c.ns = meta->ns;
  c.resource_version = meta->resource_version;
  auto spec = get_object(*j, kind + " ", "spec");
  if (!spec) return spec.error();
  if (*spec) {
    const std::string where = kind + " spec.";
    const json& s = **spec;
    for (auto r : {get_string(s, where, "leaseName", c.spec.lease_name),
                   get_string(s, where, "binaryVersion", c.spec.binary_version),
                   get_string(s, where, "emulationVersion", c.spec.emulation_version),
                   get_string(s, where, "strategy", c.spec.strategy),
                   get_time(s, where, "pingTime", c.spec.ping_time),
                   get_time(s, where, "renewTime", c.spec.renew_time)}) {
      if (!r) return r.error();
    }
  }
  c.object = std::move(*j);
  return c;
}

Result<std::string> encode_lease_candidate_create(const std::string& ns, const std::string& name,
                                                  const LeaseCandidateSpec& spec,
                                                  LeaseCandidateVersion version) {
  if (name.empty()) return Error::invalid("LeaseCandidate metadata.name: empty");
  if (ns.empty()) return Error::invalid("LeaseCandidate metadata.namespace: empty");
  if (auto r = check_candidate_spec(spec); !r) return r.error();
  json obj = {{"apiVersion", std::string(api_version(version))},
              {"kind", "LeaseCandidate"},
              {"metadata", {{"name", name}, {"namespace", ns}}},
              {"spec", json::object()}};
  write_candidate_spec(obj["spec"], spec);
  return dump(obj);
}

Result<std::string> encode_lease_candidate_update(const json& base,
                                                  const LeaseCandidateSpec& spec) {
  if (!base.is_object()) return Error::invalid("LeaseCandidate to update: not an object");
  if (auto r = check_candidate_spec(spec); !r) return r.error();
  json obj = base;
  if (!obj.contains("spec") || !obj["spec"].is_object()) obj["spec"] = json::object();
  write_candidate_spec(obj["spec"], spec);
  return dump(obj);
}

// ---------------------------------------------------------------------------
// Pod

Result<Pod> decode_pod(std::string_view body) {
  const std::string kind = "Pod";
  auto j = parse_object(body, kind);
  if (!j) return j.error();
  auto meta = read_meta(*j, kind);
  if (!meta) return meta.error();
  Pod p;
  p.name = meta->name;
  p.ns = meta->ns;
  p.uid = meta->uid;
  p.resource_version = meta->resource_version;
  const json& m = (*j)["metadata"];
  auto labels = get_object(m, "Pod metadata.", "labels");
  if (!labels) return labels.error();
  if (*labels) {
    for (const auto& [k, v] : (*labels)->items()) {
      if (!v.is_string()) {
        return Error::invalid("Pod metadata.labels." + k.substr(0, 64) + ": not a string");
      }
      p.labels.emplace(k, v.get<std::string>());
    }
  }
  if (auto it = m.find("deletionTimestamp"); it != m.end() && !it->is_null()) {
    if (!it->is_string()) return Error::invalid("Pod metadata.deletionTimestamp: not a string");
    p.deleting = true;
  }
  auto spec = get_object(*j, "Pod ", "spec");
  if (!spec) return spec.error();
  if (*spec) {
    if (auto r = get_string(**spec, "Pod spec.", "nodeName", p.node_name); !r) return r.error();
  }
  auto status = get_object(*j, "Pod ", "status");
  if (!status) return status.error();
  if (*status) {
    for (auto r : {get_string(**status, "Pod status.", "phase", p.phase),
                   get_string(**status, "Pod status.", "reason", p.reason)}) {
      if (!r) return r.error();
    }
  }
  p.object = std::move(*j);
  return p;
}

Result<std::string> pod_label_patch(std::string_view key, std::optional<std::string_view> value,
                                    std::string_view resource_version) {
  std::string_view name = key;
  if (auto slash = key.find('/'); slash != std::string_view::npos) {
    if (!is_dns_subdomain(key.substr(0, slash))) {
      return Error::invalid("label key \"" + std::string(key.substr(0, 300)) +
                            "\": the prefix must be a DNS subdomain (lowercase, at most 253)");
    }
    name = key.substr(slash + 1);
  }
  if (!is_label_name(name)) {
    return Error::invalid("label key \"" + std::string(key.substr(0, 300)) +
                          "\": the name must be 1-63 characters [A-Za-z0-9._-], "
                          "starting and ending alphanumeric");
  }
  if (value && !value->empty() && !is_label_name(*value)) {
    return Error::invalid("label \"" + std::string(key) + "\" value \"" +
                          std::string(value->substr(0, 100)) +
                          "\": at most 63 characters [A-Za-z0-9._-], starting and ending "
                          "alphanumeric");
  }
  json meta = json::object();
  meta["labels"][std::string(key)] = value ? json(std::string(*value)) : json(nullptr);
  if (!resource_version.empty()) meta["resourceVersion"] = std::string(resource_version);
  return dump(json{{"metadata", meta}});
}

// ---------------------------------------------------------------------------
// Node

Result<Node> decode_node(std::string_view body) {
  const std::string kind = "Node";
  auto j = parse_object(body, kind);
  if (!j) return j.error();
  auto meta = read_meta(*j, kind);
  if (!meta) return meta.error();
  Node n;
  n.name = meta->name;
  n.resource_version = meta->resource_version;
  auto status = get_object(*j, "Node ", "status");
  if (!status) return status.error();
  if (*status) {
    auto conds = (*status)->find("conditions");
    if (conds != (*status)->end() && !conds->is_null()) {
      if (!conds->is_array()) return Error::invalid("Node status.conditions: not an array");
      for (size_t i = 0; i < conds->size(); ++i) {
        const json& c = (*conds)[i];
        const std::string where = "Node status.conditions[" + std::to_string(i) + "].";
        if (!c.is_object()) {
          return Error::invalid(where.substr(0, where.size() - 1) + ": not an object");
        }
        std::string type;
        if (auto r = get_string(c, where, "type", type); !r) return r.error();
        if (type != "Ready") continue;
        std::string st;
        if (auto r = get_string(c, where, "status", st); !r) return r.error();
        n.ready = st == "True" ? Node::Ready::kTrue
                  : st == "False" ? Node::Ready::kFalse
                                  : Node::Ready::kUnknown;
        n.ready_since.reset();
        if (auto r = get_time(c, where, "lastTransitionTime", n.ready_since); !r) return r.error();
      }
    }
  }
  n.object = std::move(*j);
  return n;
}

// ---------------------------------------------------------------------------
// Event

std::string event_namespace(const EventSpec& spec) {
  if (!spec.ns.empty()) return spec.ns;
  if (!spec.involved.ns.empty()) return spec.involved.ns;
  return "default";
}

Result<std::string> encode_event(const EventSpec& spec) {
  const ObjectRef& o = spec.involved;
  if (o.kind.empty()) return Error::invalid("Event involvedObject.kind: empty");
  if (o.name.empty()) return Error::invalid("Event involvedObject.name: empty");
  if (spec.reason.empty()) return Error::invalid("Event reason: empty");
  if (spec.reason.size() > kMaxReason) {
    return Error::invalid("Event reason: " + std::to_string(spec.reason.size()) +
                          " bytes, at most 128");
  }
  if (spec.count < 1) {
    return Error::invalid("Event count: " + std::to_string(spec.count) + ", must be at least 1");
  }
  std::string ns = event_namespace(spec);
  // The server's rule for Events without eventTime: the Event lives in the
  // involved object's namespace ("default" for cluster-scoped objects).
  if (!o.ns.empty() && ns != o.ns) {
    return Error::invalid("Event metadata.namespace: \"" + ns +
                          "\" differs from involvedObject.namespace \"" + o.ns + "\"");
  }
  if (o.ns.empty() && ns != "default") {
    return Error::invalid("Event metadata.namespace: \"" + ns +
                          "\" must be \"default\" for a cluster-scoped involvedObject");
  }
  std::string name = spec.name;
  if (name.empty()) {
    // client-go: fmt.Sprintf("%v.%x", ref.Name, t.UnixNano())
    int64_t nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        spec.first_timestamp.time_since_epoch())
                        .count();
    char hex[24];
    if (nanos < 0) {
      std::snprintf(hex, sizeof hex, "-%llx", static_cast<unsigned long long>(-(nanos + 1)) + 1ULL);
    } else {
      std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(nanos));
    }
    name = o.name + "." + hex;
  }
  json ref = json::object();
  auto put = [](json& obj, const char* key, const std::string& v) {
    if (!v.empty()) obj[key] = v;  // omitempty, as Go writes ObjectReference
  };
  put(ref, "kind", o.kind);
  put(ref, "namespace", o.ns);
  put(ref, "name", o.name);
  put(ref, "uid", o.uid);
  put(ref, "apiVersion", o.api_version);
  put(ref, "resourceVersion", o.resource_version);
  json source = json::object();
  put(source, "component", spec.component);
  put(source, "host", spec.host);
  std::string first = format_time(spec.first_timestamp);
  json ev = {{"apiVersion", "v1"},
             {"kind", "Event"},
             {"metadata", {{"name", name}, {"namespace", ns}}},
             {"involvedObject", ref},
             {"reason", spec.reason},
             {"message", cut_utf8(spec.message, kMaxMessage)},
             {"source", source},
             {"firstTimestamp", first},
             {"lastTimestamp", spec.last_timestamp ? format_time(*spec.last_timestamp) : first},
             {"count", spec.count},
             {"type", spec.type == EventSpec::Type::kWarning ? "Warning" : "Normal"},
             {"eventTime", nullptr},
             {"reportingComponent", spec.component},
             {"reportingInstance", spec.host}};
  return dump(ev);
}

EventSpec leader_election_event(ObjectRef lock, std::string_view identity, std::string_view what,
                                std::string component, std::string host, WallTime now) {
  EventSpec e;
  e.involved = std::move(lock);
  e.reason = "LeaderElection";
  e.message = std::string(identity) + " " + std::string(what);
  e.type = EventSpec::Type::kNormal;
  e.component = std::move(component);
  e.host = std::move(host);
  e.first_timestamp = now;
  return e;
}

}  // namespace leasehold::kube
