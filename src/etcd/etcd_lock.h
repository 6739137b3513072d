// Internal: the etcd:// lock handle, its URL, and the session every etcd
// election of a Runtime shares (docs/etcd.md says what it guarantees).
//
//   etcd://HOST:PORT[,HOST:PORT...]/PREFIX    plain HTTP
//   etcds://HOST:PORT[,HOST:PORT...]/PREFIX   TLS
//
// PREFIX is the URL's path, leading '/' kept: etcd://127.0.0.1:2379/leasehold/app
// is the election concurrency.NewElection(session, "/leasehold/app") joins.
//
// An ElectionLock is not a record lock: Elector::create recognises it and
// runs the etcd driver (src/etcd/etcd_elector.cc) instead of the Lease state
// machine. For readers (Observer, `leasehold status`, the elector's own view
// of the leader) it offers get() and watch(): the record it reports is the
// leader key (the oldest key under PREFIX/), holder = its value, version and
// leaseTransitions = its create_revision (clamped to 2^31-1 in the record;
// Term::transitions carries the full value), leaseDurationSeconds =
// 2^31-1: the etcd server, not the reader, judges expiry (the key goes when
// its lease does). create() is refused (Invalid); update() only releases:
// with an empty holder it deletes the leader key of that version (a compare
// on its create_revision; Conflict if it is gone or changed), so
// `leasehold release --force` works; naming a holder is refused (Invalid).
//
// Threading: as lock.h (I/O thread), except where a method says otherwise.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "etcd/election_machine.h"
#include "etcd/transport.h"
#include "leasehold/lock.h"
#include "leasehold/runtime.h"

namespace leasehold {
class IoGate;
}

namespace leasehold::etcd {

struct LockUrl {
  std::vector<std::string> endpoints;  // "http://HOST:PORT" or "https://HOST:PORT"
  std::string prefix;                  // "/leasehold/app"
  bool tls = false;
};
// Errors name what is wrong: the scheme, an empty endpoint list, a HOST:PORT
// without a port, an empty or '/'-terminated PREFIX.
Result<LockUrl> parse_lock_url(std::string_view url);

// Credentials and TLS files for etcd:// locks (Runtime::Options::etcd).
struct Credentials {
  std::string ca_file, cert_file, key_file;
  std::string user, password_file;
};
// The ConnectionConfig of `url` with these credentials: the files are read
// here (errors name the file); a password file's trailing newline is dropped.
Result<ConnectionConfig> connection_for(const LockUrl& url, const Credentials& creds, const std::string& source);

// One session lease shared by every etcd election of a Runtime on one
// cluster (one ConnectionConfig): granted when the first election joins,
// kept alive every keepalive_interval, revoked when the last one leaves.
// Elections hear of it through Listener, on the I/O thread.
class SessionHub : public std::enable_shared_from_this<SessionHub> {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    virtual void on_session(int64_t lease, Instant deadline) = 0;
    // round_trip: the keepalive's, from its send to its answer.
    virtual void on_session_extended(int64_t lease, Instant deadline, Duration round_trip) = 0;
    virtual void on_session_lost(int64_t lease, const std::string& why) = 0;
  };

  SessionHub(Runtime& rt, std::shared_ptr<Transport> transport);
  ~SessionHub();

  Transport& transport() { return *transport_; }

  // Any thread: claims PREFIX for one election of this Runtime. Errors: an
  // election of this Runtime holds PREFIX already (its key would be ours
  // too), or `timings` differ from those of the elections holding a claim
  // (they share one session lease).
  Result<void> reserve(const std::string& prefix, const SessionConfig& timings);
  // Any thread: gives the claim back (after leave(), or never joined).
  void unreserve(const std::string& prefix);
  // I/O thread. Joins `l` (holding the claim on PREFIX) to the session,
  // granting it if this is the first election.
  void join(Listener* l, const std::string& prefix);
  // I/O thread. The last election to leave revokes the lease.
  void leave(Listener* l, const std::string& prefix);
  std::optional<int64_t> lease() const { return sm_ ? sm_->lease() : std::nullopt; }
  Instant deadline() const { return sm_ ? sm_->deadline() : Instant{}; }

  // Posts `fn` to the I/O thread from a transport completion; dropped once
  // the Runtime is being destroyed.
  void post(std::function<void()> fn);

 private:
  void step(const std::function<void(SessionMachine&, Instant, std::vector<session::Action>&)>& event);
  void warn(const std::string& msg);
  template <class T, class Decode, class Feed>
  void ask(const char* path, std::string body, const char* what, Decode decode, Feed feed);
  void apply(session::Action& a);
  void rearm();

  Runtime& rt_;
  std::shared_ptr<Transport> transport_;
  std::shared_ptr<IoGate> gate_;
  std::optional<SessionMachine> sm_;  // made by the first join
  SessionConfig timings_{};
  std::map<std::string, Listener*> members_;  // by prefix; I/O thread
  std::mutex reserved_mu_;
  std::map<std::string, SessionConfig> reserved_;  // GUARDED_BY(reserved_mu_)
  uint64_t timer_ = 0;
  std::optional<Instant> armed_;
  uint64_t session_gen_ = 0;  // one per session (sm_); answers carry the one they were asked in
  Duration request_timeout_{};
};

class ElectionLock final : public Lock {
 public:
  ElectionLock(Runtime& rt, std::string url, std::string prefix, std::shared_ptr<SessionHub> hub);
  ~ElectionLock() override;

  const std::string& describe() const override { return url_; }
  void get(Completion<Versioned> done) override;
  void create(const LeaseRecord& record, Completion<Versioned> done) override;
  void update(const std::string& version, const LeaseRecord& record, Completion<Versioned> done) override;
  // A watch of PREFIX/: the leader key is read when the stream is up, when
  // the known leader's key is deleted, and when a key appears while none was
  // known (a new key is never older than the leader's), and each read is
  // reported (nullopt: no candidate). Other candidates' joins and leaves
  // cost no read.
  bool watch(std::function<void(const std::optional<Versioned>&)> on_change,
             std::function<void(bool healthy)> on_health) override;
  void set_request_timeout(Duration timeout) override { timeout_ = timeout; }

  const std::string& prefix() const { return prefix_; }
  const std::shared_ptr<SessionHub>& hub() const { return hub_; }

 private:
  struct Watch;

  Runtime& rt_;
  std::string url_, prefix_;
  std::shared_ptr<SessionHub> hub_;
  Duration timeout_ = std::chrono::seconds(5);
  std::shared_ptr<Watch> watch_;
};

// Runtime::open_lock for etcd:// and etcds://: the hub for the URL's
// cluster comes from the Runtime (one per ConnectionConfig).
Result<std::shared_ptr<Lock>> open_etcd_lock(Runtime& rt, std::string_view url, const Credentials& creds);

// The leader key of PREFIX as a record (see above); for get().
Versioned leader_record(const KeyValue& kv);

}  // namespace leasehold::etcd
