// signing: see signing.hpp.
#include "tasks/signing.hpp"

#include <algorithm>

#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

#include "resp/ascii.hpp"
#include "tasks/http_request.hpp"
#include "tasks/records.hpp"

namespace respq::tasks {
namespace {

constexpr std::string_view prefix = "whsec_";

}  // namespace

std::string signing_secret::redacted() const {
  return std::string(prefix) + text.substr(prefix.size(), std::min<std::size_t>(4, text.size() - prefix.size())) +
         "...";
}

std::variant<signing_secret, std::string> parse_signing_secret(std::string_view text) {
  if (text.size() <= prefix.size() || text.substr(0, prefix.size()) != prefix)
    return std::string("a signing secret is written whsec_<base64>");
  signing_secret s;
  if (!base64_decode_strict(text.substr(prefix.size()), s.key)) return std::string("a signing secret's part after whsec_ must be base64");
  if (s.key.empty() || s.key.size() > 64) return std::string("a signing secret must decode to 1 to 64 bytes");
  s.text = std::string(text);
  return s;
}

std::string webhook_signature(std::string_view key, std::string_view id, long long timestamp, std::string_view body) {
  // The HMAC implementation is fetched once; a context per call (they are not shared).
  static EVP_MAC* const hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  const std::string ts = std::to_string(timestamp);
  unsigned char mac[EVP_MAX_MD_SIZE];
  std::size_t len = 0;
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0), OSSL_PARAM_construct_end()};
  EVP_MAC_CTX* ctx = hmac ? EVP_MAC_CTX_new(hmac) : nullptr;
  auto update = [ctx](std::string_view s) {
    return EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(s.data()), s.size()) == 1;
  };
  bool ok = ctx && EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(key.data()), key.size(), params) == 1;
  ok = ok && update(id) && update(".") && update(ts) && update(".") && update(body);
  ok = ok && EVP_MAC_final(ctx, mac, &len, sizeof mac) == 1;
  EVP_MAC_CTX_free(ctx);
  if (!ok) return "v1,";
  return "v1," + base64_encode(std::string_view(reinterpret_cast<const char*>(mac), len));
}

std::string callback_message_id(std::string_view task_id, std::string_view outcome_json) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  std::string id(task_id);
  if (EVP_Digest(outcome_json.data(), outcome_json.size(), md, &len, EVP_sha256(), nullptr) != 1) return id;
  static constexpr char hex[] = "0123456789abcdef";
  id += '-';
  for (unsigned i = 0; i < 8 && i < len; ++i) {
    id += hex[md[i] >> 4];
    id += hex[md[i] & 15];
  }
  return id;
}

void sign_request(http_request& r, std::string_view id, long long timestamp, const std::vector<signing_secret>& secrets) {
  if (secrets.empty()) return;
  auto& h = r.headers;
  h.erase(std::remove_if(h.begin(), h.end(),
                         [](const auto& kv) {
                           return iequals(kv.first, "webhook-id") ||
                                  iequals(kv.first, "webhook-timestamp") ||
                                  iequals(kv.first, "webhook-signature");
                         }),
          h.end());
  const std::string_view body = r.body ? std::string_view(*r.body) : std::string_view();
  std::string sigs;
  for (const auto& s : secrets) {
    if (!sigs.empty()) sigs += ' ';
    sigs += webhook_signature(s.key, id, timestamp, body);
  }
  h.reserve(h.size() + 3);
  h.emplace_back("webhook-id", std::string(id));
  h.emplace_back("webhook-timestamp", std::to_string(timestamp));
  h.emplace_back("webhook-signature", std::move(sigs));
}

}  // namespace respq::tasks
