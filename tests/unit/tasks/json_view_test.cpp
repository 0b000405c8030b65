// json_view, the quick parser decode_task tries first: on random payloads it must decode
// exactly as the nlohmann path does, and the values it accepts must read and dump as
// nlohmann's do.
#include <random>
#include <string>
#include <variant>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tasks/json_view.hpp"
#include "tasks/task.hpp"

using namespace respq::tasks;
using ojson = nlohmann::ordered_json;

namespace {

constexpr double now = 1'700'000'000.0;

// Random JSON text, written by hand rather than dumped so it carries what producers
// write: escapes, raw UTF-8, surrogate pairs, odd spacing, repeated keys, integers of any
// length, floats in every notation.
class payload_generator {
 public:
  explicit payload_generator(std::uint64_t seed) : rng_(seed) {}

  std::string task() {
    std::string out = "{";
    bool first = true;
    auto member = [&](const std::string& key, const std::string& v) {
      if (!first) out += ',';
      first = false;
      out += space() + quote(key) + space() + ':' + space() + v;
    };
    member("url", pick({R"("http://h.example/send?a=1")", R"("https://h.example")", R"("ftp://h/")",
                        R"("http://h/p#frag")", R"("not a url")", "5", "null"}));
    static const char* fields[] = {"param", "method", "headers", "body", "json", "timeout", "retries",
                                   "delay", "at", "id", "callback", "follow_redirects", "extra", "url"};
    for (int n = pick_n(6); n > 0; --n) {
      const std::string key = fields[pick_n(std::size(fields))];
      member(key, field_value(key));
    }
    return out + space() + "}";
  }

  std::string value(int depth) {
    switch (pick_n(depth > 4 ? 6 : 9)) {
      case 0: return quote(text());
      case 1: return integer();
      case 2: return floating();
      case 3: return pick({"true", "false", "null"});
      case 4: return quote(text());
      case 5: return integer();
      case 6:
      case 7: return container(depth, true);
      default: return container(depth, false);
    }
  }

  std::string container(int depth, bool object) {
    std::string out(1, object ? '{' : '[');
    for (int n = pick_n(5); n > 0; --n) {
      out += space();
      if (object) out += quote(pick({"a", "b", "to", "i", "é", "x y", "a[b]", "", "0", "1"})) + ':';
      out += value(depth + 1) + space() + ',';
    }
    if (out.back() == ',') out.pop_back();
    return out + (object ? '}' : ']');
  }

  std::size_t pick_n(std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_); }

 private:
  std::string field_value(const std::string& key) {
    if (key == "param" || key == "json") return pick_n(4) ? container(1, pick_n(3) != 0) : value(1);
    if (key == "method") return pick({R"("POST")", R"("get")", R"("Put")", R"("HEAD")", R"("BREW")", "1"});
    if (key == "headers")
      return pick_n(5) ? "{" + quote("X-A") + ":" + pick({R"("v")", "12", "1.5", "2.0", "true", R"("a\nb")"}) + "," +
                             quote(pick({"X-B", "Bad Name", "Content-Length", "X-Task-Id"})) + ":" +
                             quote(text()) + "}"
                       : value(1);
    if (key == "body") return pick_n(4) ? quote(text()) : value(1);
    if (key == "callback") return pick({R"("http://cb.example/")", R"("")", R"("mailto:x")", "3"});
    if (key == "follow_redirects") return pick({"true", "false", "1", "null"});
    if (key == "id") return pick_n(2) ? quote(text()) : pick_n(2) ? integer() : floating();
    return pick_n(3) ? (pick_n(2) ? integer() : floating()) : value(1);
  }

  std::string text() {
    static const char* pieces[] = {"a", "Z", "0", " ", "~", "\\n", "\\\"", "\\\\", "\\/", "\\u00e9",
                                   "\\ud83d\\ude00", "é", "😀", "\\u0001", "\\t", "/", "%", "+", "&", "="};
    std::string out;
    for (int n = pick_n(8); n > 0; --n) out += pieces[pick_n(std::size(pieces))];
    return out;
  }
  static std::string quote(const std::string& s) { return "\"" + s + "\""; }

  std::string integer() {
    std::string out = pick_n(3) == 0 ? "-" : "";
    const std::size_t digits = 1 + pick_n(pick_n(4) == 0 ? 22 : 6);
    out += static_cast<char>('1' + pick_n(9));
    for (std::size_t i = 1; i < digits; ++i) out += static_cast<char>('0' + pick_n(10));
    return pick_n(20) == 0 ? pick({"0", "-0"}) : out;
  }

  std::string floating() {
    return pick({"0.1", "-0.0", "1.0", "1e20", "1E-7", "123.456e+3", "2.5", "1e400", "5e-324", "1e15",
                 "100000000000000.0", "3.14159265358979323846"});
  }

  std::string space() { return pick({"", "", "", " ", "\n\t", "\r\n  "}); }

  std::string pick(std::initializer_list<const char*> options) {
    return *(options.begin() + pick_n(options.size()));
  }

  std::mt19937_64 rng_;
};

// A leading byte-order mark: nlohmann skips it, the quick parser declines it, so the same
// payload takes the nlohmann path. nlohmann counts the mark's three bytes in the position
// of a syntax error, which is taken back here.
decode_result decode_reference(const std::string& payload) {
  decode_result r = decode_task("\xEF\xBB\xBF" + payload, now);
  if (auto* e = std::get_if<decode_error>(&r)) {
    static constexpr std::string_view at = "(at byte ";
    if (const auto p = e->reason.find(at); p != std::string::npos) {
      const auto digits = p + at.size();
      const auto end = e->reason.find(')', digits);
      const long byte = std::stol(e->reason.substr(digits, end - digits));
      e->reason.replace(digits, end - digits, std::to_string(byte - 3));
    }
  }
  return r;
}

void require_same(const decode_result& quick, const decode_result& reference, const std::string& payload) {
  INFO("payload: " << payload);
  REQUIRE(quick.index() == reference.index());
  if (const auto* e = std::get_if<decode_error>(&reference)) {
    CHECK(std::get<decode_error>(quick).reason == e->reason);
    return;
  }
  const task& a = std::get<task>(quick);
  const task& b = std::get<task>(reference);
  CHECK(a.id == b.id);
  CHECK(a.method == b.method);
  CHECK(a.url == b.url);
  CHECK(a.headers == b.headers);
  CHECK(a.body == b.body);
  CHECK(a.timeout == b.timeout);
  CHECK(a.retries == b.retries);
  CHECK(a.run_at == b.run_at);
  CHECK(a.callback == b.callback);
  CHECK(a.follow_redirects == b.follow_redirects);
}

}  // namespace

TEST_CASE("the quick parser decodes random payloads exactly as nlohmann does", "[task][json]") {
  payload_generator gen(20261124);
  int accepted = 0, decoded = 0, mutated = 0;
  const int rounds = 4000;
  for (int i = 0; i < rounds; ++i) {
    std::string payload = gen.task();
    if (i % 4 == 3) {
      // A damaged payload: truncated, or one byte replaced.
      ++mutated;
      if (gen.pick_n(2))
        payload.resize(1 + gen.pick_n(payload.size() - 1));
      else
        payload[gen.pick_n(payload.size())] = "{}[]\",:\\0e.-x \x01\xff"[gen.pick_n(16)];
    }
    json_view::document doc;
    if (doc.parse(payload)) ++accepted;
    const decode_result quick = decode_task(payload, now);
    if (std::holds_alternative<task>(quick)) ++decoded;
    require_same(quick, decode_reference(payload), payload);
  }
  // The comparison means something only if both parsers and both outcomes were exercised.
  CHECK(accepted > rounds / 3);
  CHECK(accepted < rounds - mutated / 2);
  CHECK(decoded > rounds / 20);
  CHECK(decoded < rounds / 2);
}

TEST_CASE("json_view reads and dumps what it accepts as nlohmann does", "[json]") {
  payload_generator gen(7);
  int accepted = 0;
  for (int i = 0; i < 3000; ++i) {
    const std::string text = gen.container(0, i % 2 == 0);
    INFO("json: " << text);
    json_view::document doc;
    const bool ok = doc.parse(text);
    ojson reference = ojson::parse(text, nullptr, false);
    if (reference.is_discarded()) {  // 1e400: out of range for nlohmann too
      CHECK_FALSE(ok);
      continue;
    }
    if (!ok) continue;  // declined: repeated keys, long integers
    ++accepted;
    CHECK(doc.root().dump() == reference.dump());
    json_view::document copy;
    copy.assign(reference, 512);
    CHECK(copy.root().dump() == reference.dump());
  }
  CHECK(accepted > 1000);
}

TEST_CASE("json_view declines what it leaves to nlohmann and rejects invalid JSON", "[json]") {
  json_view::document doc;
  CHECK(doc.parse(R"({"a":1,"b":[true,false,null],"c":"x\u00e9\ud83d\ude00"})"));
  CHECK(doc.root().find("c") != doc.root().end());
  CHECK((*doc.root().find("c")).text() == "x\xc3\xa9\xf0\x9f\x98\x80");
  CHECK((*doc.root().find("a")).type() == json_view::value_t::number_unsigned);
  // Declined although valid: nlohmann decides these.
  CHECK_FALSE(doc.parse(R"({"a":1,"a":2})"));
  CHECK_FALSE(doc.parse(R"({"a":1234567890123456789})"));
  CHECK_FALSE(doc.parse(R"({"a":1e400})"));
  CHECK_FALSE(doc.parse(std::string(100, '[') + std::string(100, ']')));
  // Invalid.
  for (const char* bad : {"", "{", "{\"a\"}", "{\"a\":}", "[1,]", "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}",
                          "{\"a\":\"\\x\"}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00\"}", "{\"a\":\"\x01\"}",
                          "{\"a\":\"\xff\"}", "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":tru}", "{} {}", "{\"a\":-}"})
    CHECK_FALSE(doc.parse(bad));
  // Member order is the text's, as ordered_json keeps it.
  REQUIRE(doc.parse(R"({"b":1,"a":2})"));
  CHECK(doc.root().begin().key() == "b");
}
