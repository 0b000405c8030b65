// A server that does no work: it answers each redis-benchmark request with a canned reply
// of the right shape (PING +PONG, pushes :1, pops the benchmark's 3-byte value, LRANGE 100 of
// them) and keeps nothing. bench/run measures redis-benchmark against it to learn how fast
// the client itself can go on this machine: no server, respq included, can be measured
// faster than this, so it bounds every ratio the queue section can show.
//
// One thread, level-triggered epoll, one read and at most one write per ready connection,
// as redis-server does. With --spin it polls epoll without sleeping (as respq's busy-poll).
//
// Usage: respq_null_server PORT [--spin]
#include <sched.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>

#include "bench/loopback_listener.hpp"

namespace {

struct conn {
  std::string in;
  std::string out;
  bool want_write = false;
};

std::string lrange_reply() {
  std::string r = "*100\r\n";
  for (int i = 0; i < 100; ++i) r += "$3\r\nxxx\r\n";
  return r;
}

// Parses one complete multibulk request at `in[pos]`; returns its end, or npos when
// incomplete. `name` receives the first argument.
std::size_t parse_one(const std::string& in, std::size_t pos, std::string_view& name) {
  if (pos >= in.size() || in[pos] != '*') {
    // Inline request: a line.
    std::size_t e = in.find('\n', pos);
    if (e == std::string::npos) return std::string::npos;
    name = std::string_view(in).substr(pos, e - pos);
    return e + 1;
  }
  std::size_t e = in.find("\r\n", pos);
  if (e == std::string::npos) return std::string::npos;
  long n = std::strtol(in.c_str() + pos + 1, nullptr, 10);
  pos = e + 2;
  for (long i = 0; i < n; ++i) {
    if (pos >= in.size()) return std::string::npos;
    e = in.find("\r\n", pos);
    if (e == std::string::npos) return std::string::npos;
    long len = std::strtol(in.c_str() + pos + 1, nullptr, 10);
    std::size_t start = e + 2;
    if (start + static_cast<std::size_t>(len) + 2 > in.size()) return std::string::npos;
    if (i == 0) name = std::string_view(in).substr(start, static_cast<std::size_t>(len));
    pos = start + static_cast<std::size_t>(len) + 2;
  }
  return pos;
}

bool iequals_prefix(std::string_view s, const char* w) {
  std::size_t n = std::strlen(w);
  if (s.size() < n) return false;
  for (std::size_t i = 0; i < n; ++i)
    if ((s[i] | 0x20) != w[i]) return false;
  return true;
}

void answer(std::string_view name, std::string& out) {
  static const std::string lrange = lrange_reply();
  if (iequals_prefix(name, "ping")) out += "+PONG\r\n";
  else if (iequals_prefix(name, "lpush") || iequals_prefix(name, "rpush")) out += ":1\r\n";
  else if (iequals_prefix(name, "lpop") || iequals_prefix(name, "rpop")) out += "$3\r\nxxx\r\n";
  else if (iequals_prefix(name, "lrange")) out += lrange;
  else if (iequals_prefix(name, "config")) out += "*2\r\n$4\r\nsave\r\n$0\r\n\r\n";  // CONFIG GET at start
  else out += "+OK\r\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PORT [--spin]\n", argv[0]);
    return 2;
  }
  const bool spin = argc > 2 && std::strcmp(argv[2], "--spin") == 0;
  const auto l = respq::bench::listen_loopback(argv[1], 511);
  if (l.fd < 0) return 1;
  const int ep = l.ep;
  std::unordered_map<int, conn> conns;
  epoll_event events[256];
  char buf[64 * 1024];
  for (;;) {
    int n = epoll_wait(ep, events, 256, spin ? 0 : -1);
    if (n < 0 && errno != EINTR) return 1;
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == l.fd) {
        respq::bench::accept_all(l, EPOLLIN, [&](int c) { conns[c]; });
        continue;
      }
      conn& k = conns[fd];
      bool closed = false;
      if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
          closed = true;
        } else if (r > 0) {
          k.in.append(buf, static_cast<std::size_t>(r));
          std::size_t pos = 0;
          std::string_view name;
          for (std::size_t e; (e = parse_one(k.in, pos, name)) != std::string::npos; pos = e) answer(name, k.out);
          k.in.erase(0, pos);
        }
      }
      if (!closed && !k.out.empty()) {
        ssize_t w = write(fd, k.out.data(), k.out.size());
        if (w < 0 && errno != EAGAIN && errno != EINTR) closed = true;
        else if (w > 0) k.out.erase(0, static_cast<std::size_t>(w));
      }
      if (closed) {
        close(fd);
        conns.erase(fd);
        continue;
      }
      bool want = !k.out.empty();
      if (want != k.want_write) {
        epoll_event cev{};
        cev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
        cev.data.fd = fd;
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &cev);
        k.want_write = want;
      }
    }
    if (spin && n == 0) sched_yield();
  }
}
