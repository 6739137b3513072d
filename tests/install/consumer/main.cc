// Uses the installed headers and library end to end: one elector on an
// in-process lock must become leader, run its work with a valid fencing
// token, stop it, and release the lease. Exit 0 on success; a message and 1
// otherwise. Built both with CMake (find_package) and with pkg-config.
#include <leasehold/elector.h>
#include <leasehold/mem_lock.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <string>
#include <thread>

int main() {
  leasehold::Runtime rt;
  leasehold::ElectorConfig cfg;
  cfg.lock = "mem://install-consumer";
  cfg.identity = "consumer-1";
  cfg.lease_duration = std::chrono::seconds(2);
  cfg.renew_deadline = std::chrono::milliseconds(1500);
  cfg.retry_period = std::chrono::milliseconds(200);
  auto started = std::make_shared<std::promise<leasehold::Term>>();
  auto stopped = std::make_shared<std::promise<void>>();
  cfg.callbacks.on_started_leading = [started](const leasehold::Term& term, std::stop_token stop) {
    started->set_value(term);
    while (!stop.stop_requested()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  };
  cfg.callbacks.on_stopped_leading = [stopped](const leasehold::Term&) { stopped->set_value(); };

  auto elector = leasehold::Elector::create(rt, cfg);
  if (!elector) {
    std::fprintf(stderr, "consumer: %s\n", elector.error().to_string().c_str());
    return 1;
  }
  (*elector)->start();
  auto term_future = started->get_future();
  if (term_future.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    std::fprintf(stderr, "consumer: not leader after 10s\n");
    return 1;
  }
  leasehold::Term term = term_future.get();
  if (!term.valid() || term.holder != "consumer-1") {
    std::fprintf(stderr, "consumer: bad term %s\n", term.to_string().c_str());
    return 1;
  }
  (*elector)->stop();
  (*elector)->wait();
  if (stopped->get_future().wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    std::fprintf(stderr, "consumer: on_stopped_leading was not called\n");
    return 1;
  }
  // A bad config must come back as an error naming the field, not a crash.
  leasehold::ElectorConfig bad = cfg;
  bad.identity.clear();
  auto refused = leasehold::Elector::create(rt, bad);
  if (refused || refused.error().to_string().find("identity") == std::string::npos) {
    std::fprintf(stderr, "consumer: an empty identity was not refused by name\n");
    return 1;
  }
  std::printf("consumer: led term %s, stopped and released\n", term.to_string().c_str());
  return 0;
}
