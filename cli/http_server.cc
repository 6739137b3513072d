#include "http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <vector>

#include "leasehold/clock.h"

namespace leasehold::cli {
namespace {

bool is_tchar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

std::string lower(std::string_view s) {
  std::string o(s);
  for (char& c : o) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return o;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

std::string errno_text(int e) { return std::strerror(e); }

}  // namespace

ParseResult parse_http_request(std::string_view buf, size_t max_bytes, HttpRequest& out) {
  // Find the end of the head: an empty line.
  size_t end = std::string_view::npos;
  size_t head_len = 0;
  for (size_t i = 0; i < buf.size(); ++i) {
    if (buf[i] != '\n') continue;
    if (i + 1 < buf.size() && buf[i + 1] == '\n') {
      end = i + 1;
      head_len = i + 2;
      break;
    }
    if (i + 2 < buf.size() && buf[i + 1] == '\r' && buf[i + 2] == '\n') {
      end = i + 1;
      head_len = i + 3;
      break;
    }
  }
  if (end == std::string_view::npos) {
    return buf.size() > max_bytes ? ParseResult::kTooLarge : ParseResult::kIncomplete;
  }
  if (head_len > max_bytes) return ParseResult::kTooLarge;
  std::string_view head = buf.substr(0, end);
  // Split into lines; strip an optional CR before each LF.
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < head.size()) {
    size_t nl = head.find('\n', start);
    if (nl == std::string_view::npos) nl = head.size();
    std::string_view line = head.substr(start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    start = nl + 1;
  }
  if (lines.empty()) return ParseResult::kBad;
  for (std::string_view line : lines) {
    for (char c : line) {
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) return ParseResult::kBad;
    }
  }
  // Request line: METHOD SP TARGET SP HTTP/1.x
  std::string_view rl = lines[0];
  size_t sp1 = rl.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return ParseResult::kBad;
  size_t sp2 = rl.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || rl.find(' ', sp2 + 1) != std::string_view::npos) {
    return ParseResult::kBad;
  }
  std::string_view method = rl.substr(0, sp1);
  std::string_view target = rl.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = rl.substr(sp2 + 1);
  if (!std::all_of(method.begin(), method.end(), is_tchar)) return ParseResult::kBad;
  if (target.empty() || target[0] != '/') return ParseResult::kBad;
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return ParseResult::kBad;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::string_view h = lines[i];
    size_t colon = h.find(':');
    if (colon == std::string_view::npos || colon == 0) return ParseResult::kBad;
    std::string_view name = h.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), is_tchar)) return ParseResult::kBad;
    std::string n = lower(name);
    std::string_view value = trim(h.substr(colon + 1));
    if (n == "transfer-encoding") return ParseResult::kBad;
    if (n == "content-length" && value != "0") return ParseResult::kBad;
  }
  out.method = std::string(method);
  size_t q = target.find('?');
  out.path = std::string(target.substr(0, q));
  out.query = q == std::string_view::npos ? "" : std::string(target.substr(q + 1));
  return ParseResult::kOk;
}

std::string format_http_response(const HttpResponse& r, bool head_only) {
  std::string o = "HTTP/1.1 " + std::to_string(r.status) + " " + reason(r.status) + "\r\n";
  o += "Content-Type: " + r.content_type + "\r\n";
  o += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  o += "Cache-Control: no-store\r\n";
  if (r.status == 405) o += "Allow: GET, HEAD\r\n";
  o += "Connection: close\r\n\r\n";
  if (!head_only) o += r.body;
  return o;
}

Result<ListenAddress> parse_listen_address(const std::string& address) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) return Error::invalid("want HOST:PORT, :PORT or [IPV6]:PORT");
  ListenAddress a{address.substr(0, colon), address.substr(colon + 1)};
  std::string& host = a.host;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return Error::invalid("an IPv6 host goes in brackets: [IPV6]:PORT");
  }
  if (host.find_first_of("[]/ ") != std::string::npos ||
      std::any_of(host.begin(), host.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; })) {
    return Error::invalid("\"" + host + "\" is not a host name or address");
  }
  const std::string& port = a.port;
  if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoi(port) > 65535) {
    return Error::invalid("port \"" + port + "\" is not a number from 0 to 65535");
  }
  return a;
}

Result<std::unique_ptr<HttpServer>> HttpServer::listen(const std::string& address, Handler handler) {
  auto bad = [&](const std::string& why) {
    return Error::invalid("--http-address \"" + address + "\": " + why);
  };
  auto parsed = parse_listen_address(address);
  if (!parsed) return bad(parsed.error().message());
  const std::string& host = parsed->host;
  const std::string& port = parsed->port;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  int gai = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
  if (gai != 0) return bad(std::string("cannot resolve the host: ") + gai_strerror(gai));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);
  // With no host, prefer IPv4 0.0.0.0 (works on hosts without IPv6).
  addrinfo* pick = res;
  for (addrinfo* a = res; a; a = a->ai_next) {
    if (host.empty() && a->ai_family == AF_INET) pick = a;
  }
  int fd = ::socket(pick->ai_family, pick->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, pick->ai_protocol);
  if (fd < 0) return bad("socket: " + errno_text(errno));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, pick->ai_addr, pick->ai_addrlen) != 0) {
    int e = errno;
    ::close(fd);
    return bad("bind: " + errno_text(e));
  }
  if (::listen(fd, 64) != 0) {
    int e = errno;
    ::close(fd);
    return bad("listen: " + errno_text(e));
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  char ip[INET6_ADDRSTRLEN] = {};
  int bound_port = 0;
  std::string bound;
  if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
    bound_port = ntohs(a->sin6_port);
    bound = "[" + std::string(ip) + "]:" + std::to_string(bound_port);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
    bound_port = ntohs(a->sin_port);
    bound = std::string(ip) + ":" + std::to_string(bound_port);
  }
  auto server = std::unique_ptr<HttpServer>(new HttpServer(fd, bound, std::move(handler)));
  if (::pipe2(server->wake_, O_CLOEXEC | O_NONBLOCK) != 0) return bad("pipe: " + errno_text(errno));
  return server;
}

HttpServer::HttpServer(int listen_fd, std::string bound, Handler handler)
    : listen_fd_(listen_fd), bound_(std::move(bound)), handler_(std::move(handler)) {}

HttpServer::~HttpServer() {
  stop();
  ::close(listen_fd_);
  if (wake_[0] >= 0) ::close(wake_[0]);
  if (wake_[1] >= 0) ::close(wake_[1]);
}

void HttpServer::start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
}

void HttpServer::stop() {
  if (!thread_.joinable()) return;
  char b = 1;
  (void)!::write(wake_[1], &b, 1);
  thread_.join();
}

void HttpServer::loop() {
  struct Conn {
    int fd;
    Instant opened;
    Instant deadline;  // for the whole request, then for writing the answer
    std::string in;
    std::string out;
    size_t sent = 0;
    bool responding = false;
  };
  RealClock clock;
  std::vector<Conn> conns;
  auto respond = [&](Conn& c, const HttpResponse& r, bool head) {
    c.out = format_http_response(r, head);
    c.responding = true;
    c.in.clear();
  };
  // Reads what has arrived; once the request head is complete, answers it.
  auto read_request = [&](Conn& c) {
    char buf[4096];
    ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
    if (n <= 0) {
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      c.deadline = Instant{};  // peer closed or failed: drop
      c.sent = 0;
      c.out.clear();
      c.responding = true;
      return;
    }
    c.in.append(buf, static_cast<size_t>(n));
    HttpRequest req;
    switch (parse_http_request(c.in, kMaxRequestBytes, req)) {
      case ParseResult::kIncomplete: break;
      case ParseResult::kBad: respond(c, {400, "text/plain; charset=utf-8", "malformed request\n"}, false); break;
      case ParseResult::kTooLarge:
        respond(c, {431, "text/plain; charset=utf-8", "request head over 8192 bytes\n"}, false);
        break;
      case ParseResult::kOk:
        if (req.method != "GET" && req.method != "HEAD") {
          respond(c, {405, "text/plain; charset=utf-8", "only GET and HEAD\n"}, false);
        } else {
          respond(c, handler_(req), req.method == "HEAD");
        }
        break;
    }
  };
  auto write_answer = [&](Conn& c) {
    ssize_t n = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n > 0) c.sent += static_cast<size_t>(n);
    else if (n < 0 && errno != EAGAIN && errno != EINTR) c.deadline = Instant{};
  };
  auto finished = [](const Conn& c, Instant now) {
    return (c.responding && c.sent == c.out.size()) || (c.responding && now >= c.deadline);
  };
  // When every slot is taken, the connection least likely to be a probe
  // gives its slot to a new one: the oldest that has sent nothing (nothing
  // read, nothing waiting), else the oldest still sending its request.
  auto evict_one = [&]() {
    auto victim = conns.end();
    bool victim_idle = false;
    for (auto it = conns.begin(); it != conns.end(); ++it) {
      if (it->responding) continue;
      char b;
      bool idle = it->in.empty() && ::recv(it->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN;
      if (victim == conns.end() || (idle && !victim_idle) ||
          (idle == victim_idle && it->opened < victim->opened)) {
        victim = it;
        victim_idle = idle;
      }
    }
    if (victim == conns.end()) return false;
    ::close(victim->fd);
    conns.erase(victim);
    return true;
  };
  for (;;) {
    std::vector<pollfd> fds;
    fds.push_back({wake_[0], POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    for (const Conn& c : conns) fds.push_back({c.fd, static_cast<short>(c.responding ? POLLOUT : POLLIN), 0});
    Instant now = clock.now();
    Duration wait = std::chrono::seconds(1);
    for (const Conn& c : conns) wait = std::min(wait, std::max(Duration::zero(), c.deadline - now));
    int ms = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait).count());
    if (::poll(fds.data(), fds.size(), ms) < 0 && errno != EINTR) break;
    if (fds[0].revents) break;  // stop()
    now = clock.now();
    for (size_t i = 0; i < conns.size(); ++i) {
      Conn& c = conns[i];
      short ev = fds[i + 2].revents;
      if (!c.responding && (ev & (POLLIN | POLLHUP | POLLERR))) {
        read_request(c);
      } else if (c.responding && (ev & (POLLOUT | POLLHUP | POLLERR))) {
        write_answer(c);
      }
      if (!c.responding && now >= c.deadline) {
        respond(c, {408, "text/plain; charset=utf-8", "request not received in time\n"}, false);
        c.deadline = now + kRequestTimeout;  // time to write the answer
      }
    }
    // Close finished, failed and timed-out connections.
    std::erase_if(conns, [&](Conn& c) {
      bool done = finished(c, now);
      if (done) ::close(c.fd);
      return done;
    });
    if (fds[1].revents & POLLIN) {
      for (;;) {
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        // A probe sends its request with the connection: answer it now,
        // without taking a slot, whatever the other connections do.
        Conn c{fd, now, now + kRequestTimeout, {}, {}};
        read_request(c);
        if (c.responding) write_answer(c);
        if (finished(c, now)) {
          ::close(fd);
          continue;
        }
        if (conns.size() >= kMaxConnections && !evict_one()) {
          ::close(fd);  // every slot is writing an answer
          continue;
        }
        conns.push_back(std::move(c));
      }
    }
  }
  for (Conn& c : conns) ::close(c.fd);
}

}  // namespace leasehold::cli
