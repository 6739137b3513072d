// Internal: kube::Client on leasehold's own HTTP/2 (nghttp2) over TLS
// (OpenSSL), the transport chosen by ClientOptions::transport = kHttp2
// (LEASEHOLD_KUBE_TRANSPORT=http2), and by kAuto, the default, for an
// https:// server reached without a proxy.
//
// Why: with libcurl, most of the client's CPU per renewal went to the multi
// handle's bookkeeping per transfer, not to TLS or HTTP/2 (a profile in
// docs/benchmarks.md). Here one thread frames every request of a loop round
// into its connection's buffer and hands the buffer to TLS with one write,
// so renewals queued together leave in one system call.
//
// What it speaks: https:// only, HTTP/2 only (the server must agree to h2
// by ALPN; kube-apiserver does), no proxy. A server that does not agree
// (an HTTP/1.1-only front proxy): without a fallback (kHttp2) the requests
// waiting for that connection fail with Unavailable, naming it; with one
// (kAuto) they, and every transfer the client starts from then on, are
// handed to the fallback (libcurl) with what is left of their timeouts,
// unsent until then, and cancel() and stats() follow them there. Client::create refuses the
// transport, naming why, for an http:// server, a kubeconfig proxy-url, or a
// proxy environment variable (https_proxy, HTTPS_PROXY, all_proxy,
// ALL_PROXY): the curl transport serves those. A literal address is taken
// as is; a host name is resolved with getaddrinfo on a short-lived thread of
// its own, so a resolver that stalls delays only the requests waiting for
// that connection, each until its own timeout, and the resolution counts
// toward the connection's 5 s connect timeout. The addresses are tried in
// order; a connect that has not completed within 1 s gives way to the next
// address (the last one keeps what is left of the 5 s), so an address that
// drops SYNs (an unreachable IPv6 route, say) costs 1 s, not the connection.
//
// Connections: requests and streams share one connection up to the
// server's SETTINGS_MAX_CONCURRENT_STREAMS (100 assumed until the server's
// settings arrive); more open another. Each holds the client certificate it
// was opened with: a request needing another (an exec plugin's new one)
// opens a new connection. A GOAWAY, or stream ids near their end (2^31),
// stops new streams on a connection; requests the server refused unprocessed
// (REFUSED_STREAM) are sent again, once (on another connection when the
// refusal came with a GOAWAY). A connection that has carried no stream
// for 90 s (Go's IdleConnTimeout) is closed with a GOAWAY: one opened for
// a burst, or one whose client certificate an exec plugin has replaced,
// does not stay open. OpenSSL writes with write(2), so the client's
// thread blocks SIGPIPE: a reset connection fails the write with EPIPE.
//
// Dead connections, with the same bounds as the curl transport (client.h):
// TCP_USER_TIMEOUT 5 s and keepalive after 3 s idle on every socket; an
// HTTP/2 PING on a connection that carries streams and has received nothing
// for 3 s, the connection ended when 2 s pass without its answer; a request
// that times out after 0.5 s or more on a connection that received nothing
// since it was sent ends that connection. Transfers on an ended connection
// fail with Unavailable; watches end and their owners resume them.
//
// Reading: TLS reads ahead (one read(2) takes what the socket holds). After
// a read that completed requests while others are still in flight on the
// connection, the socket is left unread for 1 ms (the gather), so that
// answers that come back over a few milliseconds are read in a few
// wake-ups, not one each. While the requests in flight on a connection are
// all renewals (Media::kLeaseRenewal: a Lease update by its holder of its
// own term, whose answer nobody waits for, its deadline counting from its
// sending), the socket is left unread for 4 ms after any read (the patient
// gather): a tick's renewal answers and their watch events are read in a
// handful of wake-ups. A request that is not a renewal ends a patient
// gather when it is sent. So any answer or watch event on a connection may
// wait up to 1 ms more while requests are in flight on it, up to 4 ms while
// only renewals are; the answer to a request that is not a renewal never
// waits for a patient gather. Before this client fails a request as late,
// or ends a connection for an unanswered PING, it reads every connection:
// an answer that came in time is never lost to a gather here. (A caller's
// own timer knows nothing of it: the elector judges a renewal late at its
// send time + renew_deadline / 2, so an answer that came in the last 4 ms
// of that may be judged late, as one that came 4 ms later would be. Its
// renew_latency includes the wait.)
//
// Everything else (budget and priorities, 64 requests in flight, content
// negotiation, credentials, error texts, threading) is as client.h states
// for the Client interface.
#pragma once

#include <functional>
#include <memory>

#include "kube/client.h"

namespace leasehold::kube {

// `config.server` must be https:// with a host (Client::create checks).
// `fallback`, when set, makes the client that takes over should the server
// refuse HTTP/2 (above); it is called at most once, on the client's thread.
std::shared_ptr<Client> make_h2_client(ClusterConfig config, ClientOptions options,
                                       std::function<std::shared_ptr<Client>()> fallback = nullptr);

}  // namespace leasehold::kube
