// Deterministic simulation of the etcd:// election (src/etcd/election_machine.h).
//
// N nodes, each a SessionMachine and an ElectionMachine (the real ones),
// talk to a model of one etcd: a revision counter, keys with create and mod
// revisions bound to leases, leases that expire TTL after the server last
// heard a keepalive, the Txn create of concurrency.Election, ranges by
// create_revision, and watches that report a key's deletion. From a seed the
// simulator draws network delays and losses (a request with no answer times
// out in the driver), partitions (a node's requests are lost and its
// watches end), process pauses (no step runs while the local clock goes
// on), crashes and restarts (the lease is left to expire), graceful stops,
// admin deletions of a leader's key, and a clock-rate drift per node.
// After every event it checks:
//   * at most one node leads (ElectionMachine phase kLeading, before its
//     session deadline on its own clock), except a leader whose key an admin
//     deleted, for at most 11 s (its watch shows the deletion, or, broken,
//     its deadline ends the term);
//   * the fencing tokens (create revisions) of successive terms strictly
//     increase, except a term of a node excused as above (it may confirm
//     its key just before an admin deletes it, and lead with the older
//     token until its own-key watch shows the deletion);
//   * once the faults have healed (140 s), some node leads within 25 s, and
//     every graceful stop finishes within 60 s.
//
//   leasehold_etcd_sim --seeds 10000    run seeds 1..10000
//   leasehold_etcd_sim --seed 7 --trace replay one seed, printing each step
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "etcd/election_machine.h"

using namespace leasehold;
using namespace leasehold::etcd;
using namespace std::chrono_literals;

namespace {

constexpr int kNodes = 3;
constexpr Duration kRequestTimeout = 3s;
constexpr Duration kRunFor = 240s;
constexpr Duration kHealAfter = 140s;  // no new faults after this
const std::string kPrefix = "/sim/election";

struct Sim;

struct Store {
  int64_t rev = 1;
  struct Key {
    std::string value;
    int64_t create = 0, mod = 0, lease = 0;
  };
  std::map<std::string, Key> keys;
  struct Lease {
    Duration ttl{};
    Instant expires{};
  };
  std::map<int64_t, Lease> leases;
  int64_t next_lease = 0x1000;
  // Watches of a key's deletion: (key, create_revision at registration) -> callbacks.
  struct Watch {
    int node;
    uint64_t id;
    uint64_t stream;  // the node's watch stream generation
    uint64_t inc;     // the node's incarnation
    std::string key;
    int64_t create;
  };
  std::vector<Watch> watches;
  std::map<std::string, std::vector<int64_t>> deleted_at;  // every deletion of a key, by revision
};

struct Node {
  int index = 0;
  double rate = 1.0;  // local clock rate
  bool up = false, paused = false, partitioned = false, stopping = false, finished = false;
  Instant paused_until{};
  std::optional<SessionMachine> session;
  std::optional<ElectionMachine> election;
  uint64_t incarnation = 0;    // answers of an older incarnation are dropped
  uint64_t stream = 0;         // watch stream generation: a partition ends the streams
  std::map<uint64_t, bool> answered;  // driver request ids that got an answer (or timed out)
  uint64_t driver_ids = 0;
  bool work_running = false;
  int64_t term = 0;
  bool excused = false;  // its key was deleted by an admin while it led...
  Instant excused_until{};  // ...for at most this long (it must see that by then)
  Instant stop_at{};        // when its graceful stop was asked
  std::vector<std::function<void()>> held;  // events that arrived while paused
  std::optional<Instant> armed;  // the local instant of its one pending wake-up
  uint64_t arm_gen = 0;
};

struct Sim {
  explicit Sim(uint64_t seed, bool trace) : rng(seed), trace(trace), seed(seed) {}

  std::mt19937_64 rng;
  bool trace;
  uint64_t seed;
  Instant now{};  // true time
  uint64_t seq = 0;
  struct Ev {
    Instant at;
    uint64_t seq;
    std::function<void()> fn;
    bool operator>(const Ev& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };
  std::priority_queue<Ev, std::vector<Ev>, std::greater<>> q;
  Store store;
  Node nodes[kNodes];
  int64_t max_token = 0;
  std::optional<Instant> leaderless_since;
  std::string failure;

  double uniform(double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); }
  bool chance(double p) { return uniform(0, 1) < p; }
  Duration ms(double v) { return std::chrono::duration_cast<Duration>(std::chrono::duration<double, std::milli>(v)); }

  void at(Instant t, std::function<void()> fn) { q.push({t, seq++, std::move(fn)}); }
  Instant local(const Node& n) const {
    return Instant{} + std::chrono::duration_cast<Duration>((now - Instant{}) * n.rate);
  }
  // The true instant at which node n's local clock reads `t`.
  Instant true_at(const Node& n, Instant t) const {
    return Instant{} + std::chrono::duration_cast<Duration>((t - Instant{}) / n.rate);
  }

  void log(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    if (!trace) return;
    std::printf("%9.3f ", std::chrono::duration<double>(now - Instant{}).count());
    va_list ap;
    va_start(ap, fmt);
    std::vprintf(fmt, ap);
    va_end(ap);
    std::printf("\n");
  }

  Duration net_delay() {
    double r = uniform(0, 1);
    if (r < 0.85) return ms(uniform(0.2, 20));
    if (r < 0.98) return ms(uniform(20, 500));
    return ms(uniform(500, 4000));
  }

  // ---- the server ----
  void expire_leases() {
    for (auto it = store.leases.begin(); it != store.leases.end();) {
      if (it->second.expires <= now) {
        int64_t id = it->first;
        it = store.leases.erase(it);
        delete_keys_of(id);
      } else {
        ++it;
      }
    }
  }
  void delete_key(const std::string& key) {
    auto it = store.keys.find(key);
    if (it == store.keys.end()) return;
    int64_t create = it->second.create;
    store.keys.erase(it);
    ++store.rev;
    store.deleted_at[key].push_back(store.rev);
    for (auto w = store.watches.begin(); w != store.watches.end();) {
      if (w->key == key && w->create == create) {
        Store::Watch fired = *w;
        w = store.watches.erase(w);
        deliver(fired.node, [this, fired, r = store.rev] {
          Node& n = nodes[fired.node];
          if (n.incarnation != fired.inc) return;
          // An event still on its way when its stream ended is lost with the
          // stream: the client sees the stream fail instead.
          Result<int64_t> ev = n.stream == fired.stream ? Result<int64_t>(r)
                                                        : Result<int64_t>(Error::unavailable("watch ended"));
          step_election(n, [&](std::vector<election::Action>& out) {
            n.election->on_deletion(local(n), fired.id, ev, out);
          });
        });
      } else {
        ++w;
      }
    }
  }
  void delete_keys_of(int64_t lease) {
    std::vector<std::string> doomed;
    for (auto& [k, v] : store.keys) {
      if (v.lease == lease) doomed.push_back(k);
    }
    for (auto& k : doomed) delete_key(k);
  }

  // Sends a request from node n: the server acts at arrival, the answer
  // comes back later; lost either way with some probability or while
  // partitioned; the driver times the request out.
  void request(Node& n, std::function<void()> on_server, std::function<void(bool ok)> answer) {
    uint64_t id = ++n.driver_ids;
    uint64_t inc = n.incarnation;
    int idx = n.index;
    Instant timeout = now + kRequestTimeout;  // (true time; drift is irrelevant at this scale)
    bool lost_out = n.partitioned || chance(0.01);
    if (!lost_out) {
      at(now + net_delay(), [this, idx, inc, id, on_server, answer] {
        expire_leases();
        on_server();
        Node& m = nodes[idx];
        if (m.partitioned || chance(0.01)) return;
        at(now + net_delay(), [this, idx, inc, id, answer] {
          Node& k = nodes[idx];
          if (k.incarnation != inc || !k.up) return;
          deliver(idx, [this, idx, inc, id, answer] {
            Node& j = nodes[idx];
            if (j.incarnation != inc || j.answered[id]) return;
            j.answered[id] = true;
            answer(true);
          });
        });
      });
    }
    at(timeout, [this, idx, inc, id, answer] {
      Node& k = nodes[idx];
      if (k.incarnation != inc || !k.up) return;
      deliver(idx, [this, idx, inc, id, answer] {
        Node& j = nodes[idx];
        if (j.incarnation != inc || j.answered[id]) return;
        j.answered[id] = true;
        answer(false);
      });
    });
  }

  // A request answered with a Result<T>: `serve` sets it at the server;
  // `answer` gets it, or the timeout `lost` when the request or its answer
  // was lost.
  template <class T>
  void ask(Node& n, const char* lost, std::function<void(Result<T>&)> serve,
           std::function<void(Result<T>)> answer) {
    auto ans = std::make_shared<Result<T>>(Error::timeout(lost));
    request(n, [serve, ans] { serve(*ans); }, [ans, answer, lost](bool ok) {
      answer(ok ? *ans : Result<T>(Error::timeout(lost)));
    });
  }

  // Runs fn on node idx now, or when its pause ends.
  void deliver(int idx, std::function<void()> fn) {
    Node& n = nodes[idx];
    if (!n.up) return;
    if (n.paused) {
      n.held.push_back(std::move(fn));
      return;
    }
    fn();
  }

  // ---- the driver (one node) ----
  void step_session(Node& n, const std::function<void(std::vector<session::Action>&)>& f) {
    std::vector<session::Action> out;
    f(out);
    for (auto& a : out) do_session(n, a);
    arm(n);
  }
  void step_election(Node& n, const std::function<void(std::vector<election::Action>&)>& f) {
    if (!n.election) return;
    std::vector<election::Action> out;
    f(out);
    for (auto& a : out) do_election(n, a);
    arm(n);
    check();
  }

  void do_session(Node& n, const session::Action& a) {
    Instant sent = local(n);
    if (auto* g = std::get_if<session::Grant>(&a)) {
      uint64_t gid = g->id;
      using Granted = std::pair<int64_t, Duration>;
      ask<Granted>(n, "grant timed out", [this](Result<Granted>& ans) {
        int64_t id = ++store.next_lease;
        store.leases[id] = {15s, now + 15s};
        ans = std::make_pair(id, Duration(15s));
      }, [this, &n, gid, sent](Result<Granted> r) {
        step_session(n, [&](std::vector<session::Action>& out) {
          n.session->on_grant(local(n), gid, sent, std::move(r), out);
        });
      });
    } else if (auto* k = std::get_if<session::KeepAlive>(&a)) {
      uint64_t kid = k->id;
      int64_t lease = k->lease;
      ask<Duration>(n, "keepalive timed out", [this, lease](Result<Duration>& ttl) {
        ttl = Duration::zero();  // a gone lease is answered with TTL 0
        auto it = store.leases.find(lease);
        if (it == store.leases.end()) return;
        it->second.expires = now + it->second.ttl;
        ttl = it->second.ttl;
      }, [this, &n, kid, sent](Result<Duration> r) {
        step_session(n, [&](std::vector<session::Action>& out) {
          n.session->on_keepalive(local(n), kid, sent, std::move(r), out);
        });
      });
    } else if (auto* r = std::get_if<session::Revoke>(&a)) {
      int64_t lease = r->lease;
      request(n, [this, lease] {
        if (store.leases.erase(lease)) delete_keys_of(lease);
      }, [](bool) {});
    } else if (auto* e = std::get_if<session::Established>(&a)) {
      log("node %d: session %" PRIx64, n.index, e->lease);
      int64_t lease = e->lease;
      Instant deadline = e->deadline;
      step_election(n, [&](std::vector<election::Action>& out) {
        if (n.election->phase() == ElectionMachine::Phase::kIdle) {
          n.election->start(lease, deadline, out);
        } else {
          n.election->on_session(lease, deadline, out);
        }
      });
    } else if (auto* x = std::get_if<session::Extended>(&a)) {
      if (n.election) n.election->on_session_extended(x->lease, x->deadline);
    } else if (auto* l = std::get_if<session::Lost>(&a)) {
      log("node %d: session %" PRIx64 " lost: %s", n.index, l->lease, l->why.c_str());
      int64_t lease = l->lease;
      std::string why = l->why;
      step_election(n, [&](std::vector<election::Action>& out) { n.election->on_session_lost(lease, why, out); });
    }
  }

  void do_election(Node& n, const election::Action& a) {
    using namespace election;
    if (auto* c = std::get_if<Create>(&a)) {
      Create cr = *c;
      log("node %d: create %s", n.index, cr.key.c_str());
      ask<CreateAnswer>(n, "txn timed out", [this, cr](Result<CreateAnswer>& ans) {
        if (!store.leases.count(cr.lease)) {
          ans = Error::unavailable("requested lease not found");  // the put fails
          return;
        }
        auto it = store.keys.find(cr.key);
        if (it == store.keys.end()) {
          ++store.rev;
          store.keys[cr.key] = {cr.value, store.rev, store.rev, cr.lease};
          ans = CreateAnswer{true, store.rev, "", 0};
        } else {
          ans = CreateAnswer{false, it->second.create, it->second.value, it->second.lease};
        }
      }, [this, &n, cr](Result<CreateAnswer> r) {
        step_election(n, [&](std::vector<Action>& out) { n.election->on_create(local(n), cr.id, std::move(r), out); });
      });
    } else if (auto* f = std::get_if<FindOlder>(&a)) {
      FindOlder fo = *f;
      log("node %d: find older than %" PRId64, n.index, fo.below);
      ask<OlderAnswer>(n, "range timed out", [this, fo](Result<OlderAnswer>& ans) {
        OlderAnswer o;
        o.header_revision = store.rev;
        for (auto& [k, v] : store.keys) {
          if (k.rfind(kPrefix + "/", 0) != 0 || v.create >= fo.below) continue;
          if (!o.older || v.create > o.older->create_revision) o.older = KeyValue{k, v.value, v.create, v.mod, 1, v.lease};
        }
        // The same Txn reads our own key at the same revision.
        if (auto it = store.keys.find(fo.own); it != store.keys.end()) {
          o.own = KeyValue{fo.own, it->second.value, it->second.create, it->second.mod, 1, it->second.lease};
        }
        ans = std::move(o);
      }, [this, &n, fo](Result<OlderAnswer> r) {
        step_election(n, [&](std::vector<Action>& out) { n.election->on_older(local(n), fo.id, std::move(r), out); });
      });
    } else if (auto* w = std::get_if<WatchDeletion>(&a)) {
      WatchDeletion wd = *w;
      log("node %d: watch %s from %" PRId64, n.index, wd.key.c_str(), wd.from_revision);
      int idx = n.index;
      uint64_t stream = n.stream;
      uint64_t inc = n.incarnation;
      if (n.partitioned) {
        at(now + net_delay(), [this, idx, wd, inc] {
          deliver(idx, [this, idx, wd, inc] {
            Node& m = nodes[idx];
            if (m.incarnation != inc) return;
            step_election(m, [&](std::vector<Action>& out) {
              m.election->on_deletion(local(m), wd.id, Error::unavailable("watch failed"), out);
            });
          });
        });
        return;
      }
      at(now + net_delay(), [this, idx, wd, stream, inc] {
        expire_leases();
        if (nodes[idx].incarnation != inc) return;
        if (nodes[idx].stream != stream) {
          // Its stream ended (a partition) while the request was on its
          // way: the watch fails as the stream does.
          deliver(idx, [this, idx, wd, inc] {
            Node& m = nodes[idx];
            if (m.incarnation != inc) return;
            step_election(m, [&](std::vector<Action>& out) {
              m.election->on_deletion(local(m), wd.id, Error::unavailable("watch ended"), out);
            });
          });
          return;
        }
        // As etcd: a watch from revision R reports a deletion at R or later
        // from history, else waits for the key's next deletion.
        auto it = store.keys.find(wd.key);
        bool gone = it == store.keys.end();
        for (int64_t r : store.deleted_at[wd.key]) gone = gone || r >= wd.from_revision;
        if (gone) {
          deliver(idx, [this, idx, wd, stream, inc] {
            Node& m = nodes[idx];
            if (m.incarnation != inc) return;
            if (m.stream != stream) {
              step_election(m, [&](std::vector<Action>& out) {
                m.election->on_deletion(local(m), wd.id, Error::unavailable("watch ended"), out);
              });
              return;
            }
            step_election(m, [&](std::vector<Action>& out) {
              m.election->on_deletion(local(m), wd.id, store.rev, out);
            });
          });
          return;
        }
        store.watches.push_back({idx, wd.id, stream, inc, wd.key, it->second.create});
      });
    } else if (auto* r = std::get_if<ReadOwn>(&a)) {
      ReadOwn ro = *r;
      log("node %d: read own %s", n.index, ro.key.c_str());
      ask<OwnAnswer>(n, "range timed out", [this, ro](Result<OwnAnswer>& ans) {
        auto it = store.keys.find(ro.key);
        OwnAnswer o;
        o.header_revision = store.rev;
        if (it != store.keys.end()) {
          o.kv = KeyValue{ro.key, it->second.value, it->second.create, it->second.mod, 1, it->second.lease};
        }
        ans = o;
      }, [this, &n, ro](Result<OwnAnswer> r) {
        step_election(n, [&](std::vector<Action>& out) { n.election->on_own(local(n), ro.id, std::move(r), out); });
      });
    } else if (auto* d = std::get_if<DeleteOwn>(&a)) {
      DeleteOwn del = *d;
      log("node %d: delete own %s at %" PRId64, n.index, del.key.c_str(), del.revision);
      ask<bool>(n, "txn timed out", [this, del](Result<bool>& ans) {
        auto it = store.keys.find(del.key);
        bool match = it != store.keys.end() && (del.revision == 0 || it->second.create == del.revision);
        if (match) delete_key(del.key);
        ans = match;
      }, [this, &n, del](Result<bool> r) {
        step_election(n, [&](std::vector<Action>& out) {
          n.election->on_deleted_own(local(n), del.id, std::move(r), out);
        });
      });
    } else if (auto* s = std::get_if<StartLeading>(&a)) {
      log("node %d: starts leading, token %" PRId64, n.index, s->term.transitions);
      bool excused = n.excused && now < n.excused_until;
      if (!excused && s->term.transitions <= max_token) {
        fail("token " + std::to_string(s->term.transitions) + " of node " + std::to_string(n.index) +
             " is not above the last one, " + std::to_string(max_token));
      }
      if (!excused) max_token = std::max(max_token, s->term.transitions);
      n.work_running = true;
      n.term = s->term.transitions;
    } else if (auto* st = std::get_if<StopLeading>(&a)) {
      log("node %d: stops leading (%s)", n.index, st->why.c_str());
      int idx = n.index;
      uint64_t inc = n.incarnation;
      at(now + ms(uniform(0, 1500)), [this, idx, inc] {
        Node& m = nodes[idx];
        if (m.incarnation != inc) return;
        deliver(idx, [this, idx, inc] {
          Node& k = nodes[idx];
          if (k.incarnation != inc) return;
          k.work_running = false;
          step_election(k, [&](std::vector<Action>& out) { k.election->on_work_returned(local(k), out); });
        });
      });
    } else if (std::holds_alternative<Finished>(a)) {
      log("node %d: finished", n.index);
      if (!n.stopping) fail("node " + std::to_string(n.index) + "'s election finished without a stop");
      n.finished = true;
      step_session(n, [&](std::vector<session::Action>& out) { n.session->close(local(n), out); });
    }
  }

  // One wake-up per node at the earlier of its machines' next_wakeup.
  void arm(Node& n) {
    std::optional<Instant> t;
    if (n.session) t = n.session->next_wakeup();
    if (n.election) {
      if (auto e = n.election->next_wakeup()) t = t ? std::min(*t, *e) : *e;
    }
    if (t == n.armed) return;
    n.armed = t;
    uint64_t gen = ++n.arm_gen;
    if (!t) return;
    int idx = n.index;
    uint64_t inc = n.incarnation;
    Instant when = true_at(n, *t);
    while (Instant{} + std::chrono::duration_cast<Duration>((when - Instant{}) * n.rate) < *t) when += 1us;
    when = std::max(now, when);
    at(when, [this, idx, inc, gen] {
      Node& m = nodes[idx];
      if (m.incarnation != inc || m.arm_gen != gen) return;
      deliver(idx, [this, idx, inc, gen] {
        Node& k = nodes[idx];
        if (k.incarnation != inc || !k.session || k.arm_gen != gen) return;
        k.armed.reset();
        step_session(k, [&](std::vector<session::Action>& out) { k.session->on_tick(local(k), out); });
        step_election(k, [&](std::vector<election::Action>& out) { k.election->on_tick(local(k), out); });
      });
    });
  }

  // ---- faults ----
  void boot(Node& n) {
    ++n.incarnation;
    n.up = true;
    n.paused = false;
    n.stopping = false;
    n.finished = false;
    n.work_running = false;
    n.excused = false;
    n.held.clear();
    n.answered.clear();
    n.armed.reset();
    n.session.emplace(session_config(ElectorConfig{}));  // the driver's timings at the defaults
    n.election.emplace(kPrefix, "node-" + std::to_string(n.index));
    log("node %d: boots", n.index);
    step_session(n, [&](std::vector<session::Action>& out) { n.session->start(local(n), out); });
  }
  void crash(Node& n) {
    log("node %d: crashes", n.index);
    n.up = false;
    n.work_running = false;
    n.session.reset();
    n.election.reset();
    ++n.incarnation;
  }

  void fault() {
    if (now > Instant{} + kHealAfter) return;
    Node& n = nodes[std::uniform_int_distribution<int>(0, kNodes - 1)(rng)];
    double r = uniform(0, 1);
    if (!n.up) {
      boot(n);
    } else if (r < 0.2) {
      crash(n);
      int idx = n.index;
      at(now + ms(uniform(500, 20000)), [this, idx] {
        if (!nodes[idx].up) boot(nodes[idx]);
      });
    } else if (r < 0.45 && !n.paused) {
      Duration d = ms(chance(0.5) ? uniform(100, 3000) : uniform(5000, 25000));
      log("node %d: paused for %.1f s", n.index, std::chrono::duration<double>(d).count());
      n.paused = true;
      int idx = n.index;
      uint64_t inc = n.incarnation;
      at(now + d, [this, idx, inc] {
        Node& m = nodes[idx];
        if (m.incarnation != inc) return;
        m.paused = false;
        log("node %d: resumes", idx);
        auto held = std::move(m.held);
        m.held.clear();
        // First its clock: a tick sees the deadline that passed.
        if (m.session) {
          step_session(m, [&](std::vector<session::Action>& out) { m.session->on_tick(local(m), out); });
          step_election(m, [&](std::vector<election::Action>& out) { m.election->on_tick(local(m), out); });
        }
        for (auto& f : held) {
          if (m.incarnation == inc && !m.paused) f();
        }
      });
    } else if (r < 0.7 && !n.partitioned) {
      Duration d = ms(uniform(1000, 25000));
      log("node %d: partitioned for %.1f s", n.index, std::chrono::duration<double>(d).count());
      n.partitioned = true;
      ++n.stream;  // its watches end
      int idx = n.index;
      for (auto w = store.watches.begin(); w != store.watches.end();) {
        if (w->node != idx) {
          ++w;
          continue;
        }
        Store::Watch ended = *w;
        w = store.watches.erase(w);
        at(now + net_delay(), [this, ended] {
          deliver(ended.node, [this, ended] {
            Node& m = nodes[ended.node];
            if (m.incarnation != ended.inc) return;
            step_election(m, [&](std::vector<election::Action>& out) {
              m.election->on_deletion(local(m), ended.id, Error::unavailable("watch ended"), out);
            });
          });
        });
      }
      at(now + d, [this, idx] { nodes[idx].partitioned = false; });
    } else if (r < 0.75 && !store.keys.empty()) {
      // An admin deletes a waiting candidate's key (or any key).
      auto it = store.keys.begin();
      std::advance(it, std::uniform_int_distribution<size_t>(0, store.keys.size() - 1)(rng));
      std::string key = it->first;
      bool leaders_key = false;
      for (Node& m : nodes) {
        if (m.up && m.election && m.election->phase() == ElectionMachine::Phase::kLeading &&
            m.election->own_key() == key) {
          leaders_key = true;
        }
      }
      if (!leaders_key) {
        log("admin deletes %s (not the leader's)", key.c_str());
        // Its candidate may have confirmed its key just before (a read on
        // its way back): it then leads until its watch of its own key,
        // started from that read's revision, shows the deletion. Excused for
        // as long as a leader whose key is deleted; its token is older than
        // the next leader's (what fencing is for).
        for (Node& m : nodes) {
          if (m.up && m.election && m.election->own_key() == key) {
            m.excused = true;
            m.excused_until = now + 11s;
          }
        }
        expire_leases();
        delete_key(key);
      }
    } else if (r < 0.8) {
      // An admin deletes the leader's key.
      for (Node& m : nodes) {
        if (m.up && m.election && m.election->phase() == ElectionMachine::Phase::kLeading) {
          log("admin deletes %s", m.election->own_key().c_str());
          m.excused = true;
          // It sees the deletion on its watch, or, the watch broken, stops
          // at its deadline (renew_deadline 10 s after its last keepalive).
          m.excused_until = now + 11s;
          expire_leases();
          delete_key(m.election->own_key());
          break;
        }
      }
    } else if (r < 0.9 && !n.stopping) {
      log("node %d: graceful stop", n.index);
      n.stopping = true;
      n.stop_at = now;
      step_election(n, [&](std::vector<election::Action>& out) { n.election->stop(local(n), out); });
      int idx = n.index;
      at(now + ms(uniform(3000, 20000)), [this, idx] {
        Node& m = nodes[idx];
        if (m.up && m.finished) {
          crash(m);  // the process exits
          boot(m);
        }
      });
    }
  }

  // ---- the checker ----
  bool believes_it_leads(const Node& n) const {
    return n.up && n.election && n.election->phase() == ElectionMachine::Phase::kLeading &&
           local(n) < n.election->deadline();
  }
  void check() {
    std::vector<int> leaders;
    for (const Node& n : nodes) {
      if (believes_it_leads(n) && !(n.excused && now < n.excused_until)) leaders.push_back(n.index);
    }
    if (leaders.size() > 1) {
      fail("nodes " + std::to_string(leaders[0]) + " and " + std::to_string(leaders[1]) + " both lead");
    }
  }
  void check_liveness() {
    if (now < Instant{} + kHealAfter + 30s) return;
    bool any = false, candidates = false;
    for (const Node& n : nodes) {
      any = any || believes_it_leads(n);
      candidates = candidates || (n.up && !n.stopping);
      if (n.up && n.stopping && !n.finished && now - n.stop_at > 60s) {
        fail("node " + std::to_string(n.index) + "'s stop has not finished after 60 s");
      }
    }
    if (any || !candidates) {
      leaderless_since.reset();
      return;
    }
    if (!leaderless_since) leaderless_since = now;
    if (now - *leaderless_since > 25s) fail("no leader for 25 s after every fault healed");
  }
  void fail(const std::string& why) {
    if (failure.empty()) {
      failure = why;
      log("FAIL: %s", why.c_str());
    }
  }

  bool run() {
    for (int i = 0; i < kNodes; ++i) {
      nodes[i].index = i;
      nodes[i].rate = 1.0 + uniform(-0.01, 0.01);
    }
    for (int i = 0; i < kNodes; ++i) {
      int idx = i;
      at(Instant{} + ms(uniform(0, 2000)), [this, idx] { boot(nodes[idx]); });
    }
    for (Instant t = Instant{} + 5s; t < Instant{} + kHealAfter; t += ms(uniform(2000, 12000))) {
      at(t, [this] { fault(); });
    }
    // Every paused node resumes, every partition heals, every node is up by
    // the heal time (their own events do that); the liveness check samples.
    for (Instant t = Instant{} + kHealAfter; t < Instant{} + kRunFor; t += 1s) {
      at(t, [this] {
        for (Node& n : nodes) {
          if (!n.up) boot(n);
        }
        check_liveness();
      });
    }
    while (!q.empty() && failure.empty()) {
      Ev e = q.top();
      q.pop();
      if (e.at > Instant{} + kRunFor) break;
      now = e.at;
      e.fn();
      check();
    }
    return failure.empty();
  }
};

}  // namespace

int main(int argc, char** argv) {
  uint64_t first = 1, count = 1000;
  bool trace = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--seeds") && i + 1 < argc) {
      count = std::strtoull(argv[++i], nullptr, 10);
    } else if (!std::strcmp(argv[i], "--seed") && i + 1 < argc) {
      first = std::strtoull(argv[++i], nullptr, 10);
      count = 1;
    } else if (!std::strcmp(argv[i], "--trace")) {
      trace = true;
    } else {
      std::fprintf(stderr, "usage: leasehold_etcd_sim [--seeds N | --seed S] [--trace]\n");
      return 2;
    }
  }
  int failed = 0;
  for (uint64_t s = first; s < first + count; ++s) {
    Sim sim(s, trace);
    if (!sim.run()) {
      std::printf("seed %" PRIu64 ": %s\n", s, sim.failure.c_str());
      if (++failed >= 5) break;
    }
  }
  std::printf("%" PRIu64 " seeds, %d failed\n", count, failed);
  return failed ? 1 : 0;
}
