// delivery_engine against real local HTTP endpoints: php -S with router.php (echoes what
// PHP received) and nginx (connection reuse, volume). Each test starts its own servers on
// free loopback ports; their destructors stop them.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "test_servers.hpp"
#include "workers/delivery_engine.hpp"
#include "tasks/query.hpp"
#include "tasks/retry_policy.hpp"
#include "tasks/task.hpp"

using namespace respq::workers;
using namespace respq::tasks;
using respq::test::get;
using respq::test::nginx_server;
using respq::test::php_server;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

// Receives results on the engine thread; the test thread waits for them.
class collector {
 public:
  delivery_engine::result_sink sink() {
    return [this](std::vector<http_result>&& batch) {
      std::lock_guard<std::mutex> lock(mutex_);
      ++calls_;
      for (auto& r : batch) {
        results_.push_back(std::move(r));
        arrivals_.push_back(std::chrono::steady_clock::now());
      }
      cv_.notify_all();
    };
  }
  std::vector<http_result> wait_for(std::size_t n, std::chrono::seconds timeout = 30s) {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return results_.size() >= n; });
    return results_;
  }
  std::size_t count() {
    std::lock_guard<std::mutex> lock(mutex_);
    return results_.size();
  }
  // When the engine handed result i's request to curl: its arrival less its duration.
  std::chrono::steady_clock::time_point handed_over(std::size_t i) {
    std::lock_guard<std::mutex> lock(mutex_);
    return arrivals_.at(i) - std::chrono::microseconds(static_cast<long>(results_.at(i).duration_ms * 1000));
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<http_result> results_;
  std::vector<std::chrono::steady_clock::time_point> arrivals_;
  std::size_t calls_ = 0;
};

// Sends one request and returns its result.
http_result roundtrip(http_request r) {
  collector c;
  delivery_engine engine(c.sink());
  engine.submit({std::move(r)});
  auto results = c.wait_for(1);
  REQUIRE(results.size() == 1);
  return results[0];
}

// A task's attempt, asking for the response body back (the echo server's reply is what
// these tests read).
http_request from_task(std::string_view payload, std::uint64_t ticket = 1) {
  auto decoded = decode_task(payload, 0);
  REQUIRE(std::holds_alternative<task>(decoded));
  auto r = make_http_request(std::get<task>(decoded), ticket, "tasks", 10);
  r.keep_body = 64 * 1024;  // the echo: these tests read what the endpoint saw
  r.keep_body_of_2xx = true;
  return r;
}

json echo_of(const http_result& r) {
  INFO("error: " << r.error << " body: " << r.body.substr(0, 200));
  REQUIRE(r.error.empty());
  REQUIRE(r.code == 200);
  return json::parse(r.body);
}

std::string task_json(const std::string& url, const std::string& rest) {
  return R"({"url":")" + url + "\"" + (rest.empty() ? "" : "," + rest) + "}";
}

}  // namespace

TEST_CASE("engine: GET carries the PHP query string, User-Agent and X-Task-Id", "[engine]") {
  php_server php;
  auto r = roundtrip(
      from_task(task_json(php.url("/echo"), R"("id":"t-1","param":{"user":"a b","list":[1,{"k":"v"}]})")));
  CHECK(r.ticket == 1);
  CHECK_FALSE(r.timed_out);
  CHECK(r.duration_ms > 0);
  json e = echo_of(r);
  CHECK(e["method"] == "GET");
  CHECK(e["path"] == "/echo");
  CHECK(e["query"] == "user=a+b&list%5B0%5D=1&list%5B1%5D%5Bk%5D=v");
  CHECK(e["get"]["user"] == "a b");
  CHECK(e["get"]["list"][1]["k"] == "v");
  CHECK(e["headers"]["User-Agent"] == std::string(delivery_engine::default_user_agent()));
  CHECK(delivery_engine::default_user_agent().substr(0, 6) == "respq/");
  CHECK(e["headers"]["X-Task-Id"] == "t-1");
  CHECK(e["body"] == "");
}

TEST_CASE("engine: a task's attempt carries back no 2xx body, and a failing answer's start, on either stack",
          "[engine]") {
  php_server php;
  for (const std::string path : {"/size/5000", "/code/500/size/5000"}) {
    const bool ok = path == "/size/5000";
    const std::string payload = task_json(php.url(path), "");
    auto decoded = decode_task(payload, 0);
    REQUIRE(std::holds_alternative<task>(decoded));
    auto lean = make_http_request(std::get<task>(decoded), 1, "tasks", 10);
    CHECK(lean.keep_body == response_read_bytes);
    CHECK_FALSE(lean.keep_body_of_2xx);
    auto curl = lean;
    curl.ticket = 2;
    curl.follow_redirects = true;  // routed to curl
    collector c;
    delivery_engine engine(c.sink());
    engine.submit({lean, curl});
    auto results = c.wait_for(2);
    REQUIRE(results.size() == 2);
    for (const auto& r : results) {
      INFO(path << ", ticket " << r.ticket << ": " << r.error);
      CHECK(r.code == (ok ? 200 : 500));
      CHECK(r.body.size() == (ok ? 0 : response_read_bytes));
      CHECK_FALSE(r.truncated);
    }
  }
}

TEST_CASE("engine: POST sends param as a form PHP parses", "[engine]") {
  php_server php;
  json e = echo_of(roundtrip(from_task(
      task_json(php.url("/form"), R"("method":"POST","param":{"name":"é & co","n":{"a":[true,false]}})"))));
  CHECK(e["method"] == "POST");
  CHECK(e["headers"]["Content-Type"] == "application/x-www-form-urlencoded");
  CHECK(e["post"]["name"] == "é & co");
  CHECK(e["post"]["n"]["a"][0] == "1");
  CHECK(e["post"]["n"]["a"][1] == "0");
  CHECK(e["body"] == "name=%C3%A9+%26+co&n%5Ba%5D%5B0%5D=1&n%5Ba%5D%5B1%5D=0");
  CHECK_FALSE(e["headers"].contains("Expect"));

  json empty = echo_of(roundtrip(from_task(task_json(php.url("/form"), R"("method":"POST")"))));
  CHECK(empty["method"] == "POST");
  CHECK(empty["headers"]["Content-Length"] == "0");
}

TEST_CASE("engine: JSON and raw bodies with PUT, PATCH and DELETE", "[engine]") {
  php_server php;
  json put = echo_of(roundtrip(
      from_task(task_json(php.url("/j"), R"("method":"PUT","json":{"a":[1,2],"b":"x"},"param":{"q":1})"))));
  CHECK(put["method"] == "PUT");
  CHECK(put["headers"]["Content-Type"] == "application/json");
  CHECK(put["body"] == R"({"a":[1,2],"b":"x"})");
  CHECK(put["query"] == "q=1");

  json patch = echo_of(roundtrip(from_task(
      task_json(php.url("/r"),
                R"("method":"PATCH","body":"raw\u0000bytes","headers":{"Content-Type":"text/plain"})"))));
  CHECK(patch["method"] == "PATCH");
  CHECK(patch["body"] == std::string("raw\0bytes", 9));
  CHECK(patch["headers"]["Content-Type"] == "text/plain");

  json raw = echo_of(roundtrip(from_task(task_json(php.url("/r"), R"("body":"no type")"))));
  CHECK(raw["method"] == "POST");
  CHECK_FALSE(raw["headers"].contains("Content-Type"));  // curl's form default suppressed

  json del = echo_of(roundtrip(from_task(task_json(php.url("/d"), R"("method":"DELETE","param":{"id":5})"))));
  CHECK(del["method"] == "DELETE");
  CHECK(del["query"] == "id=5");
  CHECK(del["body"] == "");
}

TEST_CASE("engine: custom headers are sent as given, a task's User-Agent wins", "[engine]") {
  php_server php;
  json e = echo_of(roundtrip(from_task(task_json(
      php.url("/h"), R"("headers":{"X-Custom":"v 1","X-Num":42,"X-Empty":"","User-Agent":"producer/2"})"))));
  CHECK(e["headers"]["X-Custom"] == "v 1");
  CHECK(e["headers"]["X-Num"] == "42");
  CHECK(e["headers"]["X-Empty"] == "");
  CHECK(e["headers"]["User-Agent"] == "producer/2");
}

TEST_CASE("engine: HEAD gets the status without a body", "[engine]") {
  php_server php;
  auto r = roundtrip(from_task(task_json(php.url("/code/201"), R"("method":"HEAD")")));
  CHECK(r.error.empty());
  CHECK(r.code == 201);
  CHECK(r.body.empty());
}

TEST_CASE("engine: status codes and Retry-After are reported as they came", "[engine]") {
  php_server php(4);
  collector c;
  delivery_engine engine(c.sink());
  engine.submit({get(1, php.url("/code/404")), get(2, php.url("/code/500")),
                 get(3, php.url("/code/503/retry-after/7")),
                 get(4, php.url("/code/429/retry-after/Wed%2C%2021%20Oct%202037%2007%3A28%3A00%20GMT")),
                 get(5, php.url("/code/204"))});
  auto results = c.wait_for(5);
  REQUIRE(results.size() == 5);
  std::map<std::uint64_t, http_result> by;
  for (auto& r : results) by[r.ticket] = r;
  for (auto& [t, r] : by) {
    INFO("ticket " << t << " error " << r.error);
    CHECK(r.error.empty());
    CHECK_FALSE(r.timed_out);
  }
  CHECK(by[1].code == 404);
  CHECK_FALSE(by[1].retry_after);
  CHECK(by[2].code == 500);
  CHECK(by[3].code == 503);
  REQUIRE(by[3].retry_after);
  CHECK(*by[3].retry_after == "7");
  CHECK(parse_retry_after(*by[3].retry_after, 0) == 7.0);
  CHECK(by[4].code == 429);
  REQUIRE(by[4].retry_after);
  CHECK(*by[4].retry_after == "Wed, 21 Oct 2037 07:28:00 GMT");
  CHECK(by[5].code == 204);
  CHECK(by[5].body.empty());
  CHECK(engine.in_flight() == 0);
}

TEST_CASE("engine: a slow endpoint times out", "[engine]") {
  php_server php;
  auto req = get(9, php.url("/sleep/3"));
  req.timeout_s = 0.5;
  auto r = roundtrip(req);
  CHECK(r.ticket == 9);
  CHECK(r.timed_out);
  CHECK(r.code == 0);
  CHECK_FALSE(r.error.empty());
  CHECK(r.duration_ms >= 450);
  CHECK(r.duration_ms < 2500);
}

TEST_CASE("engine: a refused connection reports curl's error text", "[engine]") {
  const int port = respq::test::free_loopback_port();  // nothing listens there
  auto r = roundtrip(get(3, "http://127.0.0.1:" + std::to_string(port) + "/x"));
  CHECK(r.code == 0);
  CHECK_FALSE(r.timed_out);
  INFO(r.error);
  CHECK(r.error.find("onnect") != std::string::npos);
}

TEST_CASE("engine: redirects are followed only when asked, over http(s) only", "[engine]") {
  php_server php(2);
  const std::string to_echo = php.url("/redirect/%2Fecho%2Fafter");
  auto stay = roundtrip(get(1, to_echo));
  CHECK(stay.error.empty());
  CHECK(stay.code == 302);

  auto follow_req = get(2, to_echo);
  follow_req.follow_redirects = true;
  json e = echo_of(roundtrip(follow_req));
  CHECK(e["path"] == "/echo/after");

  auto to_file = get(3, php.url("/redirect/file%3A%2F%2F%2Fetc%2Fpasswd"));
  to_file.follow_redirects = true;
  auto refused = roundtrip(to_file);
  INFO(refused.error);
  CHECK_FALSE(refused.error.empty());
  CHECK(refused.body.find("root:") == std::string::npos);

  // Six hops exceed the limit of five.
  std::string url = php.url("/echo/end");
  for (int i = 0; i < 6; ++i) {
    std::string enc;
    php_urlencode(url, enc);
    url = php.url("/redirect/" + enc);
  }
  auto chain = get(4, url);
  chain.follow_redirects = true;
  auto too_many = roundtrip(chain);
  INFO(too_many.error);
  CHECK_FALSE(too_many.error.empty());
  CHECK(too_many.error.find("edirect") != std::string::npos);
}

TEST_CASE("engine: non-http schemes are refused", "[engine]") {
  for (const char* url :
       {"file:///etc/passwd", "ftp://127.0.0.1/", "gopher://127.0.0.1/", "dict://127.0.0.1/"}) {
    auto r = roundtrip(get(1, url));
    INFO(url << ": " << r.error);
    CHECK(r.code == 0);
    CHECK_FALSE(r.error.empty());
    CHECK(r.body.empty());
  }
}

TEST_CASE("engine: bodies are kept up to 64 KB, a huge body still reports its code, as truncated", "[engine]") {
  php_server php(2);
  collector c;
  delivery_engine engine(c.sink());
  // Ticket 4 goes through curl (redirects to follow), the others through the lean client.
  auto via_curl = get(4, php.url("/code/200/size/30000000"));
  via_curl.follow_redirects = true;
  engine.submit({get(1, php.url("/size/100000")), get(2, php.url("/code/200/size/30000000")),
                 get(3, php.url("/size/10")), via_curl});
  auto results = c.wait_for(4);
  REQUIRE(results.size() == 4);
  for (auto& r : results) {
    INFO("ticket " << r.ticket << ": " << r.error);
    CHECK(r.error.empty());
    CHECK(r.code == 200);
    CHECK(r.body == std::string(r.ticket == 3 ? 10 : 65536, 'x'));
    // Past the 4 MB read limit the rest is not read, and the result says so.
    CHECK(r.truncated == (r.ticket == 2 || r.ticket == 4));
  }
}

TEST_CASE("engine: keep-alive connections are reused", "[engine]") {
  nginx_server nginx;
  collector c;
  delivery_engine engine(c.sink());
  engine.set_pool("ka", {1});
  constexpr int n = 30;
  for (int i = 0; i < n; ++i) {  // one at a time: each waits for the previous answer
    engine.submit({get(static_cast<std::uint64_t>(i), nginx.url("/ka?i=" + std::to_string(i)), "ka")});
    auto results = c.wait_for(static_cast<std::size_t>(i + 1));
    REQUIRE(results.size() == static_cast<std::size_t>(i + 1));
    REQUIRE(results.back().code == 204);
  }
  std::this_thread::sleep_for(100ms);  // nginx writes its log after answering
  auto lines = nginx.log_lines();
  REQUIRE(lines.size() == n);
  std::set<std::string> connections;
  for (auto& l : lines) connections.insert(l.substr(0, l.find(' ')));
  CHECK(connections.size() == 1);
  CHECK(lines.back().find(" 30 GET /ka?i=29") != std::string::npos);
}

TEST_CASE("engine: per_host caps concurrent connections, per pool", "[engine]") {
  SECTION("one pool with per_host 2") {
    php_server php(6);
    collector c;
    delivery_engine engine(c.sink());
    engine.set_pool("capped", {2});
    std::vector<http_request> batch;
    for (std::uint64_t i = 0; i < 6; ++i) batch.push_back(get(i, php.url("/track/0.3"), "capped"));
    const auto start = std::chrono::steady_clock::now();
    engine.submit(std::move(batch));
    CHECK(engine.in_flight() == 6);
    auto results = c.wait_for(6);
    REQUIRE(results.size() == 6);
    for (auto& r : results) CHECK(r.code == 200);
    json state = json::parse(php.state());
    CHECK(state["total"] == 6);
    CHECK(state["max"] <= 2);  // the endpoint never saw more than the cap
    int immediate = 0;         // and the cap was used: two started at once
    for (std::size_t i = 0; i < 6; ++i) immediate += c.handed_over(i) - start < 200ms ? 1 : 0;
    CHECK(immediate == 2);
    CHECK(engine.in_flight() == 0);
  }
  SECTION("raising the cap starts waiting requests at once") {
    php_server php(6);
    collector c;
    delivery_engine engine(c.sink());
    engine.set_pool("grow", {1});
    std::vector<http_request> batch;
    for (std::uint64_t i = 0; i < 6; ++i) batch.push_back(get(i, php.url("/track/0.6"), "grow"));
    const auto start = std::chrono::steady_clock::now();
    engine.submit(std::move(batch));
    engine.set_pool("grow", {3});
    auto results = c.wait_for(6);
    REQUIRE(results.size() == 6);
    // Handed to curl at once: 3 (the new cap), not 1 (the old one) nor all 6. Timed on
    // the engine's side: php's workers may queue connections behind each other.
    int immediate = 0;
    for (std::size_t i = 0; i < 6; ++i) immediate += c.handed_over(i) - start < 300ms ? 1 : 0;
    CHECK(immediate == 3);
    json state = json::parse(php.state());
    CHECK(state["total"] == 6);
    CHECK(state["max"] <= 3);
  }
  SECTION("two pools with per_host 1 each run side by side") {
    php_server php(6);
    collector c;
    delivery_engine engine(c.sink());
    engine.set_pool("a", {1});
    engine.set_pool("b", {1});
    std::vector<http_request> batch;
    for (std::uint64_t i = 0; i < 8; ++i) batch.push_back(get(i, php.url("/track/0.3"), i % 2 ? "a" : "b"));
    const auto start = std::chrono::steady_clock::now();
    engine.submit(std::move(batch));
    auto results = c.wait_for(8);
    REQUIRE(results.size() == 8);
    json state = json::parse(php.state());
    CHECK(state["total"] == 8);
    CHECK(state["max"] <= 2);
    int immediate = 0;  // one per pool at once: the pools do not share a cap
    for (std::size_t i = 0; i < 8; ++i) immediate += c.handed_over(i) - start < 200ms ? 1 : 0;
    CHECK(immediate == 2);
  }
}

TEST_CASE("engine: a batch of 1,000 requests is answered once each", "[engine]") {
  nginx_server nginx;
  collector c;
  delivery_engine engine(c.sink());
  engine.set_pool("bulk", {16});
  std::vector<http_request> batch;
  for (std::uint64_t i = 0; i < 1000; ++i)
    batch.push_back(get(i, nginx.url("/bulk/" + std::to_string(i)), "bulk"));
  engine.submit(std::move(batch));
  auto results = c.wait_for(1000, 60s);
  REQUIRE(results.size() == 1000);
  std::this_thread::sleep_for(200ms);
  CHECK(c.count() == 1000);  // nothing answered twice
  std::set<std::uint64_t> tickets;
  for (auto& r : results) {
    tickets.insert(r.ticket);
    CHECK(r.code == 204);
  }
  CHECK(tickets.size() == 1000);
  CHECK(*tickets.rbegin() == 999);
  CHECK(engine.in_flight() == 0);
  auto lines = nginx.log_lines();
  CHECK(lines.size() == 1000);
  std::set<std::string> connections;
  for (auto& l : lines) connections.insert(l.substr(0, l.find(' ')));
  CHECK(connections.size() <= 16);
}

TEST_CASE("engine: stop aborts transfers in flight and drops later submissions", "[engine]") {
  php_server php(3);
  collector c;
  auto engine = std::make_unique<delivery_engine>(c.sink());
  engine->submit({get(1, php.url("/sleep/5")), get(2, php.url("/sleep/5"))});
  CHECK(engine->in_flight() == 2);
  std::this_thread::sleep_for(300ms);
  const auto before = std::chrono::steady_clock::now();
  engine->stop();
  CHECK(std::chrono::steady_clock::now() - before < 2s);
  CHECK(engine->in_flight() == 0);
  engine->submit({get(3, php.url("/echo"))});
  CHECK(engine->in_flight() == 0);
  engine->stop();  // idempotent
  engine.reset();
  CHECK(c.count() == 0);
}

TEST_CASE("engine: after the server closed idle keep-alive connections, requests still go out once", "[engine]") {
  nginx_server nginx(1);  // closes connections idle for 1 s
  collector c;
  delivery_engine engine(c.sink());
  engine.set_pool("tasks", {4});
  std::vector<http_request> first, second;
  for (std::uint64_t i = 0; i < 4; ++i) first.push_back(get(i, nginx.url("/a?i=" + std::to_string(i))));
  engine.submit(std::move(first));
  REQUIRE(c.wait_for(4).size() == 4);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // nginx drops the 4 idle connections
  // Fewer requests than dead connections: a request must not be retried onto another one.
  for (std::uint64_t i = 4; i < 6; ++i) second.push_back(get(i, nginx.url("/b?i=" + std::to_string(i))));
  engine.submit(std::move(second));
  auto results = c.wait_for(6);
  REQUIRE(results.size() == 6);
  for (const auto& r : results) {
    CHECK(r.error.empty());
    CHECK(r.code == 204);
  }
  // Each request reached nginx exactly once. nginx writes its access log line after the
  // response has gone out: wait for the lines, then make sure no third one follows.
  auto b_requests = [&] {
    std::size_t n = 0;
    for (const auto& line : nginx.log_lines())
      if (line.find(" GET /b?i=") != std::string::npos) ++n;
    return n;
  };
  for (int i = 0; i < 100 && b_requests() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(b_requests() == 2);
}

namespace {

// A one-connection HTTP server on a thread: answers each request with the next canned
// response, on the same keep-alive connection.
class canned_server {
 public:
  explicit canned_server(std::vector<std::string> responses) : responses_(std::move(responses)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    REQUIRE(::listen(fd_, 4) == 0);
    thread_ = std::thread([this] {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string in;
      char buf[4096];
      for (const auto& resp : responses_) {
        while (in.find("\r\n\r\n") == std::string::npos) {
          ssize_t n = ::recv(c, buf, sizeof buf, 0);
          if (n <= 0) {
            ::close(c);
            return;
          }
          in.append(buf, static_cast<std::size_t>(n));
        }
        in.erase(0, in.find("\r\n\r\n") + 4);
        ++served_;
        ::send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
      }
      ::recv(c, buf, sizeof buf, 0);  // until the client closes
      ::close(c);
    });
  }
  ~canned_server() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    if (thread_.joinable()) thread_.join();
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  int served() const { return served_.load(); }

 private:
  std::vector<std::string> responses_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> served_{0};
  std::thread thread_;
};

}  // namespace

TEST_CASE("engine: chunked responses are decoded and the connection is kept for the next request", "[engine]") {
  canned_server srv({"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nRetry-After: 7\r\n\r\n"
                     "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
                     "HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy"});
  collector c;
  delivery_engine engine(c.sink());
  engine.set_pool("tasks", {1});
  engine.submit({get(1, srv.url("/one"))});
  auto first = c.wait_for(1);
  REQUIRE(first.size() == 1);
  CHECK(first[0].error.empty());
  CHECK(first[0].code == 200);
  CHECK(first[0].body == "hello world");
  REQUIRE(first[0].retry_after);
  CHECK(*first[0].retry_after == "7");
  engine.submit({get(2, srv.url("/two"))});
  auto both = c.wait_for(2);
  REQUIRE(both.size() == 2);
  CHECK(both[1].code == 503);
  CHECK(both[1].body == "busy");
  CHECK(srv.served() == 2);  // both on the one connection the server accepted
}

TEST_CASE("engine: a malformed response fails with the parser's reason, and its connection is not reused", "[engine]") {
  canned_server srv({"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"});
  collector c;
  delivery_engine engine(c.sink());
  engine.submit({get(1, srv.url("/conflict"))});
  auto results = c.wait_for(1);
  REQUIRE(results.size() == 1);
  CHECK(results[0].code == 0);
  CHECK(results[0].error == "Conflicting Content-Length values in response");
  CHECK_FALSE(results[0].timed_out);
}

namespace {

// A TCP listener on 127.0.0.1 that accepts and counts connections on a thread of its own
// (and closes them): where a denied address must see none.
class counting_listener {
 public:
  counting_listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
    REQUIRE(::listen(fd_, 64) == 0);
    thread_ = std::thread([this] {
      for (;;) {
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;  // shut down
        if (stopping_) {
          ::close(c);
          return;
        }
        ++accepted_;
        ::close(c);
      }
    });
  }
  ~counting_listener() {
    stopping_ = true;
    ::shutdown(fd_, SHUT_RDWR);  // wakes accept()
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  int accepted() const { return accepted_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> accepted_{0};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace

TEST_CASE("engine: a pool's egress rules deny an address before any connection, on both paths", "[engine][egress]") {
  counting_listener listener;
  const std::string url = "http://127.0.0.1:" + std::to_string(listener.port()) + "/x";
  auto rules = std::make_shared<egress_rules>();
  rules->level = egress_level::public_only;
  collector c;
  delivery_engine engine(c.sink());
  engine.set_pool("denied", pool_options{4, rules});
  http_request lean = get(1, url, "denied");
  http_request curl = get(2, url, "denied");
  curl.follow_redirects = true;  // takes the curl path
  http_request creds = get(3, "http://u:p@127.0.0.1:" + std::to_string(listener.port()) + "/y", "denied");
  http_request callback_pool = get(4, url, "denied:callbacks");  // unset pool: the default policy allows loopback
  engine.set_pool("denied:callbacks", pool_options{4, nullptr});
  engine.submit({lean, curl, creds});
  auto results = c.wait_for(3);
  REQUIRE(results.size() == 3);
  const std::string want =
      "egress denied: 127.0.0.1 port " + std::to_string(listener.port()) + " (policy public: loopback 127.0.0.0/8)";
  for (const auto& r : results) {
    INFO("ticket " << r.ticket << ": " << r.error);
    CHECK(r.egress_denied);
    CHECK(r.error == want);
    CHECK(r.code == 0);
    CHECK_FALSE(r.timed_out);
  }
  CHECK(listener.accepted() == 0);
  // The same address through a pool under the default policy connects.
  engine.submit({callback_pool});
  results = c.wait_for(4);
  REQUIRE(results.size() == 4);
  CHECK_FALSE(results[3].egress_denied);
  CHECK(results[3].ticket == 4);
  CHECK(listener.accepted() >= 1);  // counted before the listener closed it, which ended the attempt
}
