// decode_task: every field of the task contract, its defaults, and every decode error.
#include <string>

#include <catch2/catch.hpp>

#include "tasks/http_request.hpp"
#include "tasks/task.hpp"

using namespace respq::tasks;

namespace {

constexpr double now = 1'700'000'000.0;

task ok(std::string_view payload) {
  auto r = decode_task(payload, now);
  if (auto* err = std::get_if<decode_error>(&r)) FAIL("unexpected decode error: " << err->reason);
  return std::get<task>(r);
}

std::string error_of(std::string_view payload) {
  auto r = decode_task(payload, now);
  if (std::holds_alternative<task>(r)) FAIL("payload decoded but should not: " << payload);
  return std::get<decode_error>(r).reason;
}

std::string header(const task& t, const std::string& name) {
  for (const auto& [n, v] : t.headers)
    if (n == name) return v;
  return "<absent>";
}

}  // namespace

TEST_CASE("a minimal task is a GET of its url with every default", "[task]") {
  task t = ok(R"({"url":"http://example.com/send"})");
  CHECK(t.method == "GET");
  CHECK(t.url == "http://example.com/send");
  CHECK(t.id.empty());
  CHECK(t.headers.empty());
  CHECK_FALSE(t.body);
  CHECK_FALSE(t.timeout);
  CHECK_FALSE(t.retries);
  CHECK_FALSE(t.run_at);
  CHECK(t.callback.empty());
  CHECK_FALSE(t.follow_redirects);
}

TEST_CASE("a bare http(s) URL payload means GET that URL", "[task]") {
  CHECK(ok("http://example.com/a?b=1").url == "http://example.com/a?b=1");
  CHECK(ok("  https://example.com/x \r\n").url == "https://example.com/x");
  CHECK(ok("HTTPS://example.com/x").method == "GET");
  // A JSON string holding a URL (json_encode($url)) means the same.
  CHECK(ok(R"("http:\/\/example.com\/j")").url == "http://example.com/j");
  CHECK(error_of("http://exa mple.com/").find("url is not a valid URL") == 0);
  CHECK(error_of("ftp://example.com/").find("payload is not valid JSON (at byte ") == 0);
}

TEST_CASE("GET, HEAD and DELETE append param as a PHP query string", "[task]") {
  task t = ok(R"({"url":"http://h/p","param":{"user":"a b","n":[1,2]}})");
  CHECK(t.url == "http://h/p?user=a+b&n%5B0%5D=1&n%5B1%5D=2");
  CHECK_FALSE(t.body);
  CHECK(ok(R"({"url":"http://h/p?x=1","param":{"y":2}})").url == "http://h/p?x=1&y=2");
  CHECK(ok(R"({"url":"http://h/p?","param":{"y":2}})").url == "http://h/p?y=2");
  CHECK(ok(R"({"url":"http://h/p?x=1&","param":{"y":2}})").url == "http://h/p?x=1&y=2");
  CHECK(ok(R"({"url":"http://h/p#frag","param":{"y":2}})").url == "http://h/p?y=2");
  CHECK(ok(R"({"url":"http://h/p","param":{}})").url == "http://h/p");
  CHECK(ok(R"({"url":"http://h/p","param":["a"]})").url == "http://h/p?0=a");
  CHECK(ok(R"({"url":"http://h/p","method":"HEAD","param":{"a":1}})").url == "http://h/p?a=1");
  task d = ok(R"({"url":"http://h/p","method":"delete","param":{"a":1}})");
  CHECK(d.method == "DELETE");
  CHECK(d.url == "http://h/p?a=1");
  CHECK_FALSE(d.body);
}

TEST_CASE("POST, PUT and PATCH send param as a form body", "[task]") {
  for (const char* m : {"POST", "PUT", "PATCH", "post"}) {
    task t =
        ok(std::string(R"({"url":"http://h/p","method":")") + m + R"(","param":{"a":"x y","b":{"c":true}}})");
    CHECK(t.url == "http://h/p");
    REQUIRE(t.body);
    CHECK(*t.body == "a=x+y&b%5Bc%5D=1");
    CHECK(header(t, "Content-Type") == "application/x-www-form-urlencoded");
  }
  // A producer's own Content-Type wins.
  task t =
      ok(R"({"url":"http://h/p","method":"POST","param":{"a":1},"headers":{"content-type":"text/plain"}})");
  CHECK(header(t, "content-type") == "text/plain");
  CHECK(t.headers.size() == 1);
  // POST without param or body: no body (the engine sends an empty one).
  CHECK_FALSE(ok(R"({"url":"http://h/p","method":"POST"})").body);
}

TEST_CASE("body and json carry the body, param then goes to the query string", "[task]") {
  task raw = ok(R"({"url":"http://h/p","method":"PUT","body":"<x/>","param":{"q":1}})");
  CHECK(raw.method == "PUT");
  CHECK(*raw.body == "<x/>");
  CHECK(raw.url == "http://h/p?q=1");
  CHECK(raw.headers.empty());  // a raw body gets no Content-Type unless the producer sets one

  task js = ok(R"({"url":"http://h/p","method":"PATCH","json":{"b":[1,"two",null],"a":{"é":1.5}}})");
  CHECK(*js.body == R"({"b":[1,"two",null],"a":{"é":1.5}})");  // producer's key order kept
  CHECK(header(js, "Content-Type") == "application/json");
  CHECK(*ok(R"({"url":"http://h/p","method":"POST","json":"str"})").body == R"("str")");
  CHECK(*ok(R"({"url":"http://h/p","method":"POST","json":false})").body == "false");

  // Without a method, a body means POST.
  CHECK(ok(R"({"url":"http://h/p","body":"x"})").method == "POST");
  CHECK(ok(R"({"url":"http://h/p","json":[1]})").method == "POST");
  CHECK(ok(R"({"url":"http://h/p","method":"GET","json":[1]})").method == "GET");
}

TEST_CASE("headers keep order and accept strings and numbers", "[task]") {
  task t =
      ok(R"({"url":"http://h/","headers":{"X-B":"1","X-A":2,"X-F":2.5,"X-Empty":"","User-Agent":"mine/1"}})");
  REQUIRE(t.headers.size() == 5);
  CHECK(t.headers[0] == std::pair<std::string, std::string>{"X-B", "1"});
  CHECK(t.headers[1] == std::pair<std::string, std::string>{"X-A", "2"});
  CHECK(t.headers[2] == std::pair<std::string, std::string>{"X-F", "2.5"});
  CHECK(t.headers[3] == std::pair<std::string, std::string>{"X-Empty", ""});
  CHECK(t.headers[4] == std::pair<std::string, std::string>{"User-Agent", "mine/1"});
}

TEST_CASE("timeout, retries, delay, at, id, callback and follow_redirects", "[task]") {
  task t = ok(R"({"url":"http://h/","timeout":2.5,"retries":3,"delay":10,"id":"job-1",
                  "callback":"https://cb.example/hook","follow_redirects":true})");
  CHECK(*t.timeout == 2.5);
  CHECK(*t.retries == 3);
  CHECK(*t.run_at == now + 10);
  CHECK(t.id == "job-1");
  CHECK(t.callback == "https://cb.example/hook");
  CHECK(t.follow_redirects);
  CHECK(*ok(R"({"url":"http://h/","at":1800000000})").run_at == 1800000000.0);
  CHECK(*ok(R"({"url":"http://h/","at":5})").run_at == 5.0);  // in the past: run now
  CHECK(*ok(R"({"url":"http://h/","retries":0})").retries == 0);
  CHECK(*ok(R"({"url":"http://h/","retries":4.0})").retries == 4);
  CHECK(ok(R"({"url":"http://h/","id":42})").id == "42");
  CHECK(ok(R"({"url":"http://h/","id":""})").id.empty());
  CHECK(ok(R"({"url":"http://h/","callback":""})").callback.empty());
  CHECK_FALSE(ok(R"({"url":"http://h/","follow_redirects":false})").follow_redirects);
}

TEST_CASE("null fields count as absent and unknown fields are ignored", "[task]") {
  task t = ok(R"({"url":"http://h/","param":null,"method":null,"headers":null,"timeout":null,
                  "retries":null,"delay":null,"id":null,"callback":null,"extra":{"x":1}})");
  CHECK(t.method == "GET");
  CHECK(t.url == "http://h/");
  CHECK_FALSE(t.timeout);
}

TEST_CASE("every decode error names its reason", "[task]") {
  CHECK(error_of("") == "payload is empty");
  CHECK(error_of("   ") == "payload is empty");
  CHECK(error_of("{") == "payload is not valid JSON (at byte 2)");
  CHECK(error_of("not json").find("payload is not valid JSON (at byte ") == 0);
  CHECK(error_of(R"({"url":"http://h/",})").find("payload is not valid JSON") == 0);
  CHECK(error_of("[1,2]") == "payload must be a JSON object or an http(s) URL");
  CHECK(error_of("42") == "payload must be a JSON object or an http(s) URL");
  CHECK(error_of(R"("just text")") == "payload must be a JSON object or an http(s) URL");
  CHECK(error_of(R"({"url":"http://h/","n":1e400})") == "payload has a number out of range");
  CHECK(error_of(std::string(513, '[') + std::string(513, ']')) == "payload nests deeper than 512 levels");
  CHECK(error_of(R"({"url":"http://h/","param":)" + std::string(600, '[') + std::string(600, ']') + "}") ==
        "payload nests deeper than 512 levels");

  CHECK(error_of(R"({"param":{"a":1}})") == "url is missing");
  CHECK(error_of(R"({"url":null})") == "url is missing");
  CHECK(error_of(R"({"url":5})") == "url must be a string");
  CHECK(error_of(R"({"url":"file:///etc/passwd"})") ==
        "url scheme 'file' is not allowed (http and https only)");
  CHECK(error_of(R"({"url":"ftp://h/x"})") == "url scheme 'ftp' is not allowed (http and https only)");
  CHECK(error_of(R"({"url":"gopher://h/x"})") == "url scheme 'gopher' is not allowed (http and https only)");
  CHECK(error_of(R"({"url":"/relative/path"})").find("url is not a valid URL (") == 0);
  CHECK(error_of(R"({"url":"http://"})").find("url is not a valid URL (") == 0);
  CHECK(error_of(R"({"url":"http://h/a b"})").find("url is not a valid URL (") == 0);
  CHECK(error_of(R"({"url":"http://h/\u0000x"})") == "url contains a NUL byte");

  CHECK(error_of(R"({"url":"http://h/","method":"FOO"})") ==
        "method 'FOO' is not supported (GET POST PUT PATCH DELETE HEAD)");
  CHECK(error_of(R"({"url":"http://h/","method":"OPTIONS"})").find("method 'OPTIONS' is not supported") == 0);
  CHECK(error_of(R"({"url":"http://h/","method":1})") == "method must be a string");
  CHECK(error_of(R"({"url":"http://h/","method":"HEAD","body":"x"})") == "a HEAD request cannot have a body");

  CHECK(error_of(R"({"url":"http://h/","param":"a=1"})") == "param must be an object or an array");
  CHECK(error_of(R"({"url":"http://h/","param":3})") == "param must be an object or an array");

  CHECK(error_of(R"({"url":"http://h/","headers":["X: y"]})") == "headers must be an object of name: value");
  CHECK(error_of(R"({"url":"http://h/","headers":{"X Y":"v"}})") ==
        "header name 'X Y' is not a valid HTTP token");
  CHECK(error_of(R"({"url":"http://h/","headers":{"":"v"}})") == "header name '' is not a valid HTTP token");
  CHECK(error_of(R"({"url":"http://h/","headers":{"X":true}})") ==
        "header 'X' value must be a string or number");
  CHECK(error_of(R"({"url":"http://h/","headers":{"X":null}})") ==
        "header 'X' value must be a string or number");
  CHECK(error_of(R"({"url":"http://h/","headers":{"X":"a\r\nEvil: 1"}})") ==
        "header 'X' value contains CR, LF or NUL");
  CHECK(error_of(R"({"url":"http://h/","headers":{"Content-Length":"5"}})") ==
        "header 'Content-Length' is set by respq from the body");
  CHECK(error_of(R"({"url":"http://h/","headers":{"transfer-encoding":"chunked"}})") ==
        "header 'transfer-encoding' is set by respq from the body");

  CHECK(error_of(R"({"url":"http://h/","body":{"a":1}})") ==
        "body must be a string (use json for a JSON body)");
  CHECK(error_of(R"({"url":"http://h/","body":"x","json":{}})") == "body and json cannot both be given");

  for (const char* bad : {"0", "-1", "\"5\"", "true", "86401"})
    CHECK(error_of(std::string(R"({"url":"http://h/","timeout":)") + bad + "}") ==
          "timeout must be a number of seconds > 0 and <= 86400");
  for (const char* bad : {"-1", "1.5", "\"3\"", "1001", "false"})
    CHECK(error_of(std::string(R"({"url":"http://h/","retries":)") + bad + "}") ==
          "retries must be an integer from 0 to 1000");
  CHECK(error_of(R"({"url":"http://h/","delay":-1})") == "delay must be a number of seconds >= 0");
  CHECK(error_of(R"({"url":"http://h/","delay":"10"})") == "delay must be a number of seconds >= 0");
  CHECK(error_of(R"({"url":"http://h/","at":-5})") == "at must be a unix time in seconds (a number >= 0)");
  CHECK(error_of(R"({"url":"http://h/","delay":1,"at":2})") == "delay and at cannot both be given");

  CHECK(error_of(R"({"url":"http://h/","id":1.5})") == "id must be a string or an integer");
  CHECK(error_of(R"({"url":"http://h/","id":["a"]})") == "id must be a string or an integer");
  CHECK(error_of(std::string(R"({"url":"http://h/","id":")") + std::string(257, 'a') + "\"}") ==
        "id is longer than 256 bytes");
  CHECK(error_of(R"({"url":"http://h/","id":"a\nb"})") == "id contains control characters");

  CHECK(error_of(R"({"url":"http://h/","callback":1})") == "callback must be a string");
  CHECK(error_of(R"({"url":"http://h/","callback":"file:///x"})") ==
        "callback scheme 'file' is not allowed (http and https only)");
  CHECK(error_of(R"({"url":"http://h/","callback":"nope"})").find("callback is not a valid URL (") == 0);

  CHECK(error_of(R"({"url":"http://h/","follow_redirects":"yes"})") ==
        "follow_redirects must be true or false");
  CHECK(error_of(R"({"url":"http://h/","follow_redirects":1})") == "follow_redirects must be true or false");
}

TEST_CASE("decoding hostile payloads never throws", "[task]") {
  // Truncations of a valid payload at every byte, and random bytes.
  const std::string good =
      R"({"url":"http://h/p","method":"POST","param":{"a":[1,{"b":"é"}]},"headers":{"X":"1"},"retries":2})";
  for (std::size_t i = 0; i <= good.size(); ++i) CHECK_NOTHROW(decode_task(good.substr(0, i), now));
  std::uint64_t x = 88172645463325252ull;
  static constexpr std::string_view alphabet = "{}[]\":,0123456789.eE+-truefalsnul\\u\xc3\xa9 \xff";
  for (int n = 0; n < 2000; ++n) {
    std::string s;
    for (int i = 0; i < 40; ++i) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      s += alphabet[x % alphabet.size()];
    }
    CHECK_NOTHROW(decode_task(s, now));
  }
  CHECK(error_of("{\"url\":\"http://h/\xff\"}").find("payload is not valid JSON") == 0);
}

TEST_CASE("make_http_request carries the task and adds X-Task-Id", "[task]") {
  task t = ok(R"({"url":"http://h/p","method":"POST","param":{"a":1},"id":"t-9","follow_redirects":true})");
  http_request r = make_http_request(t, 77, "tasks", 30);
  CHECK(r.ticket == 77);
  CHECK(r.pool == "tasks");
  CHECK(r.method == "POST");
  CHECK(r.url == "http://h/p");
  CHECK(*r.body == "a=1");
  CHECK(r.timeout_s == 30);
  CHECK(r.follow_redirects);
  REQUIRE(r.headers.size() == 2);
  CHECK(r.headers[1] == std::pair<std::string, std::string>{"X-Task-Id", "t-9"});

  task own = ok(R"({"url":"http://h/p","id":"t-1","timeout":3,"headers":{"x-task-id":"mine"}})");
  http_request r2 = make_http_request(own, 1, "q", 30);
  CHECK(r2.timeout_s == 3);
  REQUIRE(r2.headers.size() == 1);
  CHECK(r2.headers[0].second == "mine");
  CHECK(make_http_request(ok(R"({"url":"http://h/"})"), 1, "q", 30).headers.empty());
}

TEST_CASE("X-Task-Attempt is respq's: one the task carries is replaced, not sent twice", "[task]") {
  http_request r = make_http_request(
      ok(R"({"url":"http://h/p","id":"t-2","headers":{"x-task-attempt":"7","X-Other":"o"}})"), 1, "q", 30);
  set_attempt_header(r, 2);
  set_attempt_header(r, 3);  // a retry's request is made anew, but the rule holds either way
  std::vector<std::string> attempts;
  for (const auto& [name, value] : r.headers)
    if (name == "X-Task-Attempt" || name == "x-task-attempt") attempts.push_back(value);
  CHECK(attempts == std::vector<std::string>{"3"});
  CHECK(r.headers.size() == 3);  // X-Other, X-Task-Id, X-Task-Attempt
}
