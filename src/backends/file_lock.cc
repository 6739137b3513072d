// file:///PATH: the lease record as JSON in PATH. Every operation takes an
// exclusive flock on PATH.lock, so read-compare-write is atomic among all
// processes of the host; a write goes to a temporary file that is fsynced and
// renamed over PATH, and the directory is fsynced, before it is acknowledged.
// A file that does not decode is an error, never "free".
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "backends/backends.h"

namespace leasehold::backends {
namespace {

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

class FileLock final : public Lock {
 public:
  FileLock(Runtime& rt, std::string url, std::string path)
      : rt_(rt), url_(std::move(url)), path_(std::move(path)) {
    auto slash = path_.rfind('/');
    dir_ = slash == 0 ? "/" : path_.substr(0, slash);
  }

  const std::string& describe() const override { return url_; }

  void get(Completion<Versioned> done) override {
    complete(std::move(done), locked([&]() -> Result<Versioned> {
      auto cur = read();
      if (!cur) return cur.error();
      if (!*cur) return Error::not_found(path_ + ": no record yet");
      return to_versioned(**cur);
    }));
  }

  void create(const LeaseRecord& rec, Completion<Versioned> done) override {
    complete(std::move(done), locked([&]() -> Result<Versioned> {
      auto cur = read();
      if (!cur) return cur.error();
      if (*cur) return Error::already_exists(path_ + ": record exists");
      return write(FileRecord{1, rec});
    }));
  }

  void update(const std::string& version, const LeaseRecord& rec,
              Completion<Versioned> done) override {
    complete(std::move(done), locked([&]() -> Result<Versioned> {
      auto cur = read();
      if (!cur) return cur.error();
      if (!*cur) return Error::not_found(path_ + ": record was deleted");
      if (std::to_string((*cur)->generation) != version) {
        return Error::conflict(path_ + ": generation " + version + " is stale (now " +
                               std::to_string((*cur)->generation) + ")");
      }
      return write(FileRecord{(*cur)->generation + 1, rec});
    }));
  }

 private:
  static Versioned to_versioned(const FileRecord& f) {
    return Versioned{std::to_string(f.generation), f.record};
  }

  void complete(Completion<Versioned> done, Result<Versioned> r) {
    rt_.post([done = std::move(done), r = std::move(r)] { done(r); });
  }

  template <class F>
  Result<Versioned> locked(F&& body) {
    std::string lock_path = path_ + ".lock";
    Fd fd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (fd.get() < 0) {
      int e = errno;
      return Error(e == EACCES || e == EROFS ? Code::kForbidden : Code::kUnavailable,
                   "cannot open " + lock_path + ": " + errno_text(e));
    }
    while (::flock(fd.get(), LOCK_EX) != 0) {
      if (errno != EINTR) return Error::unavailable("flock " + lock_path + ": " + errno_text(errno));
    }
    return body();  // the flock goes with the fd
  }

  // nullopt inside: no file yet.
  Result<std::optional<FileRecord>> read() {
    Fd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
      if (errno == ENOENT) return std::optional<FileRecord>{};
      return Error::unavailable("cannot read " + path_ + ": " + errno_text(errno));
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

  Result<Versioned> write(const FileRecord& f) {
    std::string tmp = path_ + ".tmp";
    std::string text = encode_file_record(f);
    {
      Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
      if (fd.get() < 0) {
        int e = errno;
        return Error(e == EACCES || e == EROFS ? Code::kForbidden : Code::kUnavailable,
                     "cannot write " + tmp + ": " + errno_text(e));
      }
      size_t off = 0;
      while (off < text.size()) {
        ssize_t n = ::write(fd.get(), text.data() + off, text.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Error::unavailable("write " + tmp + ": " + errno_text(errno));
        off += static_cast<size_t>(n);
      }
      if (::fsync(fd.get()) != 0) return Error::unavailable("fsync " + tmp + ": " + errno_text(errno));
    }
    if (::rename(tmp.c_str(), path_.c_str()) != 0) {
      return Error::unavailable("rename " + tmp + " -> " + path_ + ": " + errno_text(errno));
    }
    Fd dir(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.get() >= 0) ::fsync(dir.get());
    return to_versioned(f);
  }

  Runtime& rt_;
  std::string url_;
  std::string path_;
  std::string dir_;
};

}  // namespace

Result<std::shared_ptr<Lock>> open_file_lock(Runtime& rt, std::string url, std::string path) {
  if (path.back() == '/') return Error::invalid(url + ": names a directory, not a file");
  auto slash = path.rfind('/');
  std::string dir = slash == 0 ? "/" : path.substr(0, slash);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    return Error::invalid(url + ": directory " + dir + " does not exist");
  }
  if (!S_ISDIR(st.st_mode)) return Error::invalid(url + ": " + dir + " is not a directory");
  if (::access(dir.c_str(), W_OK) != 0) {
    return Error::forbidden(url + ": directory " + dir + " is not writable by this user");
  }
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return Error::invalid(url + ": " + path + " is a directory");
  }
  return std::shared_ptr<Lock>(std::make_shared<FileLock>(rt, std::move(url), std::move(path)));
}

}  // namespace leasehold::backends
