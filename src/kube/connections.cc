#include "kube/connections.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

namespace leasehold::kube {
namespace {

int ms_int(Duration d) {
  return static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}
int secs_int(Duration d) {
  return std::max(1, static_cast<int>(std::chrono::duration_cast<std::chrono::seconds>(d).count()));
}

// "ip", port of a socket's local end; port 0 when unknown.
std::pair<std::string, long> local_end(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {"", 0};
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    return {buf, ntohs(a->sin_port)};
  }
  if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    return {buf, ntohs(a->sin6_port)};
  }
  return {"", 0};
}

}  // namespace

void Connections::attach(CURL* easy) {
  curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, &Connections::open_socket);
  curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, this);
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, &Connections::close_socket);
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, this);
}

curl_socket_t Connections::open_socket(void* self_p, curlsocktype purpose, curl_sockaddr* addr) {
  auto* self = static_cast<Connections*>(self_p);
  if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKET_BAD;
  int fd = ::socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
  if (fd < 0) return CURL_SOCKET_BAD;
  if (addr->family == AF_INET || addr->family == AF_INET6) {
    const SocketTuning& t = self->tuning_;
    int on = 1, user = ms_int(t.user_timeout), idle = secs_int(t.keepalive_idle),
        intvl = secs_int(t.keepalive_interval), cnt = t.keepalive_count;
    // Best effort: a kernel that refuses one still gets the client's own checks.
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user, sizeof user);
    (void)::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
  }
  self->socks_[fd] = Sock{};
  return fd;
}

int Connections::close_socket(void* self_p, curl_socket_t fd) {
  auto* self = static_cast<Connections*>(self_p);
  self->socks_.erase(fd);
  return ::close(fd);
}

int Connections::socket_of(CURL* easy) {
  // curl reports the local end of the transfer's connection (kept after it finished).
  char* ip_p = nullptr;
  long port = 0;
  curl_easy_getinfo(easy, CURLINFO_LOCAL_IP, &ip_p);
  curl_easy_getinfo(easy, CURLINFO_LOCAL_PORT, &port);
  std::string_view ip = ip_p ? ip_p : "";
  if (port <= 0) return -1;
  for (auto& [fd, s] : socks_) {
    if (s.local_port == 0) std::tie(s.local_ip, s.local_port) = local_end(fd);
    if (s.local_port == port && s.local_ip == ip) return fd;
  }
  return -1;
}

std::optional<Duration> Connections::retire_if_silent(CURL* easy, Duration age) {
  int fd = socket_of(easy);
  auto it = socks_.find(fd);
  if (it == socks_.end() || it->second.retired) return std::nullopt;
  auto quiet = silence(fd);
  if (!quiet || *quiet + std::chrono::milliseconds(20) < age) return std::nullopt;
  it->second.retired = true;
  ::shutdown(fd, SHUT_RDWR);
  return quiet;
}

bool Connections::any_silent(const std::vector<CURL*>& easy, Duration quiet) {
  for (CURL* e : easy) {
    int fd = socket_of(e);
    auto q = fd >= 0 ? silence(fd) : std::nullopt;
    if (q && *q >= quiet) return true;
  }
  return false;
}

std::optional<Duration> Connections::silence(int fd) const {
  tcp_info info{};
  socklen_t len = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return std::nullopt;
  return std::chrono::milliseconds(info.tcpi_last_data_recv);
}

}  // namespace leasehold::kube
