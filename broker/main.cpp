// respq-server: reads the configuration (file and --directives, like redis-server),
// sets up logging, the pidfile and daemon mode, builds the core and its modules, and
// runs the broker loop until SHUTDOWN or SIGTERM/SIGINT.
#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "broker/core/config.hpp"
#include "broker/core/log.hpp"
#include "broker/core/server.hpp"
#include "broker/core/version.hpp"
#include "broker/network.hpp"
#include "broker/sd_notify.hpp"
#include "broker/services.hpp"

namespace {

void usage() {
  std::cout << "Usage: respq-server [/path/to/respq.conf] [--directive value ...]\n"
               "       respq-server --test-config [/path/to/respq.conf] [--directive value ...]\n"
               "       respq-server --version\n"
               "       respq-server --help\n\n"
               "Examples:\n"
               "       respq-server --port 6380 --http-queue tasks concurrency 128 retries 5\n"
               "       respq-server /etc/respq.conf --loglevel verbose\n\n"
               "--test-config reads the file and the directives, checks them and exits: 0 when\n"
               "they are valid, 1 with the error otherwise.\n\n"
               "http-queue <name> takes options with their values: concurrency, rate, per-host,\n"
               "host-rate, timeout, retries, backoff-min, backoff-max, shared, egress, signing-secret, ca-file, client-cert,\n"
               "client-key; `http-queue <name> off` removes the queue.\n\n"
               "Directives (in the file as `name value ...`, on the command line as --name value ...),\n"
               "with their defaults:\n";
  const respq::core::config defaults;
  for (const auto& e : respq::core::config_table()) {
    if (respq::core::inert_kind(e.name)) continue;  // said once below
    std::string v = e.get(defaults);
    if (v.empty()) v = "\"\"";
    std::cout << "  " << e.name << std::string(std::strlen(e.name) < 28 ? 28 - std::strlen(e.name) : 1, ' ') << v << (e.runtime ? "" : "  (fixed at start)")
              << "\n";
  }
  std::cout << "\nRedis 7.0 settings respq has nothing to act on (dbfilename, repl-*, cluster-*, lazyfree-*,\n"
               "tcp-backlog, ...) are accepted too, so a redis.conf loads; CONFIG GET shows them.\n";
}

// --test-config: what load_config() checks, plus what the start would refuse before
// listening (the directory, the bind addresses, the log file).
int test_config(int argc, char** argv) {
  respq::core::config cfg;
  if (std::string err = respq::core::load_config(cfg, argc, argv); !err.empty()) {
    std::cerr << err << "\n";
    return 1;
  }
  struct stat st {};
  if (!cfg.dir.empty() && ::stat(cfg.dir.c_str(), &st) != 0) {
    std::cerr << "Can't chdir to '" << cfg.dir << "': " << std::strerror(errno) << "\n";
    return 1;
  }
  if (!cfg.dir.empty() && !S_ISDIR(st.st_mode)) {
    std::cerr << "Can't chdir to '" << cfg.dir << "': " << std::strerror(ENOTDIR) << "\n";
    return 1;
  }
  for (const auto& raw : cfg.bind) {
    std::string addr = !raw.empty() && raw[0] == '-' ? raw.substr(1) : raw;
    if (addr == "*") continue;
    unsigned char buf[sizeof(in6_addr)];
    if (::inet_pton(AF_INET, addr.c_str(), buf) != 1 && ::inet_pton(AF_INET6, addr.c_str(), buf) != 1) {
      std::cerr << "Invalid bind address '" << raw << "'\n";
      return 1;
    }
  }
  if (cfg.json_port != 0 && cfg.json_port == cfg.port) {
    std::cerr << "json-port " << cfg.json_port << " is also the port\n";
    return 1;
  }
  if (cfg.admin_port != 0 && (cfg.admin_port == cfg.port || cfg.admin_port == cfg.json_port)) {
    std::cerr << "admin-port " << cfg.admin_port << " is also the " << (cfg.admin_port == cfg.port ? "port" : "json-port")
              << "\n";
    return 1;
  }
  for (const auto& addr : cfg.admin_bind) {
    unsigned char buf[sizeof(in6_addr)];
    if (addr != "*" && ::inet_pton(AF_INET, addr.c_str(), buf) != 1 && ::inet_pton(AF_INET6, addr.c_str(), buf) != 1) {
      std::cerr << "Invalid admin-bind address '" << addr << "'\n";
      return 1;
    }
  }
  std::cout << "Configuration OK" << (cfg.config_file.empty() ? "" : " (" + cfg.config_file + ")") << "\n";
  return 0;
}

bool daemonize() {
  pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid > 0) std::_Exit(0);
  ::setsid();
  int fd = ::open("/dev/null", O_RDWR);
  if (fd >= 0) {
    ::dup2(fd, STDIN_FILENO);
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    if (fd > STDERR_FILENO) ::close(fd);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace respq;
  // SIGHUP reopens the log file once the loop runs (network.cpp); until then it must not
  // kill a starting server (logrotate does not know when respq started).
  ::signal(SIGHUP, SIG_IGN);
  if (argc == 2 && (std::string_view(argv[1]) == "--version" || std::string_view(argv[1]) == "-v")) {
    std::cout << "respq server v=" RESPQ_VERSION " (speaks Redis " RESPQ_REDIS_VERSION " protocol)\n";
    return 0;
  }
  if (argc == 2 && (std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h")) {
    usage();
    return 0;
  }
  if (argc >= 2 && std::string_view(argv[1]) == "--test-config") {
    // The rest reads as a normal command line: argv[1] becomes the program name's slot.
    return test_config(argc - 1, argv + 1);
  }
  core::config cfg;
  if (std::string err = core::load_config(cfg, argc, argv); !err.empty()) {
    std::cerr << "\n" << err << "\n";
    return 1;
  }
  if (!cfg.dir.empty() && ::chdir(cfg.dir.c_str()) != 0) {
    std::cerr << "Can't chdir to '" << cfg.dir << "': " << std::strerror(errno) << "\n";
    return 1;
  }
  if (cfg.daemonize && cfg.logfile.empty()) cfg.logfile = "/dev/null";
  if (std::string err = core::log_init(cfg.logfile, cfg.loglevel); !err.empty()) {
    std::cerr << err << "\n";
    return 1;
  }
  if (cfg.daemonize && !daemonize()) {
    std::cerr << "fork failed: " << std::strerror(errno) << "\n";
    return 1;
  }
  core::log_set_pid();  // the daemon's pid, not the parent's that exited

  core::log_notice("oO0OoO0OoO0Oo respq is starting oO0OoO0OoO0Oo");
  core::log_notice("respq version=" RESPQ_VERSION ", bits=64, pid=" + std::to_string(::getpid()) + ", just started");
  if (!cfg.inert_given.empty()) {
    std::string names;
    for (const auto& n : cfg.inert_given) names += (names.empty() ? "" : ", ") + n;
    core::log_notice("Redis settings accepted and shown by CONFIG GET, with nothing to act on in respq: " + names);
  }

  core::server srv(std::move(cfg));
  {
    char buf[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n > 0) srv.set_executable(std::string(buf, static_cast<std::size_t>(n)));
  }
  broker::network net(srv);
  if (std::string err = net.listen(); !err.empty()) {
    core::log_warning(err);
    std::cerr << err << "\n";
    return 1;
  }
  broker::services svc(srv, net);
  if (std::string err = svc.start(); !err.empty()) {
    core::log_warning(err);
    std::cerr << err << "\n";
    return 1;
  }
  const std::string pidfile = srv.cfg().pidfile;
  if (!pidfile.empty()) {
    std::ofstream f(pidfile);
    if (f) f << ::getpid() << "\n";
    else core::log_warning("Failed to write PID file: " + std::string(std::strerror(errno)));
  }
  core::log_notice("Server initialized");
  core::log_notice("Ready to accept connections tcp on port " + std::to_string(srv.cfg().port));
  // systemd (Type=notify): started only now, with the AOF loaded and the ports open.
  if (broker::sd_notify("READY=1\nSTATUS=Ready to accept connections\nMAINPID=" + std::to_string(::getpid())))
    core::log_notice("systemd supervision: READY=1 sent");
  int rc = net.run();
  svc.stop();
  if (!pidfile.empty()) ::unlink(pidfile.c_str());
  return rc;
}
