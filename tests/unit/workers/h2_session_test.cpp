// Specs for h2_session: the client side of HTTP/2 as the lean client drives it, against
// an in-memory HTTP/2 server made with nghttp2's own server session (no sockets, no TLS:
// bytes go from one to the other). Requests carry the HTTP/1.1 path's headers, lower-cased,
// without connection-specific ones; responses give code, Retry-After, body; the read limit
// cuts a stream (reset, truncated); streams the server did not process are `refused`; a
// malformed frame fails the connection with words, never a crash.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <functional>
#include <optional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nghttp2/nghttp2.h>

#include "workers/h2_session.hpp"

using respq::workers::h2_request;
using respq::workers::h2_session;
using respq::workers::response_limits;
using outcome = h2_session::outcome;

namespace {

// A server session that records each request and answers it as `respond` says when the
// request is complete.
struct test_server {
  struct request {
    std::map<std::string, std::string> headers;  // as received (pseudo-headers included)
    std::vector<std::pair<std::string, std::string>> in_order;
    std::string body;
  };
  std::map<std::int32_t, request> requests;
  std::vector<std::int32_t> complete;  // stream ids whose request ended, in order
  nghttp2_session* s = nullptr;
  std::string out;
  // Answer for a complete request: status, extra headers, body; status 0: no answer.
  std::function<void(test_server&, std::int32_t)> respond;
  std::map<std::int32_t, std::string> bodies;  // being sent

  test_server() {
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(
        cb, [](nghttp2_session*, const nghttp2_frame* f, const std::uint8_t* n, std::size_t nl, const std::uint8_t* v,
               std::size_t vl, std::uint8_t, void* u) {
          auto& r = static_cast<test_server*>(u)->requests[f->hd.stream_id];
          std::string name(reinterpret_cast<const char*>(n), nl), value(reinterpret_cast<const char*>(v), vl);
          r.headers[name] = value;
          r.in_order.emplace_back(name, value);
          return 0;
        });
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        cb, [](nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* d, std::size_t len, void* u) {
          static_cast<test_server*>(u)->requests[id].body.append(reinterpret_cast<const char*>(d), len);
          return 0;
        });
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, [](nghttp2_session*, const nghttp2_frame* f, void* u) {
      auto* self = static_cast<test_server*>(u);
      if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        self->complete.push_back(f->hd.stream_id);
        if (self->respond) self->respond(*self, f->hd.stream_id);
      }
      return 0;
    });
    nghttp2_session_server_new(&s, cb, this);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry max{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 50};
    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, &max, 1);
  }
  ~test_server() { nghttp2_session_del(s); }
  test_server(const test_server&) = delete;
  test_server& operator=(const test_server&) = delete;

  void answer(std::int32_t id, int code, std::vector<std::pair<std::string, std::string>> headers, std::string body) {
    std::string status = std::to_string(code);
    std::vector<nghttp2_nv> nva;
    auto nv = [](const std::string& n, const std::string& v) {
      return nghttp2_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(n.data())),
                        reinterpret_cast<std::uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(),
                        NGHTTP2_NV_FLAG_NONE};
    };
    const std::string st = ":status";
    nva.push_back(nv(st, status));
    for (const auto& [n, v] : headers) nva.push_back(nv(n, v));
    if (body.empty()) {
      nghttp2_submit_response(s, id, nva.data(), nva.size(), nullptr);
      return;
    }
    bodies[id] = std::move(body);
    nghttp2_data_provider p{};
    p.read_callback = [](nghttp2_session*, std::int32_t sid, std::uint8_t* buf, std::size_t len, std::uint32_t* flags,
                         nghttp2_data_source*, void* u) -> ssize_t {
      std::string& b = static_cast<test_server*>(u)->bodies[sid];
      const std::size_t n = std::min(len, b.size());
      std::memcpy(buf, b.data(), n);
      b.erase(0, n);
      if (b.empty()) *flags |= NGHTTP2_DATA_FLAG_EOF;
      return static_cast<ssize_t>(n);
    };
    nghttp2_submit_response(s, id, nva.data(), nva.size(), &p);
  }

  void flush() {
    const std::uint8_t* d = nullptr;
    for (ssize_t n; (n = nghttp2_session_mem_send(s, &d)) > 0;) out.append(reinterpret_cast<const char*>(d), n);
  }
};

// Moves bytes both ways until neither side has anything to say. False if the client
// gave up on the connection.
bool exchange(h2_session& c, test_server& srv) {
  for (int round = 0; round < 1000; ++round) {
    std::string to_server;
    if (!c.produce(to_server)) return false;
    if (!to_server.empty()) nghttp2_session_mem_recv(srv.s, reinterpret_cast<const std::uint8_t*>(to_server.data()), to_server.size());
    srv.flush();
    if (to_server.empty() && srv.out.empty()) return true;
    std::string to_client = std::move(srv.out);
    srv.out.clear();
    if (!to_client.empty() && !c.receive(to_client)) return false;
  }
  return true;
}

const std::vector<std::pair<std::string, std::string>> no_headers;

h2_request get(const char* path, const std::vector<std::pair<std::string, std::string>>& headers = no_headers) {
  h2_request r;
  r.method = "GET";
  r.authority = "example.test:8443";
  r.path = path;
  r.user_agent = "respq/test";
  r.headers = &headers;
  return r;
}

std::vector<h2_session::finished> take(h2_session& c) {
  auto out = std::move(c.take_finished());
  c.take_finished().clear();
  return out;
}

}  // namespace

TEST_CASE("h2_session sends the HTTP/1.1 path's headers, lower-cased, and reads code, Retry-After and body") {
  test_server srv;
  srv.respond = [](test_server& s, std::int32_t id) {
    s.answer(id, 503, {{"retry-after", "120"}, {"content-type", "text/plain"}}, "busy, come back later");
  };
  h2_session c;
  REQUIRE(c.start());
  const std::vector<std::pair<std::string, std::string>> headers{
      {"X-Task-Id", "t-1"}, {"Connection", "keep-alive"}, {"Keep-Alive", "timeout=5"}, {"Transfer-Encoding", "chunked"},
      {"Host", "other.test"}, {"TE", "gzip"}, {"Webhook-Signature", "v1,abc\r\nx"}};
  std::string error;
  const std::int32_t id = c.submit(get("/hook?a=1", headers), error);
  REQUIRE(id > 0);
  REQUIRE(exchange(c, srv));
  const auto& h = srv.requests.at(id).headers;
  CHECK(h.at(":method") == "GET");
  CHECK(h.at(":scheme") == "https");
  CHECK(h.at(":authority") == "other.test");  // the task's Host header
  CHECK(h.at(":path") == "/hook?a=1");
  CHECK(h.at("user-agent") == "respq/test");
  CHECK(h.at("accept") == "*/*");
  CHECK(h.at("x-task-id") == "t-1");
  CHECK(h.at("webhook-signature") == "v1,abc  x");
  for (const char* gone : {"connection", "keep-alive", "transfer-encoding", "host", "te", "content-length"})
    CHECK(h.count(gone) == 0);
  auto done = take(c);
  REQUIRE(done.size() == 1);
  CHECK(done[0].how == outcome::complete);
  CHECK(done[0].code == 503);
  CHECK(done[0].retry_after == std::optional<std::string>("120"));
  CHECK(done[0].body == "busy, come back later");
  CHECK_FALSE(done[0].truncated);
  CHECK(c.open_streams() == 0);
  CHECK(c.max_streams() == 50);  // the server's SETTINGS
}

TEST_CASE("h2_session sends a body with its length, and an empty one for a bodiless POST") {
  test_server srv;
  srv.respond = [](test_server& s, std::int32_t id) { s.answer(id, 200, {}, ""); };
  h2_session c;
  REQUIRE(c.start());
  const std::string body(300'000, 'b');  // past the default stream window: flow control
  h2_request post = get("/p");
  post.method = "POST";
  post.body = &body;
  h2_request empty = get("/e");
  empty.method = "PATCH";
  std::string error;
  const auto a = c.submit(post, error), b = c.submit(empty, error);
  REQUIRE(exchange(c, srv));
  CHECK(srv.requests.at(a).body == body);
  CHECK(srv.requests.at(a).headers.at("content-length") == "300000");
  CHECK(srv.requests.at(b).body.empty());
  CHECK(srv.requests.at(b).headers.at("content-length") == "0");
  auto done = take(c);
  REQUIRE(done.size() == 2);
  for (const auto& f : done) CHECK((f.how == outcome::complete && f.code == 200));
}

TEST_CASE("h2_session cuts a body past the read limit: reset, complete, truncated, kept part only") {
  test_server srv;
  srv.respond = [](test_server& s, std::int32_t id) { s.answer(id, 200, {}, std::string(50'000, 'x')); };
  response_limits small;
  small.keep_body = 1000;
  small.max_body = 20'000;
  h2_session c(small);
  REQUIRE(c.start());
  std::string error;
  c.submit(get("/big"), error);
  REQUIRE(exchange(c, srv));
  auto done = take(c);
  REQUIRE(done.size() == 1);
  CHECK(done[0].how == outcome::complete);
  CHECK(done[0].truncated);
  CHECK(done[0].body == std::string(1000, 'x'));
  // The connection goes on.
  CHECK(c.accepts());
  c.submit(get("/next"), error);
  srv.respond = [](test_server& s, std::int32_t id) { s.answer(id, 204, {}, ""); };
  REQUIRE(exchange(c, srv));
  done = take(c);
  REQUIRE(done.size() == 1);
  CHECK(done[0].code == 204);
}

TEST_CASE("h2_session reports streams the server did not process as refused") {
  test_server srv;
  h2_session c;
  REQUIRE(c.start());
  std::string error;
  std::vector<std::int32_t> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(c.submit(get("/r"), error));
  REQUIRE(exchange(c, srv));
  REQUIRE(srv.complete.size() == 4);
  SECTION("RST_STREAM REFUSED_STREAM") {
    nghttp2_submit_rst_stream(srv.s, NGHTTP2_FLAG_NONE, ids[0], NGHTTP2_REFUSED_STREAM);
    srv.answer(ids[1], 200, {}, "ok");
    nghttp2_submit_rst_stream(srv.s, NGHTTP2_FLAG_NONE, ids[2], NGHTTP2_INTERNAL_ERROR);
    REQUIRE(exchange(c, srv));
    std::map<std::int32_t, h2_session::finished> by;
    for (auto& f : take(c)) by[f.stream] = f;
    CHECK(by.at(ids[0]).how == outcome::refused);
    CHECK(by.at(ids[1]).how == outcome::complete);
    CHECK(by.at(ids[2]).how == outcome::failed);
    CHECK(by.at(ids[2]).error == "HTTP/2 stream " + std::to_string(ids[2]) + " was not closed cleanly: INTERNAL_ERROR (err 2)");
    CHECK(by.count(ids[3]) == 0);  // still open
    CHECK(c.accepts());
  }
  SECTION("GOAWAY below them: those above are refused, the one at or below is answered") {
    nghttp2_submit_goaway(srv.s, NGHTTP2_FLAG_NONE, ids[1], NGHTTP2_NO_ERROR, nullptr, 0);
    srv.answer(ids[0], 200, {}, "");
    srv.answer(ids[1], 201, {}, "");
    REQUIRE(exchange(c, srv));
    std::map<std::int32_t, outcome> by;
    for (auto& f : take(c)) by[f.stream] = f.how;
    CHECK(by == std::map<std::int32_t, outcome>{{ids[0], outcome::complete}, {ids[1], outcome::complete},
                                                 {ids[2], outcome::refused}, {ids[3], outcome::refused}});
    CHECK_FALSE(c.accepts());
    CHECK(c.finished_both_ways());
  }
}

TEST_CASE("h2_session fails a stream whose headers break the limits, and a connection sent garbage") {
  SECTION("too many header fields") {
    test_server srv;
    srv.respond = [](test_server& s, std::int32_t id) {
      std::vector<std::pair<std::string, std::string>> many;
      for (int i = 0; i < 150; ++i) many.emplace_back("x-h" + std::to_string(i), "v");
      s.answer(id, 200, many, "");
    };
    h2_session c;
    REQUIRE(c.start());
    std::string error;
    c.submit(get("/h"), error);
    exchange(c, srv);
    auto done = take(c);
    REQUIRE(done.size() == 1);
    CHECK(done[0].how == outcome::failed);
    CHECK(done[0].error == "Too many response headers");
  }
  SECTION("bytes that are no HTTP/2 frames") {
    h2_session c;
    REQUIRE(c.start());
    std::string error, out;
    c.submit(get("/g"), error);
    REQUIRE(c.produce(out));
    const std::string garbage = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    const bool ok = c.receive(garbage) && c.produce(out);
    CHECK((!ok || c.finished_both_ways()));
    CHECK(c.error().rfind("HTTP/2", 0) == 0);
  }
  SECTION("a frame of a type that breaks the rules: DATA on stream 0") {
    test_server srv;
    h2_session c;
    REQUIRE(c.start());
    std::string error;
    c.submit(get("/d"), error);
    REQUIRE(exchange(c, srv));
    // A DATA frame header for stream 0 with 4 bytes of payload.
    const std::string bad("\x00\x00\x04\x00\x00\x00\x00\x00\x00" "abcd", 13);
    std::string out;
    const bool ok = c.receive(bad) && c.produce(out);
    CHECK((!ok || c.finished_both_ways()));
    CHECK_FALSE(c.error().empty());
  }
}

TEST_CASE("h2_session tells when the server's SETTINGS arrived and counts the frames it answered streams with") {
  test_server srv;  // announces MAX_CONCURRENT_STREAMS 50
  h2_session c;
  REQUIRE(c.start());
  CHECK_FALSE(c.settings_received());
  CHECK(c.max_streams() == 100);  // assumed until the server tells
  std::string error;
  const std::int32_t first = c.submit(get("/a"), error);
  REQUIRE(first != 0);
  // Nothing answers yet: SETTINGS and their acknowledgements are no answer.
  REQUIRE(exchange(c, srv));
  CHECK(c.settings_received());
  CHECK(c.max_streams() == 50);
  CHECK(c.stream_frames() == 0);
  CHECK(c.take_finished().empty());
  // A response of HEADERS then DATA: two frames on the stream.
  srv.answer(first, 200, {}, "ok");
  REQUIRE(exchange(c, srv));
  CHECK(c.stream_frames() == 2);
  REQUIRE(c.take_finished().size() == 1);
  // A reset is an answer too.
  const std::int32_t second = c.submit(get("/b"), error);
  REQUIRE(exchange(c, srv));
  nghttp2_submit_rst_stream(srv.s, NGHTTP2_FLAG_NONE, second, NGHTTP2_INTERNAL_ERROR);
  REQUIRE(exchange(c, srv));
  CHECK(c.stream_frames() == 3);
}

TEST_CASE("h2_session takes back the streams held over the server's limit and reports them refused") {
  test_server srv;  // MAX_CONCURRENT_STREAMS 50
  h2_session c;
  REQUIRE(c.start());
  REQUIRE(exchange(c, srv));  // SETTINGS both ways
  REQUIRE(c.max_streams() == 50);
  std::string error;
  std::vector<std::int32_t> ids;
  for (int i = 0; i < 52; ++i) ids.push_back(c.submit(get("/many"), error));
  REQUIRE(exchange(c, srv));
  CHECK(srv.requests.size() == 50);
  c.withdraw_unsent();
  auto& done = c.take_finished();
  REQUIRE(done.size() == 2);
  CHECK(done[0].stream == ids[50]);
  CHECK(done[1].stream == ids[51]);
  for (const auto& f : done) {
    CHECK(f.how == outcome::refused);
    CHECK(f.error.find("REFUSED_STREAM") != std::string::npos);
  }
  done.clear();
  CHECK(c.open_streams() == 50);
  // Room made later does not send them.
  srv.answer(ids[0], 204, {}, "");
  REQUIRE(exchange(c, srv));
  CHECK(srv.requests.size() == 50);
}

TEST_CASE("h2_session fails a request whose header block is over nghttp2's limit and goes on") {
  test_server srv;
  srv.respond = [](test_server& s, std::int32_t id) { s.answer(id, 204, {}, ""); };
  h2_session c;
  REQUIRE(c.start());
  std::string error;
  const std::vector<std::pair<std::string, std::string>> big{{"X-Big", std::string(70 * 1024, 'h')}};
  c.submit(get("/big", big), error);
  REQUIRE(exchange(c, srv));
  auto& done = c.take_finished();
  REQUIRE(done.size() == 1);
  CHECK(done[0].how == outcome::failed);
  CHECK(done[0].error == "Request headers too large for HTTP/2 (a header block over 64 KB)");
  done.clear();
  CHECK(srv.requests.empty());
  CHECK(c.accepts());
  c.submit(get("/small"), error);
  REQUIRE(exchange(c, srv));
  REQUIRE(c.take_finished().size() == 1);
  CHECK(c.take_finished()[0].code == 204);
}
