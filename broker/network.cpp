// network: see network.hpp.
#include "broker/network.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <cerrno>

#include <asio.hpp>
#include <asio/bind_allocator.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <chrono>
#include <thread>
#include <unordered_map>

#include "broker/core/json_intake.hpp"
#include "broker/core/log.hpp"
#include "broker/core/server.hpp"
#include "broker/core/task_manager.hpp"
#include "broker/sd_notify.hpp"

namespace respq::broker {

using asio::ip::tcp;
using core::clock;

namespace {

// Bytes asked of each read when no large bulk is pending: Redis's PROTO_IOBUF_LEN.
constexpr std::size_t read_chunk = 16 * 1024;
constexpr std::size_t keep_output_capacity = 64 * 1024;

std::string format_endpoint(const tcp::endpoint& ep) {
  auto addr = ep.address();
  if (addr.is_v6()) {
    auto v6 = addr.to_v6();
    if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_string() + ":" + std::to_string(ep.port());
    return "[" + v6.to_string() + "]:" + std::to_string(ep.port());
  }
  return addr.to_string() + ":" + std::to_string(ep.port());
}

bool is_loopback(const asio::ip::address& a) {
  if (a.is_loopback()) return true;
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).is_loopback();
  return false;
}

const char* denied_message =
    "-DENIED respq is running in protected mode because protected mode is enabled and no password is set for the "
    "default user. In this mode connections are only accepted from the loopback interface. If you want to connect "
    "from external computers you may adopt one of the following solutions: 1) Disable protected mode by sending the "
    "command 'CONFIG SET protected-mode no' from the loopback interface, however MAKE SURE respq is not publicly "
    "accessible from internet if you do so. 2) Set the protected-mode option to 'no' in the configuration file and "
    "restart the server. 3) If you started the server manually just for testing, restart it with the "
    "'--protected-mode no' option. 4) Set up an authentication password for the default user (requirepass).\r\n";

// Memory for one outstanding handler of a connection (its read, or its write), so the
// hot path allocates nothing: asio's per-thread cache holds only a few blocks, which 50
// connections with a read and a write each in flight overflow on every request.
class handler_memory {
 public:
  void* allocate(std::size_t size) {
    if (!in_use_ && size <= sizeof storage_) {
      in_use_ = true;
      return storage_;
    }
    return ::operator new(size);
  }
  void deallocate(void* p) {
    if (p == storage_) in_use_ = false;
    else ::operator delete(p);
  }

 private:
  alignas(std::max_align_t) unsigned char storage_[512];
  bool in_use_ = false;
};

template <typename T>
class handler_allocator {
 public:
  using value_type = T;
  explicit handler_allocator(handler_memory& m) : memory_(&m) {}
  template <typename U>
  handler_allocator(const handler_allocator<U>& other) noexcept : memory_(other.memory_) {}
  T* allocate(std::size_t n) const { return static_cast<T*>(memory_->allocate(sizeof(T) * n)); }
  void deallocate(T* p, std::size_t) const { memory_->deallocate(p); }
  bool operator==(const handler_allocator& o) const noexcept { return memory_ == o.memory_; }
  bool operator!=(const handler_allocator& o) const noexcept { return memory_ != o.memory_; }

 private:
  template <typename>
  friend class handler_allocator;
  handler_memory* memory_;
};

}  // namespace

struct connection {
  explicit connection(tcp::socket s) : sock(std::move(s)) {}
  ~connection() {
    if (ssl) SSL_free(ssl);
  }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  tcp::socket sock;
  // A tls-port connection: OpenSSL on the non-blocking socket, driven by the same
  // readiness waits as a plain one (see read_tls, send_tls).
  SSL* ssl = nullptr;
  bool handshaken = false;
  core::client* c = nullptr;
  std::string wbuf;     // bytes being written asynchronously (the core keeps appending to c->out)
  std::size_t wbuf_offset = 0;
  bool writing = false;
  bool closed = false;
  bool eof_while_busy = false;  // seen by serve_busy(); the loop closes it afterwards
  // serve_busy(): the script run (busy_run) it was last looked at in, and whether its
  // output then held replies that must wait for the turn's effects to be persisted.
  std::uint64_t busy_epoch = 0;
  bool held_while_busy = false;
  bool json = false;            // a json-port connection: JSON tasks in, nothing out
  core::json_splitter splitter;
  enum class read_result { nothing, drained, more, closed };
  handler_memory read_memory, write_memory;
};

struct network::impl {
  explicit impl(core::server& srv) : s(srv) {}

  core::server& s;
  // One thread runs this context and only it touches the sockets, so the reactor needs no
  // per-descriptor locking; posts from other threads still go through the locked queue.
  asio::io_context io{ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::vector<std::unique_ptr<tcp::acceptor>> json_acceptors;  // json-port
  std::vector<std::unique_ptr<tcp::acceptor>> tls_acceptors;   // tls-port
  SSL_CTX* tls_ctx = nullptr;                                  // tls-port's, made by listen()
  std::unordered_map<connection*, std::shared_ptr<connection>> conns;
  asio::steady_timer deadline_timer{io};
  clock::time_point armed = clock::time_point::max();
  asio::steady_timer cron_timer{io};
  asio::steady_timer shutdown_timer{io};
  asio::signal_set signals{io, SIGINT, SIGTERM, SIGHUP};
  bool flush_posted = false;
  std::uint64_t flush_epoch = 1;  // counts flush(): the turns whose effects were persisted
  // serve_busy(): which script run it serves, a new one per script caller and turn (two
  // scripts of one turn are two runs: replies made between them were made before the second).
  std::uint64_t busy_run = 0, busy_run_flush = 0;
  const core::client* busy_run_caller = nullptr;
  // Group commit (appendfsync always): reads processed since the flush was scheduled, and
  // how many times it has been deferred to let them join this turn's fsync.
  std::uint64_t inputs = 0, inputs_seen = 0;
  int flush_hops = 0;
  bool stopping = false;
  bool finished = false;
  clock::time_point stop_deadline;
  std::function<void()>* on_stopping = nullptr;

  void start_accept(tcp::acceptor& a, bool json = false, bool tls = false);
  void on_accept(tcp::socket sock, bool json = false, bool tls = false);
  connection::read_result read_tls(connection& conn);
  void send_tls(const std::shared_ptr<connection>& conn);
  // resume: the pause ended; parse what was read before reading more.
  void json_ready(const std::shared_ptr<connection>& conn, bool resume = false);
  void start_read(const std::shared_ptr<connection>& conn);
  connection::read_result read_some(connection& conn);
  void read_ready(const std::shared_ptr<connection>& conn);
  void serve_busy();
  void accept_ready(tcp::acceptor& a, bool json, bool tls);
  void schedule_flush();
  std::size_t requests_in_flight() const;  // the task manager's and the shared queues'
  void run_flush();
  void flush();
  void write_client(connection& conn);
  void close(connection& conn);
  void rearm_deadline();
  void start_cron();
  void arm_signals();
  void begin_shutdown();
  void run_loop();
  void check_shutdown();
  void finish_shutdown();
};

// The acceptor is waited on, and connections are accepted here, never ahead: an
// async_accept would take a connection from the kernel as soon as it is re-armed and queue
// its completion, and if a script then ran past busy-reply-threshold that connection
// would sit accepted, unknown to serve_busy(), unanswered until the script ended.
void network::impl::start_accept(tcp::acceptor& a, bool json, bool tls) {
  a.async_wait(tcp::acceptor::wait_read, [this, &a, json, tls](const asio::error_code& ec) {
    if (stopping || ec == asio::error::operation_aborted) return;
    if (!ec) accept_ready(a, json, tls);
  });
}

void network::impl::accept_ready(tcp::acceptor& a, bool json, bool tls) {
  for (int i = 0; i < 64; ++i) {
    asio::error_code ec;
    tcp::socket sock(io);
    a.accept(sock, ec);  // non-blocking: would_block once the backlog is empty
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      start_accept(a, json, tls);
      return;
    }
    if (ec == asio::error::connection_aborted) continue;
    if (ec) {
      // Out of descriptors and the like: say so and retry shortly rather than spin.
      core::log_warning("Accepting client connection: " + ec.message());
      auto t = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(100));
      t->async_wait([this, &a, t, json, tls](const asio::error_code& e) {
        if (!e && !stopping) accept_ready(a, json, tls);
      });
      return;
    }
    on_accept(std::move(sock), json, tls);
  }
  // More may wait, and the edge-triggered reactor will not say so again: go on after the
  // other handlers of this turn.
  asio::post(io, [this, &a, json, tls] {
    if (!stopping) accept_ready(a, json, tls);
  });
}

void network::impl::on_accept(tcp::socket sock, bool json, bool tls) {
  asio::error_code ec;
  auto remote = sock.remote_endpoint(ec);
  if (ec) return;
  auto local = sock.local_endpoint(ec);
  sock.non_blocking(true, ec);
  sock.set_option(tcp::no_delay(true), ec);
  if (s.cfg().tcp_keepalive > 0) {
    sock.set_option(asio::socket_base::keep_alive(true), ec);
    int idle = static_cast<int>(s.cfg().tcp_keepalive);
    int intvl = std::max(1, idle / 3), cnt = 3;
    ::setsockopt(sock.native_handle(), IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    ::setsockopt(sock.native_handle(), IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    ::setsockopt(sock.native_handle(), IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
  }
  // A refusal is written in clear on the plain port; a TLS client could not read it, so
  // its connection is just closed.
  if (s.cfg().protected_mode && s.cfg().requirepass.empty() && !is_loopback(remote.address())) {
    if (!tls) asio::write(sock, asio::buffer(std::string_view(denied_message)), ec);
    return;
  }
  SSL* ssl = nullptr;
  if (tls) {
    ssl = SSL_new(tls_ctx);
    if (!ssl || SSL_set_fd(ssl, static_cast<int>(sock.native_handle())) != 1) {
      if (ssl) SSL_free(ssl);
      ERR_clear_error();
      return;
    }
    SSL_set_accept_state(ssl);
  }
  std::string refusal;
  core::client* c = s.accept_client(format_endpoint(remote), format_endpoint(local),
                                    static_cast<int>(sock.native_handle()), refusal);
  if (!c) {
    if (!tls) asio::write(sock, asio::buffer(refusal), ec);
    if (ssl) SSL_free(ssl);
    return;
  }
  auto conn = std::make_shared<connection>(std::move(sock));
  conn->ssl = ssl;
  conn->c = c;
  conn->json = json;
  // json-port has no AUTH: the seed's client sends tasks and nothing else. Who may
  // connect is decided by bind and protected mode, as for the RESP port.
  if (json) c->authenticated = true;
  c->io = conn.get();
  conns.emplace(conn.get(), conn);
  start_read(conn);
}

void network::impl::start_read(const std::shared_ptr<connection>& conn) {
  // Readiness, not data: the bytes stay in the kernel until read_ready() takes them, so
  // nothing the loop holds is ever read ahead of what the core has seen. That is what lets
  // serve_busy() read a client's socket directly while a script runs.
  conn->sock.async_wait(tcp::socket::wait_read, asio::bind_allocator(handler_allocator<char>(conn->read_memory), [this, conn](const asio::error_code& ec) {
    if (conn->closed) return;
    if (ec) {
      close(*conn);
      schedule_flush();
      return;
    }
    if (conn->json) json_ready(conn);
    else read_ready(conn);
  }));
}

// A json-port connection is readable: read once (the same readiness wait and
// non-blocking recv as RESP clients), then enqueue every complete JSON value in the
// buffer (json_intake.hpp). The limits of RESP clients apply: the value in progress may
// not pass client-query-buffer-limit nor proto-max-bulk-len (it becomes an LPUSH
// argument); idle clients are closed after `timeout`; maxclients counts them. Nothing is
// written back: a task the server refuses (OOM, MISCONF) is logged and the connection
// closed, so the writer's next write fails instead of its tasks vanishing unseen.
void network::impl::json_ready(const std::shared_ptr<connection>& conn, bool resume) {
  core::client* c = conn->c;
  const auto r = resume ? connection::read_result::more : read_some(*conn);
  if (r == connection::read_result::nothing) {
    start_read(conn);
    return;
  }
  const bool eof = r == connection::read_result::closed;
  c->last_interaction = clock::now();
  std::string refused;
  bool paused = false;
  while (!c->close_asap) {
    const std::string_view buf = c->in.view();
    const auto piece = conn->splitter.next(buf, eof);
    if (piece.what == core::json_splitter::kind::none) {
      c->in.consume(piece.size);
      break;
    }
    if (s.pause_on()) {  // each value is an LPUSH: it waits, with those after it
      paused = true;
      break;
    }
    s.stats().net_input_bytes += piece.size;
    refused = core::json_intake(s, *c, buf.substr(piece.skip, piece.size - piece.skip),
                                piece.what == core::json_splitter::kind::json);
    c->in.consume(piece.size);
    if (!refused.empty()) break;
  }
  const std::uint64_t limit = std::min(s.cfg().client_query_buffer_limit, s.cfg().proto_max_bulk_len);
  if (!refused.empty()) {
    core::log_warning("json-port: a task from " + c->addr + " was refused (" + refused +
                      "); closing the connection");
  } else if (c->in.size() > limit) {
    core::log_warning("Closing client that reached max query buffer length: id=" + std::to_string(c->id) +
                      " addr=" + c->addr + " qbuf=" + std::to_string(c->in.size()) + " (json-port)");
  }
  if (s.stream().active()) schedule_flush();
  else flush();
  if (conn->closed) return;
  if (paused && !c->close_asap) {
    // Neither read nor parsed until the pause ends (the values wait in order, the socket's
    // own buffer pushes back): the server resumes it among the held clients.
    s.hold_json(*c);
    return;
  }
  if (eof || !refused.empty() || c->close_asap || c->in.size() > limit) {
    close(*conn);
    schedule_flush();
    return;
  }
  if (c->in.empty()) c->in.shrink_if_idle(64 * 1024);
  if (r == connection::read_result::more) {
    asio::post(io, [this, conn] {
      if (!conn->closed) json_ready(conn);
    });
    return;
  }
  start_read(conn);
}

connection::read_result network::impl::read_some(connection& conn) {
  ++s.stats().reads_processed;
  if (conn.ssl) return read_tls(conn);
  core::client* c = conn.c;
  // A large bulk in progress: read it in as few calls as possible.
  std::size_t want = read_chunk;
  std::size_t needed = c->parser.bytes_needed();
  if (needed > c->in.size() && needed - c->in.size() > want) want = needed - c->in.size();
  char* p = c->in.prepare(want);
  const std::size_t room = c->in.writable();
  const ssize_t n = ::recv(conn.sock.native_handle(), p, room, MSG_DONTWAIT);
  if (n > 0) {
    c->in.commit(static_cast<std::size_t>(n));
    ++inputs;
    return static_cast<std::size_t>(n) == room ? connection::read_result::more : connection::read_result::drained;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return connection::read_result::nothing;
  return connection::read_result::closed;  // EOF or a reset
}

// A tls-port connection is readable: finish the handshake first, then decrypt until
// OpenSSL has drained the socket (it asks for more: WANT_READ) or the buffer is full. Like
// a plain recv() that returns less than asked, WANT_READ means the kernel has nothing left,
// so the next readiness wait cannot miss data; a full buffer is `more`, read on later.
connection::read_result network::impl::read_tls(connection& conn) {
  core::client* c = conn.c;
  if (!conn.handshaken) {
    ERR_clear_error();
    const int r = SSL_do_handshake(conn.ssl);
    if (r != 1) {
      const int e = SSL_get_error(conn.ssl, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return connection::read_result::nothing;
      char text[256] = "the connection closed";
      if (const unsigned long code = ERR_peek_last_error()) ERR_error_string_n(code, text, sizeof text);
      ERR_clear_error();
      core::log_verbose("Error accepting a client connection: TLS handshake with " + c->addr + " failed: " + text);
      return connection::read_result::closed;
    }
    conn.handshaken = true;
  }
  // At most this much per call, like one plain recv(): a client that sends faster than we
  // decrypt is served in turns with the others (the rest is read on as `more`).
  constexpr std::size_t turn_limit = 256 * 1024;
  std::size_t total = 0;
  bool got = false;
  for (;;) {
    std::size_t want = read_chunk;
    const std::size_t needed = c->parser.bytes_needed();
    if (needed > c->in.size() && needed - c->in.size() > want) want = needed - c->in.size();
    char* p = c->in.prepare(want);
    const std::size_t room = std::min<std::size_t>(c->in.writable(), 1u << 30);
    ERR_clear_error();
    const int n = SSL_read(conn.ssl, p, static_cast<int>(room));
    if (n > 0) {
      c->in.commit(static_cast<std::size_t>(n));
      got = true;
      total += static_cast<std::size_t>(n);
      if (static_cast<std::size_t>(n) == room || total >= turn_limit) {
        ++inputs;
        return connection::read_result::more;
      }
      continue;
    }
    const int e = SSL_get_error(conn.ssl, n);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      if (!got) return connection::read_result::nothing;
      ++inputs;
      return connection::read_result::drained;
    }
    // Closed (close_notify, EOF) or broken: what came before it is served first, and the
    // next read sees the end again.
    if (!got) return connection::read_result::closed;
    ++inputs;
    return connection::read_result::more;
  }
}

// Encrypts and sends wbuf from wbuf_offset on. OpenSSL runs in partial-write mode, so each
// record sent moves the offset; when the socket is full (WANT_WRITE), or OpenSSL needs to
// read first (WANT_READ), it waits for that readiness and carries on with the same bytes.
void network::impl::send_tls(const std::shared_ptr<connection>& conn) {
  connection& cn = *conn;
  while (cn.wbuf_offset < cn.wbuf.size()) {
    const std::size_t len = std::min<std::size_t>(cn.wbuf.size() - cn.wbuf_offset, 1u << 30);
    ERR_clear_error();
    const int n = SSL_write(cn.ssl, cn.wbuf.data() + cn.wbuf_offset, static_cast<int>(len));
    ++s.stats().writes_processed;
    if (n > 0) {
      cn.wbuf_offset += static_cast<std::size_t>(n);
      s.stats().net_output_bytes += static_cast<std::uint64_t>(n);
      continue;
    }
    const int e = SSL_get_error(cn.ssl, n);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
      cn.sock.async_wait(e == SSL_ERROR_WANT_WRITE ? tcp::socket::wait_write : tcp::socket::wait_read,
                         [this, conn](const asio::error_code& ec) {
                           if (conn->closed) return;
                           if (ec) {
                             conn->writing = false;
                             close(*conn);
                             return;
                           }
                           send_tls(conn);
                         });
      return;
    }
    cn.writing = false;
    close(cn);
    return;
  }
  cn.writing = false;
  cn.wbuf.clear();
  if (cn.wbuf.capacity() > keep_output_capacity) cn.wbuf.shrink_to_fit();
  if (cn.c && cn.c->out.capacity() > keep_output_capacity && cn.c->out.empty()) cn.c->out.shrink_to_fit();
  write_client(cn);
}

void network::impl::read_ready(const std::shared_ptr<connection>& conn) {
  const auto r = read_some(*conn);
  if (r == connection::read_result::closed) {
    close(*conn);
    schedule_flush();
    return;
  }
  if (r != connection::read_result::nothing) {
    s.on_input(*conn->c);
    // Batching replies across the clients of a turn only pays when a sink wants the turn
    // as one batch (the AOF's group commit, the mirror's merged writes): then the flush
    // is posted behind the turn's reads. Otherwise every reply needs its own send anyway,
    // and flushing here saves the post and the reactor poll asio runs before it.
    if (s.stream().active()) schedule_flush();
    else flush();
    if (conn->closed) return;
  }
  if (r == connection::read_result::more) {
    // The read filled the buffer: more may be waiting, and the edge-triggered reactor will
    // not say so again. Read on after the other handlers of this turn had their go.
    asio::post(io, asio::bind_allocator(handler_allocator<char>(conn->read_memory), [this, conn] {
      if (!conn->closed) read_ready(conn);
    }));
    return;
  }
  start_read(conn);
}

// A script has run past busy-reply-threshold (server::serve_while_busy): serve the other
// clients without running the loop, so no timer, no HTTP completion and no link event can
// touch the data the script works on. New connections are accepted; clients with input
// are read directly (start_read() only waits for readiness, so nothing is read ahead)
// and answered at once: -BUSY, or what the few commands allowed while busy reply. The
// client running the script and blocked clients are not read, as in Redis. Closing is
// left to the loop, after the script.
void network::impl::serve_busy() {
  for (auto& a : acceptors) {
    for (int i = 0; i < 64; ++i) {
      asio::error_code ec;
      tcp::socket sock(io);
      a->accept(sock, ec);  // the acceptor is non-blocking: would_block when none waits
      if (ec) break;
      on_accept(std::move(sock));
    }
  }
  const core::client* running = s.script_caller();
  if (running != busy_run_caller || flush_epoch != busy_run_flush) {
    ++busy_run;
    busy_run_caller = running;
    busy_run_flush = flush_epoch;
  }
  std::vector<std::shared_ptr<connection>> who;  // close() may erase from conns: not iterated while sending
  for (auto& [p, conn] : conns) {
    // json-port clients wait for the script: their input is tasks, not commands to refuse.
    if (conn->closed || conn->json || conn->eof_while_busy || !conn->c || conn->c == running || conn->c->blocked)
      continue;
    who.push_back(conn);
  }
  // What can be sent now goes now: a reply the loop produced just before the script (its
  // flush was posted, not yet run) would otherwise wait for the script's end, and so would
  // -BUSY. But while the turn has writers, the replies it produced before the script (a
  // writer's, or a reader's that shows the write) wait for the turn's effects to be
  // persisted, after the script: no reply goes out before the AOF has what it shows. A
  // client holding such replies gets nothing sent, -BUSY included, until then; others get
  // their -BUSY at once. A client to be closed is left to the loop.
  const bool writers = s.turn_has_writers();
  auto send_now = [this, writers](connection& conn) {
    core::client* c = conn.c;
    if (conn.closed || !c || c->close_asap || c->close_after_reply) return;
    if (conn.busy_epoch != busy_run) {  // first look in this run: what it holds was made before the script
      conn.busy_epoch = busy_run;
      conn.held_while_busy = writers && c->out.size() > c->out_sent;
    }
    if (conn.held_while_busy || conn.writing) return;  // (an async write owns the socket)
    if (c->out.size() <= c->out_sent) return;
    if (conn.ssl) {
      write_client(conn);  // encrypts and sends what the socket takes now; the rest after the script
      return;
    }
    const ssize_t n = ::send(conn.sock.native_handle(), c->out.data() + c->out_sent, c->out.size() - c->out_sent,
                             MSG_DONTWAIT | MSG_NOSIGNAL);
    ++s.stats().writes_processed;
    if (n > 0) {
      c->out_sent += static_cast<std::size_t>(n);
      s.stats().net_output_bytes += static_cast<std::uint64_t>(n);
    }
  };
  for (auto& conn : who) send_now(*conn);
  std::vector<pollfd> fds;
  std::vector<std::shared_ptr<connection>> readable;
  for (auto& conn : who) {
    if (conn->closed || !conn->c) continue;
    fds.push_back(pollfd{conn->sock.native_handle(), POLLIN, 0});
    readable.push_back(conn);
  }
  if (fds.empty() || ::poll(fds.data(), fds.size(), 0) <= 0) return;
  for (std::size_t i = 0; i < fds.size(); ++i) {
    if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    connection& conn = *readable[i];
    if (conn.closed || !conn.c) continue;
    const auto r = read_some(conn);
    if (r == connection::read_result::closed) {
      conn.eof_while_busy = true;
      continue;
    }
    if (r != connection::read_result::nothing) s.on_input(*conn.c);
    send_now(conn);
  }
}

void network::impl::schedule_flush() {
  if (flush_posted) return;
  flush_posted = true;
  inputs_seen = inputs;
  asio::post(io, [this] { run_flush(); });
}

void network::impl::run_flush() {
  // asio polls the reactor between the read handlers of a turn and this posted flush;
  // readers it finds are queued behind us. Under appendfsync always each flush costs an
  // fsync, so while new input keeps arriving we step back (a few times at most) and let
  // them join this turn's group commit, as Redis's single beforeSleep() does.
  const bool group_commit = s.cfg().appendonly && s.cfg().appendfsync == core::fsync_policy::always;
  if (group_commit && inputs != inputs_seen && flush_hops < 4) {
    ++flush_hops;
    inputs_seen = inputs;
    asio::post(io, [this] { run_flush(); });
    return;
  }
  flush_posted = false;
  flush();
}

void network::impl::flush() {
  flush_hops = 0;
  ++flush_epoch;
  s.before_write();
  std::vector<core::client*> list;
  list.swap(s.pending_writes());
  for (core::client* c : list) {
    c->queued_for_write = false;
    if (!c->io) continue;
    write_client(*static_cast<connection*>(c->io));
  }
  rearm_deadline();
}

void network::impl::write_client(connection& conn) {
  core::client* c = conn.c;
  if (!c || conn.closed) return;
  if (c->close_asap) {
    close(conn);
    return;
  }
  if (conn.writing) return;  // the completion handler continues with what accumulated
  if (conn.ssl && !conn.handshaken) return;  // nothing can be sent before the handshake
  if (c->out.size() > c->out_sent) {
    // Double buffering: the pending replies move to wbuf (a swap, no copy) and the core
    // keeps appending to the other buffer while the write is in progress. On the epoll
    // backend async_write tries the send at once, so this costs no more syscalls than a
    // direct write; on io_uring the sends of a whole turn go out in one submission.
    conn.wbuf.swap(c->out);
    conn.wbuf_offset = c->out_sent;
    c->out.clear();
    c->out_sent = 0;
    conn.writing = true;
    auto self = conns.at(&conn);
    if (conn.ssl) {
      send_tls(self);
      return;
    }
    asio::async_write(conn.sock, asio::buffer(conn.wbuf.data() + conn.wbuf_offset, conn.wbuf.size() - conn.wbuf_offset),
                      asio::bind_allocator(handler_allocator<char>(conn.write_memory), [this, self](const asio::error_code& e, std::size_t w) {
                        self->writing = false;
                        if (self->closed) return;
                        if (e) {
                          close(*self);
                          return;
                        }
                        s.stats().net_output_bytes += w;
                        ++s.stats().writes_processed;
                        self->wbuf.clear();
                        if (self->wbuf.capacity() > keep_output_capacity) self->wbuf.shrink_to_fit();
                        if (self->c && self->c->out.capacity() > keep_output_capacity && self->c->out.empty())
                          self->c->out.shrink_to_fit();
                        write_client(*self);
                      }));
    return;
  }
  if (c->close_after_reply) close(conn);
}

void network::impl::close(connection& conn) {
  if (conn.closed) return;
  conn.closed = true;
  asio::error_code ec;
  if (conn.ssl && conn.handshaken) {
    SSL_shutdown(conn.ssl);  // close_notify, best effort: the socket does not wait for it
    ERR_clear_error();
  }
  conn.sock.close(ec);
  if (conn.c) {
    conn.c->io = nullptr;
    s.on_disconnect(*conn.c);
    conn.c = nullptr;
  }
  // The shared_ptr in a pending handler keeps the object alive until it runs.
  conns.erase(&conn);
}

void network::impl::rearm_deadline() {
  clock::time_point t = s.next_deadline();
  if (t == armed) return;
  armed = t;
  if (t == clock::time_point::max()) {
    deadline_timer.cancel();
    return;
  }
  deadline_timer.expires_at(t);
  deadline_timer.async_wait([this, t](const asio::error_code& ec) {
    if (ec) return;
    if (armed == t) armed = clock::time_point::max();
    s.on_timer();
    schedule_flush();
  });
}

void network::impl::arm_signals() {
  signals.async_wait([this](const asio::error_code& ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      // logrotate's habit: the file was renamed (or removed); write on at the configured path.
      if (std::string err = core::log_reopen(); !err.empty()) core::log_warning(err);
      else core::log_notice("Received SIGHUP, log file reopened");
      arm_signals();
      return;
    }
    const char* name = sig == SIGINT ? "SIGINT" : "SIGTERM";
    if (stopping) {
      // A second signal while HTTP requests finish: stop waiting for them.
      core::log_warning(std::string("Received ") + name + " again: exiting now");
      finish_shutdown();
      return;
    }
    core::log_warning(std::string("Received ") + name + " scheduling shutdown...");
    begin_shutdown();
    arm_signals();
  });
}

void network::impl::start_cron() {
  cron_timer.expires_after(std::chrono::milliseconds(100));
  cron_timer.async_wait([this](const asio::error_code& ec) {
    if (ec) return;
    s.cron();
    schedule_flush();
    start_cron();
  });
}

void network::impl::begin_shutdown() {
  if (stopping) return;
  stopping = true;
  sd_notify("STOPPING=1\nSTATUS=Draining: no new connections or HTTP requests");
  for (auto* list : {&acceptors, &json_acceptors, &tls_acceptors})
    for (auto& a : *list) {
      asio::error_code ec;
      a->close(ec);
    }
  s.tasks().stop_dispatching();
  s.drain_modules();
  stop_deadline = clock::now() + std::chrono::duration_cast<clock::duration>(
                                     std::chrono::duration<double>(s.cfg().shutdown_grace));
  if (const std::size_t n = requests_in_flight(); n > 0)
    core::log_notice("Waiting up to " + std::to_string(s.cfg().shutdown_grace) + "s for " + std::to_string(n) +
                     " HTTP requests in flight");
  check_shutdown();
}

std::size_t network::impl::requests_in_flight() const {
  return s.tasks().in_flight() + s.modules_in_flight();
}

void network::impl::check_shutdown() {
  if (requests_in_flight() == 0 || clock::now() >= stop_deadline) {
    finish_shutdown();
    return;
  }
  shutdown_timer.expires_after(std::chrono::milliseconds(10));
  shutdown_timer.async_wait([this](const asio::error_code& ec) {
    if (!ec) check_shutdown();
  });
}

void network::impl::finish_shutdown() {
  if (finished) return;
  finished = true;
  shutdown_timer.cancel();
  if (s.tasks().in_flight() > 0) {
    core::log_warning("Grace period over: " + std::to_string(s.tasks().in_flight()) +
                      " unfinished HTTP tasks go back to the head of their queues");
    s.tasks().abandon_in_flight();
  }
  flush();
  if (on_stopping && *on_stopping) (*on_stopping)();
  // Last replies (best effort, without blocking), then close every connection.
  std::vector<connection*> all;
  for (auto& [p, conn] : conns) all.push_back(p);
  for (connection* conn : all) {
    if (conn->c && conn->c->out.size() > conn->c->out_sent) {
      asio::error_code ec;
      conn->sock.write_some(asio::buffer(conn->c->out.data() + conn->c->out_sent, conn->c->out.size() - conn->c->out_sent), ec);
    }
    close(*conn);
  }
  deadline_timer.cancel();
  cron_timer.cancel();
  signals.cancel();
  core::log_notice("respq is now ready to exit, bye bye...");
  io.stop();
}

network::network(core::server& s) : impl_(std::make_unique<impl>(s)) {
  impl_->on_stopping = &on_stopping;
  s.wake = [this] { impl_->schedule_flush(); };
  s.on_shutdown = [this](bool) { shutdown(); };
  s.resume_json = [this](core::client& c) {
    auto it = impl_->conns.find(static_cast<connection*>(c.io));
    if (it == impl_->conns.end() || it->second->closed) return;
    const std::shared_ptr<connection> conn = it->second;  // json_ready may close it
    impl_->json_ready(conn, true);
  };
  s.serve_while_busy = [this] { impl_->serve_busy(); };
}

network::~network() {
  if (impl_ && impl_->tls_ctx) SSL_CTX_free(impl_->tls_ctx);
}

namespace {

// Binds one listening socket per configured address on `port`.
std::string listen_on(asio::io_context& io, const core::config& cfg, int port,
                      std::vector<std::unique_ptr<tcp::acceptor>>& out) {
  for (const auto& raw : cfg.bind) {
    bool optional = !raw.empty() && raw[0] == '-';
    std::string addr = optional ? raw.substr(1) : raw;
    if (addr == "*") addr = "0.0.0.0";
    asio::error_code ec;
    auto ip = asio::ip::make_address(addr, ec);
    if (ec) return "Invalid bind address '" + raw + "'";
    auto a = std::make_unique<tcp::acceptor>(io);
    tcp::endpoint ep(ip, static_cast<unsigned short>(port));
    a->open(ep.protocol(), ec);
    if (!ec) a->set_option(tcp::acceptor::reuse_address(true), ec);
    // A connection reset before it was accepted is reported (accept_ready goes on to the
    // next), where asio would otherwise wait inside accept for another one.
    if (!ec) a->set_option(asio::socket_base::enable_connection_aborted(true), ec);
    if (!ec && ip.is_v6()) a->set_option(asio::ip::v6_only(true), ec);
    if (!ec) a->bind(ep, ec);
    if (!ec) a->listen(511, ec);
    if (ec) {
      if (optional) {
        core::log_warning("Could not create server TCP listening socket " + addr + ":" + std::to_string(port) +
                          ": " + ec.message());
        continue;
      }
      return "Could not create server TCP listening socket " + addr + ":" + std::to_string(port) + ": " +
             ec.message();
    }
    a->non_blocking(true, ec);  // accepted when ready, by accept_ready() or serve_busy()
    out.push_back(std::move(a));
  }
  if (out.empty()) return "No address to listen on";
  return {};
}

std::string openssl_error(const std::string& what) {
  char text[256] = "unknown error";
  if (const unsigned long code = ERR_peek_last_error()) ERR_error_string_n(code, text, sizeof text);
  ERR_clear_error();
  return what + ": " + text;
}

// The tls-port's context: TLS 1.2 or newer, the server certificate, and the client
// verification tls-auth-clients asks for against tls-ca-cert-file/dir.
std::string make_tls_context(const core::config& cfg, SSL_CTX*& out) {
  if (cfg.tls_cert_file.empty() || cfg.tls_key_file.empty()) return "tls-port needs tls-cert-file and tls-key-file";
  if (cfg.tls_auth_clients != "no" && cfg.tls_ca_cert_file.empty() && cfg.tls_ca_cert_dir.empty())
    return "tls-auth-clients " + cfg.tls_auth_clients +
           " needs tls-ca-cert-file or tls-ca-cert-dir (the CAs client certificates are verified against)";
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return openssl_error("tls-port: can't create a TLS context");
  auto fail = [ctx](const std::string& what) {
    std::string e = openssl_error(what);
    SSL_CTX_free(ctx);
    return e;
  };
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_session_id_context(ctx, reinterpret_cast<const unsigned char*>("respq"), 5);
  if (SSL_CTX_use_certificate_chain_file(ctx, cfg.tls_cert_file.c_str()) != 1)
    return fail("tls-cert-file '" + cfg.tls_cert_file + "'");
  if (SSL_CTX_use_PrivateKey_file(ctx, cfg.tls_key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    return fail("tls-key-file '" + cfg.tls_key_file + "'");
  if (SSL_CTX_check_private_key(ctx) != 1) return fail("tls-key-file is not the key of tls-cert-file");
  if (cfg.tls_auth_clients != "no") {
    const char* file = cfg.tls_ca_cert_file.empty() ? nullptr : cfg.tls_ca_cert_file.c_str();
    const char* dir = cfg.tls_ca_cert_dir.empty() ? nullptr : cfg.tls_ca_cert_dir.c_str();
    if (SSL_CTX_load_verify_locations(ctx, file, dir) != 1) return fail("tls-ca-cert-file/tls-ca-cert-dir");
    if (file)
      if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(file)) SSL_CTX_set_client_CA_list(ctx, names);
    int mode = SSL_VERIFY_PEER;
    if (cfg.tls_auth_clients == "yes") mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, nullptr);
  }
  ERR_clear_error();
  out = ctx;
  return {};
}

}  // namespace

std::string network::listen() {
  auto& cfg = impl_->s.cfg();
  // port 0 with a tls-port: TLS only, as in Redis.
  if (cfg.port != 0 || cfg.tls_port == 0)
    if (std::string err = listen_on(impl_->io, cfg, cfg.port, impl_->acceptors); !err.empty()) return err;
  if (cfg.tls_port != 0) {
    if (std::string err = make_tls_context(cfg, impl_->tls_ctx); !err.empty()) return err;
    if (std::string err = listen_on(impl_->io, cfg, cfg.tls_port, impl_->tls_acceptors); !err.empty())
      return "tls-port: " + err;
    core::log_notice("TLS: RESP on port " + std::to_string(cfg.tls_port) + " (tls-auth-clients " +
                     cfg.tls_auth_clients + ")");
  }
  if (cfg.json_port != 0) {
    if (std::string err = listen_on(impl_->io, cfg, cfg.json_port, impl_->json_acceptors); !err.empty())
      return "json-port: " + err;
    core::log_notice("json-port: JSON tasks on port " + std::to_string(cfg.json_port) + " go to queue '" +
                     cfg.json_queue + "'");
  }
  return {};
}

int network::run() {
  ::signal(SIGPIPE, SIG_IGN);
  for (auto& a : impl_->acceptors) impl_->start_accept(*a);
  for (auto& a : impl_->json_acceptors) impl_->start_accept(*a, true);
  for (auto& a : impl_->tls_acceptors) impl_->start_accept(*a, false, true);
  impl_->arm_signals();
  impl_->start_cron();
  impl_->rearm_deadline();
  impl_->run_loop();
  return 0;
}

// The loop, with adaptive busy polling. Sleeping in epoll_wait costs every event a
// wake-up: the client's write pays for waking respq (scheduler, cross-CPU interrupt),
// and respq pays for being woken. When events keep arriving less than `busy-poll`
// microseconds apart, the loop polls without sleeping for up to that long after each
// batch; measured with redis-benchmark at 50 clients this lifts -P 1 throughput by about
// 10% (bench/RESULTS.md). It only polls while the previous gap between batches was
// shorter than the window, so a server that is idle, or sees an event every millisecond,
// sleeps at once and spends nothing on it.
void network::impl::run_loop() {
  bool idle = false;                // no handler ran since idle_since
  clock::time_point idle_since;
  clock::duration last_gap = clock::duration::max();
  while (!io.stopped()) {
    const auto window = std::chrono::microseconds(s.cfg().busy_poll);
    if (window.count() == 0) {
      if (io.run_one() == 0) break;
      continue;
    }
    const std::size_t ran = io.poll();
    const auto now = clock::now();
    if (ran > 0) {
      if (idle) last_gap = now - idle_since, idle = false;
      continue;
    }
    if (!idle) idle_since = now, idle = true;
    if (last_gap < window && now - idle_since < window) {
      // Keep polling, but let any other runnable thread on this CPU go first: polling
      // must not take time from an endpoint or a client that shares the machine.
      std::this_thread::yield();
      continue;
    }
    if (io.run_one() == 0) break;
    last_gap = clock::now() - idle_since;
    idle = false;
  }
}

void network::shutdown() {
  asio::post(impl_->io, [this] { impl_->begin_shutdown(); });
}

void network::post(std::function<void()> fn) {
  asio::post(impl_->io, [this, fn = std::move(fn)] {
    fn();
    impl_->schedule_flush();
  });
}

asio::io_context& network::io_context() { return impl_->io; }

}  // namespace respq::broker
