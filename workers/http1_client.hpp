// http1_client: the delivery engine's fast path for http:// and https:// requests. A lean
// HTTP/1.1 client on the engine thread's io_context: keep-alive connections pooled per
// (delivery pool, scheme, origin) under the pool's per-host cap, one request per
// connection at a time, responses parsed by http1_response_parser (the framing rules and
// limits are there) straight from the read buffer: one buffer for the whole client, read
// into once a socket is readable (a connection awaiting its answer holds none), and
// whole-request timeouts are entries of one deadline heap, not a timer each. Plain
// connections (and every connection while it dials) are sockets of the client's own
// epoll set, which asio waits on as one descriptor: no reactor state or pending
// operation of asio's per connection. HTTP/2 where ALPN selects it: an https
// connection whose server chose "h2" carries requests as streams of an h2_session
// (libnghttp2, I/O-free; see h2_session.hpp), up to min(the server's
// MAX_CONCURRENT_STREAMS, the per-host cap) at once, on the same TLS socket. The per-host
// cap bounds the requests in flight to an origin whatever the number of connections (over
// HTTP/1.1 that is the number of connections). Until an origin's first handshake has told
// which protocol it speaks (and while an HTTP/2 one is being set up), one connection is
// made at a time, so a burst does not open a connection per request to an h2 server.
// Plain http:// is HTTP/1.1 only (no h2c).
//
// Why it exists: on the product's hot path (many small requests to one endpoint) curl
// spends most of the CPU per request on its own machinery (connection cache search,
// header formatting and parsing, poll() calls, easy-handle setup); this path does one
// write and usually one read per request. Everything else - redirects to follow,
// credentials in the URL, non-ASCII URLs - stays with curl, which the engine routes there.
//
// https: OpenSSL directly on the connection's non-blocking socket, driven by asio's
// readiness waits. The rules are the curl path's: TLS 1.2 or newer; the peer always
// verified, its chain against the pool's trust (set_tls: its CA file/dir, else the system
// store) and its name against the URL's host (a DNS name also sent as SNI; an IP address
// checked against the certificate's IP SANs); the pool's client certificate presented
// when it has one; ALPN offers h2 then http/1.1 (http/1.1 only where set_http2 turned
// HTTP/2 off). A handshake that fails in a way no retry
// changes (a certificate that does not verify, tasks::tls_error_is_final) is reported with
// `tls_failed` and the curl path's words ("TLS peer verification failed: ...", "TLS
// handshake refused: ..."), so is a refusal alert read after a TLS 1.3 handshake.
// Sessions are resumed per origin (the newest one the server issued, only under the TLS
// context it was made with). TLS contexts (CAs and client certificate loaded) are shared by
// pools with the same trust and made anew every 5 minutes, so replaced files are read.
//
// Thread: everything here runs on the engine thread; nothing is locked. Included only by
// delivery_engine.cpp (it pulls in asio).
//
// Egress: every address of an origin is judged by its pool's egress rules right before it
// is dialled; a denied address is skipped, and when no address
// is left the request fails with `egress_denied` and the denial as its error.
//
// Behaviour matched with the curl path: User-Agent respq/<version> unless set,
// "Accept: */*", a body for POST/PUT/PATCH (empty when none), response bodies kept as far as
// the request asks (keep_body, at most 64 KB) and read up to 4 MB (then the connection is dropped and the code reported, with
// `truncated` set),
// Retry-After surfaced, the whole-request timeout, curl-like error texts. A request that
// fails on a reused keep-alive connection before any response byte arrived (the server
// closed it while idle) is retried once on a new connection, as curl does.
//
// HTTP/2 specifics: the same headers (lower-cased; Connection, Keep-Alive, Transfer-Encoding
// and the like dropped; Host as :authority), bodies, limits (past 4 MB the stream is reset,
// the connection goes on) and result fields. A stream the server did not process (RST_STREAM
// REFUSED_STREAM, or beyond the last stream id of its GOAWAY) goes back to the front of the
// origin's waiting line without counting as an attempt (three times at most); a connection
// that fails fails its streams with the error, except those sent since it last received a
// byte after serving others (retried once, as above). A timeout resets only its stream. A
// malformed frame or a protocol violation fails that connection (nghttp2's GOAWAY, its
// words in the error); the process carries on. Idle HTTP/2 connections are closed (with a
// GOAWAY) after idle_limit, like idle HTTP/1.1 ones.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <asio/io_context.hpp>

#include "tasks/egress.hpp"
#include "tasks/http_request.hpp"
#include "tasks/tls_trust.hpp"

namespace respq::workers {

// The attempts the engine executes are the task model's (tasks/http_request.hpp).
using tasks::http_request;
using tasks::http_result;

class http1_client {
 public:
  using done_fn = std::function<void(http_result&&)>;

  // idle_limit: how long an idle keep-alive connection is kept; an origin with no
  // connection left is forgotten at the next sweep (every 5 s, or half the limit).
  http1_client(asio::io_context& io, std::string user_agent, done_fn done,
               std::chrono::steady_clock::duration idle_limit = std::chrono::seconds(30));
  ~http1_client();
  http1_client(const http1_client&) = delete;
  http1_client& operator=(const http1_client&) = delete;

  // True when r can take this path: an http:// or https:// URL without credentials, and
  // no redirects to follow.
  static bool eligible(const http_request& r);

  // Connections per origin for a delivery pool (0: no cap). Applies to new connections.
  void set_per_host(const std::string& pool, unsigned cap);
  // The egress rules a delivery pool's connections obey (null: the default policy). Every
  // address is judged right before connect(); idle connections opened under other rules
  // are closed.
  void set_egress(const std::string& pool, std::shared_ptr<const tasks::egress_rules> rules);
  // What a delivery pool's https connections trust and present (null: the system store,
  // no client certificate). Idle connections made under other trust are closed, and its
  // TLS sessions are not resumed.
  void set_tls(const std::string& pool, std::shared_ptr<const tasks::tls_trust> trust);
  // Whether a delivery pool's https connections offer HTTP/2 (on unless set off).
  void set_http2(const std::string& pool, bool on);
  void submit(http_request&& r);
  // Closes every connection; requests not finished get no result.
  void shutdown();
  std::size_t in_flight() const;
  // Origins (delivery pool, host and port) currently remembered.
  std::size_t origins() const;
  // Requests whose whole-request timeout is running (entries of the deadline heap).
  std::size_t timed() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace respq::workers
