// upstream_connection: see upstream_connection.hpp. The one translation unit of the link
// that includes asio.
//
// How hiredis 0.14's async API meets asio here:
//   - hiredis asks for read/write interest through ev.addRead/delRead/addWrite/delWrite.
//     Each becomes a flag on io_watch plus, when needed, one outstanding async_wait on a
//     stream_descriptor that wraps (but does not own) hiredis's socket. Interest removed
//     while a wait is outstanding is honoured by ignoring the completion.
//   - Writes: once connected, addWrite posts one speculative redisAsyncHandleWrite (the
//     socket is almost always writable; this saves an epoll round trip and coalesces every
//     command added in this loop turn into one write). Only when hiredis could not write
//     everything do we wait for writability.
//   - hiredis may free its context from inside redisAsyncHandleRead/Write (I/O error,
//     EOF). Its cleanup hook clears io_watch::ac and releases the descriptor, so every
//     completion checks ac before touching hiredis again.
//   - We never call redisAsyncFree from inside a hiredis callback: drop() posts.
#include "redis-compat/upstream_connection.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/sds.h>

#include <asio.hpp>
#include <cstdlib>
#include <cstring>
#include <random>

#include "broker/core/log.hpp"

namespace respq::redis_compat {

namespace {

using clock = std::chrono::steady_clock;

constexpr double connect_timeout_s = 5;
constexpr double backoff_min_s = 0.1;
constexpr double backoff_max_s = 2.0;
constexpr auto watchdog_period = std::chrono::milliseconds(250);


std::string encode(const std::string_view* argv, std::size_t n) {
  std::string out;
  std::size_t total = 16;
  for (std::size_t i = 0; i < n; ++i) total += argv[i].size() + 16;
  out.reserve(total);
  out += '*';
  out += std::to_string(n);
  out += "\r\n";
  for (std::size_t i = 0; i < n; ++i) {
    out += '$';
    out += std::to_string(argv[i].size());
    out += "\r\n";
    out.append(argv[i]);
    out += "\r\n";
  }
  return out;
}


// Lean reply objects. hiredis's default functions allocate every reply; a mirrored batch
// is answered with +QUEUED per command and an EXEC array with one element per command.
// The replies the link never reads are shared constant objects instead: top-level +QUEUED
// and +OK, and the integers, status replies and nils inside arrays (the link only looks
// for errors inside arrays, and reads strings there: SCAN keys, LRANGE elements). Every
// other reply is allocated as hiredis would.
redisReply queued_reply{REDIS_REPLY_STATUS, 0, 6, const_cast<char*>("QUEUED"), 0, nullptr};
redisReply ok_reply{REDIS_REPLY_STATUS, 0, 2, const_cast<char*>("OK"), 0, nullptr};
redisReply nested_integer{REDIS_REPLY_INTEGER, 0, 0, nullptr, 0, nullptr};
redisReply nested_status{REDIS_REPLY_STATUS, 0, 2, const_cast<char*>("OK"), 0, nullptr};
redisReply nested_nil{REDIS_REPLY_NIL, 0, 0, nullptr, 0, nullptr};

bool shared_reply(const void* p) {
  return p == &queued_reply || p == &ok_reply || p == &nested_integer || p == &nested_status || p == &nested_nil;
}

void* attach(const redisReadTask* task, redisReply* r) {
  if (task->parent) {
    auto* parent = static_cast<redisReply*>(task->parent->obj);
    parent->element[task->idx] = r;
  }
  return r;
}

redisReply* new_reply(int type) {
  auto* r = static_cast<redisReply*>(std::calloc(1, sizeof(redisReply)));
  if (r) r->type = type;
  return r;
}

void* lean_string(const redisReadTask* task, char* str, size_t len) {
  if (task->type == REDIS_REPLY_STATUS) {
    if (task->parent) return attach(task, &nested_status);
    if (len == 6 && std::memcmp(str, "QUEUED", 6) == 0) return &queued_reply;
    if (len == 2 && std::memcmp(str, "OK", 2) == 0) return &ok_reply;
  }
  redisReply* r = new_reply(task->type);
  if (!r) return nullptr;
  r->str = static_cast<char*>(std::malloc(len + 1));
  if (!r->str) {
    std::free(r);
    return nullptr;
  }
  std::memcpy(r->str, str, len);
  r->str[len] = '\0';
  r->len = len;
  return attach(task, r);
}

void* lean_array(const redisReadTask* task, int elements) {
  redisReply* r = new_reply(REDIS_REPLY_ARRAY);
  if (!r) return nullptr;
  if (elements > 0) {
    r->element = static_cast<redisReply**>(std::calloc(static_cast<std::size_t>(elements), sizeof(redisReply*)));
    if (!r->element) {
      std::free(r);
      return nullptr;
    }
  }
  r->elements = static_cast<std::size_t>(elements);
  return attach(task, r);
}

void* lean_integer(const redisReadTask* task, long long value) {
  if (task->parent) return attach(task, &nested_integer);
  redisReply* r = new_reply(REDIS_REPLY_INTEGER);
  if (r) r->integer = value;
  return r;
}

void* lean_nil(const redisReadTask* task) {
  if (task->parent) return attach(task, &nested_nil);
  return new_reply(REDIS_REPLY_NIL);
}

void lean_free(void* p) {
  if (!p || shared_reply(p)) return;
  auto* r = static_cast<redisReply*>(p);
  if (r->type == REDIS_REPLY_ARRAY) {
    for (std::size_t i = 0; i < r->elements; ++i) lean_free(r->element[i]);
    std::free(r->element);
  } else {
    std::free(r->str);
  }
  std::free(r);
}

redisReplyObjectFunctions lean_functions{lean_string, lean_array, lean_integer, lean_nil, lean_free};

}  // namespace

struct io_watch;

struct upstream_connection::impl : std::enable_shared_from_this<upstream_connection::impl> {
  enum class state { idle, connecting, handshake, ready, down, stopped };

  impl(asio::io_context& i, upstream_endpoint e, std::string n, double t)
      : io(i), ep(std::move(e)), name(std::move(n)), reply_timeout(t), reconnect_timer(i), watchdog(i) {}

  asio::io_context& io;
  upstream_endpoint ep;
  std::string name;
  double reply_timeout;
  upstream_connection* outer = nullptr;

  redisAsyncContext* ac = nullptr;
  std::shared_ptr<io_watch> watch;
  state st = state::idle;
  asio::steady_timer reconnect_timer;
  asio::steady_timer watchdog;
  bool watchdog_running = false;
  double backoff = 0;
  std::size_t pending = 0;
  clock::time_point last_progress{};
  clock::time_point phase_started{};
  double blocking_allowance = 0;
  std::uint64_t reconnects = 0, connects = 0;
  bool was_ready = false;
  bool drop_posted = false;
  bool reported_down = false;  // the loss was logged; failed reconnects log quietly
  std::string last_error;
  std::string handshake_error;
  std::mt19937 rng{std::random_device{}()};
  // Handlers of this connection's subscriptions (hiredis keeps their pointers until it
  // frees the context).
  std::vector<std::unique_ptr<reply_fn>> subscriptions;

  void connect();
  void begin_handshake();
  void drop(std::string why);
  void on_cleanup();
  void schedule_reconnect();
  void arm_watchdog();
  bool send(const char* data, std::size_t len, reply_fn* fn);
  void send_handshake(std::initializer_list<std::string_view> argv, reply_fn fn) {
    std::string c = encode(argv.begin(), argv.size());
    auto* p = new reply_fn(std::move(fn));
    if (!send(c.data(), c.size(), p)) delete p;
  }
  std::string where() const { return ep.host + ":" + std::to_string(ep.port); }
};

// The asio side of one hiredis context (see the file comment).
struct io_watch : std::enable_shared_from_this<io_watch> {
  io_watch(asio::io_context& i, int fd) : io(i), sd(i, fd) {}

  asio::io_context& io;
  asio::posix::stream_descriptor sd;
  redisAsyncContext* ac = nullptr;
  upstream_connection::impl* owner = nullptr;
  bool want_read = false, want_write = false;
  bool read_waiting = false, write_waiting = false, write_posted = false, in_write = false;
  bool connected = false;

  void add_read() {
    want_read = true;
    if (!read_waiting) wait_read();
  }

  void wait_read() {
    read_waiting = true;
    sd.async_wait(asio::posix::stream_descriptor::wait_read, [self = shared_from_this()](const asio::error_code& ec) {
      self->read_waiting = false;
      if (ec || !self->ac || !self->want_read) return;
      redisAsyncHandleRead(self->ac);
      if (self->ac && self->want_read && !self->read_waiting) self->wait_read();
    });
  }

  void add_write() {
    want_write = true;
    if (in_write || write_waiting || write_posted) return;
    if (!connected) {
      // Connection in progress: writability is what tells hiredis it completed.
      wait_write();
      return;
    }
    write_posted = true;
    asio::post(io, [self = shared_from_this()] {
      self->write_posted = false;
      self->do_write();
    });
  }

  void do_write() {
    if (!ac || !want_write) return;
    in_write = true;
    redisAsyncHandleWrite(ac);
    in_write = false;
    // hiredis re-adds write interest when the socket took less than everything.
    if (ac && want_write && !write_waiting) wait_write();
  }

  void wait_write() {
    write_waiting = true;
    sd.async_wait(asio::posix::stream_descriptor::wait_write, [self = shared_from_this()](const asio::error_code& ec) {
      self->write_waiting = false;
      if (ec) return;
      self->do_write();
    });
  }

  // hiredis is about to close the fd: stop watching it without closing it.
  void release() {
    ac = nullptr;
    asio::error_code ec;
    sd.cancel(ec);
    sd.release();
  }
};

namespace {

void ev_add_read(void* p) { static_cast<io_watch*>(p)->add_read(); }
void ev_del_read(void* p) { static_cast<io_watch*>(p)->want_read = false; }
void ev_add_write(void* p) { static_cast<io_watch*>(p)->add_write(); }
void ev_del_write(void* p) { static_cast<io_watch*>(p)->want_write = false; }
void ev_cleanup(void* p) {
  auto* w = static_cast<io_watch*>(p);
  upstream_connection::impl* owner = w->owner;
  w->release();
  if (owner) owner->on_cleanup();
}

using impl_t = upstream_connection::impl;

void on_connect_cb(const redisAsyncContext* c, int status) {
  auto* self = static_cast<impl_t*>(c->data);
  if (status != REDIS_OK) {
    // hiredis frees the context when this returns; the cleanup hook reports the loss.
    self->last_error = c->errstr ? c->errstr : "connect failed";
    return;
  }
  if (self->watch) self->watch->connected = true;
  self->begin_handshake();
}

void on_disconnect_cb(const redisAsyncContext* c, int status) {
  auto* self = static_cast<impl_t*>(c->data);
  if (status != REDIS_OK && c->errstr && *c->errstr) self->last_error = c->errstr;
  else if (self->last_error.empty()) self->last_error = "connection closed";
}

void on_reply_cb(redisAsyncContext* c, void* r, void* privdata) {
  std::unique_ptr<upstream_connection::reply_fn> fn(static_cast<upstream_connection::reply_fn*>(privdata));
  auto* self = static_cast<impl_t*>(c->data);
  if (self->pending) --self->pending;
  auto* reply = static_cast<redisReply*>(r);
  if (!reply) {
    // Lost: no handler may send on this context any more.
    if (self->st == impl_t::state::ready || self->st == impl_t::state::handshake) self->st = impl_t::state::down;
  } else {
    self->last_progress = clock::now();
  }
  if (fn && *fn) (*fn)(reply);
}

// A subscription's message: the handler stays registered (hiredis calls it again for the
// next message, and with nullptr when the context is freed).
void on_message_cb(redisAsyncContext* c, void* r, void* privdata) {
  auto* self = static_cast<impl_t*>(c->data);
  auto* fn = static_cast<upstream_connection::reply_fn*>(privdata);
  if (!r) return;
  self->last_progress = clock::now();
  if (fn && *fn) (*fn)(static_cast<redisReply*>(r));
}

}  // namespace

void upstream_connection::impl::connect() {
  if (st == state::stopped) return;
  if (ep.host.empty()) {
    // No address known (Sentinel has not named a master): wait for set_endpoint.
    st = state::down;
    if (last_error.empty()) last_error = "no master known";
    return;
  }
  st = state::connecting;
  phase_started = clock::now();
  handshake_error.clear();
  ac = redisAsyncConnect(ep.host.c_str(), ep.port);
  if (!ac) {
    last_error = "out of memory";
    st = state::down;
    schedule_reconnect();
    return;
  }
  if (ac->err) {
    last_error = ac->errstr ? ac->errstr : "connect failed";
    redisAsyncFree(ac);  // no event hooks yet: frees and closes at once
    ac = nullptr;
    st = state::down;
    schedule_reconnect();
    return;
  }
  ac->data = this;
  ac->c.reader->fn = &lean_functions;
  watch = std::make_shared<io_watch>(io, ac->c.fd);
  watch->ac = ac;
  watch->owner = this;
  ac->ev.data = watch.get();
  ac->ev.addRead = ev_add_read;
  ac->ev.delRead = ev_del_read;
  ac->ev.addWrite = ev_add_write;
  ac->ev.delWrite = ev_del_write;
  ac->ev.cleanup = ev_cleanup;
  redisAsyncSetDisconnectCallback(ac, on_disconnect_cb);
  // Sets write interest: the first writable event completes the connect.
  redisAsyncSetConnectCallback(ac, on_connect_cb);
  arm_watchdog();
}

void upstream_connection::impl::begin_handshake() {
  st = state::handshake;
  phase_started = clock::now();
  redisEnableKeepAlive(&ac->c);
  auto check = [this](const char* what) {
    return [this, what](const redisReply* r) {
      if (!r) return;
      if (r->type == REDIS_REPLY_ERROR && handshake_error.empty())
        handshake_error = std::string(what) + ": " + std::string(r->str, r->len);
    };
  };
  if (!ep.password.empty()) send_handshake({"AUTH", ep.password}, check("AUTH"));
  if (ep.db != 0) send_handshake({"SELECT", std::to_string(ep.db)}, check("SELECT"));
  send_handshake({"CLIENT", "SETNAME", name}, check("CLIENT SETNAME"));
  send_handshake({"PING"}, [this](const redisReply* r) {
    if (!r) return;
    if (handshake_error.empty() && r->type == REDIS_REPLY_ERROR) handshake_error = "PING: " + std::string(r->str, r->len);
    if (!handshake_error.empty()) {
      drop(handshake_error);
      return;
    }
    st = state::ready;
    reported_down = false;
    backoff = 0;
    last_error.clear();
    ++connects;
    if (was_ready) ++reconnects;
    was_ready = true;
    last_progress = clock::now();
    core::log_verbose("Upstream link '" + name + "' to " + where() + " is up");
    if (outer && outer->on_ready) outer->on_ready();
  });
}

void upstream_connection::impl::drop(std::string why) {
  if (!ac || drop_posted) return;
  last_error = std::move(why);
  drop_posted = true;
  // Possibly inside a hiredis callback: free from a fresh handler.
  asio::post(io, [weak = weak_from_this()] {
    auto self = weak.lock();
    if (!self) return;
    self->drop_posted = false;
    if (!self->ac || self->st == state::stopped) return;
    if (self->st == state::ready || self->st == state::handshake) self->st = state::down;
    redisAsyncContext* a = self->ac;
    redisAsyncFree(a);  // pending handlers get nullptr; the cleanup hook follows
  });
}

void upstream_connection::impl::on_cleanup() {
  ac = nullptr;
  watch.reset();
  pending = 0;
  subscriptions.clear();  // hiredis has called each with nullptr already
  if (st == state::stopped) return;
  st = state::down;
  // hiredis is still unwinding: report and reconnect from a fresh handler.
  asio::post(io, [weak = weak_from_this()] {
    auto self = weak.lock();
    if (!self || self->st == state::stopped) return;
    std::string why = self->last_error.empty() ? std::string("connection lost") : self->last_error;
    std::string msg = "Upstream link '" + self->name + "' to " + self->where() + " lost: " + why;
    if (self->reported_down) {
      core::log_verbose(msg);
    } else {
      core::log_warning(msg);
      self->reported_down = true;
    }
    if (self->outer && self->outer->on_lost) self->outer->on_lost(why);
    if (self->st == state::down) self->schedule_reconnect();
  });
}

void upstream_connection::impl::schedule_reconnect() {
  if (st == state::stopped) return;
  backoff = backoff == 0 ? backoff_min_s : std::min(backoff_max_s, backoff * 2);
  // Jitter in [backoff/2, backoff]: sidecars that lost the upstream together don't all
  // come back in the same millisecond.
  double d = backoff * (0.5 + 0.5 * std::uniform_real_distribution<double>(0, 1)(rng));
  reconnect_timer.expires_after(std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(d)));
  reconnect_timer.async_wait([weak = weak_from_this()](const asio::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || self->st != state::down || self->ac) return;
    self->connect();
  });
}

void upstream_connection::impl::arm_watchdog() {
  if (watchdog_running) return;
  watchdog_running = true;
  watchdog.expires_after(watchdog_period);
  watchdog.async_wait([weak = weak_from_this()](const asio::error_code& ec) {
    auto self = weak.lock();
    if (!self) return;
    self->watchdog_running = false;
    if (ec || self->st == state::stopped || !self->ac) return;
    auto now = clock::now();
    if (self->st == state::connecting || self->st == state::handshake) {
      if (now - self->phase_started > std::chrono::duration<double>(connect_timeout_s)) {
        self->drop("connect timeout");
        return;
      }
    } else if (self->st == state::ready && self->pending > 0) {
      double limit = self->reply_timeout + self->blocking_allowance;
      if (now - self->last_progress > std::chrono::duration<double>(limit)) {
        self->drop("no reply within " + std::to_string(static_cast<int>(limit)) + "s");
        return;
      }
    }
    self->arm_watchdog();
  });
}

bool upstream_connection::impl::send(const char* data, std::size_t len, reply_fn* fn) {
  if (pending == 0) last_progress = clock::now();
  int rc = redisAsyncFormattedCommand(ac, fn ? on_reply_cb : nullptr, fn, data, len);
  if (rc != REDIS_OK) return false;
  if (fn) ++pending;
  return true;
}

// ---- upstream_connection ---------------------------------------------------------------

upstream_connection::upstream_connection(asio::io_context& io_context, upstream_endpoint ep, std::string name,
                                         double reply_timeout_s)
    : impl_(std::make_shared<impl>(io_context, std::move(ep), std::move(name), reply_timeout_s)) {
  impl_->outer = this;
}

upstream_connection::~upstream_connection() {
  stop();
  impl_->outer = nullptr;
}

void upstream_connection::start() {
  if (impl_->st != impl::state::idle) return;
  impl_->connect();
}

void upstream_connection::stop() {
  auto& d = *impl_;
  if (d.st == impl::state::stopped) return;
  d.st = impl::state::stopped;
  d.reconnect_timer.cancel();
  d.watchdog.cancel();
  if (d.ac) {
    redisAsyncContext* a = d.ac;
    redisAsyncFree(a);
  }
}

bool upstream_connection::ready() const { return impl_->st == impl::state::ready && impl_->ac; }


bool upstream_connection::command(std::initializer_list<std::string_view> argv, reply_fn fn) {
  if (!ready()) return false;
  std::string c = encode(argv.begin(), argv.size());
  return formatted(c, std::move(fn));
}

bool upstream_connection::command(const std::vector<std::string_view>& argv, reply_fn fn) {
  if (!ready()) return false;
  std::string c = encode(argv.data(), argv.size());
  return formatted(c, std::move(fn));
}

bool upstream_connection::formatted(std::string_view command, reply_fn fn) {
  if (!ready()) return false;
  auto* p = new reply_fn(std::move(fn));
  if (!impl_->send(command.data(), command.size(), p)) {
    delete p;
    return false;
  }
  return true;
}

bool upstream_connection::formatted_noreply(std::string_view command) {
  if (!ready()) return false;
  return impl_->send(command.data(), command.size(), nullptr);
}

bool upstream_connection::subscribe(std::string_view channel, reply_fn fn) {
  if (!ready()) return false;
  std::string_view argv[] = {"SUBSCRIBE", channel};
  std::string c = encode(argv, 2);
  auto p = std::make_unique<reply_fn>(std::move(fn));
  if (redisAsyncFormattedCommand(impl_->ac, on_message_cb, p.get(), c.data(), c.size()) != REDIS_OK) return false;
  impl_->subscriptions.push_back(std::move(p));
  return true;
}

void upstream_connection::set_endpoint(const upstream_endpoint& ep) {
  auto& d = *impl_;
  if (d.ep.host == ep.host && d.ep.port == ep.port) return;
  const bool was_unknown = d.ep.host.empty();
  d.ep.host = ep.host;
  d.ep.port = ep.port;
  if (d.st == impl::state::idle || d.st == impl::state::stopped) return;
  if (d.ac) {
    d.backoff = 0;
    d.drop("the upstream moved to " + d.where());  // reconnects to the new address
  } else if (d.st == impl::state::down && was_unknown) {
    d.backoff = 0;
    d.last_error.clear();
    d.connect();
  }
  // Otherwise down and waiting for its reconnect: that one connects to the new address.
}

const upstream_endpoint& upstream_connection::endpoint() const { return impl_->ep; }

void upstream_connection::set_blocking_allowance(double seconds) { impl_->blocking_allowance = seconds; }

std::string upstream_connection::status() const {
  switch (impl_->st) {
    case impl::state::idle: return "idle";
    case impl::state::connecting:
    case impl::state::handshake: return "connecting";
    case impl::state::ready: return "up";
    case impl::state::down: return "down";
    case impl::state::stopped: return "stopped";
  }
  return "down";
}

std::uint64_t upstream_connection::reconnects() const { return impl_->reconnects; }
std::uint64_t upstream_connection::connects() const { return impl_->connects; }
const std::string& upstream_connection::last_error() const { return impl_->last_error; }
std::size_t upstream_connection::pending() const { return impl_->pending; }
std::uint64_t upstream_connection::bytes_pending_write() const {
  return impl_->ac && impl_->ac->c.obuf ? sdslen(impl_->ac->c.obuf) : 0;
}

// ---- loop_timer -------------------------------------------------------------------------

struct loop_timer::impl {
  explicit impl(asio::io_context& io) : t(io) {}
  asio::steady_timer t;
  std::uint64_t gen = 0;
  bool armed = false;
  clock::time_point when = clock::time_point::max();
  std::function<void()> fn;
};

loop_timer::loop_timer(asio::io_context& io_context) : impl_(std::make_shared<impl>(io_context)) {}
loop_timer::~loop_timer() { cancel(); }

void loop_timer::at(clock::time_point t, std::function<void()> fn) {
  auto& d = *impl_;
  std::uint64_t g = ++d.gen;
  d.armed = true;
  d.when = t;
  d.fn = std::move(fn);
  d.t.expires_at(t);
  d.t.async_wait([weak = std::weak_ptr<impl>(impl_), g](const asio::error_code& ec) {
    auto p = weak.lock();
    if (ec || !p || p->gen != g) return;
    p->armed = false;
    p->when = clock::time_point::max();
    auto f = std::move(p->fn);
    if (f) f();
  });
}

void loop_timer::after(double seconds, std::function<void()> fn) {
  at(clock::now() + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(std::max(0.0, seconds))),
     std::move(fn));
}

void loop_timer::cancel() {
  auto& d = *impl_;
  ++d.gen;
  d.armed = false;
  d.when = clock::time_point::max();
  d.fn = nullptr;
  d.t.cancel();
}

bool loop_timer::armed() const { return impl_->armed; }
clock::time_point loop_timer::when() const { return impl_->when; }

void loop_post(asio::io_context& io_context, std::function<void()> fn) { asio::post(io_context, std::move(fn)); }

}  // namespace respq::redis_compat
