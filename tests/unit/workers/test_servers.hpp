// test_servers: real HTTP endpoints for the delivery engine tests, each started on a free
// loopback port and always stopped by its destructor.
//
//  - php_server: `php -S` with router.php (beside this file): echoes requests as JSON,
//    answers chosen codes, delays, Retry-After, redirects, large bodies; counts
//    concurrent requests. PHP's built-in server closes every connection after one
//    response, so it is used where connection reuse does not matter.
//  - nginx_server: nginx answering 204 to everything, with an access log naming the
//    connection serial number of each request, to observe keep-alive reuse, and files
//    under /files/ (add_file); over TLS
//    (nginx_tls) the log also says whether the session was resumed and which client
//    certificate was presented.
//  - test_pki: CAs and certificates made by the openssl command line.
//
// A child runs in its own process group (killed as a group, so php's forked workers go
// too) and dies with the test process (PR_SET_PDEATHSIG). Only the test thread uses these.
// get() builds the plain GET request the engine and client tests send to them.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <asio/io_context.hpp>

#include "tasks/http_request.hpp"

namespace respq::test {

// Runs the io_context until `done` holds or `limit` passes; false when it did not.
template <typename Pred>
bool run_until(asio::io_context& io, Pred done, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    io.restart();
    io.run_for(std::chrono::milliseconds(10));
  }
  return true;
}

// A GET of `url` in delivery pool `pool`, with a 10 s timeout, its response body (up to
// 64 KB) carried back: the request most tests send.
inline tasks::http_request get(std::uint64_t ticket, std::string url, std::string pool = "tasks") {
  tasks::http_request r;
  r.ticket = ticket;
  r.pool = std::move(pool);
  r.url = std::move(url);
  r.timeout_s = 10;
  r.keep_body = 64 * 1024;
  return r;
}

// A port on 127.0.0.1 that was free a moment ago (nothing listens there now).
int free_loopback_port();
// A socket bound to a port of 127.0.0.1 the kernel picks (set in `port`), listening with
// `backlog` (0: bound only); `type_flags` are added to SOCK_STREAM (e.g. SOCK_NONBLOCK).
// The caller closes it. Throws when it can't be made.
int loopback_socket(int backlog, int& port, int type_flags = 0);
// Reads from `fd` until a request's head has arrived (its blank line) or the peer closes
// or fails; returns what was read.
std::string read_request_head(int fd);

class temp_dir {
 public:
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

class child_process {
 public:
  // argv[0] is a program path (or looked up in PATH); env entries are added as NAME=value.
  child_process(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                const std::filesystem::path& log_file);
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  bool running();

 private:
  pid_t pid_ = -1;
};

std::string read_file(const std::filesystem::path& p);

class php_server {
 public:
  explicit php_server(int workers = 1);
  std::string url(const std::string& path_and_query) const;
  int port() const { return port_; }
  // The concurrency record of /track requests: {"current","max","total"}.
  std::string state() const { return read_file(dir_.path() / "state.json"); }

 private:
  temp_dir dir_;
  int port_ = 0;
  std::unique_ptr<child_process> proc_;
};

// Test certificates in a temporary directory, made by the openssl command line (EC P-256
// keys: quick to make).
class test_pki {
 public:
  test_pki() = default;
  // A self-signed CA: <name>.crt, <name>.key.
  void make_ca(const std::string& name);
  // <name>.crt/.key for `subject` (e.g. "/CN=x"), signed by `ca`, with the extension line
  // `ext` (e.g. "subjectAltName=IP:127.0.0.1").
  void sign(const std::string& name, const std::string& ca, const std::string& subject, const std::string& ext);
  std::string path(const std::string& file) const { return (dir_.path() / file).string(); }

 private:
  void openssl(const std::string& args);
  temp_dir dir_;
};

struct nginx_tls {
  std::string cert, key;  // the server's certificate and key (PEM files)
  std::string client_ca;  // when set: a client certificate signed by it is required
};

class nginx_server {
 public:
  // keepalive_timeout_s: how long nginx keeps an idle keep-alive connection open;
  // keepalive_requests: how many requests a connection serves before nginx closes it.
  explicit nginx_server(int keepalive_timeout_s = 75, std::optional<nginx_tls> tls = std::nullopt,
                        int keepalive_requests = 100000);
  std::string url(const std::string& path_and_query) const;
  int port() const { return port_; }
  // A file of `bytes` bytes that nginx serves (200, Content-Length) at /files/<name>.
  void add_file(const std::string& name, std::size_t bytes) const;
  // Access log lines: "<connection serial> <requests on it> <method> <uri>", over TLS
  // followed by "<'r' if the session was resumed, else '.'> <client certificate subject or
  // '-'>".
  std::vector<std::string> log_lines() const;

 private:
  temp_dir dir_;
  int port_ = 0;
  bool tls_ = false;
  std::unique_ptr<child_process> proc_;
};

}  // namespace respq::test
