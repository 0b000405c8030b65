// delivery_engine: http:// and https:// requests on a lean path (http1_client: HTTP/1.1,
// and HTTP/2 over TLS where ALPN selects h2), the rest (redirects to follow, credentials, non-ASCII URLs) on libcurl multi, both
// driven by asio on the engine thread and reporting through the same batched flush.
//
// The shape is curl's multi-uv.c carried over to asio:
//  - one curl multi per pool; its socket callback maps each curl socket to a non-owning
//    asio::posix::stream_descriptor (released on CURL_POLL_REMOVE: curl closes its fds)
//    and keeps a read and/or write wait armed while curl wants them;
//  - its timer callback only records the deadline curl asks for; one steady_timer per
//    pool wakes us, and a zero timeout becomes a posted handler, because curl must never
//    be called from inside its own callbacks;
//  - after every curl_multi_socket_action, finished transfers are drained at once;
//    results of one loop turn are flushed to the sink in one posted call.
//  - one transfer object per easy handle (in CURLOPT_PRIVATE) owns everything curl reads
//    while the transfer runs; transfers and their easy handles are reused, so a steady
//    stream of requests allocates little beyond the request's own strings.
//
// Every member of engine_core is touched only on the engine thread, except the atomics
// and what the constructor and stop() do before the thread starts / after it is joined.
#include "workers/delivery_engine.hpp"

#include "resp/ascii.hpp"
#include "tasks/url.hpp"
#include "workers/http1_client.hpp"
#include "workers/http1_response_parser.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <unordered_map>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <curl/curl.h>
#include <spdlog/spdlog.h>

#ifndef RESPQ_VERSION
#error "RESPQ_VERSION must be defined by the build"
#endif

namespace respq::workers {
namespace {

using steady = std::chrono::steady_clock;

// The same body limits as the lean HTTP/1 path.
constexpr std::size_t kept_body_bytes = response_limits{}.keep_body;  // what a result carries
constexpr std::size_t max_body_bytes = response_limits{}.max_body;    // read this much, then give up
constexpr long default_timeout_ms = 30'000;
constexpr long max_timeout_ms = 86'400'000;
constexpr long max_redirects = 5;
constexpr const char* user_agent = "respq/" RESPQ_VERSION;

class engine_core;

// One curl socket as seen by asio. The descriptor never owns the fd: curl opens and
// closes it, we only watch it. Handlers hold a shared_ptr, so a watch outlives its map
// entry until its aborted waits have run.
struct socket_watch {
  explicit socket_watch(asio::io_context& io, curl_socket_t s) : fd(io), sock(s) {}
  asio::posix::stream_descriptor fd;
  curl_socket_t sock;
  int want = 0;          // CURL_POLL_IN / OUT / INOUT, as curl last asked
  bool reading = false;  // a read wait is pending
  bool writing = false;  // a write wait is pending
  bool removed = false;  // curl said CURL_POLL_REMOVE; the fd may be closed any moment
};

// Plain-http requests of one host in one pool beyond its per-host cap wait here, not in
// curl: HTTP/1.1 needs a connection per transfer, and curl's own pending queue retries
// a full connection setup (URL parse, connection search) for every waiting transfer
// each time it looks, which doubled the CPU per request in a pool with more requests
// than connections. https is left to curl, where HTTP/2 may multiplex past the cap.
struct host_gate {
  unsigned active = 0;  // transfers of this host in curl
  std::deque<http_request> waiting;
};

struct pool {
  pool(engine_core* c, asio::io_context& io) : core(c), timer(io) {}
  engine_core* core;
  CURLM* multi = nullptr;
  unsigned per_host = 0;                                  // 0: no cap
  std::shared_ptr<const tasks::egress_rules> egress;      // null: the default policy
  std::shared_ptr<const tasks::tls_trust> tls;            // null: the system store
  bool http2 = true;                                      // offer h2 over TLS
  std::unordered_map<std::string, host_gate> gates;  // by scheme://authority
  std::unordered_map<curl_socket_t, std::shared_ptr<socket_watch>> sockets;
  asio::steady_timer timer;
  std::optional<steady::time_point> deadline;  // when curl wants socket_action(TIMEOUT)
  std::uint64_t timer_generation = 0;          // tells a stale timer completion apart
  bool timer_waiting = false;
  bool kick_posted = false;  // a zero timeout is already posted
};

// One reusable easy handle and what curl reads from while it runs. Its address is the
// CURLOPT_PRIVATE of its easy handle.
struct transfer {
  transfer() : easy(curl_easy_init()) { errbuf[0] = '\0'; }
  ~transfer() {
    if (easy) curl_easy_cleanup(easy);
    curl_slist_free_all(header_list);
  }
  transfer(const transfer&) = delete;
  transfer& operator=(const transfer&) = delete;

  CURL* easy;
  pool* owner = nullptr;  // the pool whose multi holds it; null when idle
  std::string gate;       // its host_gate key in the owner; empty when not gated
  std::shared_ptr<const tasks::egress_rules> egress;  // its pool's, when it started
  std::shared_ptr<const tasks::tls_trust> tls;        // its pool's, when it started
  bool http2 = true;                                  // its pool's, when it started
  std::string egress_denial;  // the first address the policy refused, if any
  http_request req;       // kept alive: curl reads the URL copy, headers and body from here
  curl_slist* header_list = nullptr;
  std::string response;  // the body's first req.keep_body bytes (at most kept_body_bytes)
  std::size_t body_seen = 0;
  bool body_overflow = false;  // we stopped reading at max_body_bytes
  steady::time_point started;
  char errbuf[CURL_ERROR_SIZE];
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<transfer*>(user);
  const std::size_t len = size * count;
  t->body_seen += len;
  const std::size_t keep = std::min(t->req.keep_body, kept_body_bytes);
  if (t->response.size() < keep) t->response.append(data, std::min(len, keep - t->response.size()));
  if (t->body_seen > max_body_bytes) {
    t->body_overflow = true;
    return 0;  // ends the transfer with CURLE_WRITE_ERROR; reported as the response it is
  }
  return len;
}

// Judges an address for a transfer; records the first denial. True when allowed.
bool egress_allows(transfer& t, const tasks::ip_address& a, unsigned port) {
  const tasks::egress_rules& rules = t.egress ? *t.egress : tasks::default_egress_rules();
  const tasks::egress_verdict v = tasks::check_egress(a, rules);
  if (!v.allowed && t.egress_denial.empty()) t.egress_denial = tasks::egress_denial_text(a, port, v);
  return v.allowed;
}

// CURLOPT_OPENSOCKETFUNCTION: curl is about to create the socket of a new connection to
// `address` (every address it tries, every redirect hop). A denied address gets no socket,
// so nothing is sent there; curl goes on to its next address or fails to connect.
curl_socket_t open_socket(void* user, curlsocktype purpose, curl_sockaddr* address) {
  auto* t = static_cast<transfer*>(user);
  if (purpose == CURLSOCKTYPE_IPCXN && address) {
    std::optional<tasks::ip_address> ip;
    unsigned port = 0;
    if (address->family == AF_INET && address->addrlen >= sizeof(sockaddr_in)) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(&address->addr);
      ip = tasks::ip_address::from_v4(ntohl(in->sin_addr.s_addr));
      port = ntohs(in->sin_port);
    } else if (address->family == AF_INET6 && address->addrlen >= sizeof(sockaddr_in6)) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address->addr);
      ip = tasks::ip_address::from_v6(in6->sin6_addr.s6_addr);
      port = ntohs(in6->sin6_port);
    }
    // Only IP connections are made (no unix sockets are configured); anything else is
    // refused rather than dialled unjudged.
    if (!ip) {
      if (t->egress_denial.empty()) t->egress_denial = "egress denied: an address of family " + std::to_string(address->family) + " is not judged";
      return CURL_SOCKET_BAD;
    }
    if (!egress_allows(*t, *ip, port)) return CURL_SOCKET_BAD;
  }
  return ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

// CURLOPT_PREREQFUNCTION: right before a request goes out on a connection, new or reused.
// A new one was judged when its socket was opened; a reused one may come from before the
// rules changed (CONFIG SET egress-policy), so it is judged again here.
int before_request(void* user, char* primary_ip, char*, int primary_port, int) {
  auto* t = static_cast<transfer*>(user);
  const auto ip = primary_ip ? tasks::parse_ip(primary_ip) : std::nullopt;
  if (!ip) return CURL_PREREQFUNC_OK;  // not an IP connection (none are made): nothing to judge
  return egress_allows(*t, *ip, static_cast<unsigned>(primary_port)) ? CURL_PREREQFUNC_OK : CURL_PREREQFUNC_ABORT;
}

bool is_plain_http(std::string_view url) { return url.size() > 7 && iequals(url.substr(0, 7), "http://"); }

// "http://host:port" of a URL: the key curl's per-host limit groups by, near enough (a
// host spelled two ways only makes the gate looser; curl's own cap still holds).
std::string_view gate_key(std::string_view url) {
  const auto authority = url.find("://");
  if (authority == std::string_view::npos) return url;
  return url.substr(0, url.find_first_of("/?#", authority + 3));
}

class engine_core {
 public:
  engine_core(asio::io_context& io, delivery_engine::result_sink sink, std::atomic<std::size_t>& in_flight)
      : io_(io), sink_(std::move(sink)), in_flight_(in_flight), share_(curl_share_init()) {
    if (share_) {
      // One DNS cache and TLS session cache for all pools; single thread, so no locks.
      curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
      curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    }
    done_.reserve(256);
    // The fast path is on unless RESPQ_DELIVERY_CURL_ONLY is set (for comparisons).
    const char* curl_only = std::getenv("RESPQ_DELIVERY_CURL_ONLY");
    if (!curl_only || !*curl_only || std::string_view(curl_only) == "0") {
      fast_ = std::make_unique<http1_client>(io_, user_agent, [this](http_result&& r) {
        done_.push_back(std::move(r));
        schedule_flush();
      });
    }
  }

  engine_core(const engine_core&) = delete;
  engine_core& operator=(const engine_core&) = delete;

  ~engine_core() { shutdown(); }

  void set_pool(const std::string& name, pool_options options) {
    if (closing_) return;
    if (fast_) fast_->set_per_host(name, options.per_host);
    if (fast_) fast_->set_egress(name, options.egress);
    if (fast_) fast_->set_tls(name, options.tls);
    if (fast_) fast_->set_http2(name, options.http2);
    pool* p = pool_for(name);
    if (!p) return;
    p->per_host = options.per_host;
    p->egress = options.egress;
    p->tls = options.tls;
    p->http2 = options.http2;
    curl_multi_setopt(p->multi, CURLMOPT_MAX_HOST_CONNECTIONS, static_cast<long>(options.per_host));
    // A raised (or removed) cap lets waiting requests go now.
    std::vector<std::string> keys;
    for (const auto& [key, g] : p->gates)
      if (!g.waiting.empty()) keys.push_back(key);
    for (const auto& key : keys) pump_gate(*p, key);
  }

  void start_all(std::vector<http_request>& batch) {
    for (auto& r : batch) start(std::move(r));
  }

  // Aborts every transfer and frees curl state. Engine thread (or after it is joined).
  void shutdown() {
    if (closing_) return;
    closing_ = true;
    if (fast_) fast_->shutdown();
    for (auto& [name, p] : pools_) {
      // Stop watching before curl closes the fds, so epoll never sees a reused number.
      for (auto& [fd, w] : p->sockets) forget(*w);
      p->sockets.clear();
      p->timer.cancel();
    }
    for (auto& t : transfers_) {
      if (t->owner) curl_multi_remove_handle(t->owner->multi, t->easy);
      t->owner = nullptr;
    }
    for (auto& [name, p] : pools_) curl_multi_cleanup(p->multi);
    pools_.clear();
    idle_.clear();
    transfers_.clear();
    if (share_) curl_share_cleanup(share_);
    share_ = nullptr;
    done_.clear();
  }

  // curl callbacks (static trampolines below); they never call curl.
  void on_socket(pool& p, curl_socket_t s, int what) {
    if (closing_) return;
    if (what == CURL_POLL_REMOVE) {
      if (auto it = p.sockets.find(s); it != p.sockets.end()) {
        forget(*it->second);
        p.sockets.erase(it);
      }
      return;
    }
    auto& slot = p.sockets[s];
    if (!slot) {
      auto w = std::make_shared<socket_watch>(io_, s);
      asio::error_code ec;
      w->fd.assign(s, ec);
      if (ec) {
        // curl's timeout still ends the transfer; we just cannot watch this fd.
        spdlog::error("delivery: cannot watch socket {}: {}", s, ec.message());
        p.sockets.erase(s);
        return;
      }
      slot = std::move(w);
    }
    slot->want = what;
    arm(p, slot);
  }

  void on_timer(pool& p, long timeout_ms) {
    if (closing_) return;
    if (timeout_ms < 0) {
      p.deadline.reset();  // a pending wake-up finds no deadline and does nothing
      return;
    }
    const auto when = steady::now() + std::chrono::milliseconds(timeout_ms);
    p.deadline = when;
    if (timeout_ms == 0) {
      if (!p.kick_posted) {
        p.kick_posted = true;
        asio::post(io_, [this, &p] {
          p.kick_posted = false;
          on_deadline(p);
        });
      }
      return;
    }
    // A wait that ends earlier re-checks the deadline when it fires; only an earlier
    // deadline needs the timer moved (moving it costs a cancellation).
    if (p.timer_waiting && p.timer.expiry() <= when) return;
    arm_timer(p, when);
  }

 private:
  pool* pool_for(const std::string& name) {
    if (auto it = pools_.find(name); it != pools_.end()) return it->second.get();
    auto p = std::make_unique<pool>(this, io_);
    p->multi = curl_multi_init();
    if (!p->multi) {
      spdlog::error("delivery: cannot create a curl multi handle for pool '{}'", name);
      return nullptr;
    }
    curl_multi_setopt(p->multi, CURLMOPT_SOCKETFUNCTION, &engine_core::socket_trampoline);
    curl_multi_setopt(p->multi, CURLMOPT_SOCKETDATA, p.get());
    curl_multi_setopt(p->multi, CURLMOPT_TIMERFUNCTION, &engine_core::timer_trampoline);
    curl_multi_setopt(p->multi, CURLMOPT_TIMERDATA, p.get());
    curl_multi_setopt(p->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    return pools_.emplace(name, std::move(p)).first->second.get();
  }

  static int socket_trampoline(CURL*, curl_socket_t s, int what, void* user, void*) {
    auto* p = static_cast<pool*>(user);
    p->core->on_socket(*p, s, what);
    return 0;
  }

  static int timer_trampoline(CURLM*, long timeout_ms, void* user) {
    auto* p = static_cast<pool*>(user);
    p->core->on_timer(*p, timeout_ms);
    return 0;
  }

  static void forget(socket_watch& w) {
    w.removed = true;
    // release() aborts the pending waits (their handlers see operation_aborted) and
    // drops the fd from epoll without closing it.
    if (w.fd.is_open()) w.fd.release();
  }

  void arm(pool& p, const std::shared_ptr<socket_watch>& w) {
    if ((w->want & CURL_POLL_IN) && !w->reading) {
      w->reading = true;
      w->fd.async_wait(asio::posix::stream_descriptor::wait_read, [this, &p, w](const asio::error_code& ec) {
        w->reading = false;
        if (!ec && !w->removed && !closing_ && (w->want & CURL_POLL_IN)) on_ready(p, w, CURL_CSELECT_IN);
      });
    }
    if ((w->want & CURL_POLL_OUT) && !w->writing) {
      w->writing = true;
      w->fd.async_wait(asio::posix::stream_descriptor::wait_write, [this, &p, w](const asio::error_code& ec) {
        w->writing = false;
        if (!ec && !w->removed && !closing_ && (w->want & CURL_POLL_OUT)) on_ready(p, w, CURL_CSELECT_OUT);
      });
    }
  }

  void on_ready(pool& p, const std::shared_ptr<socket_watch>& w, int select) {
    int running = 0;
    curl_multi_socket_action(p.multi, w->sock, select, &running);
    drain(p);
    if (!w->removed && !closing_) arm(p, w);
  }

  void arm_timer(pool& p, steady::time_point when) {
    p.timer.expires_at(when);  // cancels the previous wait
    p.timer_waiting = true;
    const std::uint64_t generation = ++p.timer_generation;
    p.timer.async_wait([this, &p, generation](const asio::error_code& ec) {
      if (ec || closing_ || generation != p.timer_generation) return;
      p.timer_waiting = false;
      on_deadline(p);
    });
  }

  void on_deadline(pool& p) {
    if (closing_ || !p.deadline) return;
    if (*p.deadline > steady::now()) {
      if (!p.timer_waiting || p.timer.expiry() > *p.deadline) arm_timer(p, *p.deadline);
      return;
    }
    p.deadline.reset();
    int running = 0;
    curl_multi_socket_action(p.multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain(p);
  }

  void drain(pool& p) {
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(p.multi, &left)) {
      if (m->msg != CURLMSG_DONE) continue;
      const CURLcode rc = m->data.result;  // m dies with remove_handle: copy first
      void* priv = nullptr;
      curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
      finish(*static_cast<transfer*>(priv), rc);
    }
  }

  transfer* acquire() {
    if (!idle_.empty()) {
      transfer* t = idle_.back();
      idle_.pop_back();
      return t;
    }
    auto t = std::make_unique<transfer>();
    if (!t->easy) return nullptr;
    transfers_.push_back(std::move(t));
    return transfers_.back().get();
  }

  void start(http_request&& r) {
    if (closing_) return;
    if (fast_ && http1_client::eligible(r)) {
      fast_->submit(std::move(r));
      return;
    }
    pool* p = pool_for(r.pool);
    if (!p) {
      fail_now(r.ticket, "cannot start the transfer: no curl multi handle");
      return;
    }
    if (p->per_host == 0 || !is_plain_http(r.url)) {
      launch(*p, std::move(r), {});
      return;
    }
    const std::string_view key = gate_key(r.url);
    host_gate& g = p->gates[std::string(key)];
    if (g.active >= p->per_host) {
      g.waiting.push_back(std::move(r));
      return;
    }
    ++g.active;
    launch(*p, std::move(r), key);
  }

  // Hands one request to curl. `gate` names the host_gate that counted it, if any.
  void launch(pool& p, http_request&& r, std::string_view gate) {
    transfer* t = acquire();
    if (!t) {
      release_gate(p, gate);
      fail_now(r.ticket, "cannot start the transfer: out of curl handles or memory");
      return;
    }
    t->req = std::move(r);
    t->gate.assign(gate);
    t->egress = p.egress;
    t->tls = p.tls;
    t->http2 = p.http2;
    configure(*t);
    t->owner = &p;
    t->started = steady::now();
    if (const CURLMcode mc = curl_multi_add_handle(p.multi, t->easy); mc != CURLM_OK) {
      // Report before recycling: release_gate may launch the next request on `t`.
      fail_now(t->req.ticket, std::string("cannot start the transfer: ") + curl_multi_strerror(mc));
      t->owner = nullptr;
      idle_.push_back(t);
      release_gate(p, t->gate);
    }
  }

  // One transfer of the gate's host is done: start what the cap now allows.
  void release_gate(pool& p, std::string_view key) {
    if (key.empty()) return;
    const std::string k(key);  // `key` may live in a transfer that launch() reuses
    if (const auto it = p.gates.find(k); it != p.gates.end() && it->second.active > 0) --it->second.active;
    pump_gate(p, k);
  }

  // Starts waiting requests of one host while the cap allows; forgets an idle gate.
  // Looks the gate up again each time: a failed launch may have erased it.
  void pump_gate(pool& p, const std::string& key) {
    for (;;) {
      const auto it = p.gates.find(key);
      if (it == p.gates.end()) return;
      host_gate& g = it->second;
      if (g.waiting.empty() || (p.per_host != 0 && g.active >= p.per_host)) {
        if (g.active == 0 && g.waiting.empty()) p.gates.erase(it);
        return;
      }
      http_request next = std::move(g.waiting.front());
      g.waiting.pop_front();
      ++g.active;
      launch(p, std::move(next), it->first);
    }
  }

  void configure(transfer& t) {
    CURL* e = t.easy;
    const http_request& r = t.req;
    curl_easy_reset(e);  // keeps the handle's connections and caches, drops old options
    t.response.clear();
    t.body_seen = 0;
    t.body_overflow = false;
    t.egress_denial.clear();
    t.errbuf[0] = '\0';
    curl_slist_free_all(t.header_list);
    t.header_list = nullptr;

    curl_easy_setopt(e, CURLOPT_PRIVATE, &t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    if (share_) curl_easy_setopt(e, CURLOPT_SHARE, share_);
    curl_easy_setopt(e, CURLOPT_URL, r.url.c_str());
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, &t);
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, &before_request);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, &t);
    const bool https = r.url.size() > 6 && iequals(std::string_view(r.url).substr(0, 6), "https:");
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    // No downgrade: a redirect from https stays on https.
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, https ? "https" : "http,https");
    // The peer is always verified (curl's defaults, stated so no later change drops them).
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
    if (t.tls) {
      const tasks::tls_trust& trust = *t.tls;
      if (!trust.system_store()) {
        // Exactly what was named: no default bundle, no default directory.
        curl_easy_setopt(e, CURLOPT_CAINFO, trust.ca_file.empty() ? nullptr : trust.ca_file.c_str());
        curl_easy_setopt(e, CURLOPT_CAPATH, trust.ca_dir.empty() ? nullptr : trust.ca_dir.c_str());
      }
      if (!trust.client_cert.empty()) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, trust.client_cert.c_str());
        curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(e, CURLOPT_SSLKEY, trust.client_key.c_str());
        curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
      }
    }
    if (r.follow_redirects) {
      curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
      curl_easy_setopt(e, CURLOPT_MAXREDIRS, max_redirects);
      // A 301 or 302 keeps the POST and its body (curl's --post301 --post302): the endpoint
      // moved and has not taken the payload yet, which a GET would drop while the signature
      // still named it. A 303 ("see other": the POST was taken) goes on as a GET.
      curl_easy_setopt(e, CURLOPT_POSTREDIR, static_cast<long>(CURL_REDIR_POST_301 | CURL_REDIR_POST_302));
    }
    long timeout_ms = default_timeout_ms;
    if (r.timeout_s > 0)
      timeout_ms = std::clamp(static_cast<long>(r.timeout_s * 1000.0 + 0.5), 1L, max_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                     static_cast<long>(t.http2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1));
    // Over TLS, wait for a connection being set up that may multiplex (HTTP/2) rather
    // than opening another one; plain http cannot multiplex, so it never waits.
    if (https) curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);

    // Method and body. POST uses curl's own POST so redirects behave as browsers do;
    // other methods with a body go as a custom request carrying POSTFIELDS.
    const bool is_get = r.method == "GET", is_head = r.method == "HEAD", is_post = r.method == "POST";
    const bool sends_body = r.body.has_value() || is_post || r.method == "PUT" || r.method == "PATCH";
    if (is_head) {
      curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (is_post) {
      curl_easy_setopt(e, CURLOPT_POST, 1L);
    } else if (!is_get || sends_body) {
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r.method.c_str());
    }
    if (sends_body && !is_head) {
      static const char empty[] = "";
      const char* data = r.body ? r.body->data() : empty;
      const auto size = static_cast<curl_off_t>(r.body ? r.body->size() : 0);
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, size);
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, data);
    }

    // Headers: the request's, in order. An empty value is sent as "Name;" (curl would
    // drop "Name:"). With a body, suppress curl's default form Content-Type (the decoder
    // sets the right one) and its Expect: 100-continue round trip.
    bool has_ua = false, has_ct = false;
    std::string& line = scratch_;
    for (const auto& [name, value] : r.headers) {
      has_ua = has_ua || iequals(name, "User-Agent");
      has_ct = has_ct || iequals(name, "Content-Type");
      line.assign(name);
      if (value.empty()) {
        line += ';';
      } else {
        line += ": ";
        line += value;
      }
      append_header(t, line.c_str());
    }
    if (sends_body && !is_head) {
      append_header(t, "Expect:");
      if (!has_ct) append_header(t, "Content-Type:");
    }
    if (t.header_list) curl_easy_setopt(e, CURLOPT_HTTPHEADER, t.header_list);
    if (!has_ua) curl_easy_setopt(e, CURLOPT_USERAGENT, user_agent);
  }

  static void append_header(transfer& t, const char* line) {
    if (curl_slist* l = curl_slist_append(t.header_list, line)) t.header_list = l;
  }

  void finish(transfer& t, CURLcode rc) {
    CURL* e = t.easy;
    http_result r;
    r.ticket = t.req.ticket;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r.code);
    const bool answered = rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && t.body_overflow && r.code > 0);
    if (!answered) {
      r.error = t.errbuf[0] ? t.errbuf : curl_easy_strerror(rc);
      r.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
      // A refused or unreachable address in the lean client's words ("Failed to connect to
      // H port P: Connection refused"), not curl's "... after N ms: Couldn't connect to
      // server": one failure, one text, in outcomes, dead letters and INFO hosts alike.
      long os_errno = 0;
      if (rc == CURLE_COULDNT_CONNECT && curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &os_errno) == CURLE_OK &&
          os_errno > 0) {
        const std::string_view m = r.error;
        const auto after = m.find(" after ");
        if (m.starts_with("Failed to connect to ") && after != std::string_view::npos)
          r.error = std::string(m.substr(0, after)) + ": " + std::system_category().message(static_cast<int>(os_errno));
      }
      // Failed to connect (or stopped before the request) after the policy refused an
      // address: the denial is the answer.
      if (!t.egress_denial.empty() && (rc == CURLE_COULDNT_CONNECT || rc == CURLE_ABORTED_BY_CALLBACK)) {
        r.error = tasks::redact_urls_in(t.egress_denial);
        r.egress_denied = true;
        r.timed_out = false;
      }
      // The TLS layer refused the peer or was refused: the same certificates meet again
      // on every attempt.
      if (!r.egress_denied) classify_tls(rc, r);
      // The first URL was checked when the task was decoded (http or https only): a
      // protocol refused now comes from a redirect, which no retry can change.
      if (rc == CURLE_UNSUPPORTED_PROTOCOL && t.req.follow_redirects && !r.egress_denied) {
        r.redirect_refused = true;
        char* target = nullptr;
        curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &target);
        if (target && *target && !iequals(std::string_view(target).substr(0, 7), "http://") &&
            !iequals(std::string_view(target).substr(0, 8), "https://"))
          r.error = "Redirect to '" + tasks::redact_url(target) + "' refused: only http and https are followed";
        else if (target && iequals(std::string_view(target).substr(0, 7), "http://"))
          // An http target refused as a protocol: the hop came from https (see redirect rules).
          r.error = "Redirect from https to '" + tasks::redact_url(target) + "' refused: https is followed to https only";
        else
          r.error = "Redirect refused: " + tasks::redact_urls_in(r.error);
      }
    }
    if (r.code > 0) {
      curl_header* h = nullptr;
      if (curl_easy_header(e, "Retry-After", 0, CURLH_HEADER, -1, &h) == CURLHE_OK && h && h->value)
        r.retry_after.emplace(h->value);
    }
    // A copy: the transfer keeps its buffer's capacity. None of a 2xx answer unless asked.
    if (!t.response.empty() && tasks::keeps_body_of(t.req.keep_body_of_2xx, r.code)) r.body.assign(t.response);
    r.truncated = answered && t.body_overflow;
    r.duration_ms = std::chrono::duration<double, std::milli>(steady::now() - t.started).count();

    pool& p = *t.owner;
    curl_multi_remove_handle(p.multi, e);
    t.owner = nullptr;
    t.req.body.reset();  // do not keep a large request body alive while idle
    idle_.push_back(&t);
    done_.push_back(std::move(r));
    schedule_flush();
    release_gate(p, t.gate);
  }

  static void classify_tls(CURLcode rc, http_result& r) {
    const char* what = nullptr;
    switch (rc) {
      case CURLE_PEER_FAILED_VERIFICATION:
      case CURLE_SSL_ISSUER_ERROR:
      case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        what = "TLS peer verification failed: ";
        break;
      case CURLE_SSL_CERTPROBLEM:
      case CURLE_SSL_CACERT_BADFILE:
      case CURLE_SSL_CRL_BADFILE:
      case CURLE_SSL_CIPHER:
      case CURLE_SSL_ENGINE_NOTFOUND:
      case CURLE_SSL_ENGINE_SETFAILED:
        what = "TLS configuration refused: ";
        break;
      case CURLE_SSL_CONNECT_ERROR:
      case CURLE_RECV_ERROR:
      case CURLE_SEND_ERROR:
        if (tasks::tls_error_is_final(r.error)) what = "TLS handshake refused: ";
        break;
      default:
        break;
    }
    if (!what) return;
    r.tls_failed = true;
    r.timed_out = false;
    r.error = what + tasks::redact_urls_in(r.error);
  }

  void fail_now(std::uint64_t ticket, std::string error) {
    http_result r;
    r.ticket = ticket;
    r.error = std::move(error);
    done_.push_back(std::move(r));
    schedule_flush();
  }

  void schedule_flush() {
    if (flush_posted_) return;
    flush_posted_ = true;
    asio::post(io_, [this] { flush(); });
  }

  void flush() {
    flush_posted_ = false;
    if (closing_ || done_.empty()) return;
    std::vector<http_result> out;
    out.reserve(done_.capacity());
    out.swap(done_);
    in_flight_.fetch_sub(out.size(), std::memory_order_relaxed);
    try {
      sink_(std::move(out));
    } catch (const std::exception& ex) {
      spdlog::error("delivery: result sink threw: {}", ex.what());
    } catch (...) {
      spdlog::error("delivery: result sink threw");
    }
  }

  asio::io_context& io_;
  delivery_engine::result_sink sink_;
  std::atomic<std::size_t>& in_flight_;
  CURLSH* share_;
  std::unordered_map<std::string, std::unique_ptr<pool>> pools_;
  std::vector<std::unique_ptr<transfer>> transfers_;  // all of them, idle or running
  std::vector<transfer*> idle_;
  std::vector<http_result> done_;  // finished since the last flush
  std::string scratch_;            // header line being built
  bool flush_posted_ = false;
  bool closing_ = false;
  std::unique_ptr<http1_client> fast_;  // declared last: destroyed first, before curl state
};

void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Never paired with curl_global_cleanup: other code in the process may use curl
    // until exit.
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) spdlog::error("delivery: curl_global_init failed");
  });
}

}  // namespace

struct delivery_engine::impl {
  explicit impl(result_sink sink) : core(io, std::move(sink), in_flight) {}

  // Declared first so it is destroyed last: every asio object lives inside core.
  asio::io_context io{1};
  std::atomic<std::size_t> in_flight{0};
  engine_core core;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::thread thread;
  std::mutex stop_mutex;
  std::atomic<bool> stopped{false};
};

delivery_engine::delivery_engine(result_sink sink) : impl_(std::make_unique<impl>(std::move(sink))) {
  init_curl_once();
  impl* state = impl_.get();
  state->thread = std::thread([state] {
    // A write to a peer that has gone raises SIGPIPE on this thread; TLS writes may
    // not pass MSG_NOSIGNAL. Blocked here, it can never kill the process.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    for (;;) {
      try {
        state->io.run();
        return;
      } catch (const std::exception& ex) {
        spdlog::error("delivery: engine loop: {}", ex.what());
      } catch (...) {
        spdlog::error("delivery: engine loop: unknown exception");
      }
    }
  });
}

delivery_engine::~delivery_engine() { stop(); }

void delivery_engine::set_pool(const std::string& name, pool_options options) {
  if (impl_->stopped.load()) return;
  impl* state = impl_.get();
  asio::post(state->io, [state, name, options] { state->core.set_pool(name, options); });
}

void delivery_engine::set_queue_pools(const std::string& queue, const pool_options& options) {
  set_pool(queue, options);
  set_pool(tasks::callback_pool(queue), options);
}

void delivery_engine::submit(std::vector<http_request> batch) {
  if (batch.empty()) return;
  if (impl_->stopped.load()) {
    spdlog::warn("delivery: {} requests submitted after stop were dropped", batch.size());
    return;
  }
  impl* state = impl_.get();
  state->in_flight.fetch_add(batch.size(), std::memory_order_relaxed);
  asio::post(state->io, [state, b = std::move(batch)]() mutable { state->core.start_all(b); });
}

void delivery_engine::stop() {
  std::lock_guard<std::mutex> lock(impl_->stop_mutex);
  impl* state = impl_.get();
  if (!state->stopped.exchange(true)) {
    asio::post(state->io, [state] {
      state->core.shutdown();
      state->work.reset();
      state->io.stop();
    });
  }
  if (!state->thread.joinable()) return;
  if (std::this_thread::get_id() == state->thread.get_id()) {
    // From the sink: the shutdown runs once the sink returns; the owner's later stop()
    // or destructor joins.
    spdlog::error("delivery: stop() called from the result sink; the owner must still stop the engine");
    return;
  }
  state->thread.join();
  state->in_flight.store(0);
}

std::size_t delivery_engine::in_flight() const { return impl_->in_flight.load(std::memory_order_relaxed); }

std::string_view delivery_engine::default_user_agent() { return user_agent; }

}  // namespace respq::workers
