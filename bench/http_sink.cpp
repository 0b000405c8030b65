// http_sink: a minimal HTTP/1.1 endpoint for benchmarks. Answers every request with
// "204 No Content" on keep-alive connections, and records, per request, the receive
// time (CLOCK_MONOTONIC, ns; comparable with Python's time.monotonic_ns() on the same
// machine) and the value of the query parameter `i` when present. On SIGTERM/SIGINT it
// writes "i ns" lines to the file given as second argument and exits.
//
//   http_sink <port> <record-file>
//
// One thread, epoll, edge-triggered; pipelined requests are answered in order. Only
// what the benchmarks need: no bodies beyond Content-Length skipping, no chunked input.
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bench/loopback_listener.hpp"

namespace {

volatile sig_atomic_t stop_flag = 0;
void on_signal(int) { stop_flag = 1; }

long long mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

struct conn {
  std::string in;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: http_sink <port> <record-file>\n");
    return 2;
  }
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  signal(SIGPIPE, SIG_IGN);
  const auto l = respq::bench::listen_loopback(argv[1], 1024);
  if (l.fd < 0) return 1;
  const int ep = l.ep;
  std::unordered_map<int, conn> conns;
  std::vector<std::pair<long long, long long>> records;
  records.reserve(1 << 20);
  static const char reply[] = "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n";
  char buf[65536];
  epoll_event events[256];
  while (!stop_flag) {
    int n = epoll_wait(ep, events, 256, 100);
    for (int k = 0; k < n; ++k) {
      int fd = events[k].data.fd;
      if (fd == l.fd) {
        respq::bench::accept_all(l, EPOLLIN | EPOLLET, [&](int c) { conns[c]; });
        continue;
      }
      conn& cn = conns[fd];
      bool closed = false;
      while (true) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r > 0) {
          cn.in.append(buf, static_cast<std::size_t>(r));
          continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) closed = true;
        break;
      }
      long long now = mono_ns();
      std::string out;
      std::size_t pos = 0;
      while (true) {
        std::size_t end = cn.in.find("\r\n\r\n", pos);
        if (end == std::string::npos) break;
        std::string_view head(cn.in.data() + pos, end - pos);
        std::size_t body = 0;
        std::size_t cl = head.find("Content-Length:");
        if (cl == std::string_view::npos) cl = head.find("content-length:");
        if (cl != std::string_view::npos) body = std::strtoul(head.data() + cl + 15, nullptr, 10);
        if (end + 4 + body > cn.in.size()) break;
        long long id = -1;
        std::size_t line_end = head.find("\r\n");
        std::string_view line = head.substr(0, line_end);
        std::size_t q = line.find("?");
        if (q != std::string_view::npos) {
          std::size_t p = line.find("i=", q);
          while (p != std::string_view::npos && line[p - 1] != '?' && line[p - 1] != '&') p = line.find("i=", p + 1);
          if (p != std::string_view::npos) id = std::strtoll(line.data() + p + 2, nullptr, 10);
        }
        records.emplace_back(id, now);
        out.append(reply, sizeof reply - 1);
        pos = end + 4 + body;
      }
      cn.in.erase(0, pos);
      if (!out.empty()) {
        std::size_t off = 0;
        while (off < out.size()) {
          ssize_t w = write(fd, out.data() + off, out.size() - off);
          if (w <= 0) break;
          off += static_cast<std::size_t>(w);
        }
      }
      if (closed) {
        close(fd);
        conns.erase(fd);
      }
    }
  }
  FILE* f = std::fopen(argv[2], "w");
  if (!f) return 1;
  for (const auto& [id, ns] : records) std::fprintf(f, "%lld %lld\n", id, ns);
  std::fclose(f);
  return 0;
}
