// signing: Standard Webhooks signatures - the specification's own test vector, the
// headers an attempt carries (one signature per secret), secrets that do not parse, and
// base64 both ways.
#include <string>

#include <catch2/catch.hpp>

#include "tasks/http_request.hpp"
#include "tasks/records.hpp"
#include "tasks/signing.hpp"

using namespace respq::tasks;

namespace {

signing_secret secret(const char* text) {
  auto s = parse_signing_secret(text);
  REQUIRE(std::holds_alternative<signing_secret>(s));
  return std::get<signing_secret>(s);
}

std::string header(const http_request& r, const std::string& name) {
  std::string out;
  int seen = 0;
  for (const auto& [k, v] : r.headers)
    if (k == name) {
      out = v;
      ++seen;
    }
  CHECK(seen == 1);
  return out;
}

}  // namespace

TEST_CASE("the signature matches the Standard Webhooks test vector", "[signing]") {
  // From the reference libraries' tests (standard-webhooks, svix).
  const signing_secret s = secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  CHECK(webhook_signature(s.key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})") ==
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  // Any change of id, timestamp or body changes it.
  CHECK(webhook_signature(s.key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, R"({"test": 2432232314})") !=
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  CHECK(webhook_signature(s.key, "msg_p5jXN8AQM9LWM0D4loKWxJeK", 1614265330, R"({"test": 2432232314})") !=
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  CHECK(webhook_signature(s.key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232315})") !=
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST_CASE("a signed request carries webhook-id, webhook-timestamp and one signature per secret", "[signing]") {
  const signing_secret a = secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  const signing_secret b = secret("whsec_c2Vjb25kIHNlY3JldA==");  // "second secret"
  http_request r;
  r.method = "POST";
  r.body = R"({"test": 2432232314})";
  r.headers = {{"Content-Type", "application/json"}, {"Webhook-Id", "forged"}, {"webhook-signature", "v1,forged"}};
  sign_request(r, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, {a, b});
  CHECK(header(r, "Content-Type") == "application/json");
  CHECK(header(r, "webhook-id") == "msg_p5jXN8AQM9LWM0D4loKWxJek");
  CHECK(header(r, "webhook-timestamp") == "1614265330");
  CHECK(header(r, "webhook-signature") ==
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= " +
            webhook_signature(b.key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, *r.body));
  CHECK(r.headers.size() == 4);  // the task's own webhook-* headers were replaced

  http_request get;  // no body: the empty body is signed
  sign_request(get, "t-1", 1700000000, {a});
  CHECK(header(get, "webhook-signature") == webhook_signature(a.key, "t-1", 1700000000, ""));

  http_request unsigned_req;
  unsigned_req.headers = {{"X", "y"}};
  sign_request(unsigned_req, "t-1", 1700000000, {});
  CHECK(unsigned_req.headers.size() == 1);
}

TEST_CASE("secrets must be whsec_ and base64 of 1 to 64 bytes, and are shown redacted", "[signing]") {
  const signing_secret s = secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  CHECK(s.key.size() == 24);
  CHECK(s.redacted() == "whsec_MfKQ...");
  CHECK(secret("whsec_YQ").key == "a");  // padding optional
  CHECK(secret("whsec_YQ==").key == "a");
  struct bad {
    const char* text;
    const char* error;
  };
  const bad rows[] = {
      {"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "a signing secret is written whsec_<base64>"},
      {"whsec_", "a signing secret is written whsec_<base64>"},
      {"whsec_not base64!", "a signing secret's part after whsec_ must be base64"},
      {"whsec_A", "a signing secret's part after whsec_ must be base64"},
      {"whsec_====", "a signing secret must decode to 1 to 64 bytes"},
      {"whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB",
       "a signing secret must decode to 1 to 64 bytes"},
  };
  for (const auto& b : rows) {
    INFO(b.text);
    auto r = parse_signing_secret(b.text);
    REQUIRE(std::holds_alternative<std::string>(r));
    CHECK(std::get<std::string>(r) == b.error);
    CHECK(std::get<std::string>(r).find("MfKQ") == std::string::npos);  // never echoes the secret
  }
}

TEST_CASE("the strict base64 decoder round-trips every length and refuses what is not base64", "[signing][base64]") {
  std::string bytes;
  for (int n = 0; n < 70; ++n) {
    INFO(n);
    std::string back;
    REQUIRE(base64_decode_strict(base64_encode(bytes), back));
    CHECK(back == bytes);
    std::string unpadded = base64_encode(bytes);
    while (!unpadded.empty() && unpadded.back() == '=') unpadded.pop_back();
    REQUIRE(base64_decode_strict(unpadded, back));
    CHECK(back == bytes);
    bytes += static_cast<char>((n * 37 + 11) & 0xff);
  }
  std::string out;
  CHECK_FALSE(base64_decode_strict("Zm9v YmFy", out));
  CHECK_FALSE(base64_decode_strict("Zm9v-mFy", out));
  CHECK_FALSE(base64_decode_strict("Zm9vY", out));  // 5 characters: no encoding has that length
}
