#include "broker/migrate_sockets.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <iterator>
#include <random>

namespace respq::broker {

namespace {

using clock = std::chrono::steady_clock;

// now + timeout_ms, the timeout bounded (a MIGRATE may give up to 2^63 - 1 ms, past what
// the clock can add).
clock::time_point deadline_after(long long timeout_ms) {
  constexpr long long max_ms = 100LL * 365 * 24 * 3600 * 1000;  // a century
  return clock::now() + std::chrono::milliseconds(std::min(timeout_ms, max_ms));
}

long long ms_left(clock::time_point deadline) {
  return std::max<long long>(0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count());
}

// Waits until fd is ready for `events` or the deadline passes (errno ETIMEDOUT then).
bool wait_ready(int fd, short events, clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const long long left = ms_left(deadline);
    const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1 << 30)));
    if (r > 0) return true;
    if (r == 0) {
      errno = ETIMEDOUT;
      return false;
    }
    if (errno != EINTR) return false;
  }
}

// A non-blocking TCP connection to the first of host's addresses that takes the connect
// call, waited for within the deadline (Redis's connBlockingConnect): a connection that
// is then refused or not made in time fails at the first write ("writing to target
// instance"), as in Redis; -1 when no address takes the call.
int connect_to(const std::string& host, const std::string& port, clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &list) != 0) return -1;
  int fd = -1;
  bool pending = false;
  for (addrinfo* ai = list; ai && fd < 0; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
    if (errno == EINPROGRESS) {
      pending = true;
      break;
    }
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(list);
  if (fd < 0) return -1;
  if (pending) wait_ready(fd, POLLOUT, deadline);
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// One plain TCP connection; the bytes read past the last reply line wait for the next.
class tcp_target final : public core::migrate_target {
 public:
  explicit tcp_target(int fd) : fd_(fd) {}
  ~tcp_target() override { ::close(fd_); }
  tcp_target(const tcp_target&) = delete;
  tcp_target& operator=(const tcp_target&) = delete;

  bool write_all(std::string_view data, long long timeout_ms) override {
    while (!data.empty()) {
      std::string_view chunk = data.substr(0, 64 * 1024);
      const auto deadline = deadline_after(timeout_ms);
      while (!chunk.empty()) {
        const ssize_t n = ::send(fd_, chunk.data(), chunk.size(), MSG_NOSIGNAL);
        if (n > 0) {
          chunk.remove_prefix(static_cast<std::size_t>(n));
          data.remove_prefix(static_cast<std::size_t>(n));
        } else if (n < 0 && errno == EINTR) {
          continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          if (!wait_ready(fd_, POLLOUT, deadline)) return false;
        } else {
          return false;
        }
      }
    }
    return true;
  }

  long read_line(std::string& line, long long timeout_ms) override {
    static constexpr std::size_t max_line = 1023;  // Redis's 1024-byte buffer, with its NUL
    for (;;) {
      const std::size_t nl = in_.find('\n');
      if (nl != std::string::npos || in_.size() >= max_line) {
        // A line feed within the first 1023 bytes ends the line; else 1023 bytes are one.
        const bool ended = nl != std::string::npos && nl < max_line;
        const std::size_t n = ended ? nl : max_line;
        std::size_t end = n;
        if (ended && end > 0 && in_[end - 1] == '\r') --end;
        line.assign(in_, 0, end);
        in_.erase(0, ended ? n + 1 : n);
        return static_cast<long>(n);
      }
      char buf[4096];
      const ssize_t got = ::recv(fd_, buf, sizeof buf, 0);
      if (got > 0) {
        in_.append(buf, static_cast<std::size_t>(got));
      } else if (got == 0) {
        errno = ECONNRESET;
        return -1;
      } else if (errno == EINTR) {
        continue;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        // The time-out runs from the last byte received, as Redis's byte-by-byte reads.
        if (!wait_ready(fd_, POLLIN, deadline_after(timeout_ms))) return -1;
      } else {
        return -1;
      }
    }
  }

 private:
  int fd_;
  std::string in_;
};

// The port as Redis's MIGRATE reads it: atoi of the argument ("17102abc" is 17102, "0x10"
// is 0), then printed into 6 bytes ("171029" is 17102).
std::string redis_port(std::string_view port) {
  const int n = static_cast<int>(std::strtol(std::string(port).c_str(), nullptr, 10));
  char buf[6];
  std::snprintf(buf, sizeof buf, "%d", n);
  return buf;
}

std::string cache_key(std::string_view host, std::string_view port) {
  std::string n(host);
  n += ':';
  n += port;
  return n;
}

}  // namespace

core::migrate_target* migrate_sockets::get(std::string_view host, std::string_view port, long long timeout_ms,
                                           std::int64_t now) {
  const std::string key = cache_key(host, port);
  if (auto it = cached_.find(key); it != cached_.end()) {
    it->second.last_use = now;
    return it->second.target.get();
  }
  if (cached_.size() >= max_cached) {
    static std::minstd_rand pick{std::random_device{}()};
    cached_.erase(std::next(cached_.begin(), static_cast<long>(pick() % cached_.size())));
  }
  const int fd = connect_to(std::string(host), redis_port(port), deadline_after(timeout_ms));
  if (fd < 0) return nullptr;
  entry& e = cached_[key];
  e.target = std::make_unique<tcp_target>(fd);
  e.last_use = now;
  return e.target.get();
}

void migrate_sockets::close(std::string_view host, std::string_view port) { cached_.erase(cache_key(host, port)); }

void migrate_sockets::close_idle(std::int64_t now) {
  std::erase_if(cached_, [&](const auto& kv) { return now - kv.second.last_use > idle_seconds; });
}

}  // namespace respq::broker
