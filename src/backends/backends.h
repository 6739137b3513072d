// Internal: the lock backends behind Runtime::open_lock, and the JSON codec of
// the file lock's record.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "leasehold/error.h"
#include "leasehold/lock.h"
#include "leasehold/runtime.h"

namespace leasehold::kube {
class Client;
class EventRecorder;
enum class LegacyKind;
}

namespace leasehold::backends {

struct MemStore;

// The mem:// records of one Runtime, by name.
struct MemRegistry {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<MemStore>> stores;  // GUARDED_BY(mu)
};

Result<std::shared_ptr<Lock>> open_mem_lock(Runtime& rt, MemRegistry& reg, std::string url,
                                            const std::string& name);
Result<std::shared_ptr<Lock>> open_file_lock(Runtime& rt, std::string url, std::string path);
// leasehold release --force --repair on a file:///PATH lock whose record does
// not decode (which wedges every elector on it): under PATH.lock, re-reads
// PATH and, only if it still does not decode and was last modified at least
// `min_age` ago, replaces it with a free record (a new epoch, generation 1,
// leaseTransitions 0). Returns what was found (size, age, the decode error,
// the first bytes); an error, and nothing written, otherwise.
Result<std::string> repair_file_lock(const std::string& url, Duration min_age);
Result<std::shared_ptr<Lock>> open_kube_lease_lock(Runtime& rt, std::weak_ptr<kube::Client> client,
                                                   std::string url, std::string ns, std::string name);
// True for the schemes open_kube_lock takes: k8s, configmap, endpoints,
// configmapsleases, endpointsleases.
bool is_kube_scheme(std::string_view scheme);
// The Kubernetes lock for `scheme` on NS/NAME, with LeaderElection Events on
// its object(s) (the elector decides whether to ask for them).
Result<std::shared_ptr<Lock>> open_kube_lock(Runtime& rt, std::weak_ptr<kube::Client> client,
                                             std::string_view scheme, std::string url, std::string ns,
                                             std::string name);
// configmap:// and endpoints://: the legacy annotation lock on a ConfigMap or
// Endpoints. `events` (may be null) records LeaderElection Events on it.
Result<std::shared_ptr<Lock>> open_kube_annotation_lock(Runtime& rt, std::weak_ptr<kube::Client> client,
                                                        std::string url, kube::LegacyKind kind,
                                                        std::string ns, std::string name,
                                                        std::shared_ptr<kube::EventRecorder> events);
// configmapsleases:// and endpointsleases://: `primary` (the legacy lock) and
// `secondary` (the Lease) held together, with client-go's MultiLock semantics
// (see multi_lock.cc).
Result<std::shared_ptr<Lock>> open_multi_lock(Runtime& rt, std::string url, std::shared_ptr<Lock> primary,
                                              std::shared_ptr<Lock> secondary);

// The file lock's on-disk form: one JSON object,
//   {"kind":"leasehold.io/file-lock","apiVersion":1,
//    "epoch":"9f86d081884c7d65","generation":7,
//    "holderIdentity":"a","leaseDurationSeconds":15,
//    "acquireTime":"2026-11-23T10:00:00.000000Z","renewTime":"...",
//    "leaseTransitions":3,"strategy":"","preferredHolder":""}
// decode_file_record rejects anything else (wrong kind, torn JSON, wrong
// types) with an error naming the problem; it never reads garbage as "free".
// "epoch" (16 hex digits, never 0) is drawn at random when the file is
// created and kept by every update; the version is "EPOCH:GENERATION", so a
// deleted and re-created file never repeats one. Files written before epochs
// have none (epoch 0; version "GENERATION"); the next update gives them one.
struct FileRecord {
  uint64_t epoch = 0;
  uint64_t generation = 0;
  LeaseRecord record;
  std::string version() const;
};
std::string encode_file_record(const FileRecord& r);
Result<FileRecord> decode_file_record(std::string_view text);
// The largest record file decode_file_record accepts.
inline constexpr size_t kMaxFileRecordBytes = 64 * 1024;

// MicroTime as Kubernetes writes it: RFC 3339, UTC, exactly 6 fractional
// digits ("2026-11-23T10:00:00.123456Z"). parse accepts 0-9 digits and a
// "Z" or numeric offset.
std::string format_micro_time(WallTime t);
Result<WallTime> parse_micro_time(std::string_view s);

}  // namespace leasehold::backends
