// records: the JSON respq writes about tasks and reads back.
//
//   in-flight envelope  the value of <queue>:inflight <id> (local queues): the producer's
//                       payload untouched plus state, attempts, next run, last code/error
//   outcome             PUBLISHed on <queue>:results and POSTed to the task's callback
//   dead letter         LPUSHed on <queue>:dead: the payload untouched plus why
//
// Writers build the JSON by hand (the hot path: one envelope and one outcome per task)
// and never fail: text that is not UTF-8 is replaced ("(binary)"), a payload that is not
// UTF-8 is carried as "payload_b64". URLs and error texts are reported with their
// credentials hidden (tasks/url.hpp); the payload is never changed, so a dead letter
// moved back into its queue runs as the producer wrote it.
//
// The reader (read_envelope) never throws: a record any client may have written is
// checked field by field, and a bad one comes back as a reason naming what is wrong.
//
// Pure functions; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace respq::tasks {

bool valid_utf8(std::string_view s);
std::string base64_encode(std::string_view in);
// Skips bytes outside the alphabet (padding, line breaks).
std::string base64_decode(std::string_view in);
// Standard base64 without tolerance: padding optional, any other byte outside the
// alphabet, or a length no encoding has, is false.
bool base64_decode_strict(std::string_view text, std::string& out);
// Appends s as a JSON string literal; s must be valid UTF-8.
void append_json_string(std::string& out, std::string_view s);
// Appends "payload":"..." or, for bytes that are not UTF-8, "payload_b64":"...".
void append_payload_field(std::string& out, std::string_view payload);
// A number for JSON with at most 3 decimals and no trailing zeros.
std::string json_number(double d);

// ---- in-flight envelope ------------------------------------------------------------------

enum class custody_state : std::uint8_t { in_flight, retrying, scheduled };
const char* state_name(custody_state s);

struct envelope_fields {
  std::string_view id, queue, last_error, payload;
  std::string_view log;  // packed form only, not in the JSON: the attempts this process saw
  custody_state state = custody_state::in_flight;
  int attempts = 0;      // attempts started so far
  int max_attempts = 1;  // 1 + retries
  double next_run = 0;   // unix seconds (retrying, scheduled)
  long last_code = 0;
};
// {"id","queue","state","attempts","max_attempts","next_run","last_code","last_error",
//  "payload" | "payload_b64"}
std::string envelope_json(const envelope_fields& f);

// An envelope read back. Absent fields take the defaults recovery has always used.
struct envelope_record {
  custody_state state = custody_state::in_flight;  // absent: in_flight
  int attempts = 0;                                // absent: 0
  std::optional<int> max_attempts;                 // absent: the queue's 1 + retries
  std::optional<double> next_run;                  // absent: now
  long last_code = 0;
  std::string last_error;  // absent or not a string: ""
  std::string payload;  // the producer's bytes (decoded from payload_b64 if so)
  std::string log;      // a packed envelope's attempt log (tasks::attempt_log::pack), else ""
};
// The record, or why it can't be one (a reason such as "attempts is not an integer").
// A packed envelope (envelope_packed) is read as well: for respq's own stored form only.
std::variant<envelope_record, std::string> read_envelope(std::string_view text);
// The same from the JSON form alone: for text a client may have written (a hash value as
// commands show it, an element of a list), whose bytes must not be taken for a packed
// envelope even when they happen to be one.
std::variant<envelope_record, std::string> read_envelope_json(std::string_view text);
// The packed envelope: the same fields in binary beside the payload, the form respq keeps
// in its keyspace (a hash field of <queue>:inflight holds one per task in custody; see
// hash_field_text in broker/core/keyspace.hpp). The id is not stored: it is the field's
// name, given back when the JSON is rendered. Clients only ever see the JSON
// (envelope_json of the same fields, byte for byte): packed_envelope_json renders it.
//   0xFF | 1 + state | varint attempts, max_attempts, last_code | next_run (packing's time) |
//   varint queue (its number in a table of the process's queue names) | last_error
//   (packing's text) | varint log length, log | payload
// No text a client writes to a hash is stored in this form: the keyspace escapes values
// that begin with 0xFF.
std::string envelope_packed(const envelope_fields& f);
bool is_packed_envelope(std::string_view s);
// The JSON envelope_json would give for these fields, with id `id`; "" when not packed.
std::string packed_envelope_json(std::string_view id, std::string_view packed);
// The fields as read_envelope would read them from the JSON (last_error as shown, next_run
// to the millisecond). False when `packed` is not a packed envelope.
bool read_packed_envelope(std::string_view packed, envelope_record& out);
// What a record that is not a valid envelope still carries for a dead letter: its
// "payload" (or "payload_b64") when it is a JSON object that has one, else the record
// itself, so nothing a client wrote is lost.
std::string salvage_payload(std::string_view record);

// ---- outcome -------------------------------------------------------------------------------

// The outcome of a task, as PUBLISHed on <queue>:results and POSTed to callbacks. The
// same fields for local and shared queues: id, queue, url (credentials hidden), status,
// code, attempts, duration_ms, error, node (the sidecar, when known); next_run when
// positive (retrying), "truncated":true when the response body went past the read
// limit (the rest was not read); after an HTTP answer that failed the attempt (retrying,
// dead), "response": the start of its body (at most response_kept_bytes, cut at a
// character), or "response_b64" when that is not UTF-8 text; none when it had no body.
struct outcome_fields {
  std::string_view id, queue, url, node;
  const char* status = "";  // delivered, retrying, dead, duplicate, cancelled
  std::string error;
  std::string response;  // the failing answer's body, its start
  long code = 0;
  int attempts = 0;
  double duration_ms = 0, next_run = 0;
  bool truncated = false;
};
std::string outcome_json(const outcome_fields& f);

// ---- dead letter ---------------------------------------------------------------------------

// The record a dead task leaves in <queue>:dead: the producer's payload untouched plus
// why (reason, attempts, last HTTP code and error, failed_at in unix seconds, and the
// answer's body as `response` or `response_b64` when an HTTP answer with a body ended
// it). Reason and error are written with URL credentials hidden.
struct dead_fields {
  std::string_view id, queue, reason, error, payload;
  std::string_view response;  // the last answer's body, its start, when it failed the task (as in outcomes)
  int attempts = 0;
  long code = 0;
  double failed_at = 0;
};
std::string dead_record_json(const dead_fields& f);

}  // namespace respq::tasks
