// http1_client on its own io_context: against nginx, origins it no longer uses are
// forgotten, so delivering to ever new hosts does not grow its memory; against a raw
// server, answers of many connections arriving in pieces, interleaved, each reach their
// own request through the client's one read buffer; a connection stays reusable when an
// answer's last read fills that buffer; a result handler that throws loses no other answer.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <asio/io_context.hpp>
#include <catch2/catch.hpp>

#include "test_servers.hpp"
#include "workers/http1_client.hpp"

using namespace respq::workers;
using namespace std::chrono_literals;
using respq::test::get;
using respq::test::run_until;
using respq::test::read_request_head;

TEST_CASE("http1_client forgets origins once their connections went idle and closed", "[http1]") {
  respq::test::nginx_server nginx;
  asio::io_context io;
  std::vector<http_result> results;
  http1_client client(io, "respq-test", [&](http_result&& r) { results.push_back(std::move(r)); }, 200ms);

  // Three delivery pools to one server are three origins, as three hosts would be.
  const std::vector<std::string> pools{"a", "b", "c"};
  std::uint64_t ticket = 0;
  for (const auto& p : pools)
    for (int i = 0; i < 4; ++i) client.submit(get(++ticket, nginx.url("/x?i=" + std::to_string(i)), p));
  REQUIRE(run_until(io, [&] { return results.size() == 12; }, 10s));
  for (const auto& r : results) CHECK(r.code == 204);
  CHECK(client.origins() == 3);

  // Past the idle limit the connections close and the origins go.
  REQUIRE(run_until(io, [&] { return client.origins() == 0; }, 3s));

  // A forgotten origin comes back on the next request.
  client.submit(get(++ticket, nginx.url("/again"), "a"));
  REQUIRE(run_until(io, [&] { return results.size() == 13; }, 10s));
  CHECK(results.back().code == 204);
  CHECK(client.origins() == 1);

  // An origin whose request takes longer than the idle limit keeps it going meanwhile:
  // its connection is in use, not idle.
  respq::test::php_server php;
  client.submit(get(++ticket, php.url("/sleep/0.8"), "slow"));
  REQUIRE_FALSE(run_until(io, [&] { return results.size() == 14; }, 500ms));
  CHECK(client.origins() == 1);  // "a" idled past the limit meanwhile; "slow" stays
  REQUIRE(run_until(io, [&] { return results.size() == 14; }, 10s));
  CHECK(results.back().code == 200);
  client.shutdown();
}

TEST_CASE("http1_client: answers of many connections, in pieces and interleaved, each reach their request", "[http1]") {
  // A server on a loopback port: takes 16 connections, reads each request (GET /r/<i>),
  // then answers all of them at once, round robin, in pieces of 1,000 and 20,000 bytes by
  // turns: every answer (40 KB, more than the client's 16 KB read buffer) is read in
  // pieces, some filling the buffer, between pieces of the others.
  constexpr int conns = 16;
  int port = 0;
  const int lfd = respq::test::loopback_socket(conns, port);
  auto body_of = [](const std::string& i) {
    std::string b;
    while (b.size() < 40000) b += "answer-" + i + ";";
    return b;
  };
  std::thread server([&] {
    std::vector<int> fds;
    std::vector<std::string> out;
    for (int k = 0; k < conns; ++k) {
      const int fd = ::accept(lfd, nullptr, nullptr);
      if (fd < 0) break;
      const std::string req = read_request_head(fd);
      const auto at = req.find("/r/") + 3;
      const std::string body = body_of(req.substr(at, req.find(' ', at) - at));
      fds.push_back(fd);
      out.push_back("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    }
    std::vector<std::size_t> off(fds.size(), 0);
    for (std::size_t round = 0, more = 1; more; ++round) {
      more = 0;
      for (std::size_t k = 0; k < fds.size(); ++k) {
        if (off[k] >= out[k].size()) continue;
        const std::size_t n = std::min<std::size_t>((round + k) % 2 ? 20000 : 1000, out[k].size() - off[k]);
        if (::write(fds[k], out[k].data() + off[k], n) != static_cast<ssize_t>(n)) off[k] = out[k].size();
        off[k] += n;
        if (off[k] < out[k].size()) more = 1;
      }
      std::this_thread::sleep_for(1ms);
    }
    std::this_thread::sleep_for(200ms);
    for (int fd : fds) ::close(fd);
  });

  asio::io_context io;
  std::vector<http_result> results;
  http1_client client(io, "respq-test", [&](http_result&& r) { results.push_back(std::move(r)); });
  client.set_per_host("tasks", conns);
  const std::string base = "http://127.0.0.1:" + std::to_string(port) + "/r/";
  for (int i = 0; i < conns; ++i) client.submit(get(static_cast<std::uint64_t>(i), base + std::to_string(i)));
  const bool all = run_until(io, [&] { return results.size() == conns; }, 20s);
  client.shutdown();
  server.join();
  ::close(lfd);
  REQUIRE(all);
  for (const auto& r : results) {
    INFO("ticket " << r.ticket << ": " << r.error);
    CHECK(r.code == 200);
    CHECK_FALSE(r.truncated);
    CHECK(r.body == body_of(std::to_string(r.ticket)));
  }
}

TEST_CASE("http1_client: whole-request timeouts fire each at its own deadline, whatever finished before", "[http1]") {
  // A port that takes connections (the kernel's backlog) and never answers, beside nginx
  // answering at once: the deadlines of requests that finish leave the client's deadline
  // heap, and those left fire in order, each after its own timeout.
  int port = 0;
  const int lfd = respq::test::loopback_socket(64, port);
  const std::string silent = "http://127.0.0.1:" + std::to_string(port) + "/never";
  respq::test::nginx_server nginx;

  asio::io_context io;
  std::vector<http_result> results;
  http1_client client(io, "respq-test", [&](http_result&& r) { results.push_back(std::move(r)); });
  client.set_per_host("tasks", 64);
  // Tickets 1..12 go to the silent port with timeouts out of order (0.6 s to 1.7 s);
  // 100..147 go to nginx between them.
  const std::vector<double> timeouts{1.7, 0.6, 1.3, 0.9, 1.5, 0.7, 1.1, 1.6, 0.8, 1.2, 1.0, 1.4};
  std::uint64_t quick = 100;
  for (std::size_t i = 0; i < timeouts.size(); ++i) {
    auto r = get(i + 1, silent);
    r.timeout_s = timeouts[i];
    client.submit(std::move(r));
    for (int k = 0; k < 4; ++k) client.submit(get(quick++, nginx.url("/q")));
  }
  const std::size_t total = timeouts.size() + (quick - 100);
  // Once nginx has answered, only the 12 silent requests' deadlines are left.
  const auto quick_done = [&] {
    return static_cast<std::uint64_t>(std::count_if(results.begin(), results.end(),
                                                    [](const http_result& r) { return r.ticket >= 100; }));
  };
  const bool answered = run_until(io, [&] { return quick_done() == quick - 100; }, 10s);
  const std::size_t timed_then = client.timed();
  const std::size_t timed_out_then = results.size() - quick_done();  // none, unless the machine stalled
  const bool all = run_until(io, [&] { return results.size() == total; }, 10s);
  const std::size_t timed_after = client.timed();
  client.shutdown();
  ::close(lfd);
  REQUIRE(answered);
  CHECK(timed_then == timeouts.size() - timed_out_then);
  REQUIRE(all);
  CHECK(timed_after == 0);
  std::vector<std::uint64_t> timed_out_order;
  for (const auto& r : results) {
    if (r.ticket >= 100) {
      CHECK(r.code == 204);
      continue;
    }
    INFO("ticket " << r.ticket << ": " << r.error);
    CHECK(r.timed_out);
    const double want_ms = timeouts[r.ticket - 1] * 1000;
    CHECK(r.duration_ms >= want_ms - 1);
    CHECK(r.duration_ms < want_ms + 1500);  // a busy machine may run the timer late
    timed_out_order.push_back(r.ticket);
  }
  // Earliest deadline first: 0.6 (ticket 2), 0.7 (6), 0.8 (9), ... 1.7 (1).
  CHECK(timed_out_order == std::vector<std::uint64_t>{2, 6, 9, 4, 11, 7, 10, 3, 12, 5, 8, 1});
}

TEST_CASE("http1_client: a connection whose answer ended on a read that filled the buffer is reused", "[http1]") {
  // A keep-alive server answering every request on its connection with an answer of
  // exactly `total` bytes: 16 KB (the client's read buffer) and 32 KB, so the read that
  // ends the answer comes back full. Three requests one after the other go over one
  // connection, not one each.
  for (const std::size_t total : {std::size_t{16 * 1024}, std::size_t{32 * 1024}}) {
    int port = 0;
    const int lfd = respq::test::loopback_socket(8, port);
    std::atomic<int> accepted{0};
    std::atomic<bool> stop{false};
    std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 00000\r\n\r\n";
    const std::size_t body = total - answer.size();
    answer.replace(answer.find("00000"), 5, std::to_string(body));
    answer.append(body, 'a');
    REQUIRE(answer.size() == total);
    std::thread server([&] {
      std::vector<std::thread> conns;
      while (!stop) {
        pollfd p{lfd, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        const int fd = ::accept(lfd, nullptr, nullptr);
        if (fd < 0) continue;
        ++accepted;
        conns.emplace_back([fd, &answer] {
          std::string req;
          char buf[4096];
          for (;;) {
            const ssize_t n = ::read(fd, buf, sizeof buf);
            if (n <= 0) break;
            req.append(buf, static_cast<std::size_t>(n));
            for (auto end = req.find("\r\n\r\n"); end != std::string::npos; end = req.find("\r\n\r\n")) {
              req.erase(0, end + 4);
              if (::write(fd, answer.data(), answer.size()) != static_cast<ssize_t>(answer.size())) return;
            }
          }
          ::close(fd);
        });
      }
      for (auto& t : conns) t.join();
    });

    asio::io_context io;
    std::vector<http_result> results;
    http1_client client(io, "respq-test", [&](http_result&& r) { results.push_back(std::move(r)); });
    const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/x";
    bool all = true;
    for (std::uint64_t i = 0; i < 3 && all; ++i) {
      client.submit(get(i, url));
      all = run_until(io, [&] { return results.size() == i + 1; }, 10s);
    }
    client.shutdown();
    stop = true;
    server.join();
    ::close(lfd);
    INFO("answers of " << total << " bytes");
    REQUIRE(all);
    for (const auto& r : results) CHECK(r.code == 200);
    CHECK(accepted == 1);
  }
}

TEST_CASE("http1_client: when a result's handler throws, the other answers ready at that moment still arrive", "[http1]") {
  // 40 connections whose answers all become readable while the client is busy (the
  // handler of the first answer sleeps meanwhile), so they come in one batch of events.
  // The handler then throws on the second answer, as the engine's loop survives: the
  // answers ready beside it are still read, not left to time out.
  constexpr int conns = 40;
  int port = 0;
  const int lfd = respq::test::loopback_socket(conns, port);
  std::atomic<bool> rest{false};
  std::thread server([&] {
    std::vector<int> fds;
    for (int k = 0; k < conns; ++k) {
      const int fd = ::accept(lfd, nullptr, nullptr);
      if (fd < 0) break;
      read_request_head(fd);
      fds.push_back(fd);
    }
    const std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    if (!fds.empty() && ::write(fds[0], answer.data(), answer.size()) < 0) return;
    for (int waited = 0; !rest && waited < 10000; ++waited) std::this_thread::sleep_for(1ms);
    for (std::size_t k = 1; k < fds.size(); ++k)
      if (::write(fds[k], answer.data(), answer.size()) < 0) break;
    std::this_thread::sleep_for(500ms);
    for (int fd : fds) ::close(fd);
  });

  asio::io_context io;
  std::vector<http_result> results;
  int threw = 0;
  http1_client client(io, "respq-test", [&](http_result&& r) {
    results.push_back(std::move(r));
    if (results.size() == 1) {
      rest = true;
      std::this_thread::sleep_for(300ms);
    } else if (results.size() == 2) {
      throw std::runtime_error("a handler that throws");
    }
  });
  client.set_per_host("tasks", conns);
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/x";
  for (int i = 0; i < conns; ++i) {
    auto r = get(static_cast<std::uint64_t>(i), url);
    r.timeout_s = 3;
    client.submit(std::move(r));
  }
  const auto end = std::chrono::steady_clock::now() + 10s;
  while (results.size() < conns && std::chrono::steady_clock::now() < end) {
    try {
      io.restart();
      io.run_for(10ms);
    } catch (const std::runtime_error&) {
      ++threw;
    }
  }
  client.shutdown();
  server.join();
  ::close(lfd);
  CHECK(threw == 1);
  REQUIRE(results.size() == conns);
  for (const auto& r : results) {
    INFO("ticket " << r.ticket << ": " << r.error);
    CHECK(r.code == 200);
  }
}
