// signing: Standard Webhooks signatures (https://www.standardwebhooks.com), so an
// endpoint can tell respq's requests from anyone else's.
//
// A queue configured with `signing-secret whsec_<base64>` (twice during a rotation) signs
// every attempt with three headers:
//   webhook-id         the task id, the same on every attempt (the endpoint deduplicates)
//   webhook-timestamp  unix seconds when this attempt was made (the endpoint refuses old ones)
//   webhook-signature  "v1,<base64 HMAC-SHA256(key, id + "." + timestamp + "." + body)>",
//                      one per secret, separated by spaces
// where key is the secret's base64 part decoded and body the request body exactly as sent
// (empty for a GET). A verifier accepts the request when any of the signatures matches.
//
// Pure functions (HMAC and base64 from OpenSSL's libcrypto); any thread.
#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace respq::tasks {

struct http_request;

struct signing_secret {
  std::string text;  // as configured: "whsec_<base64>" (never shown: see redacted())
  std::string key;   // the decoded key bytes
  // "whsec_" + the first 4 characters + "..." : enough to tell two secrets apart in
  // CONFIG GET and INFO without revealing them.
  std::string redacted() const;
};

// "whsec_<base64 of 1 to 64 bytes>" (standard alphabet, padding optional). The error
// names the problem without echoing the secret.
std::variant<signing_secret, std::string> parse_signing_secret(std::string_view text);

// "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>".
std::string webhook_signature(std::string_view key, std::string_view id, long long timestamp, std::string_view body);

// A callback's webhook-id: the task id, '-', then 16 hex digits of the SHA-256 of the
// outcome it carries. Standard Webhooks wants an id per message: a task's own requests
// share the task id (retries are the same message), each of its outcomes is another one.
std::string callback_message_id(std::string_view task_id, std::string_view outcome_json);

// Adds webhook-id, webhook-timestamp and webhook-signature to `r` (replacing headers of
// those names the task set itself), signing `r.body` (or the empty body). Nothing when
// `secrets` is empty.
void sign_request(http_request& r, std::string_view id, long long timestamp, const std::vector<signing_secret>& secrets);

}  // namespace respq::tasks
