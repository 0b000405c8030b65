// tls_trust: see tls_trust.hpp.
#include "tasks/tls_trust.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

namespace respq::tasks {
namespace {

struct file_closer {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using file_ptr = std::unique_ptr<std::FILE, file_closer>;

std::string open_error(const std::string& path, file_ptr& f) {
  f.reset(std::fopen(path.c_str(), "rb"));
  if (!f) return "can't open '" + path + "': " + std::strerror(errno);
  return {};
}

}  // namespace

std::string check_ca_file(const std::string& path) {
  file_ptr f;
  if (auto err = open_error(path, f); !err.empty()) return err;
  X509* cert = PEM_read_X509(f.get(), nullptr, nullptr, nullptr);
  ERR_clear_error();
  if (!cert) return "'" + path + "' holds no PEM certificate";
  X509_free(cert);
  return {};
}

std::string check_ca_dir(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "can't open '" + path + "': " + std::strerror(errno);
  if (!S_ISDIR(st.st_mode)) return "'" + path + "' is not a directory";
  return {};
}

std::string check_client_pair(const std::string& cert_path, const std::string& key_path) {
  file_ptr f;
  if (auto err = open_error(cert_path, f); !err.empty()) return err;
  X509* cert = PEM_read_X509(f.get(), nullptr, nullptr, nullptr);
  ERR_clear_error();
  if (!cert) return "'" + cert_path + "' holds no PEM certificate";
  file_ptr k;
  if (auto err = open_error(key_path, k); !err.empty()) {
    X509_free(cert);
    return err;
  }
  // No passphrase callback: an encrypted key cannot be used unattended.
  EVP_PKEY* key = PEM_read_PrivateKey(k.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr);
  ERR_clear_error();
  std::string err;
  if (!key) err = "'" + key_path + "' holds no unencrypted PEM private key";
  else if (X509_check_private_key(cert, key) != 1) err = "'" + key_path + "' is not the key of '" + cert_path + "'";
  ERR_clear_error();
  EVP_PKEY_free(key);
  X509_free(cert);
  return err;
}

bool tls_error_is_final(std::string_view e) {
  for (std::string_view needle :
       {"SSL certificate problem", "certificate verify failed", "no alternative certificate subject name",
        "certificate subject name", "alert certificate", "alert bad certificate", "alert unknown ca",
        "alert handshake failure", "alert protocol version", "alert access denied", "alert unsupported certificate",
        "alert decrypt error", "wrong version number", "unsupported protocol", "no protocols available"}) {
    if (e.find(needle) != std::string_view::npos) return true;
  }
  return false;
}

}  // namespace respq::tasks
