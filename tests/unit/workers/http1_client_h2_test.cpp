// http1_client over HTTP/2 against servers that misbehave in ways nginx cannot be made to:
// an in-process TLS server (OpenSSL, nghttp2's server session, its own thread) whose every
// connection follows a script: answer, stay silent, answer one and end gracefully, answer
// one and break the connection, or allow no stream at all. What the client must do:
//  - a connection on which a stream timed out with no answer on any stream since takes no
//    new stream (a hung server would otherwise swallow every task until each times out);
//  - streams a server sheds normally (sent before its SETTINGS, or cut by a graceful
//    GOAWAY after it served) go again without counting, however often;
//  - a response that arrived whole before the connection broke (a TLS record that does
//    not decrypt, read in the same turn) is delivered;
//  - a server whose SETTINGS allow no stream does not stall the host: its connection goes,
//    and one that always allows none ends in the refusal error, not a timeout;
//  - requests sent on a connection the server closed unanswered share one new connection;
//  - an idle connection closes after the idle limit even while the server PINGs it.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "test_servers.hpp"
#include "workers/http1_client.hpp"

using namespace respq::workers;
using namespace std::chrono_literals;
using respq::test::get;
using respq::test::run_until;
using respq::test::test_pki;

namespace {

// What one connection does.
struct h2_script {
  enum class mode {
    answer,              // 200 "h2-ok" to every request
    silent,              // reads everything, answers no stream
    answer_one_goaway,   // answers the first request, then GOAWAY below the rest, and closes
    answer_one_break,    // answers the first request, then breaks TLS (a record that is none)
    answer_one_close,    // answers the first request, closes (close_notify) on the next
    answer_one_refuse,   // answers the first request, refuses every later one, stays open
    answer_n_close,      // answers the first `n` requests, closes (close_notify) on the next
    goaway_refuse,       // GOAWAY NO_ERROR with last stream `goaway_last` (0: at once, else when
                         // the first request came), refuses every request, stays open
  };
  mode how = mode::answer;
  std::uint32_t max_streams = 100;  // its SETTINGS_MAX_CONCURRENT_STREAMS
  bool ping = false;                // a PING every 50 ms, as some servers keep connections alive
  int n = 1;                        // answer_n_close
  std::int32_t goaway_last = 0;     // goaway_refuse
};

class h2_tls_server {
 public:
  // `script` is asked for each accepted connection, numbered from 0. With tls12, TLS 1.2
  // only: the server's Finished comes last, and its SETTINGS can come with it.
  h2_tls_server(const std::string& cert, const std::string& key, std::function<h2_script(int)> script,
                bool tls12 = false)
      : script_(std::move(script)) {
    ctx_ = SSL_CTX_new(TLS_server_method());
    REQUIRE(ctx_);
    if (tls12) SSL_CTX_set_max_proto_version(ctx_, TLS1_2_VERSION);
    REQUIRE(SSL_CTX_use_certificate_chain_file(ctx_, cert.c_str()) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey_file(ctx_, key.c_str(), SSL_FILETYPE_PEM) == 1);
    SSL_CTX_set_alpn_select_cb(
        ctx_,
        [](SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned inlen, void*) {
          unsigned char* sel = nullptr;
          if (nghttp2_select_next_protocol(&sel, outlen, in, inlen) != 1) return SSL_TLSEXT_ERR_ALERT_FATAL;
          *out = sel;
          return SSL_TLSEXT_ERR_OK;
        },
        nullptr);
    listener_ = respq::test::loopback_socket(64, port_, SOCK_NONBLOCK);
    thread_ = std::thread([this] { loop(); });
  }
  ~h2_tls_server() {
    stop_ = true;
    thread_.join();
    for (auto& c : conns_) c->shut(false);
    ::close(listener_);
    SSL_CTX_free(ctx_);
  }
  h2_tls_server(const h2_tls_server&) = delete;
  h2_tls_server& operator=(const h2_tls_server&) = delete;

  std::string url(const std::string& path) const { return "https://127.0.0.1:" + std::to_string(port_) + path; }
  int connections() const { return accepted_; }
  int requests() const { return requests_; }
  int closed_by_client() const { return closed_by_client_; }

 private:
  struct conn {
    h2_tls_server* server = nullptr;
    h2_script script;
    int fd = -1;
    SSL* ssl = nullptr;
    bool handshaken = false;
    bool goaway_sent = false;
    bool closing = false;   // close once what is queued is written
    bool broken = false;    // ... after bytes that are no TLS record
    bool draining = false;  // closed for writing; reading until the client closes too
    bool done = false;
    int answered = 0;
    std::chrono::steady_clock::time_point last_ping;
    nghttp2_session* h2 = nullptr;
    std::string out;

    void shut(bool notify) {
      if (done) return;
      done = true;
      if (ssl) {
        if (notify) SSL_shutdown(ssl);
        SSL_free(ssl);
      }
      if (h2) nghttp2_session_del(h2);
      ::close(fd);
    }

    void answer(std::int32_t id) {
      static const char* body = "h2-ok";
      nghttp2_nv nva[] = {{(std::uint8_t*)":status", (std::uint8_t*)"200", 7, 3, NGHTTP2_NV_FLAG_NONE}};
      nghttp2_data_provider p{};
      p.read_callback = [](nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t, std::uint32_t* flags,
                           nghttp2_data_source*, void*) -> ssize_t {
        std::memcpy(buf, body, 5);
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        return 5;
      };
      nghttp2_submit_response(h2, id, nva, 1, &p);
      ++answered;
    }

    void on_request(std::int32_t id) {
      ++server->requests_;
      switch (script.how) {
        case h2_script::mode::answer:
          answer(id);
          break;
        case h2_script::mode::silent:
          break;
        case h2_script::mode::answer_one_goaway:
          if (answered > 0) break;
          answer(id);
          nghttp2_submit_goaway(h2, NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR, nullptr, 0);
          closing = true;
          break;
        case h2_script::mode::answer_one_break:
          if (answered > 0) break;
          answer(id);
          closing = broken = true;
          break;
        case h2_script::mode::answer_one_close:
          if (answered > 0) closing = true;
          else answer(id);
          break;
        case h2_script::mode::answer_one_refuse:
          if (answered > 0) nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
          else answer(id);
          break;
        case h2_script::mode::answer_n_close:
          if (answered >= script.n) closing = true;
          else answer(id);
          break;
        case h2_script::mode::goaway_refuse:
          // A GOAWAY that takes the streams goes out once one came: sent before, with no
          // stream open, nghttp2 would be done with the session and ignore the request
          // (the client would wait for an answer that never comes).
          if (!goaway_sent) {
            nghttp2_submit_goaway(h2, NGHTTP2_FLAG_NONE, script.goaway_last, NGHTTP2_NO_ERROR, nullptr, 0);
            goaway_sent = true;
          }
          nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
          break;
      }
    }

    void start() {
      nghttp2_session_callbacks* cb = nullptr;
      nghttp2_session_callbacks_new(&cb);
      nghttp2_session_callbacks_set_on_frame_recv_callback(cb, [](nghttp2_session*, const nghttp2_frame* f, void* u) {
        auto* c = static_cast<conn*>(u);
        if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) return 0;
        if (f->hd.type == NGHTTP2_HEADERS && c->script.max_streams == 0) {
          // Over the limit it announced: not processed.
          nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_REFUSED_STREAM);
          return 0;
        }
        if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) c->on_request(f->hd.stream_id);
        return 0;
      });
      nghttp2_session_server_new(&h2, cb, this);
      nghttp2_session_callbacks_del(cb);
      nghttp2_settings_entry s{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, script.max_streams};
      nghttp2_submit_settings(h2, NGHTTP2_FLAG_NONE, &s, 1);
      if (script.how == h2_script::mode::goaway_refuse && script.goaway_last == 0) {
        nghttp2_submit_goaway(h2, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, nullptr, 0);
        goaway_sent = true;
      }
    }

    // Reads, answers, writes; false when the connection is over.
    bool step() {
      if (draining) {
        // What the client still sends is read and dropped: closing with unread bytes
        // would reset the connection and lose what was sent before.
        char buf[4096];
        for (;;) {
          const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
          if (n > 0) continue;
          return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
        }
      }
      if (!handshaken) {
        ERR_clear_error();
        const int r = SSL_accept(ssl);
        if (r != 1) {
          const int e = SSL_get_error(ssl, r);
          return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
        }
        handshaken = true;
        start();
      }
      if (!closing) {
        char buf[16384];
        for (;;) {
          ERR_clear_error();
          const int n = SSL_read(ssl, buf, sizeof buf);
          if (n > 0) {
            if (nghttp2_session_mem_recv(h2, reinterpret_cast<const std::uint8_t*>(buf), static_cast<std::size_t>(n)) < 0)
              return false;
            continue;
          }
          const int e = SSL_get_error(ssl, n);
          if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
          return false;
        }
      }
      if (script.ping && std::chrono::steady_clock::now() - last_ping > 50ms) {
        last_ping = std::chrono::steady_clock::now();
        nghttp2_submit_ping(h2, NGHTTP2_FLAG_NONE, nullptr);
      }
      const std::uint8_t* d = nullptr;
      for (ssize_t n; (n = nghttp2_session_mem_send(h2, &d)) > 0;) out.append(reinterpret_cast<const char*>(d), n);
      if (broken) {
        // The response and what breaks the connection in one segment: the client reads
        // both in the same turn.
        const int on = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
      }
      while (!out.empty()) {
        ERR_clear_error();
        const int n = SSL_write(ssl, out.data(), static_cast<int>(out.size()));
        if (n <= 0) return true;  // the socket is full: on the next turn
        out.erase(0, static_cast<std::size_t>(n));
      }
      if (closing) {
        if (broken) {
          static const char junk[] = "\x17\x03\x03\x00\x10not-a-tls-record";
          (void)!::write(fd, junk, sizeof junk - 1);
        } else {
          SSL_shutdown(ssl);  // close_notify
        }
        ::shutdown(fd, SHUT_WR);
        draining = true;
        return true;
      }
      // goaway_refuse stays open until the client closes: nghttp2 wants nothing more once
      // its GOAWAY is out and no stream is open, and closing then could come before the
      // client read the refusal (it would see its connection closed instead).
      return script.how == h2_script::mode::goaway_refuse || nghttp2_session_want_read(h2) ||
             nghttp2_session_want_write(h2);
    }
  };

  void loop() {
    while (!stop_) {
      std::vector<pollfd> fds{{listener_, POLLIN, 0}};
      for (auto& c : conns_) fds.push_back({c->fd, POLLIN, 0});
      ::poll(fds.data(), fds.size(), 10);
      for (int fd; (fd = ::accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) {
        auto c = std::make_unique<conn>();
        c->server = this;
        c->script = script_(accepted_);
        ++accepted_;
        c->fd = fd;
        const int on = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        c->ssl = SSL_new(ctx_);
        SSL_set_fd(c->ssl, fd);
        conns_.push_back(std::move(c));
      }
      for (auto& c : conns_)
        if (!c->step()) {
          if (!c->closing) ++closed_by_client_;  // its GOAWAY, its close, or both
          c->shut(!c->closing);
        }
      std::erase_if(conns_, [](const auto& c) { return c->done; });
    }
  }

  std::function<h2_script(int)> script_;
  SSL_CTX* ctx_ = nullptr;
  int listener_ = -1;
  int port_ = 0;
  std::vector<std::unique_ptr<conn>> conns_;  // the server thread's only
  std::atomic<int> accepted_{0};
  std::atomic<int> requests_{0};
  std::atomic<int> closed_by_client_{0};  // connections the client ended (GOAWAY or close)
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct h2_fixture {
  test_pki pki;
  asio::io_context io;
  std::vector<http_result> results;
  http1_client client;
  explicit h2_fixture(std::chrono::steady_clock::duration idle_limit = 30s)
      : client(io, "respq-test", [this](http_result&& r) { results.push_back(std::move(r)); }, idle_limit) {
    std::signal(SIGPIPE, SIG_IGN);
    pki.make_ca("ca");
    pki.sign("server", "ca", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1");
    auto trust = std::make_shared<respq::tasks::tls_trust>();
    trust->ca_file = pki.path("ca.crt");
    client.set_tls("tasks", trust);
  }
  ~h2_fixture() { client.shutdown(); }
  std::unique_ptr<h2_tls_server> server(std::function<h2_script(int)> script, bool tls12 = false) {
    return std::make_unique<h2_tls_server>(pki.path("server.crt"), pki.path("server.key"), std::move(script), tls12);
  }
  http_result one(http_request r) {
    const std::size_t before = results.size();
    client.submit(std::move(r));
    REQUIRE(run_until(io, [&] { return results.size() > before; }, 20s));
    return results.back();
  }
};

}  // namespace

TEST_CASE("http1_client over HTTP/2: a connection whose server stopped answering takes no new stream", "[http1][h2]") {
  h2_fixture f;
  auto srv = f.server([](int n) { return h2_script{n == 0 ? h2_script::mode::silent : h2_script::mode::answer}; });
  auto hung = get(1, srv->url("/hung"));
  hung.timeout_s = 1;
  http_result a = f.one(hung);
  CHECK(a.timed_out);
  CHECK(a.code == 0);
  // The next request goes on a new connection, not to the silent one.
  http_result b = f.one(get(2, srv->url("/next")));
  INFO(b.error);
  CHECK(b.code == 200);
  CHECK(b.body == "h2-ok");
  CHECK(srv->connections() == 2);
  CHECK(srv->requests() == 2);
}

TEST_CASE("http1_client over HTTP/2: streams shed by a graceful GOAWAY go again however often", "[http1][h2]") {
  h2_fixture f;
  // Every connection serves one request and refuses the rest: 8 requests at once need 8
  // connections, the last one refused 7 times.
  auto srv = f.server([](int) { return h2_script{h2_script::mode::answer_one_goaway}; });
  for (std::uint64_t i = 1; i <= 8; ++i) f.client.submit(get(i, srv->url("/g?i=" + std::to_string(i))));
  REQUIRE(run_until(f.io, [&] { return f.results.size() == 8; }, 20s));
  for (const auto& r : f.results) {
    INFO(r.ticket << ": " << r.error);
    CHECK(r.code == 200);
  }
  CHECK(srv->connections() == 8);
}

TEST_CASE("http1_client over HTTP/2: a response that arrived whole before the connection broke is delivered",
          "[http1][h2]") {
  h2_fixture f;
  auto srv = f.server([](int) { return h2_script{h2_script::mode::answer_one_break}; });
  for (std::uint64_t i = 1; i <= 3; ++i) {
    http_result r = f.one(get(i, srv->url("/d?i=" + std::to_string(i))));
    INFO(r.error);
    CHECK(r.code == 200);
    CHECK(r.body == "h2-ok");
  }
  CHECK(srv->connections() == 3);
}

TEST_CASE("http1_client over HTTP/2: a server whose SETTINGS allow no stream", "[http1][h2]") {
  h2_fixture f;
  SECTION("only on its first connection: the host does not stall, the request goes on the next") {
    f.client.set_per_host("tasks", 1);
    auto srv = f.server([](int n) { return h2_script{h2_script::mode::answer, n == 0 ? 0u : 100u}; });
    http_result r = f.one(get(1, srv->url("/z")));
    INFO(r.error);
    CHECK(r.code == 200);
    CHECK(srv->connections() == 2);
  }
  SECTION("always: the refusal is the error, after a few connections, well before the timeout") {
    // Over TLS 1.2 the SETTINGS can arrive with the handshake, before the request leaves:
    // nghttp2 then holds the request back, and it is refused all the same.
    const bool tls12 = GENERATE(false, true);
    INFO("TLS 1.2 only: " << tls12);
    auto srv = f.server([](int) { return h2_script{h2_script::mode::answer, 0}; }, tls12);
    const auto start = std::chrono::steady_clock::now();
    http_result r = f.one(get(1, srv->url("/never")));
    CHECK(r.code == 0);
    CHECK_FALSE(r.timed_out);
    CHECK(r.error.find("REFUSED_STREAM") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - start < 8s);  // the request's timeout is 10 s
    CHECK(srv->connections() == 4);  // refused once on each, the fourth refusal is final
  }
}

TEST_CASE("http1_client over HTTP/2: requests that met a connection closed while idle share one new connection",
          "[http1][h2]") {
  h2_fixture f;
  auto srv = f.server([](int n) { return h2_script{n == 0 ? h2_script::mode::answer_one_close : h2_script::mode::answer}; });
  http_result first = f.one(get(1, srv->url("/first")));
  INFO(first.error);
  REQUIRE(first.code == 200);
  // Eight requests go on the connection that served; the server closes it unanswered.
  for (std::uint64_t i = 2; i <= 9; ++i) f.client.submit(get(i, srv->url("/again?i=" + std::to_string(i))));
  REQUIRE(run_until(f.io, [&] { return f.results.size() == 9; }, 20s));
  int ok = 0;
  for (const auto& r : f.results) ok += r.code == 200;
  // Each went again once, all eight on one new connection.
  CHECK(ok == 9);
  CHECK(srv->connections() == 2);
}

TEST_CASE("http1_client over HTTP/2: a server's PINGs do not keep an idle connection past the idle limit",
          "[http1][h2]") {
  h2_fixture f(300ms);
  h2_script script{h2_script::mode::answer};
  script.ping = true;
  auto srv = f.server([script](int) { return script; });
  http_result r = f.one(get(1, srv->url("/p")));
  INFO(r.error);
  REQUIRE(r.code == 200);
  f.io.restart();
  f.io.run_for(1500ms);
  CHECK(srv->closed_by_client() == 1);
  CHECK(srv->connections() == 1);
}

TEST_CASE("http1_client over HTTP/2: a connection that served and then refuses every stream ends in the error",
          "[http1][h2]") {
  h2_fixture f;
  auto srv = f.server([](int) { return h2_script{h2_script::mode::answer_one_refuse}; });
  http_result first = f.one(get(1, srv->url("/first")));
  INFO(first.error);
  REQUIRE(first.code == 200);
  const auto start = std::chrono::steady_clock::now();
  http_result r = f.one(get(2, srv->url("/shed")));
  CHECK(r.code == 0);
  CHECK_FALSE(r.timed_out);
  CHECK(r.error.find("REFUSED_STREAM") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - start < 8s);
  CHECK(srv->requests() == 5);  // the first, then the refused one four times
  CHECK(srv->connections() == 1);
}

TEST_CASE("http1_client over HTTP/2: a request whose headers nghttp2 cannot send fails at once", "[http1][h2]") {
  h2_fixture f;
  auto srv = f.server([](int) { return h2_script{h2_script::mode::answer}; });
  http_result warm = f.one(get(1, srv->url("/warm")));  // a connection that has served
  REQUIRE(warm.code == 200);
  auto big = get(2, srv->url("/big-headers"));
  big.headers.emplace_back("X-Big", std::string(70 * 1024, 'h'));
  const auto start = std::chrono::steady_clock::now();
  http_result r = f.one(big);
  CHECK(r.code == 0);
  CHECK_FALSE(r.timed_out);
  CHECK(r.error == "Request headers too large for HTTP/2 (a header block over 64 KB)");
  CHECK(std::chrono::steady_clock::now() - start < 5s);
  CHECK(srv->requests() == 1);
  // The connection carries on.
  http_result after = f.one(get(3, srv->url("/after")));
  CHECK(after.code == 200);
  CHECK(srv->connections() == 1);
}

TEST_CASE("http1_client over HTTP/2: a request retried after a stale connection skips the other old ones",
          "[http1][h2]") {
  h2_fixture f;
  // Connections 0 and 1 take one stream at a time; connection 0 serves two requests,
  // connection 1 one: each then closes on the next request unanswered. Later
  // connections answer all.
  auto srv = f.server([](int n) {
    h2_script s{n < 2 ? h2_script::mode::answer_n_close : h2_script::mode::answer, n < 2 ? 1u : 100u};
    s.n = n == 0 ? 2 : 1;
    return s;
  });
  REQUIRE(f.one(get(1, srv->url("/r1"))).code == 200);
  f.client.submit(get(2, srv->url("/r2")));
  f.client.submit(get(3, srv->url("/r3")));  // connection 0 is busy: on connection 1
  REQUIRE(run_until(f.io, [&] { return f.results.size() == 3; }, 20s));
  for (const auto& r : f.results) {
    INFO(r.error);
    CHECK(r.code == 200);
  }
  REQUIRE(srv->connections() == 2);
  // Both old connections now close on their next request. The request goes on one, is
  // retried once, and must not go on the other old one: a new connection takes it.
  http_result x = f.one(get(4, srv->url("/x")));
  INFO(x.error);
  CHECK(x.code == 200);
  CHECK(srv->connections() == 3);
}

TEST_CASE("http1_client over HTTP/2: refusals a server sheds on every new connection end in the error",
          "[http1][h2]") {
  h2_fixture f;
  // A draining server: GOAWAY with last stream 0 at once (nothing taken), or a GOAWAY
  // that takes everything and then refuses each stream. Neither explains the refusal:
  // each counts, and the fourth is the error, not a new connection per round trip until
  // the timeout.
  const std::int32_t last = GENERATE(0, 0x7fffffff);
  INFO("GOAWAY last stream " << last);
  h2_script script{h2_script::mode::goaway_refuse};
  script.goaway_last = last;
  auto srv = f.server([script](int) { return script; });
  auto r = get(1, srv->url("/d"));
  r.timeout_s = 5;
  http_result x = f.one(r);
  INFO(x.error);
  CHECK(x.code == 0);
  CHECK_FALSE(x.timed_out);
  CHECK(x.error.find("REFUSED_STREAM") != std::string::npos);
  CHECK(srv->connections() <= 4);
}
