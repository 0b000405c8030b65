// test_servers: starting and always stopping php -S and nginx for the engine tests.
#include "test_servers.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace respq::test {
namespace {

bool accepts_connections(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

void wait_until_listening(int port, child_process& proc, const std::string& what) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (accepts_connections(port)) return;
    if (!proc.running()) throw std::runtime_error(what + " exited before listening");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw std::runtime_error(what + " did not listen on port " + std::to_string(port));
}

// A program by name: PATH first, then the sbin directories a non-root PATH may lack
// (Debian installs nginx in /usr/sbin).
std::string find_program(const std::string& name) {
  std::string dirs = ::getenv("PATH") ? ::getenv("PATH") : "";
  dirs += ":/usr/local/sbin:/usr/sbin:/sbin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    const std::size_t end = std::min(dirs.find(':', start), dirs.size());
    const std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (end > start && ::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return name;
}

}  // namespace

int loopback_socket(int backlog, int& port, int type_flags) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | type_flags, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      (backlog > 0 && ::listen(fd, backlog) != 0)) {
    ::close(fd);
    throw std::runtime_error("cannot bind a loopback port");
  }
  port = ntohs(addr.sin_port);
  return fd;
}

std::string read_request_head(int fd) {
  std::string req;
  char buf[4096];
  while (req.find("\r\n\r\n") == std::string::npos) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    req.append(buf, static_cast<std::size_t>(n));
  }
  return req;
}

int free_loopback_port() {
  int port = 0;
  ::close(loopback_socket(0, port));
  return port;
}

temp_dir::temp_dir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "respq-workers-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

temp_dir::~temp_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

child_process::child_process(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                             const std::filesystem::path& log_file) {
  // Everything the child needs is built before fork: after it, only exec-safe calls.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  for (const auto& e : env) env_strings.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  const std::string log = log_file.string();
  const pid_t parent = ::getpid();
  // Orphans of the child (php's workers when their master dies first) come back to us
  // rather than to init, so the destructor can reap them instead of leaving zombies.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);

  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the test died before prctl took effect
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    const int in = ::open("/dev/null", O_RDONLY);
    if (out >= 0) {
      ::dup2(out, 1);
      ::dup2(out, 2);
    }
    if (in >= 0) ::dup2(in, 0);
    ::execvpe(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  ::setpgid(pid_, pid_);  // also from here, so the group exists before any kill
}

bool child_process::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

child_process::~child_process() {
  if (pid_ <= 0) return;
  ::kill(-pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  int status = 0;
  while (::waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // The leader is gone; make sure no member of its group (php's workers) outlives it,
  // and reap them all.
  ::kill(-pid_, SIGKILL);
  while (::waitpid(-pid_, &status, 0) > 0) {
  }
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

php_server::php_server(int workers) {
  const std::string router = std::string(RESPQ_SOURCE_DIR) + "/tests/unit/workers/router.php";
  for (int attempt = 0;; ++attempt) {
    port_ = free_loopback_port();
    std::vector<std::string> env{"RESPQ_TEST_STATE=" + (dir_.path() / "state.json").string()};
    if (workers > 1) env.push_back("PHP_CLI_SERVER_WORKERS=" + std::to_string(workers));
    proc_ = std::make_unique<child_process>(
        std::vector<std::string>{find_program("php"), "-S", "127.0.0.1:" + std::to_string(port_), "-t",
                                 dir_.path().string(), router},
        env, dir_.path() / "php.log");
    try {
      wait_until_listening(port_, *proc_, "php -S");
      return;
    } catch (const std::exception&) {
      proc_.reset();
      if (attempt == 3) throw;  // the port was taken in between: try another
    }
  }
}

std::string php_server::url(const std::string& path_and_query) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path_and_query;
}

void test_pki::openssl(const std::string& args) {
  const std::string cmd = "cd '" + dir_.path().string() + "' && openssl " + args + " >>openssl.log 2>&1";
  if (std::system(cmd.c_str()) != 0)
    throw std::runtime_error("openssl " + args + " failed: " + read_file(dir_.path() / "openssl.log"));
}

void test_pki::make_ca(const std::string& name) {
  openssl("req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + name + ".key -out " + name +
          ".crt -days 2 -subj '/CN=respq test " + name + "'");
}

void test_pki::sign(const std::string& name, const std::string& ca, const std::string& subject, const std::string& ext) {
  openssl("req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + name + ".key -out " + name +
          ".csr -subj '" + subject + "'");
  std::ofstream(dir_.path() / (name + ".ext")) << ext << "\n";
  openssl("x509 -req -in " + name + ".csr -CA " + ca + ".crt -CAkey " + ca + ".key -CAcreateserial -out " + name +
          ".crt -days 2 -extfile " + name + ".ext");
}

nginx_server::nginx_server(int keepalive_timeout_s, std::optional<nginx_tls> tls, int keepalive_requests)
    : tls_(tls.has_value()) {
  const auto& d = dir_.path();
  for (int attempt = 0;; ++attempt) {
    port_ = free_loopback_port();
    std::ofstream conf(d / "nginx.conf", std::ios::trunc);
    conf << "worker_processes 1; daemon off; master_process off;\n"
         << "pid " << (d / "nginx.pid").string() << ";\n"
         << "error_log " << (d / "error.log").string() << ";\n"
         << "events { worker_connections 1024; }\n"
         << "http {\n"
         << "  client_body_temp_path " << (d / "body").string() << ";\n"
         << "  proxy_temp_path " << (d / "proxy").string() << ";\n"
         << "  fastcgi_temp_path " << (d / "fastcgi").string() << ";\n"
         << "  uwsgi_temp_path " << (d / "uwsgi").string() << ";\n"
         << "  scgi_temp_path " << (d / "scgi").string() << ";\n"
         << "  log_format conn '$connection $connection_requests $request_method $request_uri"
         << (tls ? " $ssl_session_reused $ssl_client_s_dn" : "") << "';\n"
         << "  access_log " << (d / "access.log").string() << " conn;\n"
         << "  keepalive_requests " << keepalive_requests << ";\n"
         << "  keepalive_timeout " << keepalive_timeout_s << "s;\n"
         << "  server { listen 127.0.0.1:" << port_ << (tls ? " ssl" : "") << ";\n";
    if (tls) {
      conf << "    ssl_certificate " << tls->cert << "; ssl_certificate_key " << tls->key << ";\n";
      if (!tls->client_ca.empty())
        conf << "    ssl_verify_client on; ssl_client_certificate " << tls->client_ca << ";\n";
    }
    conf << "    location /files/ { root " << (d / "www").string() << "; }\n"
         << "    location / { return 204; } }\n"
         << "}\n";
    conf.close();
    proc_ = std::make_unique<child_process>(
        std::vector<std::string>{find_program("nginx"), "-p", d.string(), "-c", (d / "nginx.conf").string(),
                                 "-e", (d / "error.log").string()},
        std::vector<std::string>{}, d / "nginx.out");
    try {
      wait_until_listening(port_, *proc_, "nginx");
      return;
    } catch (const std::exception&) {
      proc_.reset();
      if (attempt == 3) throw;
    }
  }
}

void nginx_server::add_file(const std::string& name, std::size_t bytes) const {
  std::filesystem::create_directories(dir_.path() / "www" / "files");
  std::ofstream out(dir_.path() / "www" / "files" / name, std::ios::binary | std::ios::trunc);
  const std::string line = std::string(63, 'x') + "\n";
  for (std::size_t written = 0; written < bytes; written += line.size())
    out << line.substr(0, std::min(line.size(), bytes - written));
}

std::string nginx_server::url(const std::string& path_and_query) const {
  return (tls_ ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(port_) + path_and_query;
}

std::vector<std::string> nginx_server::log_lines() const {
  std::vector<std::string> lines;
  std::istringstream in(read_file(dir_.path() / "access.log"));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

}  // namespace respq::test
