// http1_client: see http1_client.hpp.
//
// Objects and lifetimes: a host_pool per (delivery pool, origin) lives as long as the
// client; connections and exchanges are shared_ptrs held by the pool's idle/waiting
// lists, by the client's epoll set (by_fd: a connection on a socket of its own, from its
// dial to its close) and by pending asio handlers, so a handler that runs after a close
// or a timeout finds its objects alive and marked (closed / done) and does nothing.
#include "workers/http1_client.hpp"

#include "resp/ascii.hpp"
#include "workers/h2_session.hpp"
#include "workers/http1_response_parser.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include <asio/post.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/steady_timer.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace respq::workers {

namespace {

using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;

constexpr double default_timeout_s = 30;
constexpr auto dns_ttl = std::chrono::seconds(60);
constexpr auto tls_context_ttl = std::chrono::minutes(5);
constexpr unsigned max_refusals = 3;  // HTTP/2 streams refused in a row before the error is reported

// "http://authority/target" or "https://...": authority up to the first '/', '?' or '#'.
bool split_url(std::string_view url, bool& tls, std::string_view& authority, std::string_view& target) {
  std::size_t skip = 0;
  if (url.size() > 8 && iequals(url.substr(0, 8), "https://")) {
    tls = true;
    skip = 8;
  } else if (url.size() > 7 && iequals(url.substr(0, 7), "http://")) {
    tls = false;
    skip = 7;
  } else {
    return false;
  }
  std::string_view rest = url.substr(skip);
  std::size_t end = rest.find_first_of("/?#");
  authority = rest.substr(0, end);
  target = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  if (auto hash = target.find('#'); hash != std::string_view::npos) target = target.substr(0, hash);
  return !authority.empty();
}

tasks::ip_address to_ip(const asio::ip::address& a) {
  if (a.is_v4()) return tasks::ip_address::from_v4(a.to_v4().to_uint());
  return tasks::ip_address::from_v6(a.to_v6().to_bytes().data());
}

void append_header_value(std::string& out, std::string_view v) {
  // Header values never carry line breaks: a CR or LF would start a header of its own.
  for (char ch : v) out += (ch == '\r' || ch == '\n') ? ' ' : ch;
}

// What OpenSSL says went wrong with the last TLS call (`ssl_error` from SSL_get_error,
// `sys_errno` the errno right after it), in OpenSSL's own words as curl quotes them
// ("error:0A000418:SSL routines::tlsv1 alert unknown ca"). Clears the error queue.
std::string tls_error_text(int ssl_error, int sys_errno) {
  std::string text;
  if (unsigned long code = ERR_get_error(); code != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    text = buf;
  } else if (ssl_error == SSL_ERROR_SYSCALL) {
    text = sys_errno != 0 ? std::strerror(sys_errno) : "connection closed by the peer";
  } else if (ssl_error == SSL_ERROR_ZERO_RETURN) {
    text = "connection closed by the peer";
  } else {
    text = "TLS error " + std::to_string(ssl_error);
  }
  ERR_clear_error();
  return text;
}

// A TLS context for one trust (tls_trust.hpp): TLS 1.2 or newer, the peer always
// verified (chain here; host name or IP address per connection), the trust's CAs or the
// system store, its client certificate, sessions kept by the client for resumption (new_session is called with each one the server issues).
// Null and `error` set when a file can't be used.
SSL_CTX* make_tls_context(const tasks::tls_trust* trust, int (*new_session)(SSL*, SSL_SESSION*), std::string& error) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  auto fail = [&](std::string what) {
    error = std::move(what);
    if (unsigned long code = ERR_peek_error(); code != 0) {
      char buf[256];
      ERR_error_string_n(code, buf, sizeof buf);
      error += ": ";
      error += buf;
    }
    ERR_clear_error();
    if (ctx) SSL_CTX_free(ctx);
    return nullptr;
  };
  if (!ctx) return fail("can't create a TLS context");
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  // RELEASE_BUFFERS: a connection awaiting its answer holds no OpenSSL record buffers.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  // Read what the socket has in one recv, not a record header and then its body: safe
  // because SSL_read is always called until it wants more before waiting on the socket.
  SSL_CTX_set_read_ahead(ctx, 1);
  if (!trust || trust->system_store()) {
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) return fail("can't load the system CA store");
  } else {
    const char* file = trust->ca_file.empty() ? nullptr : trust->ca_file.c_str();
    const char* dir = trust->ca_dir.empty() ? nullptr : trust->ca_dir.c_str();
    if (SSL_CTX_load_verify_locations(ctx, file, dir) != 1)
      return fail("error setting certificate verify locations: CAfile: " + (file ? trust->ca_file : "none") +
                  " CApath: " + (dir ? trust->ca_dir : "none"));
  }
  if (trust && !trust->client_cert.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, trust->client_cert.c_str()) != 1)
      return fail("unable to use client certificate '" + trust->client_cert + "'");
    if (SSL_CTX_use_PrivateKey_file(ctx, trust->client_key.c_str(), SSL_FILETYPE_PEM) != 1)
      return fail("unable to set private key file '" + trust->client_key + "'");
    if (SSL_CTX_check_private_key(ctx) != 1) return fail("'" + trust->client_key + "' is not the key of '" + trust->client_cert + "'");
  }
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, new_session);
  return ctx;
}

// The key of a trust in the context cache.
std::string trust_key(const tasks::tls_trust* t) {
  if (!t || (t->system_store() && t->client_cert.empty())) return {};
  std::string k = t->ca_file;
  for (const std::string* part : {&t->ca_dir, &t->client_cert, &t->client_key}) {
    k += '\0';
    k += *part;
  }
  return k;
}

}  // namespace

struct http1_client::impl {
  struct host_pool;
  struct connection;
  // What a plain socket of the epoll set waits to do next (wait_fd, run_step).
  enum class fd_step : std::uint8_t { none, dialled, write, read };
  static constexpr std::size_t no_slot = SIZE_MAX;

  // What a request needs only until it has gone: the request, and its bytes as sent.
  // One block (a size class no long-lived object of the engine shares, so the pages a
  // burst of them leaves when let go are whole: see sent).
  struct outgoing {
    http_request req;
    std::string wire;  // HTTP/1.1: the request as sent, made when a connection takes it (until sent)
  };

  // Its fields ordered so that it fits the allocator's 112-byte blocks with its shared
  // control block (one per request in flight). What it sends is a block of its own, let
  // go once it has gone whole on a connection that had served nothing before (see sent):
  // a host that stops answering holds its new connections' exchanges without their
  // requests. One sent on a reused keep-alive connection keeps its request (it may go
  // again on a new one, see connection_failed), and so does an HTTP/2 stream.
  struct exchange {
    std::unique_ptr<outgoing> out;  // null once sent where no retry can follow
    steady::time_point start;
    // Its whole-request timeout: its place in the client's deadline heap (none: not
    // started, or finished); `timed` below: whether its clock has started (begin).
    std::size_t deadline_slot = no_slot;
    host_pool* pool = nullptr;
    connection* conn = nullptr;  // set while a connection carries it
    // HTTP/2: the connection's bytes received when it was sent (none since: the server
    // may never have seen it) and its stream frames (none since: the server answers
    // nothing); its stream, whether it went out before the server's SETTINGS told its
    // limits (`early`), and how often a server refused it (counted refusals only) below.
    std::size_t mark = 0;
    std::uint64_t frames_mark = 0;
    // Retried after a stale connection: only a connection dialled after that (serial
    // above this) takes it.
    std::uint64_t after = 0;
    // What the answer needs of the request, kept when the request is let go.
    std::uint64_t ticket = 0;
    std::uint32_t keep_body = 0;  // body bytes the result carries (the parsers keep 64 KB at most)
    std::uint32_t target_at = 0, target_len = 0;  // the target's place in out->req.url
    std::int32_t stream = 0;
    std::uint16_t refusals = 0;
    bool head = false;  // a HEAD request: its answer has no body
    bool timed = false;
    bool done = false;
    bool retried = false;
    bool early = false;
    bool keep_2xx_body = true;  // http_request::keep_body_of_2xx
    // The body the result carries: none of a 2xx answer where the request did not ask.
    bool keeps_body_of(long code) const { return tasks::keeps_body_of(keep_2xx_body, code); }
    std::string_view target() const { return std::string_view(out->req.url).substr(target_at, target_len); }
  };

  // An HTTP/2 connection's own state: the session, the exchanges by stream, bytes to
  // write (out, from out_off), and which waits are armed. A read is always armed: the
  // server may speak at any time (SETTINGS, PING, GOAWAY).
  struct h2_link {
    h2_session session;
    std::unordered_map<std::int32_t, std::shared_ptr<exchange>> streams;
    std::string out;
    std::size_t out_off = 0;
    std::size_t bytes_in = 0;
    bool writing = false;
    bool dirty = false;          // streams submitted, not yet flushed
    bool settle_posted = false;  // a settle is queued on the io_context
  };

  struct connection : std::enable_shared_from_this<connection> {
    connection() = default;
    ~connection() {
      if (ssl) SSL_free(ssl);
      if (fd >= 0) ::close(fd);
    }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    // https, once connected: the socket under asio (OpenSSL's readiness waits), made
    // then. Bound to the io_context's own executor rather than any_io_executor: the
    // socket and every operation waiting on it are smaller (no type-erased executor in
    // each).
    using tls_socket = asio::basic_stream_socket<tcp, asio::io_context::executor_type>;
    std::unique_ptr<tls_socket> sock;
    // Plain http://, and every connection while it dials: a non-blocking socket in the
    // client's epoll set (see poll_events), not under asio: no reactor state and no
    // pending operation of asio's while the answer is awaited, and no buffer: the answer
    // is read into the client's shared one once the socket is readable.
    int fd = -1;
    std::uint32_t token = 0;    // names it in its epoll events (fd numbers are reused)
    bool rd_ready = false;      // an event said readable since a read last came up short
    bool hup = false;           // an event said the server closed (or the socket failed):
                                // readable from then on, whatever a read returned
    bool wr_ready = false;      // an event said writable since a write would last block
    bool wait_write = false;    // what on_ready waits for
    fd_step on_ready = fd_step::none;  // what runs once the socket is ready (wait_fd)
    std::uint32_t next_endpoint = 0;  // dialling: the pool's next address to try
    SSL* ssl = nullptr;            // https: OpenSSL on the socket's fd (it never closes it)
    std::uint64_t tls_serial = 0;  // the TLS context it was made with (see tls_entry)
    std::uint64_t generation = 0;  // its pool's rules (egress, trust) when it was dialled
    std::uint64_t serial = 0;      // its pool's count of connections dialled, with it
    std::size_t written = 0;       // https: bytes of the request written so far
    bool tls_up = false;           // https: handshake done, no fatal TLS error since
    bool deciding = false;         // counted in its pool's `connecting` until the protocol is known
    bool closed = false;
    bool ending = false;           // HTTP/2: no new stream: the server closed, or stopped answering
    std::uint32_t endpoints_seen = 0;  // dialling: the pool's list of addresses it walks (see dial)
    host_pool* pool = nullptr;
    std::shared_ptr<exchange> ex;
    // Received, not yet consumed by the parser: a partial line left at the end of a read
    // (a block of its own, made only then: most answers come whole).
    std::unique_ptr<std::string> in;
    std::size_t received = 0;   // bytes of the current response so far
    std::size_t served = 0;     // responses completed on this connection
    steady::time_point idle_since;
    // Set when the egress policy refused an address to dial (a block of its own: rare).
    std::unique_ptr<std::string> egress_denial;
    // The current response's parser, from its first byte to its end (see parser_of): a
    // connection awaiting its answer holds none.
    std::unique_ptr<http1_response_parser> parser;
    // HTTP/2 (ALPN chose h2), made then: what only such a connection needs.
    std::unique_ptr<h2_link> h2;
  };

  struct host_pool {
    host_pool() = default;
    ~host_pool() {
      if (session) SSL_SESSION_free(session);
    }
    host_pool(const host_pool&) = delete;
    host_pool& operator=(const host_pool&) = delete;
    std::string name;  // delivery pool
    std::string host, port, host_header;
    bool tls = false;      // https
    bool ip_host = false;  // the host is an IP address: verified against IP SANs, no SNI
    std::shared_ptr<const tasks::tls_trust> trust;  // https: null is the system store
    SSL_SESSION* session = nullptr;  // the last TLS session the server issued, to resume
    std::uint64_t session_serial = 0;  // the TLS context it belongs to
    unsigned cap = 0;
    unsigned open = 0;
    std::uint64_t dialled = 0;  // connections dialled so far (their serials)
    // https: whether ALPN offers h2, and what the server chose last time. While no
    // handshake has told, or an h2 one is under way, one new connection is made at a time:
    // an HTTP/2 one carries many requests.
    bool http2 = true;
    enum class proto { unknown, h1, h2 } proto = proto::unknown;
    unsigned connecting = 0;  // connections whose protocol is not known yet
    std::vector<std::shared_ptr<connection>> h2conns;  // closed ones dropped lazily
    std::shared_ptr<const tasks::egress_rules> egress;  // null: the default policy
    // Bumped when the egress rules or the TLS trust change: a connection dialled under
    // older ones is not reused (idle ones are closed at once, busy ones when they finish).
    std::uint64_t generation = 0;
    std::vector<std::shared_ptr<connection>> idle;
    std::deque<std::shared_ptr<exchange>> waiting;
    std::vector<tcp::endpoint> endpoints;
    std::uint32_t endpoints_gen = 0;  // bumped each time a resolution replaces `endpoints`
    steady::time_point resolved_at{};
    bool numeric = false;
    bool resolving = false;
    std::string resolve_error;
  };

  // With make_shared's control block (16 bytes), an exchange fits a 112-byte block of the
  // allocator and a connection a 192-byte one: one of each per task in flight. What an
  // exchange sends (outgoing) is a larger block than either.
  static_assert(sizeof(exchange) <= 96, "an exchange outgrows its 112-byte block");
  static_assert(sizeof(outgoing) > 192, "an outgoing request shares the connections' size class");
  static_assert(sizeof(connection) <= 176, "a connection outgrows its 192-byte block");
  impl(asio::io_context& io_, std::string ua, done_fn d, steady::duration idle)
      : io(io_), user_agent(std::move(ua)), done(std::move(d)), idle_limit(idle), deadline_timer(io_), reaper(io_),
        poller(io_.get_executor()) {
    arm_reaper();
  }
  ~impl() {
    for (auto& [key, e] : tls_contexts)
      if (e.ctx) SSL_CTX_free(e.ctx);
  }
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  asio::io_context& io;
  std::string user_agent;
  done_fn done;
  steady::duration idle_limit;
  std::unordered_map<std::string, std::unique_ptr<host_pool>> pools;  // pool + '\n' + authority
  std::unordered_map<std::string, unsigned> caps;                     // per delivery pool
  std::unordered_map<std::string, std::shared_ptr<const tasks::egress_rules>> egress;  // per delivery pool
  std::unordered_map<std::string, std::shared_ptr<const tasks::tls_trust>> trusts;  // per delivery pool
  std::unordered_map<std::string, bool> http2s;  // per delivery pool; absent: on
  // TLS contexts by trust (trust_key): loading CAs and a client certificate is done once
  // per context, not per connection; a context is made anew after tls_context_ttl so
  // files replaced on disk are read again (a connection keeps the context it started with).
  struct tls_entry {
    SSL_CTX* ctx = nullptr;
    std::uint64_t serial = 0;  // unique per context made: sessions are matched by it
    steady::time_point made;
  };
  std::unordered_map<std::string, tls_entry> tls_contexts;
  std::uint64_t tls_serial = 0;
  std::size_t in_flight = 0;
  // The shared read buffer: every read (made once the socket is readable) goes into it,
  // and its bytes are handed to the parser or the session before the next read into it
  // (one thread). A connection keeps only a partial line; one awaiting its answer holds
  // no buffer (16 KB each, when connections had their own read buffer, was most of the
  // memory of a task in flight).
  static constexpr std::size_t rbuf_size = 16 * 1024;
  // Parsers of responses that ended, for the next ones (their buffers kept, so a response
  // costs no allocation for its head): as many as ever parse at once, up to this.
  static constexpr std::size_t max_spare_parsers = 64;
  static constexpr std::size_t max_spare_parser_bytes = 8 * 1024;
  std::vector<std::unique_ptr<http1_response_parser>> spare_parsers;
  std::unique_ptr<char[]> rbuf_mem;
  char* rbuf() {
    if (!rbuf_mem) rbuf_mem = std::make_unique_for_overwrite<char[]>(rbuf_size);
    return rbuf_mem.get();
  }
  // Whole-request timeouts: one timer for the client, armed for the earliest deadline of
  // a min-heap of the exchanges under way (an asio timer each cost about 250 bytes per
  // request in flight, and an allocation per request). An exchange leaves the heap when
  // it finishes; the timer may then fire for nothing, and is armed for the next one.
  struct deadline_entry {
    steady::time_point at;
    std::shared_ptr<exchange> ex;
  };
  std::vector<deadline_entry> deadlines;
  asio::steady_timer deadline_timer;
  steady::time_point deadline_armed = steady::time_point::max();
  asio::steady_timer reaper;
  bool stopped = false;
  // The client's epoll set: the sockets of plain connections (and of every connection
  // while it dials), edge-triggered, registered once for reading and writing; asio waits
  // on the set itself, as one descriptor (see poll_events). by_fd owns each connection
  // in the set, by its socket; a closed one waits in `closing` until the turn ends.
  asio::posix::basic_stream_descriptor<asio::io_context::executor_type> poller;
  bool poller_armed = false;
  // The batch of events being handled: those before `ev_next` are done. One a handler
  // threw out of is followed by the rest of its batch on the next turn (see poll_turn):
  // an edge-triggered event is not reported twice.
  std::array<epoll_event, 128> evs{};
  std::size_t ev_count = 0, ev_next = 0;
  std::vector<std::shared_ptr<connection>> by_fd;
  std::vector<std::shared_ptr<connection>> closing;
  bool closing_posted = false;
  std::uint32_t tokens = 0;

  void deadline_place(std::size_t i) { deadlines[i].ex->deadline_slot = i; }
  void deadline_up(std::size_t i) {
    while (i > 0) {
      const std::size_t parent = (i - 1) / 2;
      if (!(deadlines[i].at < deadlines[parent].at)) break;
      std::swap(deadlines[i], deadlines[parent]);
      deadline_place(i);
      i = parent;
    }
    deadline_place(i);
  }
  void deadline_down(std::size_t i) {
    for (;;) {
      const std::size_t l = 2 * i + 1, r = l + 1;
      std::size_t least = i;
      if (l < deadlines.size() && deadlines[l].at < deadlines[least].at) least = l;
      if (r < deadlines.size() && deadlines[r].at < deadlines[least].at) least = r;
      if (least == i) break;
      std::swap(deadlines[i], deadlines[least]);
      deadline_place(i);
      i = least;
    }
    deadline_place(i);
  }
  void watch(const std::shared_ptr<exchange>& ex, steady::time_point at) {
    deadlines.push_back({at, ex});
    deadline_up(deadlines.size() - 1);
    if (at < deadline_armed) arm_deadline(at);
  }
  void unwatch(exchange& ex) {
    const std::size_t i = ex.deadline_slot;
    if (i == no_slot) return;
    ex.deadline_slot = no_slot;
    if (i + 1 != deadlines.size()) {
      deadlines[i] = std::move(deadlines.back());
      deadlines.pop_back();
      deadline_up(i);
      deadline_down(deadlines[i].ex->deadline_slot);
    } else {
      deadlines.pop_back();
    }
    // After a burst, the heap's storage goes back down with it.
    if (deadlines.capacity() > 256 && deadlines.size() < deadlines.capacity() / 4) deadlines.shrink_to_fit();
  }
  void arm_deadline(steady::time_point at) {
    deadline_armed = at;
    deadline_timer.expires_at(at);
    deadline_timer.async_wait([this](const asio::error_code& ec) {
      // Re-armed, or shut down. The client is only destroyed with its io_context stopped
      // (the engine stops it right after shutdown), so no completion runs after that.
      if (ec) return;
      deadline_armed = steady::time_point::max();
      const auto now = steady::now();
      while (!deadlines.empty() && deadlines.front().at <= now) {
        auto ex = deadlines.front().ex;
        unwatch(*ex);
        on_timeout(ex);
      }
      if (!deadlines.empty() && !stopped) arm_deadline(deadlines.front().at);
    });
  }

  // ---- The epoll set -------------------------------------------------------------------

  static std::string system_text(int err) { return asio::error_code(err, asio::error::get_system_category()).message(); }

  // Puts a connection's new socket in the set (made at the first); errno-style on failure.
  int watch_fd(const std::shared_ptr<connection>& conn, int fd) {
    if (!poller.is_open()) {
      const int ep = ::epoll_create1(EPOLL_CLOEXEC);
      if (ep < 0) return errno;
      asio::error_code ec;
      poller.assign(ep, ec);
      if (ec) {
        ::close(ep);
        return ec.value();
      }
    }
    conn->token = ++tokens;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = (std::uint64_t{conn->token} << 32) | static_cast<std::uint32_t>(fd);
    if (::epoll_ctl(poller.native_handle(), EPOLL_CTL_ADD, fd, &ev) != 0) return errno;
    const auto slot = static_cast<std::size_t>(fd);
    if (by_fd.size() <= slot) by_fd.resize(slot + 1);
    by_fd[slot] = conn;
    conn->fd = fd;
    conn->rd_ready = conn->wr_ready = conn->hup = false;
    conn->on_ready = fd_step::none;
    arm_poller();
    return 0;
  }

  // Takes a socket out of the set (closing it does that too: `keep_open` says it stays
  // open); returns its connection's ownership (the caller lets go of it when it is done
  // with the connection).
  std::shared_ptr<connection> unwatch_fd(connection& c, bool keep_open) {
    const auto slot = static_cast<std::size_t>(c.fd);
    if (keep_open) ::epoll_ctl(poller.native_handle(), EPOLL_CTL_DEL, c.fd, nullptr);
    c.fd = -1;
    c.on_ready = fd_step::none;
    return std::move(by_fd[slot]);
  }

  // A connection closed in the middle of a turn may be the one its caller is working
  // on: it is let go of once the turn is over.
  void let_go_later(std::shared_ptr<connection> c) {
    closing.push_back(std::move(c));
    if (closing_posted) return;
    closing_posted = true;
    asio::post(io, [this] {
      closing_posted = false;
      closing.clear();
    });
  }

  // Runs `next` once the socket is ready for it (at once, posted, when an event already
  // said so). One wait at a time per connection.
  void wait_fd(const std::shared_ptr<connection>& conn, bool write, fd_step next) {
    conn->wait_write = write;
    if (write ? conn->wr_ready : conn->rd_ready) {
      asio::post(io, [this, conn, next] {
        if (!conn->closed) run_step(next, conn);
      });
      return;
    }
    conn->on_ready = next;
  }

  void run_step(fd_step step, const std::shared_ptr<connection>& conn) {
    switch (step) {
      case fd_step::none: return;
      case fd_step::dialled: on_dialled(conn); return;
      case fd_step::write: write_plain(conn); return;
      case fd_step::read: read_plain(conn); return;
    }
  }

  void arm_poller() {
    if (poller_armed) return;
    poller_armed = true;
    poller.async_wait(asio::posix::descriptor_base::wait_read, [this](const asio::error_code& ec) {
      poller_armed = false;
      if (ec) return;  // shut down
      poll_turn();
    });
  }

  // One batch of the set's events, then the wait again - or, when the batch was cut short
  // by a handler that threw, or was full (more may be ready: asio's next wait is not relied
  // on to say so), the next batch on a turn of its own.
  void poll_turn() {
    struct then {
      impl* self;
      ~then() {
        if (self->ev_next < self->ev_count || self->ev_count == self->evs.size())
          asio::post(self->io, [s = self] {
            if (!s->stopped) s->poll_turn();
          });
        else
          self->arm_poller();
      }
    } next{this};
    poll_events();
  }

  // The rest of the current batch, else a new one. An event names its connection by socket
  // and token: one closed during the batch, or whose socket number a new connection took,
  // is skipped. Readiness is kept (edge-triggered: an event comes once per change), so a
  // wait started later completes.
  void poll_events() {
    if (ev_next >= ev_count) {
      const int n = ::epoll_wait(poller.native_handle(), evs.data(), static_cast<int>(evs.size()), 0);
      ev_count = n > 0 ? static_cast<std::size_t>(n) : 0;  // EINTR: nothing this time
      ev_next = 0;
    }
    while (ev_next < ev_count) {
      const epoll_event& ev = evs[ev_next++];
      const auto slot = static_cast<std::size_t>(ev.data.u64 & 0xffffffffu);
      const auto token = static_cast<std::uint32_t>(ev.data.u64 >> 32);
      if (slot >= by_fd.size() || !by_fd[slot] || by_fd[slot]->token != token) continue;
      auto conn = by_fd[slot];
      const std::uint32_t e = ev.events;
      if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) conn->hup = true;
      if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) conn->rd_ready = true;
      if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) conn->wr_ready = true;
      if (conn->on_ready != fd_step::none && !conn->closed && (conn->wait_write ? conn->wr_ready : conn->rd_ready))
        run_step(std::exchange(conn->on_ready, fd_step::none), conn);
    }
  }

  host_pool& pool_for(const std::string& name, bool tls, std::string_view authority) {
    std::string key;
    key.reserve(name.size() + authority.size() + 3);
    key += name;
    key += tls ? "\ns\n" : "\n\n";
    key += authority;
    auto it = pools.find(key);
    if (it != pools.end()) return *it->second;
    auto hp = std::make_unique<host_pool>();
    hp->name = name;
    hp->host_header = std::string(authority);
    hp->tls = tls;
    const std::string_view default_port = tls ? "443" : "80";
    std::string_view host = authority, port = default_port;
    if (!authority.empty() && authority.front() == '[') {
      auto close = authority.find(']');
      host = authority.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1);
      if (close != std::string_view::npos && close + 1 < authority.size() && authority[close + 1] == ':')
        port = authority.substr(close + 2);
    } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
    if (port.empty()) port = default_port;
    hp->host = std::string(host);
    hp->port = std::string(port);
    asio::error_code ec;
    auto addr = asio::ip::make_address(hp->host, ec);
    hp->ip_host = !ec;
    unsigned short p = 0;
    auto [ptr, perr] = std::from_chars(hp->port.data(), hp->port.data() + hp->port.size(), p);
    if (!ec && perr == std::errc() && ptr == hp->port.data() + hp->port.size()) {
      hp->endpoints.emplace_back(addr, p);
      hp->numeric = true;
    }
    if (auto c = caps.find(name); c != caps.end()) hp->cap = c->second;
    if (auto e = egress.find(name); e != egress.end()) hp->egress = e->second;
    if (auto t = trusts.find(name); t != trusts.end()) hp->trust = t->second;
    if (auto h = http2s.find(name); h != http2s.end()) hp->http2 = h->second;
    return *pools.emplace(std::move(key), std::move(hp)).first->second;
  }

  void build_wire(exchange& ex) {
    const http_request& r = ex.out->req;
    const std::string_view target = ex.target();
    std::string& w = ex.out->wire;
    w.reserve(256 + (r.body ? r.body->size() : 0));
    w += r.method;
    w += ' ';
    if (target.empty() || target.front() == '?') w += '/';
    w += target;
    w += " HTTP/1.1\r\n";
    bool has_host = false, has_ua = false, has_accept = false;
    for (const auto& [k, v] : r.headers) {
      if (iequals(k, "Content-Length") || iequals(k, "Transfer-Encoding")) continue;
      if (iequals(k, "Host")) has_host = true;
      else if (iequals(k, "User-Agent")) has_ua = true;
      else if (iequals(k, "Accept")) has_accept = true;
    }
    if (!has_host) {
      w += "Host: ";
      w += ex.pool->host_header;
      w += "\r\n";
    }
    if (!has_ua) {
      w += "User-Agent: ";
      w += user_agent;
      w += "\r\n";
    }
    if (!has_accept) w += "Accept: */*\r\n";
    for (const auto& [k, v] : r.headers) {
      if (iequals(k, "Content-Length") || iequals(k, "Transfer-Encoding")) continue;
      append_header_value(w, k);
      w += ": ";
      append_header_value(w, v);
      w += "\r\n";
    }
    const bool wants_body = r.body || r.method == "POST" || r.method == "PUT" || r.method == "PATCH";
    if (wants_body) {
      w += "Content-Length: ";
      w += std::to_string(r.body ? r.body->size() : 0);
      w += "\r\n";
    }
    w += "\r\n";
    if (r.body) w += *r.body;
  }

  void submit(http_request&& r) {
    auto ex = std::make_shared<exchange>();
    ex->out = std::make_unique<outgoing>(outgoing{std::move(r), {}});
    const http_request& req = ex->out->req;
    ex->ticket = req.ticket;
    ex->keep_body = static_cast<std::uint32_t>(std::min<std::size_t>(req.keep_body, UINT32_MAX));
    ex->keep_2xx_body = req.keep_body_of_2xx;
    ex->head = req.method == "HEAD";
    ex->start = steady::now();
    std::string_view authority, target;
    bool tls = false;
    split_url(req.url, tls, authority, target);
    host_pool& hp = pool_for(req.pool, tls, authority);
    ex->pool = &hp;
    // A URL is a bulk string: far shorter than 4 GB.
    ex->target_at = static_cast<std::uint32_t>(target.empty() ? 0 : target.data() - req.url.data());
    ex->target_len = static_cast<std::uint32_t>(target.size());
    ++in_flight;
    hp.waiting.push_back(std::move(ex));
    pump(hp);
  }

  // The request leaves the per-host queue: its duration and its timeout start now, as on
  // the curl path (a request waiting for a free connection is not yet "sent").
  void begin(const std::shared_ptr<exchange>& ex) {
    if (ex->timed) return;  // a retry on a new connection keeps its clock
    ex->timed = true;
    ex->start = steady::now();
    const double timeout = ex->out->req.timeout_s > 0 ? ex->out->req.timeout_s : default_timeout_s;
    watch(ex, ex->start + std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(timeout)));
  }

  bool endpoints_fresh(const host_pool& hp) const {
    return hp.numeric || (!hp.endpoints.empty() && steady::now() - hp.resolved_at < dns_ttl);
  }

  void resolve(host_pool& hp) {
    if (hp.resolving) return;
    hp.resolving = true;
    auto resolver = std::make_shared<tcp::resolver>(io);
    resolver->async_resolve(hp.host, hp.port, [this, &hp, resolver](const asio::error_code& ec, tcp::resolver::results_type res) {
      hp.resolving = false;
      if (stopped) return;
      hp.endpoints.clear();
      ++hp.endpoints_gen;
      if (!ec)
        for (const auto& e : res) hp.endpoints.push_back(e.endpoint());
      hp.resolved_at = steady::now();
      if (hp.endpoints.empty()) {
        // Everything waiting for this origin fails now, as curl would.
        auto waiting = std::move(hp.waiting);
        hp.waiting.clear();
        for (auto& ex : waiting) {
          if (ex->done) continue;
          if (!ex->timed) ex->start = steady::now();
          fail(*ex, "Could not resolve host: " + hp.host, false);
        }
        return;
      }
      pump(hp);
    });
  }

  // Requests in flight on the pool's connections: one per open connection that is
  // neither idle nor HTTP/2 (a connection being set up carries its first request), plus
  // the HTTP/2 streams. The per-host cap bounds this, whatever the number of connections.
  unsigned carrying(host_pool& hp) {
    std::size_t h2 = 0, streams = 0;
    std::erase_if(hp.h2conns, [](const auto& c) { return c->closed; });
    for (const auto& c : hp.h2conns) {
      ++h2;
      streams += c->h2->streams.size();
    }
    return static_cast<unsigned>(hp.open - hp.idle.size() - h2 + streams);
  }

  // An HTTP/2 connection that can take no new stream: a GOAWAY either way, a server that
  // stopped answering or a connection that failed (ending), rules that changed since it
  // was dialled, or the server's SETTINGS allow no stream at all.
  static bool h2_closed_to_new(const connection& c) {
    const h2_session& h2 = c.h2->session;
    return c.closed || c.ending || c.generation != c.pool->generation || !h2.accepts() ||
           (h2.settings_received() && h2.max_streams() == 0);
  }

  // An HTTP/2 connection that takes another stream: up to min(the server's
  // MAX_CONCURRENT_STREAMS, the per-host cap) each, dialled under the current rules (and
  // after `after`: see exchange::after).
  connection* h2_with_room(host_pool& hp, std::uint64_t after) {
    for (const auto& c : hp.h2conns) {
      if (h2_closed_to_new(*c) || c->serial <= after) continue;
      std::size_t limit = c->h2->session.max_streams();
      if (hp.cap != 0) limit = std::min<std::size_t>(limit, hp.cap);
      if (c->h2->streams.size() < limit) return c.get();
    }
    return nullptr;
  }

  void pump(host_pool& hp) {
    const bool h2_pool = hp.tls && hp.http2;
    while (!hp.waiting.empty() && !stopped) {
      auto& front = hp.waiting.front();
      if (front->done) {
        hp.waiting.pop_front();
        continue;
      }
      if (h2_pool && !hp.h2conns.empty()) {
        const unsigned busy = carrying(hp);
        connection* c = hp.cap == 0 || busy < hp.cap ? h2_with_room(hp, front->after) : nullptr;
        if (c) {
          auto ex = std::move(front);
          hp.waiting.pop_front();
          begin(ex);
          h2_submit(c->shared_from_this(), ex);
          continue;
        }
        if (hp.cap != 0 && busy >= hp.cap) break;
      }
      // A request that already failed on a stale keep-alive connection goes out on a
      // new one: the next idle connection may have been closed by the server too. At the
      // cap, an idle connection makes room for it. On an HTTP/2 host, retried requests
      // share the next new connection (h2_with_room skips those dialled before).
      if (front->retried && !(h2_pool && hp.proto == host_pool::proto::h2)) {
        if (hp.cap != 0 && hp.open >= hp.cap) {
          if (hp.idle.empty()) break;
          auto spare = std::move(hp.idle.back());
          hp.idle.pop_back();
          close(*spare);
        }
        if (!endpoints_fresh(hp)) {
          resolve(hp);
          break;
        }
        auto ex = std::move(front);
        hp.waiting.pop_front();
        open_connection(hp, ex);
        continue;
      }
      // The handshake under way decides: an HTTP/2 connection will take these too.
      if (h2_pool && hp.connecting > 0 && hp.proto != host_pool::proto::h1) break;
      if (!hp.idle.empty()) {
        auto conn = std::move(hp.idle.back());
        hp.idle.pop_back();
        if (!still_open(*conn)) {
          close(*conn);
          continue;
        }
        auto ex = std::move(front);
        hp.waiting.pop_front();
        begin(ex);
        start_exchange(conn, ex);
        continue;
      }
      if (hp.cap != 0 && hp.open >= hp.cap && front->after != 0) {
        // At the cap, an HTTP/2 connection with no stream, dialled before the retried
        // request failed, makes room for it.
        auto spare = std::find_if(hp.h2conns.begin(), hp.h2conns.end(), [&](const auto& c) {
          return !c->closed && c->h2->streams.empty() && c->serial <= front->after;
        });
        if (spare != hp.h2conns.end()) {
          h2_goodbye(**spare);
          continue;
        }
      }
      if (hp.cap != 0 && hp.open >= hp.cap) break;
      if (!endpoints_fresh(hp)) {
        resolve(hp);
        break;
      }
      auto ex = std::move(front);
      hp.waiting.pop_front();
      begin(ex);
      open_connection(hp, ex);
    }
    // Streams submitted above leave together, in as few TLS records as they fit.
    for (std::size_t i = 0; i < hp.h2conns.size(); ++i)
      if (hp.h2conns[i]->h2->dirty) {
        auto c = hp.h2conns[i];  // a failed flush may change the list
        h2_flush(c);
      }
  }

  // A connection that sat idle for a while may have been closed by the server (many
  // close idle keep-alive connections after a few seconds): look before reusing it, as
  // curl does. A recently used one is trusted without the extra syscall.
  // A plain one that an event said the server closed is known stale without one; one an
  // event said readable (bytes nobody asked for, or only the end of its last answer, read
  // whole by a read that filled the buffer) is looked at whatever its age.
  bool still_open(connection& c) {
    if (c.fd >= 0 && c.hup) return false;
    const bool readable = c.fd >= 0 && c.rd_ready;
    if (!readable && steady::now() - c.idle_since < std::chrono::seconds(1)) return true;
    char byte;
    ssize_t n = ::recv(c.fd >= 0 ? c.fd : c.sock->native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {  // open, nothing unread
      c.rd_ready = false;
      return true;
    }
    return false;  // EOF, reset, or unexpected bytes: not reusable
  }

  void open_connection(host_pool& hp, const std::shared_ptr<exchange>& ex) {
    auto conn = std::make_shared<connection>();
    conn->pool = &hp;
    conn->generation = hp.generation;
    conn->serial = ++hp.dialled;
    conn->ex = ex;
    ex->conn = conn.get();
    ++hp.open;
    if (hp.tls) {
      conn->deciding = true;
      ++hp.connecting;
    }
    dial(conn, 0, 0);
  }

  // Dials the pool's addresses from the i-th on, each judged by the egress rules right
  // before it would be dialled (a denied one is skipped), until one takes the connection
  // (on_dialled) or none is left (`err`: the last failure). A failure is reported from a
  // handler of its own, never from inside the caller's pump. When a new resolution replaced
  // the list since the connection began, it walks the new one from its start.
  void dial(const std::shared_ptr<connection>& conn, std::size_t i, int err) {
    host_pool& hp = *conn->pool;
    if (i == 0 || conn->endpoints_seen != hp.endpoints_gen) {
      conn->endpoints_seen = hp.endpoints_gen;
      i = 0;
    }
    const tasks::egress_rules& rules = hp.egress ? *hp.egress : tasks::default_egress_rules();
    for (; i < hp.endpoints.size(); ++i) {
      const tcp::endpoint ep = hp.endpoints[i];
      const tasks::ip_address a = to_ip(ep.address());
      const tasks::egress_verdict v = tasks::check_egress(a, rules);
      if (!v.allowed) {
        if (!conn->egress_denial)
          conn->egress_denial = std::make_unique<std::string>(tasks::egress_denial_text(a, ep.port(), v));
        continue;
      }
      const int fd = ::socket(ep.protocol().family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
      if (fd < 0) {
        err = errno;
        continue;
      }
      if (::connect(fd, ep.data(), static_cast<socklen_t>(ep.size())) != 0 && errno != EINPROGRESS) {
        err = errno;
        ::close(fd);
        continue;
      }
      if (const int w = watch_fd(conn, fd); w != 0) {
        err = w;
        ::close(fd);
        continue;
      }
      conn->next_endpoint = static_cast<std::uint32_t>(i + 1);
      wait_fd(conn, true, fd_step::dialled);
      return;
    }
    asio::post(io, [this, conn, err] { dial_failed(conn, err); });
  }

  void on_dialled(const std::shared_ptr<connection>& conn) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) {
      // This address refused or failed: the next one, on a new socket.
      const int fd = conn->fd;
      auto keep = unwatch_fd(*conn, false);
      ::close(fd);
      dial(conn, conn->next_endpoint, err);
      return;
    }
    const int one = 1;
    ::setsockopt(conn->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!conn->pool->tls) {
      write_request(conn);
      return;
    }
    // https: the socket goes to asio, whose readiness waits drive OpenSSL.
    int domain = AF_INET;
    len = sizeof domain;
    ::getsockopt(conn->fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
    const int fd = conn->fd;
    auto keep = unwatch_fd(*conn, true);
    asio::error_code ec;
    conn->sock = std::make_unique<connection::tls_socket>(io.get_executor());
    conn->sock->assign(domain == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
    if (!ec) conn->sock->non_blocking(true, ec);
    if (ec) {
      if (!conn->sock->is_open()) ::close(fd);
      connection_failed(conn, "Recv failure: " + ec.message());
      return;
    }
    start_tls(conn);
  }

  void dial_failed(const std::shared_ptr<connection>& conn, int err) {
    if (conn->closed) return;
    auto carried = conn->ex;
    host_pool& p = *conn->pool;
    close(*conn);
    if (carried && !carried->done) {
      // An address of the origin was denied and none could be connected to: the
      // denial is the answer (a name that resolves to a denied address is suspect).
      if (conn->egress_denial)
        fail(*carried, std::move(*conn->egress_denial), false, true);
      else
        fail(*carried, "Failed to connect to " + p.host + " port " + p.port + ": " +
                           (err != 0 ? system_text(err) : asio::error_code(asio::error::not_found).message()),
             false);
    }
    pump(p);
  }

  // ---- https: OpenSSL straight on the non-blocking socket, driven by asio's readiness
  // waits (as the tls-port does on the server side); no buffer copies beyond OpenSSL's.

  // The pool's TLS context, made or remade as needed; null with `error` set when its files
  // can't be used.
  SSL_CTX* tls_context(const host_pool& hp, std::uint64_t& serial, std::string& error) {
    tls_entry& e = tls_contexts[trust_key(hp.trust.get())];
    if (e.ctx && steady::now() - e.made > tls_context_ttl) {
      SSL_CTX_free(e.ctx);  // connections made with it hold their own reference
      e.ctx = nullptr;
    }
    if (!e.ctx) {
      e.ctx = make_tls_context(hp.trust.get(), &impl::on_new_session, error);
      if (!e.ctx) return nullptr;
      e.made = steady::now();
      e.serial = ++tls_serial;
    }
    serial = e.serial;
    return e.ctx;
  }

  // OpenSSL hands over a session the server issued (TLS 1.3: after the handshake, as a
  // ticket): the origin keeps the newest, for its next new connection to resume.
  static int on_new_session(SSL* ssl, SSL_SESSION* session) {
    auto* c = static_cast<connection*>(SSL_get_app_data(ssl));
    if (!c || c->closed) return 0;
    host_pool& hp = *c->pool;
    if (hp.session) SSL_SESSION_free(hp.session);
    hp.session = session;
    hp.session_serial = c->tls_serial;
    return 1;  // the reference is ours now
  }

  void start_tls(const std::shared_ptr<connection>& conn) {
    host_pool& hp = *conn->pool;
    std::string error;
    SSL_CTX* ctx = tls_context(hp, conn->tls_serial, error);
    SSL* ssl = ctx ? SSL_new(ctx) : nullptr;
    if (!ssl) {
      if (error.empty()) error = tls_error_text(SSL_ERROR_SSL, 0);
      auto carried = conn->ex;
      close(*conn);
      if (carried && !carried->done) fail(*carried, "TLS configuration refused: " + error, false, false, true);
      pump(hp);
      return;
    }
    conn->ssl = ssl;
    // ALPN: h2 first where HTTP/2 is on (the server chooses), else HTTP/1.1 only.
    static const unsigned char h2_and_h1[] = "\x02h2\x08http/1.1";
    static const unsigned char h1_only[] = "\x08http/1.1";
    if (hp.http2)
      SSL_set_alpn_protos(ssl, h2_and_h1, sizeof h2_and_h1 - 1);
    else
      SSL_set_alpn_protos(ssl, h1_only, sizeof h1_only - 1);
    SSL_set_fd(ssl, static_cast<int>(conn->sock->native_handle()));
    SSL_set_connect_state(ssl);
    SSL_set_app_data(ssl, conn.get());
    if (hp.ip_host) {
      // An address is verified against the certificate's IP SANs; SNI carries names only.
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), hp.host.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl, hp.host.c_str());
      SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      SSL_set1_host(ssl, hp.host.c_str());
    }
    // Resume only a session made under the same context: same trust, same client
    // certificate, already verified for this very origin.
    if (hp.session && hp.session_serial == conn->tls_serial) SSL_set_session(ssl, hp.session);
    handshake(conn);
  }

  // Waits until the socket is ready for what OpenSSL asked (SSL_ERROR_WANT_READ or _WRITE),
  // then calls `next` again.
  void tls_wait(const std::shared_ptr<connection>& conn, int ssl_error, void (impl::*next)(const std::shared_ptr<connection>&)) {
    const auto what = ssl_error == SSL_ERROR_WANT_WRITE ? tcp::socket::wait_write : tcp::socket::wait_read;
    conn->sock->async_wait(what, [this, conn, next](const asio::error_code& ec) {
      if (conn->closed) return;
      if (ec) {
        connection_failed(conn, "Recv failure: " + ec.message());
        return;
      }
      (this->*next)(conn);
    });
  }

  void handshake(const std::shared_ptr<connection>& conn) {
    ERR_clear_error();
    const int r = SSL_do_handshake(conn->ssl);
    if (r == 1) {
      conn->tls_up = true;
      host_pool& hp = *conn->pool;
      conn->deciding = false;
      --hp.connecting;
      const unsigned char* alpn = nullptr;
      unsigned alpn_len = 0;
      SSL_get0_alpn_selected(conn->ssl, &alpn, &alpn_len);
      if (alpn_len == 2 && std::memcmp(alpn, "h2", 2) == 0) {
        hp.proto = host_pool::proto::h2;
        h2_start(conn);
        return;
      }
      hp.proto = host_pool::proto::h1;
      write_request(conn);
      pump(hp);  // more connections may be made now that this one is HTTP/1.1
      return;
    }
    const int e = SSL_get_error(conn->ssl, r);
    const int sys_errno = errno;
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      tls_wait(conn, e, &impl::handshake);
      return;
    }
    // The same words as the curl path, so reasons read alike whichever path went.
    const host_pool& hp = *conn->pool;
    std::string error;
    bool final = true;
    const long verified = SSL_get_verify_result(conn->ssl);
    if (verified == X509_V_ERR_HOSTNAME_MISMATCH || verified == X509_V_ERR_IP_ADDRESS_MISMATCH) {
      ERR_clear_error();
      error = "TLS peer verification failed: SSL: no alternative certificate subject name matches target host name '" +
              hp.host + "'";
    } else if (verified != X509_V_OK) {
      ERR_clear_error();
      error = std::string("TLS peer verification failed: SSL certificate problem: ") + X509_verify_cert_error_string(verified);
    } else {
      std::string text = tls_error_text(e, sys_errno);
      final = tasks::tls_error_is_final(text);
      if (final)
        error = "TLS handshake refused: " + text;
      else
        error = "OpenSSL SSL_connect: " + text + " in connection to " + hp.host + ":" + hp.port;
    }
    auto carried = conn->ex;
    host_pool& p = *conn->pool;
    close(*conn);
    if (carried && !carried->done) fail(*carried, std::move(error), false, false, final);
    pump(p);
  }

  void write_tls(const std::shared_ptr<connection>& conn) {
    const std::string& w = conn->ex->out->wire;
    while (conn->written < w.size()) {
      ERR_clear_error();
      const int n = SSL_write(conn->ssl, w.data() + conn->written,
                              static_cast<int>(std::min<std::size_t>(w.size() - conn->written, INT_MAX)));
      if (n > 0) {
        conn->written += static_cast<std::size_t>(n);
        continue;
      }
      const int e = SSL_get_error(conn->ssl, n);
      const int sys_errno = errno;
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        tls_wait(conn, e, &impl::write_tls);
        return;
      }
      conn->tls_up = false;
      std::string text = tls_error_text(e, sys_errno);
      const bool final = tasks::tls_error_is_final(text);
      connection_failed(conn, (final ? "TLS handshake refused: " : "Send failure: ") + text, final);
      return;
    }
    sent(*conn, *conn->ex);
    // The answer is not there yet the moment the request has gone: wait for it rather
    // than try a read that would fail, unless OpenSSL already holds bytes to decrypt.
    if (SSL_has_pending(conn->ssl))
      read_tls(conn);
    else
      tls_wait(conn, SSL_ERROR_WANT_READ, &impl::read_tls);
  }

  void read_tls(const std::shared_ptr<connection>& conn) {
    for (;;) {
      ERR_clear_error();
      const int n = SSL_read(conn->ssl, rbuf(), static_cast<int>(rbuf_size));
      if (n > 0) {
        conn->received += static_cast<std::size_t>(n);
        if (!parse(conn, std::string_view(rbuf(), static_cast<std::size_t>(n)))) return;
        continue;
      }
      const int e = SSL_get_error(conn->ssl, n);
      const int sys_errno = errno;
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        tls_wait(conn, e, &impl::read_tls);
        return;
      }
      if (e == SSL_ERROR_ZERO_RETURN) {
        // close_notify, or (SSL_OP_IGNORE_UNEXPECTED_EOF) a plain close, as most servers do.
        ERR_clear_error();
        at_eof(conn);
        return;
      }
      // TLS 1.3: a server that refuses the client certificate says so after the
      // handshake, as an alert read here.
      conn->tls_up = false;
      std::string text = tls_error_text(e, sys_errno);
      const bool final = tasks::tls_error_is_final(text);
      connection_failed(conn, (final ? "TLS handshake refused: " : "Recv failure: ") + text, final);
      return;
    }
  }

  // ---- HTTP/2: when ALPN chose h2, the connection carries its requests as streams of an
  // h2_session. Bytes read go to the session; what it has to send is written after every
  // read and after each round of submissions (pump); what it reports finished is acted on
  // here, never from inside nghttp2's callbacks.

  void h2_start(const std::shared_ptr<connection>& conn) {
    host_pool& hp = *conn->pool;
    conn->h2 = std::make_unique<h2_link>();
    if (!conn->h2->session.start()) {
      connection_failed(conn, conn->h2->session.error());
      return;
    }
    hp.h2conns.push_back(conn);
    conn->idle_since = steady::now();
    auto first = std::move(conn->ex);
    conn->ex.reset();
    if (first && !first->done) h2_submit(conn, first);
    h2_read(conn);  // the server's SETTINGS may have come with the handshake
    if (!conn->closed) pump(hp);
  }

  void h2_submit(const std::shared_ptr<connection>& conn, const std::shared_ptr<exchange>& ex) {
    const http_request& r = ex->out->req;
    std::string path;
    const std::string_view target = ex->target();
    if (target.empty() || target.front() == '?') path = "/";
    path += target;
    h2_request rq;
    rq.method = r.method;
    rq.authority = conn->pool->host_header;
    rq.path = path;
    rq.user_agent = user_agent;
    rq.headers = &r.headers;
    rq.body = r.body ? &*r.body : nullptr;
    rq.keep_body = ex->keep_body;
    std::string error;
    const std::int32_t id = conn->h2->session.submit(rq, error);
    if (id == 0) {
      ex->conn = nullptr;
      fail(*ex, std::move(error), false);
      return;
    }
    ex->conn = conn.get();
    ex->stream = id;
    ex->mark = conn->h2->bytes_in;
    ex->frames_mark = conn->h2->session.stream_frames();
    ex->early = !conn->h2->session.settings_received();
    conn->h2->streams.emplace(id, ex);
    conn->h2->dirty = true;
  }

  // Sends what the session has queued; acts on streams it finished meanwhile (on the
  // next turn: this may run inside pump).
  void h2_flush(const std::shared_ptr<connection>& conn) {
    if (conn->closed) return;
    conn->h2->dirty = false;
    if (!conn->h2->session.produce(conn->h2->out)) {
      h2_failed(conn, conn->h2->session.error());
      return;
    }
    h2_write(conn);
    if (!conn->closed && !conn->h2->settle_posted && (conn->h2->session.has_finished() || conn->h2->session.finished_both_ways())) {
      conn->h2->settle_posted = true;
      asio::post(io, [this, conn] {
        conn->h2->settle_posted = false;
        if (!conn->closed) h2_settle(conn);
      });
    }
  }

  void h2_write(const std::shared_ptr<connection>& conn) {
    while (conn->h2->out_off < conn->h2->out.size()) {
      ERR_clear_error();
      const int n = SSL_write(conn->ssl, conn->h2->out.data() + conn->h2->out_off,
                              static_cast<int>(std::min<std::size_t>(conn->h2->out.size() - conn->h2->out_off, INT_MAX)));
      if (n > 0) {
        conn->h2->out_off += static_cast<std::size_t>(n);
        continue;
      }
      const int e = SSL_get_error(conn->ssl, n);
      const int sys_errno = errno;
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        if (conn->h2->writing) return;
        conn->h2->writing = true;
        const auto what = e == SSL_ERROR_WANT_WRITE ? tcp::socket::wait_write : tcp::socket::wait_read;
        conn->sock->async_wait(what, [this, conn](const asio::error_code& ec) {
          conn->h2->writing = false;
          if (conn->closed) return;
          if (ec) {
            h2_failed(conn, "Send failure: " + ec.message());
            return;
          }
          h2_write(conn);
        });
        return;
      }
      conn->tls_up = false;
      std::string text = tls_error_text(e, sys_errno);
      const bool final = tasks::tls_error_is_final(text);
      h2_failed(conn, (final ? "TLS handshake refused: " : "Send failure: ") + text, final);
      return;
    }
    conn->h2->out.clear();
    conn->h2->out_off = 0;
  }

  // Reads everything the socket has, hands it to the session, acts on the outcome, and
  // waits for more: an HTTP/2 connection always has a read armed.
  void h2_read(const std::shared_ptr<connection>& conn) {
    for (;;) {
      ERR_clear_error();
      const int n = SSL_read(conn->ssl, rbuf(), static_cast<int>(rbuf_size));
      if (n > 0) {
        conn->h2->bytes_in += static_cast<std::size_t>(n);
        if (!conn->h2->session.receive(std::string_view(rbuf(), static_cast<std::size_t>(n)))) {
          h2_failed(conn, conn->h2->session.error());
          return;
        }
        continue;
      }
      const int e = SSL_get_error(conn->ssl, n);
      const int sys_errno = errno;
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
      if (e == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        conn->ending = true;
        h2_settle(conn);  // what came before the close counts
        if (!conn->closed) h2_failed(conn, {});
        return;
      }
      conn->tls_up = false;
      std::string text = tls_error_text(e, sys_errno);
      const bool final = tasks::tls_error_is_final(text);
      h2_failed(conn, (final ? "TLS handshake refused: " : "Recv failure: ") + text, final);
      return;
    }
    h2_settle(conn);
    if (conn->closed) return;
    conn->sock->async_wait(tcp::socket::wait_read, [this, conn](const asio::error_code& ec) {
      if (conn->closed) return;
      if (ec) {
        h2_failed(conn, "Recv failure: " + ec.message());
        return;
      }
      h2_read(conn);
    });
  }

  // Writes what the session has to say, then settles the streams it finished: results,
  // or back to the waiting line for those the server did not process.
  void h2_settle(const std::shared_ptr<connection>& conn) {
    h2_session& h2 = conn->h2->session;
    conn->h2->dirty = false;
    if (!h2.produce(conn->h2->out)) {
      h2_failed(conn, h2.error());
      return;
    }
    h2_write(conn);
    if (conn->closed) return;
    host_pool& hp = *conn->pool;
    // Idle from when its last stream ends: the server's PINGs and SETTINGS on an idle
    // connection do not keep it open past the idle limit.
    const bool carried = !conn->h2->streams.empty();
    // SETTINGS that allow no stream: what nghttp2 holds back would wait for a change that
    // may never come; it is refused here (and counted: see h2_deliver).
    if (h2.settings_received() && h2.max_streams() == 0) h2.withdraw_unsent();
    h2_deliver(conn);
    if (carried && conn->h2->streams.empty()) conn->idle_since = steady::now();
    // Nothing more will come (GOAWAY both ways, or a protocol error nghttp2 answered), or
    // the connection can take nothing new and has nothing left (kept open, it would hold
    // one of the host's connections for nothing).
    if (h2.finished_both_ways() || (conn->h2->streams.empty() && h2_closed_to_new(*conn))) {
      h2_failed(conn, h2.error());
      return;
    }
    pump(hp);
  }

  // Hands out the streams the session finished: results, or back to the waiting line for
  // those the server did not process. Also run when the connection breaks, so responses
  // that arrived whole before the break are not reported failed.
  void h2_deliver(const std::shared_ptr<connection>& conn) {
    h2_session& h2 = conn->h2->session;
    host_pool& hp = *conn->pool;
    std::vector<h2_session::finished> finished = std::move(h2.take_finished());
    h2.take_finished().clear();
    // All leave the connection before any result is handed out: a callback that submits
    // may fail this connection meanwhile, which fails what it still carries.
    std::vector<std::pair<std::shared_ptr<exchange>, h2_session::finished*>> leaving;
    leaving.reserve(finished.size());
    for (auto& f : finished) {
      auto it = conn->h2->streams.find(f.stream);
      if (it == conn->h2->streams.end()) continue;
      leaving.emplace_back(std::move(it->second), &f);
      conn->h2->streams.erase(it);
      leaving.back().first->conn = nullptr;
    }
    for (auto& [ex, fp] : leaving) {
      h2_session::finished& f = *fp;
      if (ex->done) continue;
      switch (f.how) {
        case h2_session::outcome::complete: {
          ++conn->served;
          http_result res;
          res.ticket = ex->ticket;
          res.code = f.code;
          res.duration_ms = std::chrono::duration<double, std::milli>(steady::now() - ex->start).count();
          res.retry_after = std::move(f.retry_after);
          if (ex->keeps_body_of(f.code)) res.body = std::move(f.body);
          res.truncated = f.truncated;
          finish(*ex, std::move(res));
          break;
        }
        case h2_session::outcome::refused: {
          // Not processed by the server: again, on a connection that accepts it, without
          // counting as an attempt. A refusal is the server's normal way to shed what is
          // over its limits when the stream went out before its SETTINGS told them (unless
          // they allow none at all) and the stream was over the limit they tell, or what is
          // above the last stream of a graceful GOAWAY that took some: those do not count.
          // A server that keeps refusing otherwise gets the error after a few.
          const bool over_limit = ex->early && h2.max_streams() > 0 &&
                                  static_cast<std::uint32_t>(ex->stream / 2) >= h2.max_streams();
          const bool expected = over_limit || h2.shed_by_goaway(f.stream);
          if (expected || ++ex->refusals <= max_refusals) {
            hp.waiting.push_front(std::move(ex));
            break;
          }
          fail(*ex, std::move(f.error), false);
          break;
        }
        case h2_session::outcome::failed:
          fail(*ex, std::move(f.error), false);
          break;
      }
    }
  }

  // The connection ends: its streams fail with `error` (empty: the server closed it, in
  // the HTTP/1.1 path's words), except one sent on a connection that had already served
  // and has received nothing since: the server likely closed it while idle, so it goes
  // once more on a new connection, as on HTTP/1.1.
  void h2_failed(const std::shared_ptr<connection>& conn, std::string error, bool tls_final = false) {
    if (conn->closed) return;
    host_pool& hp = *conn->pool;
    conn->ending = true;  // what the results' callbacks submit meanwhile goes elsewhere
    std::unordered_map<std::int32_t, std::shared_ptr<exchange>> streams;
    if (conn->h2) {
      h2_deliver(conn);
      streams = std::move(conn->h2->streams);
      conn->h2->streams.clear();
      if (error.empty()) error = conn->h2->session.error();
    }
    for (auto& [id, ex] : streams) {  // only an HTTP/2 connection has streams
      ex->conn = nullptr;
      if (ex->done) continue;
      const std::size_t got = conn->h2->session.received(id);
      if (may_go_again(*conn) && conn->h2->bytes_in == ex->mark && !tls_final && !ex->retried) {
        ex->retried = true;
        ex->after = hp.dialled;
        hp.waiting.push_front(ex);
        continue;
      }
      std::string why = !error.empty() ? error : got ? "Transferred a partial file" : "Empty reply from server";
      fail(*ex, std::move(why), false, false, tls_final);
    }
    close(*conn);
    pump(hp);
  }

  void start_exchange(const std::shared_ptr<connection>& conn, const std::shared_ptr<exchange>& ex) {
    conn->ex = ex;
    ex->conn = conn.get();
    write_request(conn);
  }

  void write_request(const std::shared_ptr<connection>& conn) {
    if (conn->ex->out->wire.empty()) build_wire(*conn->ex);
    conn->received = 0;
    conn->written = 0;
    if (conn->ssl)
      write_tls(conn);
    else
      write_plain(conn);
  }

  void write_plain(const std::shared_ptr<connection>& conn) {
    const std::string& w = conn->ex->out->wire;
    while (conn->written < w.size()) {
      const ssize_t n = ::send(conn->fd, w.data() + conn->written, w.size() - conn->written, MSG_NOSIGNAL);
      if (n >= 0) {
        conn->written += static_cast<std::size_t>(n);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        conn->wr_ready = false;
        wait_fd(conn, true, fd_step::write);
        return;
      }
      connection_failed(conn, "Send failure: " + system_text(errno));
      return;
    }
    sent(*conn, *conn->ex);
    // The answer is not there the moment the request has gone: wait for it (no system
    // call) rather than try a read that would fail.
    wait_fd(conn, false, fd_step::read);
  }

  // Whether a request that fails on `c` before any byte of its answer arrived goes once
  // more on a new connection (connection_failed, h2_failed): only where `c` had served
  // before, since the server may then have closed it while it was idle.
  static bool may_go_again(const connection& c) { return c.served > 0; }

  // The request has gone whole: its bytes are not kept while the answer is awaited (a
  // slow host holds many such requests). One sent again on a new connection, after a
  // stale one, is made again from the request; where nothing is ever sent again, the
  // request goes too.
  static void sent(const connection& c, exchange& ex) {
    if (may_go_again(c))
      std::string().swap(ex.out->wire);
    else
      ex.out.reset();
  }

  // Plain HTTP/1.1 reads, once the socket is readable: into the client's shared buffer,
  // parsed before the next read, until the answer is whole or the socket has nothing
  // more for now. A read that comes up short says so, unless the server has closed
  // (its end arrived with the bytes: no event comes for it again); an event comes for
  // whatever arrives after it.
  void read_plain(const std::shared_ptr<connection>& conn) {
    for (;;) {
      const ssize_t n = ::recv(conn->fd, rbuf(), rbuf_size, 0);
      if (n > 0) {
        const auto got = static_cast<std::size_t>(n);
        conn->received += got;
        if (got < rbuf_size) conn->rd_ready = conn->hup;
        if (!parse(conn, std::string_view(rbuf(), got))) return;
        if (got < rbuf_size) {
          wait_fd(conn, false, fd_step::read);
          return;
        }
        continue;
      }
      if (n == 0) {
        at_eof(conn);
        return;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        conn->rd_ready = false;
        wait_fd(conn, false, fd_step::read);
        return;
      }
      connection_failed(conn, "Recv failure: " + system_text(errno));
      return;
    }
  }

  // The server closed: the end of a body read to the close, or a cut response.
  void at_eof(const std::shared_ptr<connection>& conn) {
    http1_response_parser& parser = parser_of(*conn);
    if (parser.finish() == http1_response_parser::status::complete)
      complete(conn, false);
    else
      connection_failed(conn, std::string(parser.error()));
  }

  // The parser of the connection's current response, taken when its first bytes arrive
  // (or it ends before any) from the client's spare ones, and given back when it ends
  // (release_parser).
  http1_response_parser& parser_of(connection& c) {
    if (!c.parser) {
      if (spare_parsers.empty()) {
        c.parser = std::make_unique<http1_response_parser>();
      } else {
        c.parser = std::move(spare_parsers.back());
        spare_parsers.pop_back();
      }
      c.parser->begin(c.ex && c.ex->head, c.ex ? c.ex->keep_body : 0);
    }
    return *c.parser;
  }

  void release_parser(connection& c) {
    if (!c.parser) return;
    if (spare_parsers.size() < max_spare_parsers && c.parser->retained() <= max_spare_parser_bytes)
      spare_parsers.push_back(std::move(c.parser));
    c.parser.reset();
  }

  // Hands what has arrived to the parser; completes or fails the exchange, or returns true
  // when more is needed (the caller reads on). Bytes go to the parser straight from the
  // read buffer; only a partial line it leaves (at most its line limit) is kept for the
  // next read.
  bool parse(const std::shared_ptr<connection>& conn, std::string_view fresh) {
    connection& c = *conn;
    http1_response_parser& parser = parser_of(c);
    http1_response_parser::status st;
    if (!c.in) {
      st = parser.feed(fresh);
      fresh.remove_prefix(parser.consumed());
      if (!fresh.empty()) c.in = std::make_unique<std::string>(fresh);
    } else {
      c.in->append(fresh);
      st = parser.feed(*c.in);
      c.in->erase(0, parser.consumed());
      if (c.in->empty()) c.in.reset();
    }
    switch (st) {
      case http1_response_parser::status::need_more:
        return true;
      case http1_response_parser::status::complete:
        // Bytes after the response on a keep-alive connection: nothing was asked for
        // them, so the connection is not trusted with another request.
        complete(conn, parser.keep_alive() && !c.in && !(c.ssl && SSL_has_pending(c.ssl)));
        return false;
      case http1_response_parser::status::error:
        connection_failed(conn, std::string(parser.error()));
        return false;
    }
    return false;
  }

  void complete(const std::shared_ptr<connection>& conn, bool reusable) {
    connection& c = *conn;
    http1_response_parser& parser = parser_of(c);  // taken while c.ex is the request it answers
    auto ex = std::move(c.ex);
    c.ex.reset();
    host_pool& hp = *c.pool;
    if (ex && !ex->done) {
      http_result res;
      res.ticket = ex->ticket;
      res.code = parser.code();
      res.duration_ms = std::chrono::duration<double, std::milli>(steady::now() - ex->start).count();
      if (auto ra = parser.header("Retry-After")) res.retry_after.emplace(*ra);
      if (ex->keeps_body_of(res.code)) res.body = parser.take_body();
      res.truncated = parser.truncated();
      finish(*ex, std::move(res));
    }
    release_parser(c);
    if (reusable && !stopped && c.generation == hp.generation) {
      ++c.served;
      c.idle_since = steady::now();
      hp.idle.push_back(conn);
    } else {
      close(c);
    }
    pump(hp);
  }

  // tls_final: the TLS layer refused (tasks::tls_error_is_final); reported as tls_failed.
  void connection_failed(const std::shared_ptr<connection>& conn, std::string error, bool tls_final = false) {
    auto ex = conn->ex;
    host_pool& hp = *conn->pool;
    const bool stale = may_go_again(*conn) && conn->received == 0 && !tls_final;
    close(*conn);
    if (ex && !ex->done) {
      if (stale && !ex->retried) {
        // The server closed this keep-alive connection while it was idle; the request
        // never reached it. Once more on a new connection.
        ex->retried = true;
        ex->after = hp.dialled;
        ex->conn = nullptr;
        hp.waiting.push_front(ex);
      } else {
        fail(*ex, std::move(error), false, false, tls_final);
      }
    }
    pump(hp);
  }

  void close(connection& c) {
    if (c.closed) return;
    c.closed = true;
    if (c.ssl && c.tls_up) {
      // close_notify, best effort and without waiting: a session OpenSSL sees end
      // without it is marked not resumable.
      ERR_clear_error();
      SSL_shutdown(c.ssl);
      ERR_clear_error();
    }
    if (c.fd >= 0) {
      const int fd = c.fd;
      auto owned = unwatch_fd(c, false);
      ::close(fd);
      let_go_later(std::move(owned));
    } else {
      asio::error_code ignored;
      if (c.sock) c.sock->close(ignored);
    }
    if (c.ex) c.ex->conn = nullptr;
    c.ex.reset();
    release_parser(c);
    if (c.h2) {
      for (auto& [id, ex] : c.h2->streams) ex->conn = nullptr;
      c.h2->streams.clear();
    }
    if (c.deciding) --c.pool->connecting;
    c.deciding = false;
    --c.pool->open;
  }

  void on_timeout(const std::shared_ptr<exchange>& ex) {
    if (ex->done) return;
    std::size_t got = 0;
    host_pool& hp = *ex->pool;
    if (ex->conn && ex->conn->h2) {
      // Only this stream ends (RST_STREAM CANCEL); the connection carries on, unless the
      // server answered nothing on any stream since this one went out: one that has
      // stopped answering would take every new stream and time each out, so it takes none
      // and closes when its other streams are settled (as does any that takes nothing new).
      auto c = ex->conn->shared_from_this();
      got = c->h2->session.received(ex->stream);
      c->h2->session.cancel(ex->stream);
      c->h2->streams.erase(ex->stream);
      ex->conn = nullptr;
      if (c->h2->session.stream_frames() == ex->frames_mark) c->ending = true;
      if (c->h2->streams.empty()) c->idle_since = steady::now();
      c->h2->dirty = true;
      if (c->h2->streams.empty() && h2_closed_to_new(*c)) h2_goodbye(*c);
    } else if (ex->conn) {
      got = ex->conn->received;
      // The connection is mid-exchange: it can't carry another request.
      connection* c = ex->conn;
      close(*c);
    }
    double ms = std::chrono::duration<double, std::milli>(steady::now() - ex->start).count();
    fail(*ex, "Operation timed out after " + std::to_string(static_cast<long long>(ms)) + " milliseconds with " +
                  std::to_string(got) + " bytes received",
         true);
    pump(hp);
  }

  void fail(exchange& ex, std::string error, bool timed_out, bool egress_denied = false, bool tls_failed = false) {
    http_result res;
    res.ticket = ex.ticket;
    res.error = std::move(error);
    res.timed_out = timed_out;
    res.egress_denied = egress_denied;
    res.tls_failed = tls_failed;
    res.duration_ms = std::chrono::duration<double, std::milli>(steady::now() - ex.start).count();
    finish(ex, std::move(res));
  }

  void finish(exchange& ex, http_result&& res) {
    ex.done = true;
    unwatch(ex);
    --in_flight;
    done(std::move(res));
  }

  void arm_reaper() {
    const auto sweep = std::clamp<steady::duration>(idle_limit / 2, std::chrono::milliseconds(10), std::chrono::seconds(5));
    reaper.expires_after(sweep);
    reaper.async_wait([this](const asio::error_code& ec) {
      if (ec || stopped) return;
      // Idle keep-alive connections the server has likely closed by now: let them go.
      auto now = steady::now();
      for (auto it = pools.begin(); it != pools.end();) {
        host_pool& hp = *it->second;
        auto& idle = hp.idle;
        for (auto& c : idle)
          if (now - c->idle_since > idle_limit) close(*c);
        idle.erase(std::remove_if(idle.begin(), idle.end(), [](const auto& c) { return c->closed; }), idle.end());
        // HTTP/2 connections with no stream for as long: a GOAWAY, best effort, and close.
        for (auto c : std::vector(hp.h2conns))
          if (!c->closed && c->h2->streams.empty() && now - c->idle_since > idle_limit) h2_goodbye(*c);
        std::erase_if(hp.h2conns, [](const auto& c) { return c->closed; });
        // An origin with nothing left (no connection, nothing waiting, no lookup running)
        // goes too, so webhooks to ever new hosts do not add up. Nothing points to it:
        // connections and waiting exchanges are gone, and finished exchanges have left
        // the deadline heap.
        if (hp.open == 0 && hp.idle.empty() && hp.waiting.empty() && !hp.resolving)
          it = pools.erase(it);
        else
          ++it;
      }
      arm_reaper();
    });
  }

  // Closes an HTTP/2 connection that carries nothing the caller still waits for, telling
  // the server first (GOAWAY, written if the socket takes it at once).
  void h2_goodbye(connection& c) {
    if (c.closed) return;
    if (c.tls_up && c.h2) {
      c.h2->session.terminate();
      if (c.h2->session.produce(c.h2->out) && c.h2->out_off < c.h2->out.size()) {
        ERR_clear_error();
        SSL_write(c.ssl, c.h2->out.data() + c.h2->out_off, static_cast<int>(std::min<std::size_t>(c.h2->out.size() - c.h2->out_off, INT_MAX)));
        ERR_clear_error();
      }
    }
    close(c);
  }

  // Connections dialled under rules that changed: idle ones close now, HTTP/2 ones with
  // no stream too (busy ones close when they finish).
  void retire_old(host_pool& hp) {
    ++hp.generation;
    for (auto& c : hp.idle) close(*c);
    hp.idle.clear();
    for (auto c : std::vector(hp.h2conns))
      if (c->h2->streams.empty()) h2_goodbye(*c);
  }

  void shutdown() {
    stopped = true;
    reaper.cancel();
    // No timeout fires from here on: requests not finished get no result.
    deadline_timer.cancel();
    for (auto& d : deadlines) d.ex->deadline_slot = no_slot;
    deadlines.clear();
    for (auto& [key, hp] : pools) {
      for (auto& c : hp->idle) close(*c);
      hp->idle.clear();
      for (auto& c : hp->h2conns) {
        for (auto& [id, ex] : c->h2->streams) ex->done = true;
        h2_goodbye(*c);
      }
      hp->h2conns.clear();
      for (auto& ex : hp->waiting) {
        ex->done = true;
        if (ex->conn) close(*ex->conn);
      }
      hp->waiting.clear();
    }
  }
};

http1_client::http1_client(asio::io_context& io, std::string user_agent, done_fn done,
                           std::chrono::steady_clock::duration idle_limit)
    : impl_(std::make_unique<impl>(io, std::move(user_agent), std::move(done), idle_limit)) {}

http1_client::~http1_client() { impl_->shutdown(); }

bool http1_client::eligible(const http_request& r) {
  if (r.follow_redirects) return false;
  std::string_view authority, target;
  bool tls = false;
  if (!split_url(r.url, tls, authority, target)) return false;
  if (authority.find('@') != std::string_view::npos) return false;  // credentials: curl
  for (unsigned char ch : r.url)
    if (ch <= 0x20 || ch >= 0x7f) return false;
  return true;
}

void http1_client::set_per_host(const std::string& pool, unsigned cap) {
  impl_->caps[pool] = cap;
  for (auto& [key, hp] : impl_->pools) {
    if (hp->name != pool) continue;
    hp->cap = cap;
    impl_->pump(*hp);  // a raised cap lets waiting requests go now
  }
}

void http1_client::set_egress(const std::string& pool, std::shared_ptr<const tasks::egress_rules> rules) {
  auto same = [](const std::shared_ptr<const tasks::egress_rules>& a, const std::shared_ptr<const tasks::egress_rules>& b) {
    const auto& x = a ? *a : tasks::default_egress_rules();
    const auto& y = b ? *b : tasks::default_egress_rules();
    return x == y;
  };
  for (auto& [key, hp] : impl_->pools) {
    if (hp->name != pool) continue;
    if (!same(hp->egress, rules)) impl_->retire_old(*hp);  // connections are judged again
    hp->egress = rules;
  }
  impl_->egress[pool] = std::move(rules);
}

void http1_client::set_tls(const std::string& pool, std::shared_ptr<const tasks::tls_trust> trust) {
  auto same = [](const std::shared_ptr<const tasks::tls_trust>& a, const std::shared_ptr<const tasks::tls_trust>& b) {
    static const tasks::tls_trust none;
    return (a ? *a : none) == (b ? *b : none);
  };
  for (auto& [key, hp] : impl_->pools) {
    if (hp->name != pool || !hp->tls) continue;
    if (!same(hp->trust, trust)) {
      // Connections were verified (and present a certificate) under the old trust; its
      // sessions must not be resumed under the new one.
      impl_->retire_old(*hp);
      if (hp->session) SSL_SESSION_free(hp->session);
      hp->session = nullptr;
    }
    hp->trust = trust;
  }
  impl_->trusts[pool] = std::move(trust);
}

void http1_client::set_http2(const std::string& pool, bool on) {
  impl_->http2s[pool] = on;
  for (auto& [key, hp] : impl_->pools) {
    if (hp->name != pool || !hp->tls || hp->http2 == on) continue;
    hp->http2 = on;
    hp->proto = impl::host_pool::proto::unknown;
    impl_->retire_old(*hp);  // the next connections offer what is asked now
  }
}

void http1_client::submit(http_request&& r) { impl_->submit(std::move(r)); }

void http1_client::shutdown() { impl_->shutdown(); }

std::size_t http1_client::in_flight() const { return impl_->in_flight; }

std::size_t http1_client::origins() const { return impl_->pools.size(); }
std::size_t http1_client::timed() const { return impl_->deadlines.size(); }

}  // namespace respq::workers
