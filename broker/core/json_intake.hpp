// json_intake: the seed's raw JSON client (`json-port`). The PHP app writes
// json_encode(['url' => ..., 'param' => [...]]) straight onto a TCP socket, back to back,
// with no framing and no reply expected. This file is the I/O-free part: a splitter that
// finds where each JSON value ends in a byte stream, and the step that enqueues one.
//
// Splitting: between values, whitespace is skipped. A value starting with '{' or '['
// ends where its brackets balance (quotes and escapes respected); one starting with '"'
// at its closing quote. Anything else is not JSON: a run of such bytes ends where the
// next '{' starts (or at the end of the connection, or after 64 KB), and becomes one
// dead letter. A balanced chunk that JSON does not accept ({bad}) is a dead letter too.
// The splitter keeps its scan position between feeds, so a value that arrives in many
// reads is scanned once.
//
// Owner: the broker thread (the network layer's json-port connections).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace respq::core {

class server;
struct client;

class json_splitter {
 public:
  enum class kind { none, json, garbage };
  struct piece {
    kind what = kind::none;
    std::size_t size = 0;  // bytes from the start of the buffer, whitespace before it included
    std::size_t skip = 0;  // leading whitespace within size, not part of the value
  };
  // Finds the next piece at the start of buf (the bytes not consumed yet; the caller
  // consumes piece.size bytes after using it). eof: the connection ended, so an
  // unfinished value or run of bytes is returned as garbage. what == none: more bytes
  // are needed (size then counts whitespace that can be dropped).
  piece next(std::string_view buf, bool eof);
  // Bytes of the value in progress scanned so far (for the query buffer limit).
  std::size_t pending() const { return pos_; }

 private:
  void reset() { pos_ = 0, depth_ = 0, in_string_ = false, escape_ = false; }
  std::size_t pos_ = 0;  // scan position within the current value (from its first byte)
  int depth_ = 0;
  bool in_string_ = false, escape_ = false;
};

// Enqueues one piece from json-port client c, as that client's command: a JSON value
// as `LPUSH <json-queue> <bytes>`, anything else as a dead record (the bytes kept) with
// `LPUSH <json-queue>:dead <record>` and a log line. So the AOF, the mirror, MONITOR,
// the HTTP dispatcher and maxmemory see exactly what an LPUSH from a RESP client gives.
// Returns the error text when the server refused it (OOM, MISCONF), else empty.
std::string json_intake(server& s, client& c, std::string_view bytes, bool is_json);

}  // namespace respq::core
