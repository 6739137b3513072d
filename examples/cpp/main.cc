// leader_worker — a service that runs its critical loop only while it holds
// the lease. Start three in three terminals on one file lock, stop the leader
// with Ctrl-C, and watch another take over:
//
//   leader_worker --lock file:///tmp/example.lease --identity a
//
// In a Pod, use a Lease and take the identity from the downward API:
//
//   POD_NAME=... leader_worker --lock k8s://my-namespace/my-app
//
// Flags: --lock URL (default file:///tmp/leasehold-example.lease),
// --identity ID (default $POD_NAME, else HOSTNAME-PID), --ticks N (stop after
// N ticks of work; 0 = run until SIGINT/SIGTERM).
//
// The library installs no signal handlers, so this program blocks SIGINT and
// SIGTERM and waits for them on a thread of its own with sigwait().
#include <leasehold/elector.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>

namespace {

struct Options {
  std::string lock = "file:///tmp/leasehold-example.lease";
  std::string identity;
  long ticks = 0;
};

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "leader_worker: %s needs a value (flags: --lock, --identity, --ticks)\n",
                   a.c_str());
      return false;
    }
    std::string v = argv[++i];
    if (a == "--lock") {
      o.lock = v;
    } else if (a == "--identity") {
      o.identity = v;
    } else if (a == "--ticks") {
      char* end = nullptr;
      o.ticks = std::strtol(v.c_str(), &end, 10);
      if (end == v.c_str() || *end != '\0' || o.ticks < 0) {
        std::fprintf(stderr, "leader_worker: --ticks: \"%s\" is not a count >= 0\n", v.c_str());
        return false;
      }
    } else {
      std::fprintf(stderr, "leader_worker: unknown flag %s (flags: --lock, --identity, --ticks)\n",
                   a.c_str());
      return false;
    }
  }
  if (o.identity.empty()) {
    if (const char* pod = std::getenv("POD_NAME"); pod && *pod) {
      o.identity = pod;
    } else {
      char host[256] = {};
      gethostname(host, sizeof host - 1);
      o.identity = std::string(host) + "-" + std::to_string(getpid());
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  if (!parse(argc, argv, opt)) return 2;

  // Block the stop signals in every thread (the library's threads inherit
  // this mask), then wait for them on one thread.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  leasehold::Runtime::Options rt_options;
  rt_options.log = [](leasehold::LogLevel level, std::string_view name, std::string_view msg) {
    if (level >= leasehold::LogLevel::kInfo)
      std::fprintf(stderr, "[%.*s] %.*s\n", static_cast<int>(name.size()), name.data(),
                   static_cast<int>(msg.size()), msg.data());
  };
  leasehold::Runtime rt(rt_options);

  std::stop_source done;  // requested by a signal or after --ticks
  leasehold::ElectorConfig cfg;
  cfg.lock = opt.lock;
  cfg.identity = opt.identity;
  cfg.callbacks.on_new_leader = [](const std::string& who) {
    std::printf("leader is now %s\n", who.c_str());
    std::fflush(stdout);
  };
  cfg.callbacks.on_started_leading = [&](const leasehold::Term& term, std::stop_token stop) {
    // The critical work. `term` is the fencing token: pass it along with every
    // write so downstream systems can refuse a stale leader.
    std::mutex mu;
    std::condition_variable_any cv;
    for (long tick = 1; !stop.stop_requested(); ++tick) {
      std::printf("%s: working, term %s, tick %ld\n", opt.identity.c_str(),
                  term.to_string().c_str(), tick);
      std::fflush(stdout);
      if (opt.ticks > 0 && tick >= opt.ticks) {
        done.request_stop();
        break;
      }
      std::unique_lock<std::mutex> lk(mu);
      cv.wait_for(lk, stop, std::chrono::seconds(1), [] { return false; });
    }
  };
  cfg.callbacks.on_stopped_leading = [&](const leasehold::Term& term) {
    std::printf("%s: stopped leading term %s\n", opt.identity.c_str(), term.to_string().c_str());
    std::fflush(stdout);
  };

  auto elector = leasehold::Elector::create(rt, cfg);
  if (!elector) {
    std::fprintf(stderr, "leader_worker: %s\n", elector.error().to_string().c_str());
    return 1;
  }
  std::jthread signals([&](std::stop_token) {
    int sig = 0;
    sigwait(&stop_signals, &sig);  // SIGINT/SIGTERM, or the wake-up below
    done.request_stop();
  });
  (*elector)->start(done.get_token());  // a stop on `done` acts as stop()
  (*elector)->wait();                   // the work returned and the lease is released
  // Wake the signal thread if no signal came (--ticks reached).
  pthread_kill(signals.native_handle(), SIGTERM);
  signals.join();
  std::printf("%s: done\n", opt.identity.c_str());
  return 0;
}
