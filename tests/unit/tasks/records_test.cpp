// records: the envelope respq writes in <queue>:inflight reads back as written, and any
// other value a client may put there is refused with a reason instead of a throw; the
// outcome carries the same fields for every queue.
#include <ctime>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tasks/packing.hpp"
#include "tasks/records.hpp"

using namespace respq::tasks;
using json = nlohmann::json;

TEST_CASE("an envelope reads back as it was written", "[records][envelope]") {
  for (custody_state st : {custody_state::in_flight, custody_state::retrying, custody_state::scheduled}) {
    for (const std::string& payload : {std::string(R"({"url":"http://h/"})"), std::string("\xff\xfe binary", 9)}) {
      envelope_fields f;
      f.id = "id-1";
      f.queue = "tasks";
      f.state = st;
      f.attempts = 3;
      f.max_attempts = 6;
      f.next_run = 1'700'000'123.5;
      f.last_code = 503;
      f.last_error = "HTTP 503";
      f.payload = payload;
      const auto r = read_envelope(envelope_json(f));
      REQUIRE(std::holds_alternative<envelope_record>(r));
      const auto& e = std::get<envelope_record>(r);
      CHECK(e.state == st);
      CHECK(e.attempts == 3);
      CHECK(e.max_attempts == 6);
      CHECK(e.next_run == 1'700'000'123.5);
      CHECK(e.last_code == 503);
      CHECK(e.last_error == "HTTP 503");
      CHECK(e.payload == payload);
      // Built without being regrown to twice its size on the way (a task waiting in
      // custody holds it): the room reserved up front covers the escaped payload.
      const std::string text = envelope_json(f);
      CHECK(text.capacity() < text.size() + text.size() / 2);
    }
  }
}

TEST_CASE("absent envelope fields take recovery's defaults", "[records][envelope]") {
  const auto r = read_envelope(R"({"payload":"x"})");
  REQUIRE(std::holds_alternative<envelope_record>(r));
  const auto& e = std::get<envelope_record>(r);
  CHECK(e.state == custody_state::in_flight);
  CHECK(e.attempts == 0);
  CHECK_FALSE(e.max_attempts);
  CHECK_FALSE(e.next_run);
  CHECK(e.payload == "x");
  CHECK(e.last_error.empty());
}

TEST_CASE("a malformed envelope is refused with a reason, never a throw", "[records][envelope]") {
  struct row {
    const char* text;
    const char* reason;
  };
  const row rows[] = {
      {R"({"attempts":"zz"})", "attempts is not an integer"},
      {R"({"attempts":"zz","payload":"x"})", "attempts is not an integer"},
      {R"({"attempts":1.5,"payload":"x"})", "attempts is not an integer"},
      {R"({"attempts":-1,"payload":"x"})", "attempts is out of range"},
      {R"({"attempts":18446744073709551615,"payload":"x"})", "attempts is out of range"},
      {R"({"attempts":null,"payload":"x"})", "attempts is not an integer"},
      {R"({"max_attempts":0,"payload":"x"})", "max_attempts is out of range"},
      {R"({"max_attempts":[],"payload":"x"})", "max_attempts is not an integer"},
      {R"({"last_code":"503","payload":"x"})", "last_code is not an integer"},
      {R"({"last_code":-3,"payload":"x"})", "last_code is out of range"},
      {R"({"state":7,"payload":"x"})", "state is not a string"},
      {R"({"state":"done","payload":"x"})", "state is not in_flight, retrying or scheduled"},
      {R"({"next_run":"later","payload":"x"})", "next_run is not a unix time"},
      {R"({"next_run":-1,"payload":"x"})", "next_run is not a unix time"},
      {R"({"payload":5})", "has no payload"},
      {R"({})", "has no payload"},
      {R"([1,2])", "is not a JSON object"},
      {R"("payload")", "is not a JSON object"},
      {"", "is not valid JSON"},
      {"{", "is not valid JSON"},
      {"zz", "is not valid JSON"},
  };
  for (const auto& r : rows) {
    INFO("envelope: " << r.text);
    const auto e = read_envelope(r.text);
    REQUIRE(std::holds_alternative<std::string>(e));
    CHECK(std::get<std::string>(e) == r.reason);
  }
}

TEST_CASE("outcomes and dead letters hide URL credentials and keep the payload", "[records][redact]") {
  outcome_fields o;
  o.id = "a";
  o.queue = "q";
  o.url = "http://user:pass@h/x";
  o.node = "n1";
  o.status = "retrying";
  o.error = "Failed to connect to http://user:pass@h/x";
  o.next_run = 5;
  const json j = json::parse(outcome_json(o));
  CHECK(j["url"] == "http://user:***@h/x");
  CHECK(j["error"] == "Failed to connect to http://user:***@h/x");
  CHECK(j["node"] == "n1");
  CHECK(j["next_run"] == 5);
  for (const char* k : {"id", "queue", "url", "status", "code", "attempts", "duration_ms", "error", "node"})
    CHECK(j.contains(k));

  dead_fields d;
  d.id = "a";
  d.queue = "q";
  d.reason = "Redirect to 'http://x:y@h/' refused";
  d.error = d.reason;
  d.payload = R"({"url":"http://user:pass@h/x"})";
  const json dj = json::parse(dead_record_json(d));
  CHECK(dj["reason"] == "Redirect to 'http://x:***@h/' refused");
  CHECK(dj["error"] == "Redirect to 'http://x:***@h/' refused");
  CHECK(dj["payload"] == R"({"url":"http://user:pass@h/x"})");
}

TEST_CASE("json_number: at most 3 decimals, no trailing zeros", "[records]") {
  CHECK(json_number(0) == "0");
  CHECK(json_number(12) == "12");
  CHECK(json_number(1.5) == "1.5");
  CHECK(json_number(0.1234) == "0.123");
  CHECK(json_number(-3.5) == "-3.5");
}

TEST_CASE("a packed envelope renders the JSON of the same fields, byte for byte, and reads back alike",
          "[records][envelope][packed]") {
  for (custody_state st : {custody_state::in_flight, custody_state::retrying, custody_state::scheduled}) {
    for (const std::string& payload : {std::string(R"({"url":"http://h/","param":{"q":"a \"b\""}})"),
                                       std::string("\xff\xfe binary", 9), std::string()}) {
      for (const std::string& error : {std::string(), std::string("connect to http://u:secret@h/ failed"),
                                       std::string("\xc3\x28 not utf-8", 12),
                                       std::string("Failed to connect to 10.0.0.5 port 8080: Connection refused"),
                                       std::string("Operation timed out after 30000 milliseconds with 0 bytes received"),
                                       std::string("tab\there \x01 port ", 16)}) {
        envelope_fields f;
        f.id = "0123456789abcdef01234567";
        f.queue = "tasks";
        f.state = st;
        f.attempts = 300;
        f.max_attempts = 1'000'000;
        f.next_run = 1'700'000'123.4567;
        f.last_code = 503;
        f.last_error = error;
        f.payload = payload;
        f.log = "opaque log bytes";
        const std::string json_text = envelope_json(f);
        const std::string packed = envelope_packed(f);
        CHECK(is_packed_envelope(packed));
        CHECK_FALSE(is_packed_envelope(json_text));
        CHECK(packed_envelope_json(f.id, packed) == json_text);
        // Smaller than the JSON: no names, no escapes, the id kept once (as the field).
        CHECK(packed.size() < json_text.size());
        const auto from_json = read_envelope(json_text);
        const auto from_packed = read_envelope(packed);
        // Text a client wrote is read as JSON only, whatever its bytes.
        CHECK(std::get<std::string>(read_envelope_json(packed)) == "is not valid JSON");
        CHECK(std::holds_alternative<envelope_record>(read_envelope_json(json_text)));
        REQUIRE(std::holds_alternative<envelope_record>(from_json));
        REQUIRE(std::holds_alternative<envelope_record>(from_packed));
        const auto& a = std::get<envelope_record>(from_json);
        const auto& b = std::get<envelope_record>(from_packed);
        CHECK(a.state == b.state);
        CHECK(a.attempts == b.attempts);
        CHECK(a.max_attempts == b.max_attempts);
        CHECK(a.next_run == b.next_run);
        CHECK(a.last_code == b.last_code);
        CHECK(a.last_error == b.last_error);
        CHECK(a.payload == b.payload);
        CHECK(b.log == "opaque log bytes");
        CHECK(a.log.empty());
      }
    }
  }
  // Every next_run reads back as its JSON shows it: none, past, an hour ahead, far ahead,
  // and values with no thousandths form.
  for (const double next_run : {0.0, 1.5, static_cast<double>(std::time(nullptr)) + 3600.123, 1e11 + 0.5, 1e13, 1e300,
                                -2.5, -0.0, 999'999'999'999.9996, 999'999'999'999.999}) {
    envelope_fields f;
    f.id = "id";
    f.queue = "q";
    f.state = custody_state::retrying;
    f.next_run = next_run;
    f.payload = "{}";
    const std::string packed = envelope_packed(f);
    CHECK(packed_envelope_json(f.id, packed) == envelope_json(f));
    envelope_record r;
    REQUIRE(read_packed_envelope(packed, r));
    CHECK(json_number(*r.next_run) == json_number(next_run));
  }
  // A truncated one is not taken for an envelope.
  envelope_fields f;
  f.queue = "tasks";
  f.payload = "x";
  const std::string packed = envelope_packed(f);
  envelope_record r;
  REQUIRE(read_packed_envelope(packed, r));
  for (std::size_t n = 0; n + f.payload.size() < packed.size(); ++n) {  // cut before the payload
    CHECK_FALSE(read_packed_envelope(packed.substr(0, n), r));
    CHECK(packed_envelope_json("id", packed.substr(0, n)).empty());
  }
}

TEST_CASE("packing's text: phrases a byte each, any bytes read back as written, bad codes refused",
          "[records][packed]") {
  using namespace respq::tasks::packing;
  auto round = [](std::string_view text) {
    std::string out;
    put_text(out, text);
    std::string_view in = out;
    std::string back;
    REQUIRE(get_text(in, back));
    CHECK(in.empty());
    CHECK(back == text);
    return out.size();
  };
  // "Failed to connect to ", " port ", ": Connection refused": a byte each; the address
  // in 5 bytes, the port as a number (a byte and a varint); a byte of length before.
  CHECK(round("Failed to connect to 10.0.0.5 port 8080: Connection refused") == 1 + 3 + 5 + 3);
  CHECK(round("Failed to connect to 127.0.0.1 port 44381: Connection refused") == 13);
  CHECK(round("") == 1);
  CHECK(round("plain words") == 1 + 11);
  for (std::string_view p : text_phrases) {
    CHECK(round(p) == 2);
    round(std::string(p) + std::string(p) + "x");
    round(std::string(p.substr(0, p.size() - 1)));  // a phrase cut short is literal
  }
  // Numbers and addresses read back as written, whatever their form.
  for (const char* t : {"Operation timed out after 30000 milliseconds with 0 bytes received", "10.0.0.256",
                        "1.2.3.4.5", "007", "0123", "1234567890123456789012345", "255.255.255.255:443",
                        "01.2.3.4", "1.2.3", "1.2.3.", "0.0.0.0", "18446744073709551615", "9999999999999999999",
                        "10000000000000000000", "12", "99", "100", "a1.2.3.4b", "1.2.3.04", "256.1.1.1"})
    round(t);
  // Bytes below 0x20 cannot be coded: the text is kept as is.
  const std::string raw("a\x01" "b\x00" "c port ", 11);
  CHECK(round(raw) == 1 + raw.size());
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  round(all);
  round(all.substr(32));
  // Malformed: a code past the table, a 0 inside coded text, a number or an address cut
  // short, a length past the end.
  for (const std::string& bad : {std::string("\x03\x1f", 2), std::string("\x03\x00", 2), std::string("\x03\x18", 2),
                                 std::string("\x05\x18\x80", 3), std::string("\x05\x19\x01", 3),
                                 std::string("\x09" "ab", 3)}) {
    std::string_view in = bad;
    std::string back;
    CHECK_FALSE(get_text(in, back));
  }
}
