// Runtime: one I/O thread with a timer heap, one notifier thread, the lock
// factory.
#include "leasehold/runtime.h"

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "backends/backends.h"
#include "backends/lease_watch_hub.h"
#include "core/runtime_access.h"
#include "core/wake_batch.h"
#include "etcd/etcd_lock.h"
#include "kube/objects.h"
#include "kube/client.h"

namespace leasehold {

struct Runtime::Impl {
  struct Task {
    Instant at;
    uint64_t seq;
    std::function<void()> fn;
    uint32_t slot = 0;  // posted by post_timer: its slot + 1 (0: a plain task)
  };
  // A post_timer timer's state while it is in the heap. Its id is the slot's
  // index + 1 in the low 32 bits and the slot's generation in the high 32,
  // so an id whose timer has run or been withdrawn names no live timer, even
  // once its slot is reused.
  struct TimerSlot {
    uint32_t gen = 0;
    bool live = false;  // in the heap
    size_t pos = 0;     // its index in the heap, while live
  };
  static bool later(const Task& a, const Task& b) {
    return a.at != b.at ? a.at > b.at : a.seq > b.seq;
  }

  Options opt;
  RealClock real;
  Clock* clock = nullptr;

  std::mutex mu;
  std::condition_variable cv;
  std::vector<Task> heap;  // GUARDED_BY(mu)
  uint64_t seq = 1;        // GUARDED_BY(mu); a task's order among those due at once
  // The timers of post_timer, by slot. A withdrawn one leaves the heap at
  // once (its slot knows where it is), so the heap holds no withdrawn timer.
  // Slots are reused (free_slots) once their timer leaves the heap.
  std::vector<TimerSlot> slots;     // GUARDED_BY(mu)
  std::vector<uint32_t> free_slots;  // GUARDED_BY(mu)

  // The heap, earliest first, by (at, seq): std::push_heap's order, written
  // out so that a timer's slot follows its task. Callers hold `mu`.
  void placed(size_t i) {
    if (heap[i].slot) slots[heap[i].slot - 1].pos = i;
  }
  void sift_up(size_t i) {
    while (i > 0) {
      size_t parent = (i - 1) / 2;
      if (!later(heap[parent], heap[i])) break;
      std::swap(heap[parent], heap[i]);
      placed(i);
      i = parent;
    }
    placed(i);
  }
  void sift_down(size_t i) {
    for (;;) {
      size_t first = i, l = 2 * i + 1, r = l + 1;
      if (l < heap.size() && later(heap[first], heap[l])) first = l;
      if (r < heap.size() && later(heap[first], heap[r])) first = r;
      if (first == i) break;
      std::swap(heap[i], heap[first]);
      placed(i);
      i = first;
    }
    placed(i);
  }
  void push(Task t) {
    heap.push_back(std::move(t));
    sift_up(heap.size() - 1);
  }
  // Takes the task at heap index i out of the heap (freeing its slot).
  std::function<void()> take(size_t i) {
    Task out = std::move(heap[i]);
    if (i + 1 < heap.size()) {
      heap[i] = std::move(heap.back());
      heap.pop_back();
      if (i > 0 && later(heap[(i - 1) / 2], heap[i])) sift_up(i);
      else sift_down(i);
    } else {
      heap.pop_back();
    }
    if (out.slot) {
      slots[out.slot - 1].live = false;
      free_slots.push_back(out.slot - 1);
    }
    return std::move(out.fn);
  }

  bool stopping = false;   // GUARDED_BY(mu)
  std::thread io;

  std::mutex nmu;
  std::condition_variable ncv;
  std::deque<std::function<void()>> nq;  // GUARDED_BY(nmu)
  bool nbusy = false;                    // GUARDED_BY(nmu)
  bool nstop = false;                    // GUARDED_BY(nmu)
  std::thread notifier;

  std::shared_ptr<IoGate> gate;
  backends::MemRegistry mem;
  std::mutex kube_mu;
  std::shared_ptr<kube::Client> kube;  // GUARDED_BY(kube_mu); made on first k8s:// lock
  std::shared_ptr<backends::LeaseWatchHub> lease_hub;  // GUARDED_BY(kube_mu); made on first Lease watch
  std::mutex etcd_mu;
  std::map<std::string, std::shared_ptr<etcd::SessionHub>> etcd_hubs;  // GUARDED_BY(etcd_mu), by cluster

  // Pops the earliest task if it is due. Caller holds `mu`.
  bool pop_due(std::function<void()>& fn) {
    if (heap.empty() || heap.front().at > clock->now()) return false;
    fn = take(0);
    return true;
  }

  // Wakes the I/O thread (WakeFn of core::request_wake).
  static void wake(void* key) { static_cast<Impl*>(key)->cv.notify_one(); }

  // Tasks run in batches (core::WakeBatch): the Kubernetes requests they
  // queue wake the client's thread once per batch, not once per request.
  static constexpr int kTasksPerBatch = 64;

  void io_loop() {
    std::unique_lock<std::mutex> lk(mu);
    while (!stopping) {
      std::function<void()> fn;
      if (pop_due(fn)) {
        lk.unlock();
        {
          core::WakeBatch batch;
          int ran = 0;
          for (;;) {
            fn();
            fn = nullptr;  // destroy captures outside the lock
            if (++ran % kTasksPerBatch == 0) core::WakeBatch::flush();
            lk.lock();
            bool more = !stopping && pop_due(fn);
            lk.unlock();
            if (!more) break;
          }
        }
        lk.lock();
        continue;
      }
      Instant deadline = heap.empty() ? clock->now() + std::chrono::hours(1) : heap.front().at;
      clock->wait_until(lk, cv, deadline);
    }
  }

  void notifier_loop() {
    std::unique_lock<std::mutex> lk(nmu);
    for (;;) {
      ncv.wait(lk, [&] { return nstop || !nq.empty(); });
      if (nq.empty()) return;
      auto fn = std::move(nq.front());
      nq.pop_front();
      nbusy = true;
      lk.unlock();
      fn();
      lk.lock();
      nbusy = false;
      ncv.notify_all();
    }
  }
};

Runtime::Runtime() : Runtime(Options{}) {}

Runtime::Runtime(Options options) : impl_(std::make_unique<Impl>()) {
  impl_->opt = std::move(options);
  impl_->clock = impl_->opt.clock ? impl_->opt.clock : &impl_->real;
  impl_->gate = std::make_shared<IoGate>(this);
  if (!impl_->opt.log) {
    impl_->opt.log = [](LogLevel level, std::string_view name, std::string_view msg) {
      if (level < LogLevel::kWarning) return;
      std::fprintf(stderr, "leasehold %.*s: %.*s\n", static_cast<int>(name.size()), name.data(),
                   static_cast<int>(msg.size()), msg.data());
    };
  }
  if (!impl_->opt.manual) impl_->io = std::thread([this] { impl_->io_loop(); });
  impl_->notifier = std::thread([this] { impl_->notifier_loop(); });
}

Runtime::~Runtime() {
  impl_->gate->close();  // a thread that outlives us posts nothing from now on
  {
    std::lock_guard<std::mutex> g(impl_->mu);
    impl_->stopping = true;
    impl_->cv.notify_all();
  }
  if (impl_->io.joinable()) {
    // A simulated clock's waiter wakes only on notify; nudge until it exits.
    impl_->io.join();
  }
  {
    std::lock_guard<std::mutex> g(impl_->nmu);
    impl_->nstop = true;
    impl_->ncv.notify_all();
  }
  impl_->notifier.join();
  // The Kubernetes client's thread ends here, on this thread (its pending
  // completions are posted into a stopped runtime and dropped with the heap).
  {
    std::lock_guard<std::mutex> g(impl_->kube_mu);
    impl_->lease_hub.reset();  // cancels its streams while the client still runs
    impl_->kube.reset();
  }
  {
    std::map<std::string, std::shared_ptr<etcd::SessionHub>> hubs;
    {
      std::lock_guard<std::mutex> g(impl_->etcd_mu);
      hubs.swap(impl_->etcd_hubs);
    }
    // Their transports' threads end here, on this thread: a transport thread
    // that briefly holds a hub must never be left to destroy it.
    for (auto& [key, hub] : hubs) hub->transport().shutdown();
  }
  core::WakeBatch::forget(impl_.get());
  // Tasks left in the heap are destroyed outside the lock: their captures
  // may own electors and lock handles whose destructors take other locks
  // (the IoGate's) or end transports.
  std::vector<Impl::Task> left;
  {
    std::lock_guard<std::mutex> g(impl_->mu);
    left.swap(impl_->heap);
  }
}

Clock& Runtime::clock() { return *impl_->clock; }

void Runtime::post(std::function<void()> fn, Duration delay) {
  post_at(impl_->clock->now() + std::max(delay, Duration::zero()), std::move(fn));
}

void Runtime::post_at(Instant when, std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> g(impl_->mu);
    if (impl_->stopping) return;
    impl_->push({when, impl_->seq++, std::move(fn)});
  }
  // Once per batch of the posting thread (the client's thread posts its
  // answers in batches); at once otherwise.
  core::request_wake(impl_.get(), &Impl::wake);
}

uint64_t Runtime::post_timer(Instant when, std::function<void()> fn) {
  uint64_t id;
  {
    std::lock_guard<std::mutex> g(impl_->mu);
    if (impl_->stopping) return 0;
    uint32_t index;
    if (impl_->free_slots.empty()) {
      index = static_cast<uint32_t>(impl_->slots.size());
      impl_->slots.emplace_back();
    } else {
      index = impl_->free_slots.back();
      impl_->free_slots.pop_back();
    }
    Impl::TimerSlot& ts = impl_->slots[index];
    ++ts.gen;
    ts.live = true;
    id = (static_cast<uint64_t>(ts.gen) << 32) | (index + 1);
    impl_->push({when, impl_->seq++, std::move(fn), index + 1});
  }
  core::request_wake(impl_.get(), &Impl::wake);
  return id;
}

bool Runtime::cancel_timer(uint64_t id) {
  std::function<void()> withdrawn;  // destroyed after the lock: its captures may own anything
  std::lock_guard<std::mutex> g(impl_->mu);
  uint64_t index = (id & 0xffffffffu) - 1;  // wraps to huge for a low half of 0
  if (index >= impl_->slots.size()) return false;
  Impl::TimerSlot& ts = impl_->slots[index];
  if (ts.gen != static_cast<uint32_t>(id >> 32) || !ts.live) return false;
  withdrawn = impl_->take(ts.pos);
  return true;
}

size_t Runtime::run_ready() {
  size_t n = 0;
  std::unique_lock<std::mutex> lk(impl_->mu);
  std::function<void()> fn;
  while (impl_->pop_due(fn)) {
    lk.unlock();
    fn();
    fn = nullptr;
    ++n;
    lk.lock();
  }
  lk.unlock();
  return n;
}

bool Runtime::manual() const { return impl_->opt.manual; }

void Runtime::notify(std::function<void()> fn) {
  std::lock_guard<std::mutex> g(impl_->nmu);
  impl_->nq.push_back(std::move(fn));
  impl_->ncv.notify_all();
}

void Runtime::drain_notifications() {
  std::unique_lock<std::mutex> lk(impl_->nmu);
  impl_->ncv.wait(lk, [&] { return impl_->nq.empty() && !impl_->nbusy; });
}

void Runtime::log(LogLevel level, std::string_view name, std::string_view message) const {
  impl_->opt.log(level, name, message);
}

bool IoGate::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (rt_) {
      rt_->post(std::move(fn));
      return true;
    }
  }
  fn = nullptr;  // outside mu_: its captures may own anything
  return false;
}

void IoGate::close() {
  std::lock_guard<std::mutex> g(mu_);
  rt_ = nullptr;
}

std::shared_ptr<IoGate> RuntimeAccess::io_gate(Runtime& rt) { return rt.impl_->gate; }

size_t RuntimeAccess::pending_tasks(Runtime& rt) {
  std::lock_guard<std::mutex> g(rt.impl_->mu);
  return rt.impl_->heap.size();
}

std::shared_ptr<backends::LeaseWatchHub> RuntimeAccess::lease_watch_hub(Runtime& rt) {
  auto& impl = *rt.impl_;
  std::lock_guard<std::mutex> g(impl.kube_mu);
  if (!impl.kube) return nullptr;
  if (!impl.lease_hub) impl.lease_hub = backends::LeaseWatchHub::create(rt, impl.kube);
  return impl.lease_hub;
}

Result<std::shared_ptr<kube::Client>> RuntimeAccess::kube_client(Runtime& rt) {
  auto& impl = *rt.impl_;
  std::lock_guard<std::mutex> g(impl.kube_mu);
  if (!impl.kube) {
    auto cfg = kube::load_cluster_config({impl.opt.kubeconfig, impl.opt.kube_context});
    if (!cfg) return cfg.error();
    kube::ClientOptions copt;
    copt.rate = {impl.opt.kube_qps, impl.opt.kube_burst};
    auto c = kube::Client::create(std::move(*cfg), copt);
    if (!c) return c.error();
    impl.kube = std::move(*c);
  }
  return impl.kube;
}

Result<std::shared_ptr<etcd::SessionHub>> RuntimeAccess::etcd_hub(Runtime& rt, etcd::ConnectionConfig c) {
  auto& impl = *rt.impl_;
  std::string key;
  for (const auto& e : c.endpoints) key += e + ",";
  // Distinct credentials get distinct sessions (and connections).
  key += "\n" + c.ca_pem + "\n" + c.cert_pem + "\n" + c.key_pem + "\n" + c.user + "\n" + c.password;
  std::lock_guard<std::mutex> g(impl.etcd_mu);
  auto& hub = impl.etcd_hubs[key];
  if (!hub) {
    auto t = etcd::Transport::create(std::move(c), impl.clock);
    if (!t) {
      impl.etcd_hubs.erase(key);
      return t.error();
    }
    hub = std::make_shared<etcd::SessionHub>(rt, std::move(*t));
  }
  return hub;
}

Result<std::shared_ptr<Lock>> Runtime::open_lock(std::string_view url) {
  constexpr std::string_view kMem = "mem://";
  constexpr std::string_view kFile = "file://";
  if (url.starts_with(kMem)) {
    std::string name(url.substr(kMem.size()));
    if (name.empty()) return Error::invalid("lock URL \"" + std::string(url) + "\": mem:// needs a name");
    return backends::open_mem_lock(*this, impl_->mem, std::string(url), name);
  }
  if (url.starts_with(kFile)) {
    std::string path(url.substr(kFile.size()));
    if (path.empty() || path[0] != '/') {
      return Error::invalid("lock URL \"" + std::string(url) +
                            "\": file:// needs an absolute path, e.g. file:///run/app.lease");
    }
    return backends::open_file_lock(*this, std::string(url), path);
  }
  // Kubernetes locks: k8s:// (Lease), configmap:// and endpoints:// (legacy
  // annotation), configmapsleases:// and endpointsleases:// (migration pair).
  auto sep = url.find("://");
  std::string scheme(url.substr(0, sep == std::string_view::npos ? 0 : sep));
  if (backends::is_kube_scheme(scheme)) {
    std::string rest(url.substr(sep + 3));
    auto slash = rest.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == rest.size() ||
        rest.find('/', slash + 1) != std::string::npos) {
      return Error::invalid("lock URL \"" + std::string(url) + "\": want " + scheme + "://NAMESPACE/NAME");
    }
    // Checked here, before any request: a name the server would refuse (422)
    // is a mistake to fix, not a failure to retry, and it goes into paths.
    std::string ns = rest.substr(0, slash), name = rest.substr(slash + 1);
    if (!kube::is_dns_label(ns)) {
      return Error::invalid("lock URL \"" + std::string(url) + "\": \"" + ns + "\" is not a namespace name "
                            "(lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit)");
    }
    if (!kube::is_dns_subdomain(name)) {
      return Error::invalid("lock URL \"" + std::string(url) + "\": \"" + name + "\" is not an object name "
                            "(lowercase letters, digits, '-' and '.', at most 253, starting and ending with a letter "
                            "or digit)");
    }
    auto made = RuntimeAccess::kube_client(*this);
    if (!made) return made.error();
    std::weak_ptr<kube::Client> client = *made;  // the Runtime keeps the only strong reference
    return backends::open_kube_lock(*this, std::move(client), scheme, std::string(url), ns, name);
  }
  if (scheme == "etcd" || scheme == "etcds") {
    const auto& e = impl_->opt.etcd;
    return etcd::open_etcd_lock(*this, url, {e.ca_file, e.cert_file, e.key_file, e.user, e.password_file});
  }
  auto scheme_end = url.find("://");
  return Error::invalid("lock URL \"" + std::string(url) + "\": unknown scheme \"" +
                        std::string(scheme_end == std::string_view::npos ? url : url.substr(0, scheme_end)) +
                        "\" (supported: k8s://NAMESPACE/NAME, configmap://NAMESPACE/NAME, endpoints://NAMESPACE/NAME, "
                        "configmapsleases://NAMESPACE/NAME, endpointsleases://NAMESPACE/NAME, mem://NAME, file:///PATH, "
                        "etcd://HOST:PORT/PREFIX, etcds://HOST:PORT/PREFIX)");
}

}  // namespace leasehold
