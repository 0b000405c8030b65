// http1_client over TLS, on its own io_context, against nginx with certificates made by
// openssl here: the peer is verified (chain against the pool's trust, name or IP address
// against the URL), failures are final (`tls_failed`) with the curl path's words, the
// client certificate is presented, connections are kept alive and sessions resumed.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <asio/io_context.hpp>
#include <catch2/catch.hpp>

#include "test_servers.hpp"
#include "workers/http1_client.hpp"

using namespace respq::workers;
using namespace std::chrono_literals;
using respq::test::get;
using respq::test::run_until;
using respq::test::nginx_server;
using respq::test::nginx_tls;
using respq::test::test_pki;

namespace {

// One CA the client trusts, one it does not, a client CA; a server certificate for
// 127.0.0.1 and localhost, one from the untrusted CA, one naming another host, a client
// certificate.
struct pki_set {
  test_pki pki;
  pki_set() {
    for (const char* ca : {"ca", "rogue", "clientca"}) pki.make_ca(ca);
    pki.sign("server", "ca", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost");
    pki.sign("rogue-server", "rogue", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost");
    pki.sign("wrong-name", "ca", "/CN=elsewhere.example", "subjectAltName=DNS:elsewhere.example");
    pki.sign("client", "clientca", "/CN=respq-client-7", "extendedKeyUsage=clientAuth");
  }
  nginx_tls server(const std::string& name, const std::string& client_ca = {}) const {
    return {pki.path(name + ".crt"), pki.path(name + ".key"), client_ca.empty() ? "" : pki.path(client_ca + ".crt")};
  }
  std::shared_ptr<const respq::tasks::tls_trust> trust(const std::string& ca, bool with_client = false) const {
    auto t = std::make_shared<respq::tasks::tls_trust>();
    t->ca_file = pki.path(ca + ".crt");
    if (with_client) {
      t->client_cert = pki.path("client.crt");
      t->client_key = pki.path("client.key");
    }
    return t;
  }
};

struct client_fixture {
  asio::io_context io;
  std::vector<http_result> results;
  http1_client client{io, "respq-test", [this](http_result&& r) { results.push_back(std::move(r)); }};
  client_fixture() { std::signal(SIGPIPE, SIG_IGN); }  // the engine thread blocks it; here, ignore it
  http_result one(http_request r) {
    const std::size_t before = results.size();
    client.submit(std::move(r));
    REQUIRE(run_until(io, [&] { return results.size() > before; }, 15s));
    return results.back();
  }
};

std::vector<std::string> fields(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string f; in >> f;) out.push_back(f);
  return out;
}

}  // namespace

TEST_CASE("http1_client over TLS: verified, kept alive, client certificate, sessions resumed", "[http1][tls]") {
  pki_set p;
  client_fixture f;
  nginx_server nginx(75, p.server("server"));
  f.client.set_tls("tasks", p.trust("ca"));
  f.client.set_per_host("tasks", 2);

  // 40 requests over at most 2 connections: each handshake done once, then reused.
  for (std::uint64_t i = 1; i <= 40; ++i) f.client.submit(get(i, nginx.url("/k?i=" + std::to_string(i))));
  REQUIRE(run_until(f.io, [&] { return f.results.size() == 40; }, 20s));
  for (const auto& r : f.results) {
    INFO(r.error);
    CHECK(r.code == 204);
    CHECK_FALSE(r.tls_failed);
  }
  std::set<std::string> conns;
  for (const auto& line : nginx.log_lines()) conns.insert(fields(line).at(0));
  CHECK(nginx.log_lines().size() == 40);
  CHECK(conns.size() <= 2);

  // By name: SNI and the name checked against the certificate's DNS SANs.
  http_result by_name = f.one(get(100, "https://localhost:" + std::to_string(nginx.port()) + "/by-name"));
  INFO(by_name.error);
  CHECK(by_name.code == 204);

  // A server that closes after every response: each request a new connection, each one
  // after the first resuming the session the server issued.
  nginx_server closing(75, p.server("server"), 1);
  for (std::uint64_t i = 0; i < 3; ++i) {
    http_result r = f.one(get(200 + i, closing.url("/c?i=" + std::to_string(i))));
    INFO(r.error);
    CHECK(r.code == 204);
  }
  const auto lines = closing.log_lines();
  REQUIRE(lines.size() == 3);
  CHECK(fields(lines[0]).at(4) == ".");
  CHECK(fields(lines[1]).at(4) == "r");
  CHECK(fields(lines[2]).at(4) == "r");
  std::set<std::string> serials;
  for (const auto& line : lines) serials.insert(fields(line).at(0));
  CHECK(serials.size() == 3);

  // mTLS: the pool's client certificate is presented; a pool without one is answered
  // as nginx answers that (400), its certificate verified all the same.
  nginx_server strict(75, p.server("server", "clientca"));
  f.client.set_tls("mtls", p.trust("ca", true));
  http_result with = f.one(get(300, strict.url("/with"), "mtls"));
  INFO(with.error);
  CHECK(with.code == 204);
  http_result without = f.one(get(301, strict.url("/without"), "tasks"));
  CHECK(without.code == 400);
  const auto strict_lines = strict.log_lines();
  REQUIRE(strict_lines.size() == 2);
  CHECK(fields(strict_lines[0]).at(3) == "/with");
  CHECK(fields(strict_lines[0]).at(5) == "CN=respq-client-7");
  CHECK(fields(strict_lines[1]).at(5) == "-");
  f.client.shutdown();
}

TEST_CASE("http1_client over TLS: a peer that does not verify is refused before any request", "[http1][tls]") {
  pki_set p;
  client_fixture f;
  nginx_server good(75, p.server("server"));
  nginx_server rogue(75, p.server("rogue-server"));
  nginx_server wrong_name(75, p.server("wrong-name"));
  nginx_server plain;  // http only
  f.client.set_tls("tasks", p.trust("ca"));

  // No trust set for the pool: the system store, which does not know the test CA.
  http_result untrusted = f.one(get(1, good.url("/x"), "system"));
  CHECK(untrusted.tls_failed);
  CHECK(untrusted.code == 0);
  CHECK(untrusted.error.rfind("TLS peer verification failed: SSL certificate problem: ", 0) == 0);
  CHECK(untrusted.error.find("certificate") != std::string::npos);

  http_result rogue_r = f.one(get(2, rogue.url("/x")));
  CHECK(rogue_r.tls_failed);
  CHECK(rogue_r.error.rfind("TLS peer verification failed", 0) == 0);

  // Chains to the trusted CA but names another host: by IP address and by name.
  http_result by_ip = f.one(get(3, wrong_name.url("/x")));
  CHECK(by_ip.tls_failed);
  CHECK(by_ip.error ==
        "TLS peer verification failed: SSL: no alternative certificate subject name matches target host name '127.0.0.1'");
  http_result by_name = f.one(get(4, "https://localhost:" + std::to_string(wrong_name.port()) + "/x"));
  CHECK(by_name.tls_failed);
  CHECK(by_name.error.find("'localhost'") != std::string::npos);

  // https to a port that speaks plain http.
  const std::string plain_url = plain.url("/x");
  http_result not_tls = f.one(get(5, "https://" + plain_url.substr(7)));
  INFO(not_tls.error);
  CHECK(not_tls.tls_failed);
  CHECK(not_tls.error.rfind("TLS handshake refused: ", 0) == 0);

  // A CA file that can't be read: the configuration is refused, nothing dialled twice.
  auto missing = std::make_shared<respq::tasks::tls_trust>();
  missing->ca_file = p.pki.path("missing.crt");
  f.client.set_tls("broken", missing);
  http_result broken = f.one(get(6, good.url("/x"), "broken"));
  CHECK(broken.tls_failed);
  CHECK(broken.error.rfind("TLS configuration refused: ", 0) == 0);

  // Nothing reached the servers that did not verify; the good one still serves.
  CHECK(rogue.log_lines().empty());
  CHECK(wrong_name.log_lines().empty());
  CHECK(good.log_lines().empty());
  http_result ok = f.one(get(7, good.url("/ok")));
  INFO(ok.error);
  CHECK(ok.code == 204);

  // The pool's trust changes: its idle connection goes, the next one is judged anew.
  f.client.set_tls("tasks", p.trust("rogue"));
  http_result after = f.one(get(8, good.url("/after")));
  CHECK(after.tls_failed);
  CHECK(good.log_lines().size() == 1);
  f.client.shutdown();
}

TEST_CASE("http1_client over TLS: body limits, and connections the server closed while idle", "[http1][tls]") {
  pki_set p;
  client_fixture f;
  nginx_server nginx(1, p.server("server"));  // closes connections idle for 1 s
  nginx.add_file("100k", 100'000);
  nginx.add_file("5m", 5'000'000);
  f.client.set_tls("tasks", p.trust("ca"));

  // Many TLS records: the first 64 KB kept, the rest read.
  http_result mid = f.one(get(1, nginx.url("/files/100k")));
  INFO(mid.error);
  CHECK(mid.code == 200);
  CHECK(mid.body.size() == 64 * 1024);
  CHECK(mid.body.substr(0, 64) == std::string(63, 'x') + "\n");
  CHECK_FALSE(mid.truncated);
  // Past 4 MB the connection is dropped and the code reported, as truncated.
  http_result big = f.one(get(2, nginx.url("/files/5m")));
  INFO(big.error);
  CHECK(big.code == 200);
  CHECK(big.truncated);
  CHECK(big.body.size() == 64 * 1024);

  // nginx closes the idle connection: the next request goes out once, on a new
  // connection.
  http_result before = f.one(get(3, nginx.url("/before")));
  CHECK(before.code == 204);
  run_until(f.io, [] { return false; }, 2500ms);
  http_result after = f.one(get(4, nginx.url("/after")));
  INFO(after.error);
  CHECK(after.code == 204);
  std::size_t afters = 0;
  for (const auto& line : nginx.log_lines()) afters += line.find(" GET /after ") != std::string::npos ? 1 : 0;
  CHECK(afters == 1);
  f.client.shutdown();
}

TEST_CASE("http1_client over TLS: a handshake that never completes times out", "[http1][tls]") {
  // A listener that accepts (the kernel's backlog) and never says a word.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(fd, 8) == 0);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  client_fixture f;
  http_request r = get(1, "https://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/x");
  r.timeout_s = 0.3;
  http_result res = f.one(std::move(r));
  CHECK(res.timed_out);
  CHECK_FALSE(res.tls_failed);
  CHECK(res.error.rfind("Operation timed out after ", 0) == 0);
  f.client.shutdown();
  ::close(fd);
}
