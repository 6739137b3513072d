// A small HTTP/1.1 server for the sidecar's endpoints (/healthz, /readyz,
// /leader, /metrics): GET and HEAD only, one request per connection
// ("Connection: close"), no request bodies.
//
// It is built to be harmless to the process it lives in: one thread drives
// every connection with poll(); a request larger than kMaxRequestBytes gets
// 431 and is closed; a client that has not sent a whole request within
// kRequestTimeout gets 408 and is closed (slow clients cannot pin it). A
// request that has arrived with its connection is answered at accept time,
// without a slot; at most kMaxConnections wait for the rest of their
// request, and when all are taken the oldest idle one (nothing sent), else
// the oldest slow one, is closed to make room: idle or slow clients cannot
// lock probes out. Malformed requests get 400, other methods 405.
//
// Threading: start() and stop() from one owning thread. The handler runs on
// the server's thread, one request at a time; it must be quick and must not
// block (it reads snapshots). The destructor stops the thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "leasehold/error.h"

namespace leasehold::cli {

struct HttpRequest {
  std::string method;  // "GET" or "HEAD" once accepted
  std::string path;    // the target without its query string, e.g. "/healthz"
  std::string query;   // after '?', may be empty
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

enum class ParseResult {
  kIncomplete,  // need more bytes (no blank line yet)
  kOk,
  kBad,         // malformed: answer 400
  kTooLarge,    // header section over the limit: answer 431
};

// Parses one request head (request line and headers, up to the blank line)
// from the start of `buf`. Accepts CRLF or bare LF line ends. Rejects:
// control characters, a method that is not a token, a target that does not
// start with '/', a version other than HTTP/1.0 or HTTP/1.1, header lines
// without a name and ':', and any request announcing a body
// (Content-Length > 0 or Transfer-Encoding).
ParseResult parse_http_request(std::string_view buf, size_t max_bytes, HttpRequest& out);

// "HTTP/1.1 200 OK\r\n..." with Content-Length and Connection: close; for
// HEAD, the headers only.
std::string format_http_response(const HttpResponse& r, bool head_only);

// "HOST:PORT", ":PORT" or "[IPV6]:PORT" with PORT 0-65535, split; nothing
// is resolved. The error says what is malformed (without the address).
struct ListenAddress {
  std::string host;  // "" for every interface; an IPv6 address without brackets
  std::string port;
};
Result<ListenAddress> parse_listen_address(const std::string& address);

class HttpServer {
 public:
  static constexpr size_t kMaxRequestBytes = 8192;
  static constexpr size_t kMaxConnections = 64;
  static constexpr std::chrono::seconds kRequestTimeout{2};

  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  // Binds and listens on `address`: "HOST:PORT", ":PORT" (every interface)
  // or "[IPV6]:PORT"; port 0 picks a free one. The error names the address
  // and what failed (parse, resolve, bind, listen).
  static Result<std::unique_ptr<HttpServer>> listen(const std::string& address, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound address, e.g. "127.0.0.1:43121" (the real port when 0 was asked).
  const std::string& bound() const { return bound_; }
  void start();
  void stop();

 private:
  HttpServer(int listen_fd, std::string bound, Handler handler);
  void loop();

  int listen_fd_;
  int wake_[2] = {-1, -1};  // a pipe: stop() writes, the loop wakes
  std::string bound_;
  Handler handler_;
  std::thread thread_;
};

}  // namespace leasehold::cli
