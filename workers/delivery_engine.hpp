// delivery_engine: executes HTTP requests on a thread of its own and reports the
// responses. Which stack takes a request (the same rule for http and https): the lean
// HTTP/1.1 client (workers/http1_client.hpp; OpenSSL for https, HTTP/2 through nghttp2
// where ALPN selects h2) when the request follows
// no redirects and its URL is ASCII with no credentials - every task and callback on the
// product's hot path; libcurl otherwise (follow_redirects: curl follows them, http to
// https included, and refuses a hop from https to http; user:password@ in the URL).
// RESPQ_DELIVERY_CURL_ONLY=1 in the environment sends everything to curl (comparisons). It decides nothing: the broker chooses what to send and when,
// and what a response means (retry, dead letter); the engine never retries.
//
// Threads: the engine thread owns everything behind the pimpl (its io_context, the curl
// multi handles, the transfers). submit() and set_pool() may be called from any thread;
// they post to the engine thread. The result sink runs on the engine thread, with every
// result finished in one turn of its loop batched into one call; it should hand them to
// its own thread (asio::post) and return quickly, must not throw, and must not call
// stop(). stop() and the destructor are called by the owner, never from the sink.
//
// Pools: each pool is its own curl multi, so its connection cache and its per-host
// connection cap belong to one queue. Requests naming an unknown pool create it with
// default options (no per-host cap). The lean client keeps its own connections per pool,
// under the same cap. Requests over a host's cap wait inside the engine, their timeout
// starting when they leave the queue (the lean client's, or for curl's plain http the
// engine's gate); curl's https requests over the cap wait in curl (HTTP/2 may multiplex
// them onto the capped connections), timeout running.
//
// Egress: every address a request is about to connect to - each address a name resolves
// to, each redirect hop, callbacks too - is judged by its pool's egress rules first (the
// lean client before connect(), curl from CURLOPT_OPENSOCKETFUNCTION, so no packet goes to
// a denied address; a connection curl reuses is judged again from
// CURLOPT_PREREQFUNCTION). A request that cannot connect because of a denial is reported
// with `egress_denied` and the denial text as its error. A proxy curl takes from the
// environment (http_proxy, ...) is what curl dials, so it is the proxy's address that is
// judged.
//
// TLS: https peers are verified always (chain and host name, TLS 1.2 or newer) against the
// pool's trust (its CA file/dir, else the system store), presenting its client certificate
// if it has one; a redirect from https goes to https only. A handshake that fails in a way
// no retry changes (tasks::tls_error_is_final) is reported with `tls_failed` and an error
// starting "TLS", in the same words on both stacks. On curl, TLS sessions are shared
// across pools (curl matches them by host and TLS settings); on the lean client, each
// pool's origin resumes the session its server last issued under the same trust.
// Connections are kept alive per pool.
//
// What every request gets: User-Agent respq/<version> unless the request sets one; only
// http and https, also across redirects; redirects followed only on request (at most 5);
// keep-alive reuse; HTTP/2 over TLS where the server offers it, on both stacks
// (multiplexed; pool_options::http2 off: HTTP/1.1 only), HTTP/1.1 otherwise; a DNS cache;
// no signals; no "Expect: 100-continue"; TCP_NODELAY. Of a response body only the first
// http_request::keep_body bytes come back (at most 64 KB; a task's attempt asks for about 1 KB
// of a failing answer's and none of a 2xx answer's: keep_body_of_2xx);
// a body past 4 MB ends the transfer early, reported as the HTTP response it is with
// `truncated` set. The process should ignore SIGPIPE; the engine thread blocks it too.
//
// Limits, stated honestly: stop() aborts transfers in flight without reporting them (the
// broker knows its tickets and requeues); requests submitted after stop() are dropped.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tasks/egress.hpp"
#include "tasks/http_request.hpp"
#include "tasks/tls_trust.hpp"

namespace respq::workers {

// The attempts the engine executes are the task model's (tasks/http_request.hpp).
using tasks::http_request;
using tasks::http_result;

struct pool_options {
  pool_options(unsigned cap = 0, std::shared_ptr<const tasks::egress_rules> rules = nullptr,  // NOLINT: {cap} reads well
               std::shared_ptr<const tasks::tls_trust> trust = nullptr, bool h2 = true)
      : per_host(cap), egress(std::move(rules)), tls(std::move(trust)), http2(h2) {}
  unsigned per_host = 0;  // max connections per host; 0: no cap
  // The egress policy every address this pool dials is judged by (tasks/egress.hpp);
  // null: the default policy (metadata).
  std::shared_ptr<const tasks::egress_rules> egress;
  // What this pool's https connections trust and present (tasks/tls_trust.hpp); null:
  // the system store, no client certificate.
  std::shared_ptr<const tasks::tls_trust> tls;
  // https offers HTTP/2 (ALPN h2, then http/1.1) on both stacks; off: HTTP/1.1 only.
  bool http2 = true;
};

class delivery_engine {
 public:
  using result_sink = std::function<void(std::vector<http_result>&&)>;

  explicit delivery_engine(result_sink sink);
  ~delivery_engine();
  delivery_engine(const delivery_engine&) = delete;
  delivery_engine& operator=(const delivery_engine&) = delete;

  // Creates the pool or changes its options (applies to transfers that start later).
  void set_pool(const std::string& name, pool_options options);
  // A queue's pool and its callbacks' pool (tasks::callback_pool), with the same options.
  void set_queue_pools(const std::string& queue, const pool_options& options);
  // Hands requests over; each produces exactly one http_result unless stop() comes first.
  void submit(std::vector<http_request> batch);
  // Aborts what is running, joins the engine thread. Idempotent.
  void stop();
  // Requests submitted whose results have not yet been passed to the sink.
  std::size_t in_flight() const;

  // "respq/<version>", the User-Agent sent when a request sets none.
  static std::string_view default_user_agent();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace respq::workers
