#include "proctree.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>

namespace leasehold::cli {
namespace {

std::string read_small(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

bool write_small(const std::string& path, std::string_view text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = ::write(fd, text.data(), text.size());
  ::close(fd);
  return n == static_cast<ssize_t>(text.size());
}

// /proc/PID/stat: "pid (comm) state ppid ...": comm may hold spaces and ')'.
bool parse_stat(const std::string& stat, std::string* comm, pid_t* ppid) {
  auto open = stat.find('(');
  auto close = stat.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return false;
  if (comm) *comm = stat.substr(open + 1, close - open - 1);
  std::istringstream rest(stat.substr(close + 1));
  std::string state;
  long parent = 0;
  if (!(rest >> state >> parent)) return false;
  if (ppid) *ppid = static_cast<pid_t>(parent);
  return true;
}

}  // namespace

std::vector<pid_t> descendants(pid_t root) {
  std::multimap<pid_t, pid_t> children;  // ppid -> pid
  if (DIR* d = ::opendir("/proc")) {
    while (dirent* e = ::readdir(d)) {
      char* end = nullptr;
      long pid = std::strtol(e->d_name, &end, 10);
      if (pid <= 0 || *end != '\0') continue;
      pid_t ppid = 0;
      if (parse_stat(read_small("/proc/" + std::string(e->d_name) + "/stat"), nullptr, &ppid)) {
        children.emplace(ppid, static_cast<pid_t>(pid));
      }
    }
    ::closedir(d);
  }
  std::vector<pid_t> out;
  std::vector<pid_t> todo{root};
  while (!todo.empty()) {
    pid_t p = todo.back();
    todo.pop_back();
    auto [b, e] = children.equal_range(p);
    for (auto it = b; it != e; ++it) {
      out.push_back(it->second);
      todo.push_back(it->second);
    }
  }
  return out;
}

std::string describe_pids(const std::vector<pid_t>& pids) {
  std::string out;
  for (pid_t p : pids) {
    std::string comm;
    if (!parse_stat(read_small("/proc/" + std::to_string(p) + "/stat"), &comm, nullptr)) comm = "gone";
    if (!out.empty()) out += ", ";
    out += "pid " + std::to_string(p) + " (" + comm + ")";
  }
  return out;
}

size_t signal_pids(const std::vector<pid_t>& pids, int sig) {
  size_t sent = 0;
  for (pid_t p : pids) {
    if (p > 1 && ::kill(p, sig) == 0) ++sent;
  }
  return sent;
}

int64_t boottime_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

Result<Cgroup> Cgroup::create(const std::string& name) {
  // Our cgroup v2 path ("0::/a/b"), and where the v2 hierarchy is mounted.
  std::string self;
  std::istringstream lines(read_small("/proc/self/cgroup"));
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("0::", 0) == 0) self = line.substr(3);
  }
  if (self.empty()) return Error::unavailable("no cgroup v2 membership in /proc/self/cgroup");
  std::string mount;
  std::istringstream mounts(read_small("/proc/self/mountinfo"));
  for (std::string line; std::getline(mounts, line);) {
    auto dash = line.find(" - ");
    if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
    std::istringstream f(line.substr(0, dash));
    std::string id, parent, dev, root, point;
    if (!(f >> id >> parent >> dev >> root >> point)) continue;
    if (root != "/" && self.rfind(root, 0) == 0) self = self.substr(root.size());
    mount = point;
    break;
  }
  if (mount.empty()) return Error::unavailable("no cgroup2 file system mounted");
  std::string parent = mount + (self == "/" ? "" : self);
  std::string dir = parent + "/" + name;
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return Error::unavailable("cannot make cgroup " + dir + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::stat((dir + "/cgroup.kill").c_str(), &st) != 0) {
    ::rmdir(dir.c_str());
    return Error::unavailable("cgroup " + dir + " has no cgroup.kill (kernel before 5.14)");
  }
  return Cgroup(dir);
}

std::vector<pid_t> Cgroup::pids() const {
  std::vector<pid_t> out;
  std::istringstream in(read_small(dir_ + "/cgroup.procs"));
  for (long p; in >> p;) out.push_back(static_cast<pid_t>(p));
  return out;
}

bool Cgroup::add(pid_t pid) const { return write_small(dir_ + "/cgroup.procs", std::to_string(pid)); }

bool Cgroup::kill() const { return write_small(dir_ + "/cgroup.kill", "1"); }

bool Cgroup::populated() const {
  std::string ev = read_small(dir_ + "/cgroup.events");
  auto at = ev.find("populated ");
  if (at == std::string::npos) return !pids().empty();
  return ev.compare(at + 10, 1, "0") != 0;
}

void Cgroup::remove() const { ::rmdir(dir_.c_str()); }

}  // namespace leasehold::cli
