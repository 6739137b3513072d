#include "core/wake_batch.h"

#include <cstddef>
#include <utility>
#include <vector>

namespace leasehold::core {
namespace {

struct Pending {
  void* key;
  WakeFn fn;
};

struct ThreadBatch {
  int depth = 0;
  std::vector<Pending> wakes;  // one per key; a handful of keys at most
};

thread_local ThreadBatch t_batch;

}  // namespace

WakeBatch::WakeBatch() { ++t_batch.depth; }

WakeBatch::~WakeBatch() {
  if (--t_batch.depth == 0) flush();
}

void WakeBatch::flush() {
  // A wake function may request another wake (it never does today); take
  // the list first so that one is recorded afresh.
  std::vector<Pending> wakes;
  wakes.swap(t_batch.wakes);
  for (const Pending& p : wakes) p.fn(p.key);
  if (t_batch.wakes.empty()) {
    wakes.clear();
    t_batch.wakes.swap(wakes);  // keep the capacity
  }
}

void WakeBatch::forget(void* key) {
  auto& w = t_batch.wakes;
  for (size_t i = 0; i < w.size(); ++i) {
    if (w[i].key == key) {
      w.erase(w.begin() + static_cast<std::ptrdiff_t>(i));
      return;
    }
  }
}

void request_wake(void* key, WakeFn fn) {
  if (t_batch.depth == 0) {
    fn(key);
    return;
  }
  for (const Pending& p : t_batch.wakes) {
    if (p.key == key) return;
  }
  t_batch.wakes.push_back({key, fn});
}

}  // namespace leasehold::core
