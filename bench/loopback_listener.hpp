// The listening half of the benchmarks' small epoll servers (http_sink, null_server): a
// non-blocking listener on 127.0.0.1, an epoll instance watching it, and the accept loop
// that adds each new connection (TCP_NODELAY) to that epoll instance.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace respq::bench {

struct loopback_listener {
  int fd = -1;  // the listening socket
  int ep = -1;  // the epoll instance, watching fd (EPOLLIN)
};

// Listens on 127.0.0.1:port; on failure prints why and returns fd = -1.
inline loopback_listener listen_loopback(const char* port, int backlog) {
  loopback_listener l;
  l.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(l.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(std::atoi(port)));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(l.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(l.fd, backlog) != 0) {
    std::perror("bind/listen");
    l.fd = -1;
    return l;
  }
  l.ep = epoll_create1(0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = l.fd;
  epoll_ctl(l.ep, EPOLL_CTL_ADD, l.fd, &ev);
  return l;
}

// Accepts every pending connection, watches each for `events`, and calls on_new(fd).
template <typename Fn>
void accept_all(const loopback_listener& l, std::uint32_t events, Fn&& on_new) {
  int one = 1;
  int c;
  while ((c = accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK)) >= 0) {
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    epoll_event cev{};
    cev.events = events;
    cev.data.fd = c;
    epoll_ctl(l.ep, EPOLL_CTL_ADD, c, &cev);
    on_new(c);
  }
}

}  // namespace respq::bench
