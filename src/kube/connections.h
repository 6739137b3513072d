// Internal to kube::Client: the TCP connections libcurl opens for one client,
// how long each has gone without receiving data, and a way to end one.
//
// Why this exists: libcurl 7.88 (Debian 12) cannot send an HTTP/2 PING on a
// connection of a multi handle (curl_easy_upkeep serves only the cache of
// curl_easy_perform), and a stream that times out never closes its
// multiplexed connection (Curl_conncontrol ignores stream errors on HTTP/2).
// So the client judges a connection by what the kernel saw on its socket
// (TCP_INFO: time since data last arrived) and ends a dead one with
// shutdown(2): curl then reads end-of-file, fails every transfer still on it
// and drops it from its cache, and the next transfers open a new connection.
//
// Every socket is opened here (CURLOPT_OPENSOCKETFUNCTION, close-on-exec)
// and closed here (CURLOPT_CLOSESOCKETFUNCTION), so a descriptor this class
// acts on is always one curl still holds: never a recycled number.
//
// Threading: one thread at a time. Curl calls open/close from inside
// curl_multi_perform (the client's loop thread) and from curl_multi_cleanup
// (the client's destructor, after that thread ended).
#pragma once

#include <curl/curl.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "leasehold/clock.h"

namespace leasehold::kube {

// Socket options set on every TCP connection (kernel-side detection of a
// peer that stopped acknowledging: a lost node, a blackholed route).
struct SocketTuning {
  Duration user_timeout;        // TCP_USER_TIMEOUT: sent data unacknowledged this long ends the connection
  Duration keepalive_idle;      // TCP_KEEPIDLE: first keepalive probe after this much idleness
  Duration keepalive_interval;  // TCP_KEEPINTVL: between probes
  int keepalive_count = 0;      // TCP_KEEPCNT
};

class Connections {
 public:
  explicit Connections(SocketTuning tuning) : tuning_(tuning) {}
  Connections(const Connections&) = delete;
  Connections& operator=(const Connections&) = delete;

  // Makes the sockets of `easy`'s new connections open, tuned and closed here.
  void attach(CURL* easy);

  // Ends the connection transfer `easy` rode (running or just finished) if
  // it has received no data for `age` (TCP_INFO, in jiffies: 20 ms of slack):
  // shutdown both ways; curl still owns and closes the descriptor. Returns
  // how long it was silent, or nullopt when it was not ended (not silent that
  // long, not a TCP connection of ours, already ended).
  std::optional<Duration> retire_if_silent(CURL* easy, Duration age);

  // Whether any connection that one of `easy` rides has received no data
  // for `quiet`.
  bool any_silent(const std::vector<CURL*>& easy, Duration quiet);

 private:
  struct Sock {
    std::string local_ip;  // filled by socket_of() once the socket has a local port
    long local_port = 0;
    bool retired = false;
  };
  int socket_of(CURL* easy);  // our socket under `easy`'s connection, or -1
  // How long `fd` has received no data (TCP_INFO); nullopt when not TCP.
  std::optional<Duration> silence(int fd) const;
  static curl_socket_t open_socket(void* self, curlsocktype purpose, curl_sockaddr* addr);
  static int close_socket(void* self, curl_socket_t fd);

  SocketTuning tuning_;
  std::map<int, Sock> socks_;  // every socket curl holds from us, by descriptor
};

}  // namespace leasehold::kube
