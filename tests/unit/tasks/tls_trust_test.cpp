// tls_trust: which TLS error texts are final, and the checks of the files a directive names.
#include <catch2/catch.hpp>

#include <string>

#include "tasks/tls_trust.hpp"

using respq::tasks::check_ca_dir;
using respq::tasks::check_ca_file;
using respq::tasks::check_client_pair;
using respq::tasks::tls_error_is_final;

TEST_CASE("TLS errors no retry can change are final, resets and timeouts are not", "[tls_trust]") {
  // As OpenSSL words them through curl.
  CHECK(tls_error_is_final("SSL certificate problem: unable to get local issuer certificate"));
  CHECK(tls_error_is_final("SSL: no alternative certificate subject name matches target host name '127.0.0.1'"));
  CHECK(tls_error_is_final(
      "OpenSSL SSL_read: OpenSSL/3.0.19: error:0A00045C:SSL routines::tlsv13 alert certificate required, errno 0"));
  CHECK(tls_error_is_final("OpenSSL/3.0.19: error:0A000418:SSL routines::tlsv1 alert unknown ca"));
  CHECK(tls_error_is_final("OpenSSL/3.0.19: error:0A000410:SSL routines::sslv3 alert handshake failure"));
  CHECK(tls_error_is_final("OpenSSL/3.0.19: error:0A00010B:SSL routines::wrong version number"));
  CHECK_FALSE(tls_error_is_final("OpenSSL SSL_connect: Connection reset by peer in connection to 127.0.0.1:443"));
  CHECK_FALSE(tls_error_is_final("Recv failure: Connection reset by peer"));
  CHECK_FALSE(tls_error_is_final("SSL connection timeout"));
  CHECK_FALSE(tls_error_is_final("SSL_write() error: error:0A00007F:SSL routines::bad write retry"));
}

TEST_CASE("file checks name what is wrong", "[tls_trust]") {
  const std::string dir = RESPQ_SOURCE_DIR;
  CHECK(check_ca_file("/nonexistent/ca.pem").find("can't open '/nonexistent/ca.pem'") == 0);
  const std::string not_pem = dir + "/tasks/tls_trust.hpp";
  CHECK(check_ca_file(not_pem) == "'" + not_pem + "' holds no PEM certificate");
  CHECK(check_ca_dir(not_pem) == "'" + not_pem + "' is not a directory");
  CHECK(check_ca_dir(dir).empty());
  CHECK(check_client_pair("/nonexistent/c.pem", "/nonexistent/k.pem").find("can't open") == 0);
}
