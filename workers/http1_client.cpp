// http1_client: see http1_client.hpp.
//
// Objects and lifetimes: a host_pool per (delivery pool, origin) lives as long as the
// client; connections and exchanges are shared_ptrs held by the pool's idle/waiting
// lists and by pending asio handlers, so a handler that runs after a close or a timeout
// finds its objects alive and marked (closed / done) and does nothing.
#include "workers/http1_client.hpp"

#include "workers/http1_response_parser.hpp"

#include <strings.h>
#include <sys/socket.h>

#include <cerrno>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <deque>
#include <optional>
#include <unordered_map>
#include <vector>

#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

namespace respq::workers {

namespace {

using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;

constexpr double default_timeout_s = 30;
constexpr auto dns_ttl = std::chrono::seconds(60);

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// "http://authority/target": authority up to the first '/', '?' or '#'.
bool split_url(std::string_view url, std::string_view& authority, std::string_view& target) {
  if (url.size() < 8 || !iequal(url.substr(0, 7), "http://")) return false;
  std::string_view rest = url.substr(7);
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

}  // namespace

struct http1_client::impl {
  struct host_pool;
  struct connection;

  struct exchange {
    http_request req;
    std::string wire;
    steady::time_point start;
    std::unique_ptr<asio::steady_timer> timer;
    host_pool* pool = nullptr;
    bool done = false;
    bool retried = false;
    connection* conn = nullptr;  // set while a connection carries it
  };

  struct connection : std::enable_shared_from_this<connection> {
    explicit connection(asio::io_context& io) : sock(io) {}
    tcp::socket sock;
    host_pool* pool = nullptr;
    std::shared_ptr<exchange> ex;
    std::array<char, 16 * 1024> rbuf;
    std::string in;             // received, not yet consumed by the parser (a partial line)
    std::size_t received = 0;   // bytes of the current response so far
    std::size_t served = 0;     // responses completed on this connection
    steady::time_point idle_since;
    bool closed = false;
    std::string egress_denial;     // set when the egress policy refused an address to dial
    http1_response_parser parser;  // the current response
  };

  struct host_pool {
    std::string name;  // delivery pool
    std::string host, port, host_header;
    unsigned cap = 0;
    unsigned open = 0;
    std::shared_ptr<const tasks::egress_rules> egress;  // null: the default policy
    std::vector<std::shared_ptr<connection>> idle;
    std::deque<std::shared_ptr<exchange>> waiting;
    std::vector<tcp::endpoint> endpoints;
    steady::time_point resolved_at{};
    bool numeric = false;
    bool resolving = false;
    std::string resolve_error;
  };

  impl(asio::io_context& io_, std::string ua, done_fn d, steady::duration idle)
      : io(io_), user_agent(std::move(ua)), done(std::move(d)), idle_limit(idle), reaper(io_) {
    arm_reaper();
  }

  asio::io_context& io;
  std::string user_agent;
  done_fn done;
  steady::duration idle_limit;
  std::unordered_map<std::string, std::unique_ptr<host_pool>> pools;  // pool + '\n' + authority
  std::unordered_map<std::string, unsigned> caps;                     // per delivery pool
  std::unordered_map<std::string, std::shared_ptr<const tasks::egress_rules>> egress;  // per delivery pool
  std::size_t in_flight = 0;
  asio::steady_timer reaper;
  bool stopped = false;

  host_pool& pool_for(const std::string& name, std::string_view authority) {
    std::string key;
    key.reserve(name.size() + authority.size() + 1);
    key += name;
    key += '\n';
    key += authority;
    auto it = pools.find(key);
    if (it != pools.end()) return *it->second;
    auto hp = std::make_unique<host_pool>();
    hp->name = name;
    hp->host_header = std::string(authority);
    std::string_view host = authority, port = "80";
    if (!authority.empty() && authority.front() == '[') {
      auto close = authority.find(']');
      host = authority.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1);
      if (close != std::string_view::npos && close + 1 < authority.size() && authority[close + 1] == ':')
        port = authority.substr(close + 2);
    } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
    if (port.empty()) port = "80";
    hp->host = std::string(host);
    hp->port = std::string(port);
    asio::error_code ec;
    auto addr = asio::ip::make_address(hp->host, ec);
    unsigned short p = 0;
    auto [ptr, perr] = std::from_chars(hp->port.data(), hp->port.data() + hp->port.size(), p);
    if (!ec && perr == std::errc() && ptr == hp->port.data() + hp->port.size()) {
      hp->endpoints.emplace_back(addr, p);
      hp->numeric = true;
    }
    if (auto c = caps.find(name); c != caps.end()) hp->cap = c->second;
    if (auto e = egress.find(name); e != egress.end()) hp->egress = e->second;
    return *pools.emplace(std::move(key), std::move(hp)).first->second;
  }

  void build_wire(exchange& ex, std::string_view target) {
    const http_request& r = ex.req;
    std::string& w = ex.wire;
    w.reserve(256 + (r.body ? r.body->size() : 0));
    w += r.method;
    w += ' ';
    if (target.empty() || target.front() == '?') w += '/';
    w += target;
    w += " HTTP/1.1\r\n";
    bool has_host = false, has_ua = false, has_accept = false;
    for (const auto& [k, v] : r.headers) {
      if (iequal(k, "Content-Length") || iequal(k, "Transfer-Encoding")) continue;
      if (iequal(k, "Host")) has_host = true;
      else if (iequal(k, "User-Agent")) has_ua = true;
      else if (iequal(k, "Accept")) has_accept = true;
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
      if (iequal(k, "Content-Length") || iequal(k, "Transfer-Encoding")) continue;
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
    ex->req = std::move(r);
    ex->start = steady::now();
    std::string_view authority, target;
    split_url(ex->req.url, authority, target);
    host_pool& hp = pool_for(ex->req.pool, authority);
    ex->pool = &hp;
    build_wire(*ex, target);
    ++in_flight;
    hp.waiting.push_back(std::move(ex));
    pump(hp);
  }

  // The request leaves the per-host queue: its duration and its timeout start now, as on
  // the curl path (a request waiting for a free connection is not yet "sent").
  void begin(const std::shared_ptr<exchange>& ex) {
    if (ex->timer) return;  // a retry on a new connection keeps its clock
    ex->start = steady::now();
    double timeout = ex->req.timeout_s > 0 ? ex->req.timeout_s : default_timeout_s;
    ex->timer = std::make_unique<asio::steady_timer>(io);
    ex->timer->expires_after(std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(timeout)));
    ex->timer->async_wait([this, ex](const asio::error_code& ec) {
      if (!ec) on_timeout(ex);
    });
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
      if (!ec)
        for (const auto& e : res) hp.endpoints.push_back(e.endpoint());
      hp.resolved_at = steady::now();
      if (hp.endpoints.empty()) {
        // Everything waiting for this origin fails now, as curl would.
        auto waiting = std::move(hp.waiting);
        hp.waiting.clear();
        for (auto& ex : waiting) {
          if (ex->done) continue;
          if (!ex->timer) ex->start = steady::now();
          fail(*ex, "Could not resolve host: " + hp.host, false);
        }
        return;
      }
      pump(hp);
    });
  }

  void pump(host_pool& hp) {
    while (!hp.waiting.empty() && !stopped) {
      auto& front = hp.waiting.front();
      if (front->done) {
        hp.waiting.pop_front();
        continue;
      }
      // A request that already failed on a stale keep-alive connection goes out on a
      // new one: the next idle connection may have been closed by the server too. At the
      // cap, an idle connection makes room for it.
      if (front->retried) {
        if (hp.cap != 0 && hp.open >= hp.cap) {
          if (hp.idle.empty()) return;
          auto spare = std::move(hp.idle.back());
          hp.idle.pop_back();
          close(*spare);
        }
        if (!endpoints_fresh(hp)) {
          resolve(hp);
          return;
        }
        auto ex = std::move(front);
        hp.waiting.pop_front();
        open_connection(hp, ex);
        continue;
      }
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
      if (hp.cap != 0 && hp.open >= hp.cap) return;
      if (!endpoints_fresh(hp)) {
        resolve(hp);
        return;
      }
      auto ex = std::move(front);
      hp.waiting.pop_front();
      begin(ex);
      open_connection(hp, ex);
    }
  }

  // A connection that sat idle for a while may have been closed by the server (many
  // close idle keep-alive connections after a few seconds): look before reusing it, as
  // curl does. A recently used one is trusted without the extra syscall.
  bool still_open(connection& c) {
    if (steady::now() - c.idle_since < std::chrono::seconds(1)) return true;
    char byte;
    ssize_t n = ::recv(c.sock.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;  // open, nothing unread
    return false;  // EOF, reset, or unexpected bytes: not reusable
  }

  void open_connection(host_pool& hp, const std::shared_ptr<exchange>& ex) {
    auto conn = std::make_shared<connection>(io);
    conn->pool = &hp;
    conn->ex = ex;
    ex->conn = conn.get();
    ++hp.open;
    // Each address is judged right before it would be dialled: a denied one is skipped.
    auto allowed = [conn](const asio::error_code&, const tcp::endpoint& ep) {
      const tasks::egress_rules& rules = conn->pool->egress ? *conn->pool->egress : tasks::default_egress_rules();
      const tasks::ip_address a = to_ip(ep.address());
      const tasks::egress_verdict v = tasks::check_egress(a, rules);
      if (!v.allowed && conn->egress_denial.empty()) conn->egress_denial = tasks::egress_denial_text(a, ep.port(), v);
      return v.allowed;
    };
    asio::async_connect(conn->sock, hp.endpoints, allowed, [this, conn](const asio::error_code& ec, const tcp::endpoint&) {
      if (conn->closed) return;
      if (ec) {
        auto carried = conn->ex;
        host_pool& p = *conn->pool;
        close(*conn);
        if (carried && !carried->done) {
          // An address of the origin was denied and none could be connected to: the
          // denial is the answer (a name that resolves to a denied address is suspect).
          if (!conn->egress_denial.empty())
            fail(*carried, std::move(conn->egress_denial), false, true);
          else
            fail(*carried, "Failed to connect to " + p.host + " port " + p.port + ": " + ec.message(), false);
        }
        pump(p);
        return;
      }
      asio::error_code ignored;
      conn->sock.set_option(tcp::no_delay(true), ignored);
      write_request(conn);
    });
  }

  void start_exchange(const std::shared_ptr<connection>& conn, const std::shared_ptr<exchange>& ex) {
    conn->ex = ex;
    ex->conn = conn.get();
    write_request(conn);
  }

  void write_request(const std::shared_ptr<connection>& conn) {
    conn->parser.begin(conn->ex->req.method == "HEAD");
    conn->received = 0;
    asio::async_write(conn->sock, asio::buffer(conn->ex->wire), [this, conn](const asio::error_code& ec, std::size_t) {
      if (conn->closed) return;
      if (ec) {
        connection_failed(conn, "Send failure: " + ec.message());
        return;
      }
      read_more(conn);
    });
  }

  void read_more(const std::shared_ptr<connection>& conn) {
    conn->sock.async_read_some(asio::buffer(conn->rbuf), [this, conn](const asio::error_code& ec, std::size_t n) {
      if (conn->closed) return;
      if (ec) {
        if (ec != asio::error::eof) {
          connection_failed(conn, "Recv failure: " + ec.message());
          return;
        }
        // The server closed: the end of a body read to the close, or a cut response.
        if (conn->parser.finish() == http1_response_parser::status::complete)
          complete(conn, false);
        else
          connection_failed(conn, std::string(conn->parser.error()));
        return;
      }
      conn->received += n;
      parse(conn, std::string_view(conn->rbuf.data(), n));
    });
  }

  // Hands what has arrived to the parser; reads more, completes, or fails the exchange.
  // Bytes go to the parser straight from the read buffer; only a partial line it leaves
  // (at most its line limit) is kept for the next read.
  void parse(const std::shared_ptr<connection>& conn, std::string_view fresh) {
    connection& c = *conn;
    http1_response_parser::status st;
    if (c.in.empty()) {
      st = c.parser.feed(fresh);
      fresh.remove_prefix(c.parser.consumed());
      c.in.assign(fresh);
    } else {
      c.in.append(fresh);
      st = c.parser.feed(c.in);
      c.in.erase(0, c.parser.consumed());
    }
    switch (st) {
      case http1_response_parser::status::need_more:
        read_more(conn);
        return;
      case http1_response_parser::status::complete:
        // Bytes after the response on a keep-alive connection: nothing was asked for
        // them, so the connection is not trusted with another request.
        complete(conn, c.parser.keep_alive() && c.in.empty());
        return;
      case http1_response_parser::status::error:
        connection_failed(conn, std::string(c.parser.error()));
        return;
    }
  }

  void complete(const std::shared_ptr<connection>& conn, bool reusable) {
    connection& c = *conn;
    auto ex = std::move(c.ex);
    c.ex.reset();
    host_pool& hp = *c.pool;
    if (ex && !ex->done) {
      http_result res;
      res.ticket = ex->req.ticket;
      res.code = c.parser.code();
      res.duration_ms = std::chrono::duration<double, std::milli>(steady::now() - ex->start).count();
      if (auto ra = c.parser.header("Retry-After")) res.retry_after.emplace(*ra);
      res.body = c.parser.take_body();
      res.truncated = c.parser.truncated();
      finish(*ex, std::move(res));
    }
    if (reusable && !stopped) {
      ++c.served;
      c.idle_since = steady::now();
      hp.idle.push_back(conn);
    } else {
      close(c);
    }
    pump(hp);
  }

  void connection_failed(const std::shared_ptr<connection>& conn, std::string error) {
    auto ex = conn->ex;
    host_pool& hp = *conn->pool;
    const bool stale = conn->served > 0 && conn->received == 0;
    close(*conn);
    if (ex && !ex->done) {
      if (stale && !ex->retried) {
        // The server closed this keep-alive connection while it was idle; the request
        // never reached it. Once more on a new connection.
        ex->retried = true;
        ex->conn = nullptr;
        hp.waiting.push_front(ex);
      } else {
        fail(*ex, std::move(error), false);
      }
    }
    pump(hp);
  }

  void close(connection& c) {
    if (c.closed) return;
    c.closed = true;
    asio::error_code ignored;
    c.sock.close(ignored);
    if (c.ex) c.ex->conn = nullptr;
    c.ex.reset();
    --c.pool->open;
  }

  void on_timeout(const std::shared_ptr<exchange>& ex) {
    if (ex->done) return;
    std::size_t got = 0;
    host_pool& hp = *ex->pool;
    if (ex->conn) {
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

  void fail(exchange& ex, std::string error, bool timed_out, bool egress_denied = false) {
    http_result res;
    res.ticket = ex.req.ticket;
    res.error = std::move(error);
    res.timed_out = timed_out;
    res.egress_denied = egress_denied;
    res.duration_ms = std::chrono::duration<double, std::milli>(steady::now() - ex.start).count();
    finish(ex, std::move(res));
  }

  void finish(exchange& ex, http_result&& res) {
    ex.done = true;
    if (ex.timer) ex.timer->cancel();
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
        // An origin with nothing left (no connection, nothing waiting, no lookup running)
        // goes too, so webhooks to ever new hosts do not add up. Nothing points to it:
        // connections and waiting exchanges are gone, and finished exchanges' timers
        // return before looking at their pool.
        if (hp.open == 0 && hp.idle.empty() && hp.waiting.empty() && !hp.resolving)
          it = pools.erase(it);
        else
          ++it;
      }
      arm_reaper();
    });
  }

  void shutdown() {
    stopped = true;
    reaper.cancel();
    for (auto& [key, hp] : pools) {
      for (auto& c : hp->idle) close(*c);
      hp->idle.clear();
      for (auto& ex : hp->waiting) {
        ex->done = true;
        if (ex->timer) ex->timer->cancel();
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
  if (!split_url(r.url, authority, target)) return false;
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
    if (!same(hp->egress, rules)) {
      // Idle connections were judged under the old rules: new ones are judged again.
      for (auto& c : hp->idle) impl_->close(*c);
      hp->idle.clear();
    }
    hp->egress = rules;
  }
  impl_->egress[pool] = std::move(rules);
}

void http1_client::submit(http_request&& r) { impl_->submit(std::move(r)); }

void http1_client::shutdown() { impl_->shutdown(); }

std::size_t http1_client::in_flight() const { return impl_->in_flight; }

std::size_t http1_client::origins() const { return impl_->pools.size(); }

}  // namespace respq::workers
