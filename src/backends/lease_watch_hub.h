// Internal: one shared watch on the Leases of a namespace, fanned out to
// every k8s:// lock of the Runtime by Lease name.
//
// For each namespace with at least one subscriber the hub LISTs the Leases
// (which gives a resourceVersion and the current objects), then WATCHes from
// that version with bookmarks; it resumes from the last version seen after a
// disconnect, LISTs again after 410 Gone, and backs off with jitter
// (0.5 s doubling to 30 s, x[1, 1.5)); the backoff starts over after a LIST
// and after a stream that stayed open 10 s, and a retry armed more than 1 s
// out after an attempt that reached no server is brought forward when a lock
// request of the namespace is answered (server_answered: the server is
// back). Subscribers are told healthy once the
// watch stream is open (its 200 headers arrived) and unhealthy when it ends,
// so their electors poll while there is no stream. Every attempt (access
// review, LIST, WATCH, retry timer) carries a generation from one counter of
// the hub, never reused, so a late answer of an older attempt, or of a
// namespace entry erased meanwhile, is ignored.
//
// A namespace-wide list/watch needs RBAC on every Lease of the namespace. The
// hub first asks (SelfSubjectAccessReview, list and watch, once per
// namespace); when not allowed (or the list is refused anyway) it says so once
// to each subscriber (on_unsupported) and the lock falls back to a watch of
// its own, filtered by name, which a Role limited by resourceNames allows. So
// a least-privilege Role never sees a refused request from us.
//
// Threading: subscribe/unsubscribe are safe from any thread. Callbacks run on
// the Runtime's I/O thread; they may run shortly after unsubscribe (hold weak
// references). The client's thread only parses events.
//
// Our own writes come back on the watch, often before their answer. A lock
// brackets each write with begin_write/end_write; the events of that Lease
// read in between are held, and the one whose resourceVersion the answer
// carried is recognised from its type, name and version alone
// (kube/watch_peek.h), not decoded, and not handed back to the writer.
//
// The LIST is JSON; the WATCH asks for Kubernetes protobuf first
// (Client::watch_leases) and parses events in the format the server chose.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "kube/lease_codec.h"
#include "leasehold/runtime.h"

namespace leasehold::kube {
class Client;
}

namespace leasehold::backends {

struct LeaseWatchSubscriber {
  // The Lease as it is now (also its current state right after subscribing,
  // when there is one); nullptr: deleted. Its versioned.received_at is when
  // the hub read it off the connection (the watch event's frame, or the
  // LIST's answer), on the Runtime's clock.
  std::function<void(const kube::Lease*)> on_object;
  std::function<void(bool healthy)> on_health;
  // The shared watch is refused (RBAC): watch on your own.
  std::function<void()> on_unsupported;
};

class LeaseWatchHub {
 public:
  static std::shared_ptr<LeaseWatchHub> create(Runtime& rt, std::weak_ptr<kube::Client> client);
  virtual ~LeaseWatchHub() = default;
  virtual uint64_t subscribe(const std::string& ns, const std::string& name, LeaseWatchSubscriber s) = 0;
  virtual void unsubscribe(uint64_t id) = 0;
  // Subscriber `id` is about to write Lease `name` (before the request is
  // sent), and end_write when the answer came (the client's thread, before
  // the answer is handed on), with the resourceVersion it carried ("" for a
  // failure). Meanwhile the watch's events of that Lease are held, undecoded;
  // then the one with that version is our write echoed: recognised without a
  // decode and not delivered back to `id` (others on the Lease get it); the
  // others are decoded and delivered as usual, in order. An echo that comes
  // after end_write is recognised too (kept until echoed, until the next
  // LIST, or until 4,096 newer writes of the namespace await theirs). Any
  // thread; every begin_write must be followed by one end_write.
  virtual void begin_write(uint64_t id, const std::string& ns, const std::string& name) = 0;
  virtual void end_write(uint64_t id, const std::string& ns, const std::string& name, std::string_view rv) = 0;
  // A lock request of a Lease in `ns` was answered (2xx): the server is
  // there, so a watch waiting out its backoff after failing to reach it
  // starts now (one refused by an HTTP status keeps its backoff). Any thread.
  virtual void server_answered(const std::string& ns) = 0;
  // Events recognised as echoes so far, for tests and benchmarks.
  virtual uint64_t echoes_recognised() const = 0;
  // Streams open now (one per namespace with subscribers), for tests.
  virtual size_t streams() const = 0;
};

}  // namespace leasehold::backends
