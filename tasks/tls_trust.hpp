// tls_trust: what an https attempt (and its callbacks) trusts and presents.
//
//   tls-ca-cert-file <path>   global: PEM bundle of the CAs outgoing https trusts
//   tls-ca-cert-dir <path>    global: a c_rehash'ed directory of CA certificates
//   http-queue <q> ca-file <path>       the queue's own CA bundle (replaces the global ones)
//   http-queue <q> client-cert <path>   PEM certificate (chain) the queue presents (mTLS)
//   http-queue <q> client-key <path>    its private key (PEM, unencrypted)
//
// A configured CA replaces the system store (as curl --cacert and Redis's
// tls-ca-cert-file do): trust is whatever was named, nothing more; name the system
// directory (/etc/ssl/certs) as tls-ca-cert-dir to keep it too. Nothing configured: the
// system store. The peer is verified always (chain and host name), TLS 1.2 or newer.
//
// Pure values and file checks (libcrypto); any thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace respq::tasks {

struct tls_trust {
  std::string ca_file;      // empty: none
  std::string ca_dir;       // empty: none
  std::string client_cert;  // both or neither
  std::string client_key;
  // True when no CA is named: the system store applies.
  bool system_store() const { return ca_file.empty() && ca_dir.empty(); }
  bool operator==(const tls_trust&) const = default;
};

// Empty when `path` is a readable file with at least one PEM certificate; else the error.
std::string check_ca_file(const std::string& path);
// Empty when `path` is a readable directory.
std::string check_ca_dir(const std::string& path);
// Empty when `cert` holds a PEM certificate and `key` the PEM private key that matches it.
std::string check_client_pair(const std::string& cert, const std::string& key);

// Whether a handshake or read error text (OpenSSL's, as curl or asio word it) is the TLS
// layer refusing the peer or being refused by it in a way another attempt cannot change: a
// certificate that does not verify, a name that does not match, an alert such as
// "certificate required" or "unknown ca", a peer that does not speak TLS. A reset or a
// timeout during a handshake is not final.
bool tls_error_is_final(std::string_view error);

}  // namespace respq::tasks
