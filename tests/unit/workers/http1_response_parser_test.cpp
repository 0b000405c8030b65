// Specs for http1_response_parser: valid responses of every framing give the same result
// whether they arrive whole, split at any byte, or one byte at a time, and consume exactly
// their own bytes (a pipelined next response is left for the next begin()); hostile
// responses fail with the same error text however they arrive, before the parser stores
// or waits for more than its limits.
#include <catch2/catch.hpp>

#include <strings.h>

#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "workers/http1_response_parser.hpp"

using namespace std::string_literals;
using respq::workers::http1_response_parser;
using respq::workers::response_limits;
using status = http1_response_parser::status;

namespace {

// What a run saw, in comparable form.
struct outcome {
  status st = status::need_more;
  std::string error;
  int code = 0;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::size_t body_size = 0;
  bool truncated = false;
  bool keep_alive = false;
  bool http10 = false;
  std::size_t consumed = 0;  // input bytes the response took
  bool operator==(const outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const outcome& o) {
  return os << "{st " << static_cast<int>(o.st) << " error '" << o.error << "' code " << o.code << " body '"
            << o.body.substr(0, 40) << "' size " << o.body_size << " truncated " << o.truncated << " keep_alive "
            << o.keep_alive << " consumed " << o.consumed << "}";
}

// Feeds `input` in pieces ending at `cuts` (then the rest), as the client does: the
// unconsumed bytes are kept and offered again with the next piece, copied to a new
// buffer each time. With `eof`, the connection closes after the last byte.
outcome run(const std::string& input, const std::vector<std::size_t>& cuts, bool eof, bool head = false,
            response_limits limits = {}) {
  http1_response_parser p(limits);
  p.begin(head);
  std::string pending;
  std::size_t offered = 0, prev = 0;
  status st = status::need_more;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(input.size());
  for (std::size_t end : ends) {
    if (end <= prev) continue;
    pending += input.substr(prev, end - prev);
    offered += end - prev;
    prev = end;
    std::string copy = pending;  // a fresh address: the parser keeps offsets, not pointers
    st = p.feed(copy);
    REQUIRE(p.consumed() <= copy.size());
    pending.erase(0, p.consumed());
    if (st != status::need_more) break;
  }
  if (st == status::need_more && eof) st = p.finish();
  outcome o;
  o.st = st;
  o.error = std::string(p.error());
  o.consumed = offered - pending.size();
  if (st == status::complete) {
    o.code = p.code();
    o.reason = std::string(p.reason());
    for (std::size_t i = 0; i < p.header_count(); ++i) {
      auto [n, v] = p.header_at(i);
      o.headers.emplace_back(std::string(n), std::string(v));
    }
    o.body = p.body();
    o.body_size = p.body_size();
    o.truncated = p.truncated();
    o.keep_alive = p.keep_alive();
    o.http10 = p.http10();
  }
  return o;
}

std::vector<std::size_t> every_byte(std::size_t n) {
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < n; ++i) cuts.push_back(i);
  return cuts;
}

struct valid_case {
  const char* name;
  std::string bytes;     // the response
  int code;
  std::string body;      // kept body
  bool keep_alive;
  bool eof = false;      // the body ends at the close
  bool head = false;     // a response to HEAD
  std::size_t body_size = std::string::npos;  // npos: body.size()
  bool truncated = false;
  response_limits limits = {};
  std::vector<std::pair<std::string, std::string>> want_headers = {};  // a subset, by name
  std::size_t length = std::string::npos;  // bytes the response consumes; npos: all
};

response_limits small_body(std::size_t keep, std::size_t max) {
  response_limits l;
  l.keep_body = keep;
  l.max_body = max;
  return l;
}

std::vector<valid_case> valid_cases() {
  std::vector<valid_case> v;
  v.push_back({"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello", 200,
               "hello", true, false, false, std::string::npos, false, {}, {{"content-type", "text/plain"}}});
  v.push_back({"chunked with extensions and trailers",
               "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nRetry-After: 7\r\n\r\n"
               "5;ext=1\r\nhello\r\n6 ; a=\"b\"\r\n world\r\n0\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n",
               200, "hello world", true, false, false, std::string::npos, false, {}, {{"Retry-After", "7"}}});
  v.push_back({"chunk sizes with leading zeros and upper case", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               "000A\r\n0123456789\r\n00\r\n\r\n", 200, "0123456789", true});
  v.push_back({"empty chunked body", "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n0\r\n\r\n", 200, "", true});
  v.push_back({"204 without body", "HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n", 204, "", true});
  v.push_back({"304 ignores its Content-Length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", 304, "",
               true});
  v.push_back({"HEAD ignores Content-Length and chunked",
               "HTTP/1.1 201 Created\r\nContent-Length: 1000\r\nLocation: /x/1\r\n\r\n", 201, "", true, false, true,
               std::string::npos, false, {}, {{"location", "/x/1"}}});
  v.push_back({"100 Continue is skipped with its headers",
               "HTTP/1.1 100 Continue\r\nRetry-After: 99\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, "ok",
               true});
  v.push_back({"several interim responses", "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
               "HTTP/1.1 503 Busy\r\nRetry-After: 30\r\nContent-Length: 0\r\n\r\n", 503, "", true, false, false,
               std::string::npos, false, {}, {{"Retry-After", "30"}}});
  v.push_back({"101 ends the HTTP exchange", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", 101, "", false});
  v.push_back({"HTTP/1.0 closes by default", "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc", 200, "abc", false});
  v.push_back({"HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 3\r\n\r\nabc", 200,
               "abc", true});
  v.push_back({"Connection: close", "HTTP/1.1 200 OK\r\nConnection: foo, close\r\nContent-Length: 1\r\n\r\nx", 200, "x",
               false});
  v.push_back({"body until close", "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\nuntil the end\r\n\r\n", 200,
               "until the end\r\n\r\n", false, true});
  v.push_back({"HTTP/1.0 body until close", "HTTP/1.0 200 OK\r\n\r\nold", 200, "old", false, true});
  v.push_back({"bare LF line ends", "HTTP/1.1 200 OK\nContent-Length: 2\nX-A: b\n\nhi", 200, "hi", true});
  v.push_back({"bare LF in chunked", "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nhi\n0\n\n", 200, "hi", true});
  v.push_back({"obs-fold joins the value", "HTTP/1.1 200 OK\r\nX-Long: a\r\n  b\r\n\tc\r\nContent-Length: 0\r\n\r\n", 200,
               "", true, false, false, std::string::npos, false, {}, {{"X-Long", "a b c"}}});
  v.push_back({"Transfer-Encoding wins over Content-Length; no reuse after",
               "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwxyz\r\n0\r\n\r\n", 200,
               "wxyz", false});
  v.push_back({"chunked on HTTP/1.0: decoded, no reuse",
               "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n",
               200, "z", false});
  v.push_back({"Transfer-Encoding not ending in chunked reads until close",
               "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n\x1f\x8b raw", 200, "\x1f\x8b raw", false, true});
  v.push_back({"the last Transfer-Encoding field decides", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n"
               "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 200, "abc", true});
  v.push_back({"agreeing Content-Length values", "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok",
               200, "ok", true});
  v.push_back({"no reason phrase", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 200, "", true});
  v.push_back({"empty reason phrase and header value", "HTTP/1.1 404 \r\nX-Empty:\r\nContent-Length: 0\r\n\r\n", 404, "",
               true, false, false, std::string::npos, false, {}, {{"X-Empty", ""}}});
  v.push_back({"binary body", "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n\0\r\n\xff\n\r"s, 200, "\0\r\n\xff\n\r"s, true});
  v.push_back({"body kept up to keep_body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", 200, "0123", true,
               false, false, 10, false, small_body(4, 16)});
  v.push_back({"body of exactly max_body is whole", "HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n0123456789abcdef", 200,
               "0123456789abcdef", true, false, false, 16, false, small_body(64, 16)});
  {
    const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 1000000000000000000\r\n\r\n";
    v.push_back({"huge Content-Length: read to the limit, truncated", head + std::string(40, 'x'), 200,
                 std::string(8, 'x'), false, false, false, 17, true, small_body(8, 16), {}, head.size() + 17});
  }
  {
    const std::string head = "HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n";
    const std::string body = "a\r\n0123456789\r\nffffffff\r\n" + std::string(30, 'y');
    v.push_back({"chunked body over the limit, truncated", head + body, 500, "0123456789yyyyyy", false, false, false, 17,
                 true, small_body(16, 16), {}, head.size() + 25 + 7});
  }
  {
    const std::string head = "HTTP/1.1 200 OK\r\n\r\n";
    v.push_back({"body until close over the limit, truncated without waiting for the close",
                 head + std::string(30, 'z'), 200, std::string(17, 'z'), false, false, false, 17, true,
                 small_body(64, 16), {}, head.size() + 17});
  }
  return v;
}

const std::string next_response = "HTTP/1.1 202 Accepted\r\nContent-Length: 4\r\n\r\nnext";

outcome expected(const valid_case& c, const std::string& input) {
  outcome o;
  o.st = status::complete;
  o.code = c.code;
  o.body = c.body;
  o.body_size = c.body_size == std::string::npos ? c.body.size() : c.body_size;
  o.truncated = c.truncated;
  o.keep_alive = c.keep_alive;
  o.consumed = c.length == std::string::npos ? c.bytes.size() : c.length;
  (void)input;
  return o;
}

void check_expected(const valid_case& c, const outcome& got, const std::string& input) {
  outcome want = expected(c, input);
  CHECK(got.st == want.st);
  CHECK(got.error == "");
  CHECK(got.code == want.code);
  CHECK(got.body == want.body);
  CHECK(got.body_size == want.body_size);
  CHECK(got.truncated == want.truncated);
  CHECK(got.keep_alive == want.keep_alive);
  CHECK(got.consumed == want.consumed);
  for (const auto& [name, value] : c.want_headers) {
    INFO("header " << name);
    bool found = false;
    for (const auto& [n, v] : got.headers)
      if (strcasecmp(n.c_str(), name.c_str()) == 0) {
        CHECK(v == value);
        found = true;
        break;
      }
    CHECK(found);
  }
}

}  // namespace

TEST_CASE("valid responses parse the same whole, split at every byte, and byte by byte", "[http1_parser]") {
  for (const auto& c : valid_cases()) {
    INFO("case: " << c.name);
    // A keep-alive response is followed by a pipelined one, which it must not touch.
    const bool pipelined = !c.eof && !c.truncated;
    const std::string input = pipelined ? c.bytes + next_response : c.bytes;
    const outcome whole = run(input, {}, c.eof, c.head, c.limits);
    check_expected(c, whole, input);
    for (std::size_t cut = 1; cut < input.size(); ++cut) {
      INFO("split at " << cut);
      const outcome split = run(input, {cut}, c.eof, c.head, c.limits);
      REQUIRE(split == whole);
    }
    CHECK(run(input, every_byte(input.size()), c.eof, c.head, c.limits) == whole);
    if (pipelined) {
      // The bytes left over are the next response, whole.
      const outcome second = run(input.substr(whole.consumed), {}, false);
      CHECK(second.st == status::complete);
      CHECK(second.code == 202);
      CHECK(second.body == "next");
      CHECK(second.consumed == next_response.size());
    }
  }
}

TEST_CASE("a parser is reused across responses on one connection", "[http1_parser]") {
  http1_response_parser p;
  p.begin();
  const std::string first = "HTTP/1.1 503 Busy\r\nRetry-After: 5\r\nContent-Length: 4\r\n\r\nbusy";
  REQUIRE(p.feed(first) == status::complete);
  CHECK(p.consumed() == first.size());
  REQUIRE(p.header("retry-after"));
  CHECK(*p.header("retry-after") == "5");
  CHECK(p.take_body() == "busy");
  p.begin(true);
  REQUIRE(p.feed("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n") == status::complete);
  CHECK_FALSE(p.header("Retry-After"));
  CHECK(p.body().empty());
  CHECK(p.code() == 200);
  CHECK(p.reason() == "OK");
  // After complete or error the parser takes nothing until the next begin().
  CHECK(p.feed("HTTP/1.1 200 OK\r\n\r\n") == status::complete);
  CHECK(p.consumed() == 0);
}

TEST_CASE("the close: body until close completes, anything else is cut short", "[http1_parser]") {
  SECTION("nothing arrived") {
    http1_response_parser p;
    p.begin();
    CHECK(p.finish() == status::error);
    CHECK(p.error() == "Empty reply from server");
  }
  for (const std::string& part : std::vector<std::string>{"H"s, "HTTP/1.1 200 OK\r\n"s, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"s,
                           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"s,
                           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"s,
                           "HTTP/1.1 100 Continue\r\n\r\n"s}) {
    INFO(part);
    auto r = run(part, {}, true);
    CHECK(r.st == status::error);
    CHECK(r.error == "Transferred a partial file");
  }
}

namespace {

struct bad_case {
  std::string bytes;
  std::string error;
  response_limits limits = {};
  bool eof = false;
};

// The error must not depend on how the bytes arrive.
void check_error_everywhere(const bad_case& c) {
  INFO("input " << c.bytes.substr(0, 200));
  const outcome whole = run(c.bytes, {}, c.eof, false, c.limits);
  REQUIRE(whole.st == status::error);
  CHECK(whole.error == c.error);
  for (std::size_t cut = 1; cut < c.bytes.size(); ++cut) {
    INFO("split at " << cut);
    const outcome split = run(c.bytes, {cut}, c.eof, false, c.limits);
    REQUIRE(split.st == status::error);
    REQUIRE(split.error == c.error);
  }
  const outcome bytes = run(c.bytes, every_byte(c.bytes.size()), c.eof, false, c.limits);
  REQUIRE(bytes.st == status::error);
  CHECK(bytes.error == c.error);
}

response_limits tight(std::size_t line, std::size_t head, std::size_t headers) {
  response_limits l;
  l.max_line = line;
  l.max_head = head;
  l.max_headers = headers;
  return l;
}

}  // namespace

TEST_CASE("bad status lines", "[http1_parser]") {
  for (const std::string& line : std::vector<std::string>{"HTTP/1.1 2OO OK", "HTTP/1.1 200OK", "HTTP/1.1  200 OK", "HTTP/1.x 200 OK", "HTTP/11 200 OK",
                           "http/1.1 200 OK", "ICY 200 OK", "HTTP/1.1 099 Low", "HTTP/1.1 20", "", "HTTP/1.1 200 O\rK",
                           "HTTP/1.1 -20 OK", " HTTP/1.1 200 OK", "HTTP/1.1 200 OK\0"s}) {
    check_error_everywhere({line + "\r\nContent-Length: 0\r\n\r\n", "Invalid HTTP status line"});
  }
  for (std::string line : {"HTTP/2.0 200 OK", "HTTP/0.9 200 OK", "HTTP/3.0 200 OK"}) {
    check_error_everywhere({line + "\r\n\r\n", "Unsupported HTTP version in response"});
  }
  // An interim response does not excuse a bad final one.
  check_error_everywhere({"HTTP/1.1 100 Continue\r\n\r\nOOPS\r\n\r\n", "Invalid HTTP status line"});
}

TEST_CASE("bad header lines", "[http1_parser]") {
  for (const std::string& h : std::vector<std::string>{"No colon here", ": no name", "Bad Name: x", "Name : spaced", "X-A: a\rb", "X-A: a\0b"s,
                        "(x): y", "X-\x80: y"}) {
    check_error_everywhere({"HTTP/1.1 200 OK\r\n" + h + "\r\nContent-Length: 0\r\n\r\n", "Malformed response header line"});
  }
  // A continuation line with nothing to continue.
  check_error_everywhere({"HTTP/1.1 200 OK\r\n  folded\r\n\r\n", "Malformed response header line"});
}

TEST_CASE("bad, negative, huge or conflicting Content-Length", "[http1_parser]") {
  for (std::string v : {"-5", "+5", "5 5", "0x10", "", "abc", "5;", "99999999999999999999999", "18446744073709551616",
                        "1e3", ",", "5,x"}) {
    check_error_everywhere(
        {"HTTP/1.1 200 OK\r\nContent-Length: " + v + "\r\n\r\n12345", "Invalid Content-Length in response"});
  }
  check_error_everywhere({"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n123456",
                          "Conflicting Content-Length values in response"});
  check_error_everywhere({"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n123456",
                          "Conflicting Content-Length values in response"});
  // Also when Transfer-Encoding frames the body: the header is broken either way.
  check_error_everywhere({"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: -1\r\n\r\n0\r\n\r\n",
                          "Invalid Content-Length in response"});
  // The largest representable value is no error: the body is read up to the limit.
  auto r = run("HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n" + std::string(20, 'x'), {}, false,
               false, small_body(4, 8));
  CHECK(r.st == status::complete);
  CHECK(r.truncated);
  CHECK(r.body_size == 9);
}

TEST_CASE("malformed chunked bodies and chunk-size overflow", "[http1_parser]") {
  const std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (std::string size : {"zz", "", "-1", "5 x", "0x5", " 5", "5\t\tq", "+5"}) {
    check_error_everywhere({head + size + "\r\nhello\r\n0\r\n\r\n", "Malformed chunked response"});
  }
  for (std::string size : {"1000000000000000", "10000000000000000", "ffffffffffffffff", "0000fffffffffffffff0"}) {
    check_error_everywhere({head + size + "\r\nhello\r\n0\r\n\r\n", "Chunk size too large"});
  }
  // The largest size accepted (15 hex digits) is read up to the body limit.
  auto r = run(head + "fffffffffffffff\r\n" + std::string(40, 'q'), {}, false, false, small_body(4, 32));
  CHECK(r.st == status::complete);
  CHECK(r.truncated);
  // Chunk data must end with CRLF (or LF).
  check_error_everywhere({head + "5\r\nhelloXX0\r\n\r\n", "Malformed chunked response"});
  check_error_everywhere({head + "5\r\nhello\rX0\r\n\r\n", "Malformed chunked response"});
  check_error_everywhere({head + "5\r\nhello\r\n" + std::string(100, '1') + "\r\n", "Chunk size line too long",
                          tight(64, 1024, 10)});
}

TEST_CASE("header floods: long lines, too many fields, too many bytes", "[http1_parser]") {
  const response_limits l = tight(64, 256, 5);
  check_error_everywhere({"HTTP/1.1 200 OK\r\nX-Long: " + std::string(60, 'a') + "\r\n\r\n", "Response header line too long", l});
  // Exactly max_line bytes (CR included) before the LF is fine.
  {
    std::string h = "X: " + std::string(64 - 4, 'a') + "\r";
    REQUIRE(h.size() == 64);
    auto r = run("HTTP/1.1 200 OK\r\n" + h + "\nContent-Length: 0\r\n\r\n", {}, false, false, l);
    CHECK(r.st == status::complete);
  }
  // A line that never ends fails once it passes the limit, without waiting for the rest.
  check_error_everywhere({"HTTP/1.1 200 OK\r\nX-Long: " + std::string(100, 'a'), "Response header line too long", l});
  check_error_everywhere({"HTTP/1.1 200 " + std::string(100, 'R') + "\r\n\r\n", "Response header line too long", l});
  std::string many = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 6; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  check_error_everywhere({many + "\r\n", "Too many response headers", l});
  std::string big = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 5; ++i) big += "X-" + std::to_string(i) + ": " + std::string(50, 'b') + "\r\n";
  check_error_everywhere({big + "\r\n", "Response headers too large", l});
  // Folded lines count toward the bytes, not the fields.
  std::string folded = "HTTP/1.1 200 OK\r\nX-F: a\r\n";
  for (int i = 0; i < 10; ++i) folded += " " + std::string(30, 'c') + "\r\n";
  check_error_everywhere({folded + "\r\n", "Response headers too large", l});
  // Trailers have the same limits.
  std::string trailers = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
  for (int i = 0; i < 6; ++i) trailers += "T-" + std::to_string(i) + ": v\r\n";
  check_error_everywhere({trailers + "\r\n", "Too many response trailers", l});
  check_error_everywhere({"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: " + std::string(80, 't') +
                              "\r\n\r\n",
                          "Response header line too long", l});
  // Endless interim responses are bounded one by one (each has the limits of a head).
  std::string interim;
  for (int i = 0; i < 50; ++i) interim += "HTTP/1.1 100 Continue\r\n\r\n";
  auto r = run(interim + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", {}, false, false, l);
  CHECK(r.st == status::complete);
  CHECK(r.code == 200);
}

TEST_CASE("the default limits", "[http1_parser]") {
  response_limits d;
  CHECK(d.keep_body == 64 * 1024);
  CHECK(d.max_body == 4 * 1024 * 1024);
  // A 4 MB + 1 body is cut; 4 MB exactly is whole.
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(d.max_body + 1) + "\r\n\r\n";
  http1_response_parser p;
  p.begin();
  const std::string big = head + std::string(d.max_body + 1, 'x');
  REQUIRE(p.feed(big) == status::complete);
  CHECK(p.truncated());
  CHECK(p.body().size() == d.keep_body);
  CHECK_FALSE(p.keep_alive());
  p.begin();
  const std::string exact = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(d.max_body) + "\r\n\r\n" +
                            std::string(d.max_body, 'x');
  REQUIRE(p.feed(exact) == status::complete);
  CHECK_FALSE(p.truncated());
  CHECK(p.keep_alive());
  CHECK(p.consumed() == exact.size());
}
