// file:///PATH: the lease record as JSON in PATH. Every operation takes an
// exclusive flock on PATH.lock, so read-compare-write is atomic among all
// processes of the host; a write goes to a temporary file that is fsynced and
// renamed over PATH, and the directory is fsynced, before it is acknowledged.
// A file that does not decode is an error, never "free". Versions are
// "EPOCH:GENERATION" with a random epoch per created file (backends.h), so a
// deleted and re-created file never repeats a version.
//
// Watch: each handle that is watched runs one thread waiting in poll(2) on an
// inotify descriptor for PATH's directory. When an entry named PATH is
// created, renamed over, written and closed, changed in owner or mode, moved
// away or deleted (or the event queue overflowed), and at least once a
// second in any case, that thread re-reads PATH (without PATH.lock: writers
// replace it by rename(2), so a read sees one whole record) and posts the
// record when it differs from the last one posted, or its absence after a
// record (or after an event that created one since the last read). Changes
// between two reads are merged: the latest state is posted. So a leader
// learns of a foreign write (release --force, a take-over) at once, and a
// follower of a release, without polling. The watch reports itself
// unhealthy (the elector then polls) while PATH does not decode or cannot be
// read, and for good once the directory it watches is no longer the one at
// its path (deleted, moved, replaced). watch() returns false (the elector
// polls) when inotify is unavailable (no instance left, a directory we may
// not read) or the directory is on a network or FUSE file system, whose
// other clients' writes inotify does not see.
//
// Nothing here blocks the Runtime's I/O thread: each operation runs on a
// short-lived thread of its own and posts its completion back. One lock
// handle has at most one operation in flight; a call made while the previous
// one is still running (PATH.lock held by another process, a stalled disk)
// fails at once with Code::kUnavailable. An operation waits for PATH.lock
// only until its request timeout (set_request_timeout; 5 s by default) and
// gives up without writing if that timeout passes before its rename, so a
// request the elector has already timed out takes no effect later, unless
// the timeout passes during the rename or the directory fsync.
//
// Hostile neighbours: PATH and PATH.lock are opened without following
// symbolic links, and refused when they are links, not regular files, or
// owned by another user (who could hold PATH.lock to freeze every elector on
// it, or swap the record) unless the URL says ?allow-other-owner=true. Both
// are created 0600. A write goes to a temporary file made with a random name
// and O_EXCL in the same directory (mkostemp), never to a predictable one a
// neighbour could plant a link at.
//
// A reader needs no write access: get() in a directory (or on a PATH.lock)
// it cannot write reads without taking PATH.lock for writing (see locked()).
// Opening a lock in such a directory succeeds; its first write fails with
// Code::kForbidden naming the file. A rename refused in a sticky directory
// (PATH owned by another user) says so and what to do.
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <system_error>
#include <thread>

#include "backends/backends.h"
#include "core/runtime_access.h"

namespace leasehold::backends {
namespace {

using namespace std::chrono_literals;

constexpr Duration kDefaultTimeout = 5s;

std::string errno_text(int e) { return std::strerror(e); }

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Sleeps on the real clock (the file is real; the Runtime's clock may be
// simulated).
void pause_until(RealClock& clock, Instant until) {
  std::mutex m;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lk(m);
  while (clock.now() < until) clock.wait_until(lk, cv, until);
}

// The file and the blocking work on it. Used by one operation's thread at a
// time (FileLock::busy_ ensures it), and by the watch thread, which only
// calls read() (it uses the path alone); owns nothing of the Runtime.
// Opens `path` (O_NOFOLLOW added) and checks it is a regular file owned by
// us (or by anyone, when `allow_other_owner`). -ENOENT style: a missing file
// with no O_CREAT is returned as Code::kNotFound. `open_errno`, when given,
// receives open(2)'s errno when open(2) itself failed (else 0).
Result<int> open_own_file(const std::string& path, int flags, bool allow_other_owner, int* open_errno = nullptr) {
  // O_NONBLOCK: a FIFO planted at the path is refused below, not waited on
  // (no effect on regular files).
  int fd = ::open(path.c_str(), flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
  if (open_errno) *open_errno = fd < 0 ? errno : 0;
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT) return Error::not_found(path + ": no such file");
    if (e == ELOOP) {
      return Error::forbidden(path + " is a symbolic link: refusing it (a planted link could redirect the "
                              "lease onto another file); use the real path");
    }
    return Error(e == EACCES || e == EROFS ? Code::kForbidden : Code::kUnavailable,
                 "cannot open " + path + ": " + errno_text(e));
  }
  struct stat st {};
  std::string why;
  if (::fstat(fd, &st) != 0) {
    why = "cannot stat " + path + ": " + errno_text(errno);
  } else if (!S_ISREG(st.st_mode)) {
    why = path + " is not a regular file: refusing it";
  } else if (st.st_uid != ::geteuid() && !allow_other_owner) {
    why = path + " is owned by uid " + std::to_string(st.st_uid) + ", not by this process (uid " +
          std::to_string(::geteuid()) + "): refusing it (another user could hold or rewrite it); keep "
          "locks in a directory only this user can write, or add ?allow-other-owner=true to the URL";
  }
  if (!why.empty()) {
    ::close(fd);
    return Error::forbidden(why);
  }
  return fd;
}

class FileStore {
 public:
  FileStore(std::string path, bool allow_other_owner)
      : path_(std::move(path)), allow_other_owner_(allow_other_owner) {
    auto slash = path_.rfind('/');
    dir_ = slash == 0 ? "/" : path_.substr(0, slash);
  }

  Result<Versioned> get(Instant deadline) {
    return locked(deadline, /*read_only=*/true, [&]() -> Result<Versioned> {
      auto cur = read();
      if (!cur) return cur.error();
      if (!*cur) return Error::not_found(path_ + ": no record yet");
      return to_versioned(**cur);
    });
  }

  Result<Versioned> create(const LeaseRecord& rec, Instant deadline) {
    return locked(deadline, /*read_only=*/false, [&]() -> Result<Versioned> {
      auto cur = read();
      if (!cur) return cur.error();
      if (*cur) return Error::already_exists(path_ + ": record exists");
      return write(FileRecord{new_epoch(), 1, rec}, deadline);
    });
  }

  Result<Versioned> update(const std::string& version, const LeaseRecord& rec, Instant deadline) {
    return locked(deadline, /*read_only=*/false, [&]() -> Result<Versioned> {
      auto cur = read();
      if (!cur) return cur.error();
      if (!*cur) return Error::not_found(path_ + ": record was deleted");
      const FileRecord& f = **cur;
      if (f.version() != version) {
        return Error::conflict(path_ + ": version " + version + " is stale (now " + f.version() + ")");
      }
      // A file from before epochs gets one now.
      return write(FileRecord{f.epoch != 0 ? f.epoch : new_epoch(), f.generation + 1, rec}, deadline);
    });
  }

  Result<std::string> repair(Duration min_age, Instant deadline) {
    std::string found;
    auto r = locked(deadline, /*read_only=*/false, [&]() -> Result<Versioned> {
      auto cur = read();
      if (cur && !*cur) return Error::not_found(path_ + ": no record; nothing to repair");
      if (cur) return Error::invalid(path_ + ": the record decodes; nothing to repair (release --force frees it)");
      if (!cur.error().is(Code::kInvalid)) return cur.error();
      std::string why = cur.error().message();  // read() names the path first
      if (why.starts_with(path_ + ": ")) why.erase(0, path_.size() + 2);
      struct stat st {};
      if (::lstat(path_.c_str(), &st) != 0) return Error::unavailable("cannot stat " + path_ + ": " + errno_text(errno));
      auto mtime = std::chrono::system_clock::time_point(std::chrono::seconds(st.st_mtim.tv_sec) +
                                                         std::chrono::nanoseconds(st.st_mtim.tv_nsec));
      auto age = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - mtime);
      std::string head;
      if (Fd fd(::open(path_.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC)); fd.get() >= 0) {
        char buf[48];
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        for (ssize_t i = 0; i < n; ++i) {
          auto u = static_cast<unsigned char>(buf[i]);
          if (u < 0x20 || u >= 0x7f || u == '"' || u == '\\') {
            char b[8];
            std::snprintf(b, sizeof b, "\\x%02x", u);
            head += b;
          } else {
            head += static_cast<char>(u);
          }
        }
        if (n == static_cast<ssize_t>(sizeof buf)) head += "...";
      }
      found = path_ + " (" + std::to_string(st.st_size) + " bytes, last written " + std::to_string(age.count()) +
              "s ago, begins \"" + head + "\") does not decode: " + why;
      if (age < min_age) {
        return Error::invalid(found + "; not replaced: it was written less than " +
                              std::to_string(std::chrono::duration_cast<std::chrono::seconds>(min_age).count()) +
                              "s ago, and a holder that renewed just before it broke may still be working until its "
                              "renew deadline; run again later");
      }
      LeaseRecord free_record;
      free_record.lease_duration_seconds = 1;
      free_record.renew_time = std::chrono::system_clock::now();
      return write(FileRecord{new_epoch(), 1, free_record}, deadline);
    });
    if (!r) return r.error();
    return found;
  }

  static Versioned to_versioned(const FileRecord& f) { return Versioned{f.version(), f.record}; }

  const std::string& path() const { return path_; }
  const std::string& dir() const { return dir_; }

 private:
  // Random, never 0: a re-created file does not repeat the versions of the
  // file it replaces (with probability 1 - 2^-64 per creation).
  static uint64_t new_epoch() {
    std::random_device rd;
    uint64_t e = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    return e != 0 ? e : 1;
  }

  // Runs `body` holding an exclusive flock on PATH.lock, waited for (in
  // growing steps of 1 to 32 ms, LOCK_NB) only until `deadline`. A reader
  // (`read_only`) that may not create or write PATH.lock (a directory or
  // file it cannot write) opens it read-only, or reads without it when it
  // does not exist: writers replace PATH by rename(2), so a read sees one
  // whole record either way.
  template <class F>
  Result<Versioned> locked(Instant deadline, bool read_only, F&& body) {
    std::string lock_path = path_ + ".lock";
    int open_errno = 0;
    auto opened = open_own_file(lock_path, O_RDWR | O_CREAT, allow_other_owner_, &open_errno);
    if (!opened && read_only && (open_errno == EACCES || open_errno == EROFS)) {
      opened = open_own_file(lock_path, O_RDONLY, allow_other_owner_);
      if (!opened && opened.error().is(Code::kNotFound)) return body();
    }
    if (!opened) return opened.error();
    Fd fd(*opened);
    Duration step = 1ms;
    while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno == EINTR) continue;
      if (errno != EWOULDBLOCK) return Error::unavailable("flock " + lock_path + ": " + errno_text(errno));
      Instant now = clock_.now();
      if (now >= deadline) {
        return Error::timeout(lock_path + " is held by another process: no flock before the request timeout");
      }
      pause_until(clock_, std::min(now + step, deadline));
      step = std::min<Duration>(step * 2, 32ms);
    }
    return body();  // the flock goes with the fd
  }

 public:
  // PATH as it is now, without PATH.lock (a whole record: writers rename);
  // nullopt inside: no file yet. Safe from any thread at any time: it uses
  // only the path.
  Result<std::optional<FileRecord>> read() const {
    auto opened = open_own_file(path_, O_RDONLY, allow_other_owner_);
    if (!opened) {
      if (opened.error().is(Code::kNotFound)) return std::optional<FileRecord>{};
      return opened.error();
    }
    Fd fd(*opened);
    struct stat st {};
    if (::fstat(fd.get(), &st) == 0 && static_cast<uint64_t>(st.st_size) > kMaxFileRecordBytes) {
      return Error::invalid(path_ + ": record is " + std::to_string(st.st_size) + " bytes; at most " +
                            std::to_string(kMaxFileRecordBytes) + " expected");
    }
    std::string text;
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::unavailable("cannot read " + path_ + ": " + errno_text(errno));
      if (n == 0) break;
      text.append(buf, static_cast<size_t>(n));
      if (text.size() > 1 << 20) break;  // decode rejects oversize
    }
    auto rec = decode_file_record(text);
    if (!rec) return Error::invalid(path_ + ": " + rec.error().message());
    return std::optional<FileRecord>(std::move(*rec));
  }

 private:
  Result<Versioned> write(const FileRecord& f, Instant deadline) {
    std::string text = encode_file_record(f);
    // A fresh name with O_EXCL and mode 0600: nothing planted is followed.
    std::string tmp = path_ + ".tmp.XXXXXX";
    Fd fd(::mkostemp(tmp.data(), O_CLOEXEC));
    if (fd.get() < 0) {
      int e = errno;
      return Error(e == EACCES || e == EROFS ? Code::kForbidden : Code::kUnavailable,
                   "cannot create a temporary file in " + dir_ + " (beside " + path_ + "): " + errno_text(e));
    }
    struct Unlink {  // the temporary goes, unless renamed over PATH
      std::string path;
      ~Unlink() {
        if (!path.empty()) ::unlink(path.c_str());
      }
    } cleanup{tmp};
    size_t off = 0;
    while (off < text.size()) {
      ssize_t n = ::write(fd.get(), text.data() + off, text.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::unavailable("write " + tmp + ": " + errno_text(errno));
      off += static_cast<size_t>(n);
    }
    if (::fsync(fd.get()) != 0) return Error::unavailable("fsync " + tmp + ": " + errno_text(errno));
    if (clock_.now() >= deadline) {  // the elector has given up on this request
      return Error::timeout("fsync " + tmp + " outlasted the request timeout; not written");
    }
    if (::rename(tmp.c_str(), path_.c_str()) != 0) {
      int e = errno;
      return rename_error(tmp, e);
    }
    cleanup.path.clear();
    Fd dir(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.get() >= 0) ::fsync(dir.get());
    return to_versioned(f);
  }

  // rename(2) of our temporary over PATH failed with `e`. In a sticky
  // directory (like /tmp) only PATH's owner (or the directory's) may replace
  // it: say so, and what to do.
  Error rename_error(const std::string& tmp, int e) const {
    std::string what = "rename " + tmp + " -> " + path_ + ": " + errno_text(e);
    struct stat dst {}, pst {};
    if ((e == EPERM || e == EACCES) && ::stat(dir_.c_str(), &dst) == 0 && (dst.st_mode & S_ISVTX) != 0 &&
        ::lstat(path_.c_str(), &pst) == 0 && pst.st_uid != ::geteuid()) {
      return Error::forbidden(what + ": " + dir_ + " is a sticky directory (mode +t, like /tmp) and " + path_ +
                              " belongs to uid " + std::to_string(pst.st_uid) +
                              ", so only that user may replace it; keep a lock shared by several users in a "
                              "directory of its own without the sticky bit, writable by all of them (e.g. "
                              "mode 2770 with a shared group)");
    }
    return Error(e == EACCES || e == EROFS ? Code::kForbidden : Code::kUnavailable, what);
  }

  RealClock clock_;
  std::string path_;
  bool allow_other_owner_;
  std::string dir_;
};

// The inotify watch of one handle (see the top of this file). Its thread
// owns it (through a shared_ptr) and ends when stop() is called; nothing of
// the Runtime is touched but the IoGate.
class FileWatch : public std::enable_shared_from_this<FileWatch> {
 public:
  using OnChange = std::function<void(const std::optional<Versioned>&)>;
  using OnHealth = std::function<void(bool)>;

  FileWatch(std::shared_ptr<FileStore> store, std::shared_ptr<IoGate> gate, OnChange on_change, OnHealth on_health)
      : store_(std::move(store)),
        gate_(std::move(gate)),
        on_change_(std::move(on_change)),
        on_health_(std::move(on_health)) {
    auto slash = store_->path().rfind('/');
    name_ = store_->path().substr(slash + 1);
  }
  ~FileWatch() {
    if (inotify_ >= 0) ::close(inotify_);
    if (wake_ >= 0) ::close(wake_);
  }

  // Sets up inotify and starts the thread; false (and nothing started) when
  // the directory cannot be watched.
  bool start() {
    struct statfs fs {};
    if (::statfs(store_->dir().c_str(), &fs) != 0 || remote_file_system(fs.f_type)) return false;
    inotify_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    wake_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (inotify_ < 0 || wake_ < 0) return false;
    constexpr uint32_t kMask = IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE | IN_MOVED_FROM |
                               IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
    if (::inotify_add_watch(inotify_, store_->dir().c_str(), kMask) < 0) return false;
    // The directory as it is once watched: a later one at the same path is
    // another directory, which this watch does not see.
    if (::stat(store_->dir().c_str(), &dir_) != 0) return false;
    try {
      std::thread([self = shared_from_this()] { self->loop(); }).detach();
    } catch (const std::system_error&) {
      return false;
    }
    return true;
  }

  // Ends the thread at its next wake-up. A delivery posted before it is
  // dropped when it runs on the I/O thread after this.
  void stop() {
    stopped_.store(true);
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_, &one, sizeof one);
  }

 private:
  // NFS, SMB/CIFS, FUSE, 9p, Ceph, AFS, GlusterFS (FUSE), Lustre: other
  // clients' writes raise no inotify event here.
  static bool remote_file_system(decltype(statfs::f_type) type) {
    switch (static_cast<uint64_t>(type)) {
      case 0x6969:      // NFS
      case 0x517B:      // SMB
      case 0xFF534D42:  // CIFS
      case 0xFE534D42:  // SMB2
      case 0x65735546:  // FUSE
      case 0x01021997:  // 9p (v9fs)
      case 0x00C36400:  // Ceph
      case 0x5346414F:  // AFS
      case 0x0BD00BD0:  // Lustre
        return true;
      default:
        return false;
    }
  }

  void loop() {
    // What is there now, then every change: a write before the watch was
    // added is not missed.
    deliver_current(false);
    while (!stopped_.load()) {
      pollfd fds[2] = {{inotify_, POLLIN, 0}, {wake_, POLLIN, 0}};
      // A second at most between reads: an event lost in any way (a queue
      // overflow, a kind this mask lacks) is made good within it.
      int ready = ::poll(fds, 2, 1000);
      if (ready < 0 && errno != EINTR) return post_health(false);
      if (stopped_.load()) return;
      bool created = false;
      alignas(inotify_event) char buf[16 * 1024];
      for (;;) {
        ssize_t n = ::read(inotify_, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // EAGAIN: all read
        for (ssize_t off = 0; off < n;) {
          auto* ev = reinterpret_cast<inotify_event*>(buf + off);
          off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
          // Lost events may have created a record that is gone again.
          if (ev->mask & IN_Q_OVERFLOW) created = true;
          if (ev->len > 0 && name_ == ev->name && (ev->mask & (IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE))) {
            created = true;
          }
        }
      }
      struct stat now {};
      if (::stat(store_->dir().c_str(), &now) != 0 || now.st_dev != dir_.st_dev || now.st_ino != dir_.st_ino) {
        // The directory at the path is gone or another one: nothing more
        // will be seen, so the elector polls from now on.
        return post_health(false);
      }
      deliver_current(created);
    }
  }

  // Reads PATH and posts it when it differs from what was posted last; a
  // missing record is posted after a record, or when `created` says one
  // existed since the last read.
  void deliver_current(bool created) {
    auto cur = store_->read();
    if (!cur) {
      // Unreadable or not decodable: the elector's reads will say why.
      if (healthy_) post_health(false);
      return;
    }
    std::optional<Versioned> v;
    std::string text;
    if (*cur) {
      v = FileStore::to_versioned(**cur);
      text = encode_file_record(**cur);  // a record edited in place keeps its version
    }
    // No record at the first look is not news: a deletion is posted only
    // when a record existed (the elector takes one as proof of a holder, and
    // waits it out).
    bool news = v ? text != last_text_ : (delivered_ && (!last_text_.empty() || created));
    delivered_ = true;
    last_text_ = std::move(text);
    if (news) {
      gate_->post([self = shared_from_this(), v = std::move(v)] {
        if (!self->stopped_.load()) self->on_change_(v);
      });
    }
    if (!healthy_) post_health(true);
  }

  void post_health(bool healthy) {
    healthy_ = healthy;
    gate_->post([self = shared_from_this(), healthy] {
      if (!self->stopped_.load()) self->on_health_(healthy);
    });
  }

  std::shared_ptr<FileStore> store_;
  std::shared_ptr<IoGate> gate_;
  OnChange on_change_;
  OnHealth on_health_;
  std::string name_;  // PATH's last component
  int inotify_ = -1, wake_ = -1;
  struct stat dir_ {};  // the watched directory (start())
  std::atomic<bool> stopped_{false};
  // The watch thread only:
  bool healthy_ = false;
  bool delivered_ = false;
  std::string last_text_;  // the record last posted, encoded; "" for none
};

class FileLock final : public Lock {
 public:
  FileLock(Runtime& rt, std::string url, std::string path, bool allow_other_owner)
      : rt_(rt),
        gate_(RuntimeAccess::io_gate(rt)),
        url_(std::move(url)),
        store_(std::make_shared<FileStore>(std::move(path), allow_other_owner)) {}

  ~FileLock() override {
    if (watch_) watch_->stop();
  }

  const std::string& describe() const override { return url_; }

  bool watch(std::function<void(const std::optional<Versioned>&)> on_change,
             std::function<void(bool)> on_health) override {
    if (watch_) watch_->stop();
    watch_ = std::make_shared<FileWatch>(store_, gate_, std::move(on_change), std::move(on_health));
    if (!watch_->start()) {
      watch_.reset();
      return false;
    }
    return true;
  }

  void set_request_timeout(Duration timeout) override { timeout_ = timeout; }

  void get(Completion<Versioned> done) override {
    run(std::move(done), [](FileStore& f, Instant deadline) { return f.get(deadline); });
  }

  void create(const LeaseRecord& rec, Completion<Versioned> done) override {
    run(std::move(done), [rec](FileStore& f, Instant deadline) { return f.create(rec, deadline); });
  }

  void update(const std::string& version, const LeaseRecord& rec, Completion<Versioned> done) override {
    run(std::move(done),
        [version, rec](FileStore& f, Instant deadline) { return f.update(version, rec, deadline); });
  }

 private:
  // Runs `op` on a thread of its own and posts its result to the I/O thread;
  // fails at once if the previous operation has not finished.
  template <class Op>
  void run(Completion<Versioned> done, Op op) {
    if (busy_->exchange(true)) {
      return fail(std::move(done), Error::unavailable(url_ + ": the previous operation has not finished "
                                                             "(PATH.lock held elsewhere or a stalled disk)"));
    }
    auto job = std::make_shared<Completion<Versioned>>(std::move(done));
    Instant deadline = RealClock().now() + timeout_;
    try {
      std::thread([store = store_, busy = busy_, gate = gate_, job, op = std::move(op), deadline] {
        Result<Versioned> r = op(*store, deadline);
        busy->store(false);  // before the completion, which may start the next operation
        gate->post([done = std::move(*job), r = std::move(r)] { done(r); });
      }).detach();
    } catch (const std::system_error& e) {  // std::thread's only way to report failure
      busy_->store(false);
      fail(std::move(*job), Error::unavailable(url_ + ": cannot start a thread: " + e.what()));
    }
  }

  void fail(Completion<Versioned> done, Error e) {
    rt_.post([done = std::move(done), e = std::move(e)] { done(e); });
  }

  Runtime& rt_;
  std::shared_ptr<IoGate> gate_;
  std::string url_;
  std::shared_ptr<FileStore> store_;
  std::shared_ptr<std::atomic<bool>> busy_ = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<FileWatch> watch_;  // set by watch() (I/O thread); stopped by the destructor
  Duration timeout_ = kDefaultTimeout;  // I/O thread only
};

}  // namespace

namespace {
// PATH[?allow-other-owner=true] -> PATH, the option.
Result<bool> take_options(const std::string& url, std::string& path) {
  bool allow_other_owner = false;
  if (auto q = path.find('?'); q != std::string::npos) {
    std::string query = path.substr(q + 1);
    path.resize(q);
    if (query == "allow-other-owner=true" || query == "allow-other-owner=1") {
      allow_other_owner = true;
    } else {
      return Error::invalid(url + ": unknown option \"" + query + "\" (the file lock knows allow-other-owner=true)");
    }
  }
  return allow_other_owner;
}
}  // namespace

Result<std::string> repair_file_lock(const std::string& url, Duration min_age) {
  constexpr std::string_view kFile = "file://";
  if (!url.starts_with(kFile) || url.size() == kFile.size() || url[kFile.size()] != '/') {
    return Error::invalid(url + ": --repair is for file:///PATH locks only");
  }
  std::string path = url.substr(kFile.size());
  auto allow = take_options(url, path);
  if (!allow) return allow.error();
  if (path.back() == '/') return Error::invalid(url + ": names a directory, not a file");
  FileStore store(path, *allow);
  return store.repair(min_age, RealClock().now() + kDefaultTimeout);
}

Result<std::shared_ptr<Lock>> open_file_lock(Runtime& rt, std::string url, std::string path) {
  auto allow = take_options(url, path);
  if (!allow) return allow.error();
  const bool allow_other_owner = *allow;
  if (path.empty() || path.back() == '/') return Error::invalid(url + ": names a directory, not a file");
  auto slash = path.rfind('/');
  std::string dir = slash == 0 ? "/" : path.substr(0, slash);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    return Error::invalid(url + ": directory " + dir + " does not exist");
  }
  if (!S_ISDIR(st.st_mode)) return Error::invalid(url + ": " + dir + " is not a directory");
  // A directory we cannot write is no error here: a reader (leasehold status)
  // needs no write access; a write fails, naming the directory.
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return Error::invalid(url + ": " + path + " is a directory");
  }
  // Refused now rather than at the first request: a planted link or a lock
  // file of another user (the same checks run on every open).
  for (const std::string& p : {path, path + ".lock"}) {
    auto fd = open_own_file(p, O_RDONLY, allow_other_owner);
    if (fd) {
      ::close(*fd);
    } else if (!fd.error().is(Code::kNotFound) && !fd.error().is(Code::kUnavailable)) {
      return Error(fd.error().code(), url + ": " + fd.error().message());
    }
  }
  return std::shared_ptr<Lock>(
      std::make_shared<FileLock>(rt, std::move(url), std::move(path), allow_other_owner));
}

}  // namespace leasehold::backends
