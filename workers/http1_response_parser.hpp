// http1_response_parser: incremental parser for one HTTP/1.x response at a time, as the
// lean client (http1_client) receives it. No I/O, no asio: bytes in, response out, so it
// can be fed any fragmentation and fuzzed.
//
// Contract
//   begin(head_request) starts a response (a HEAD request's response has no body). Then
//   feed() is called with the unconsumed input each time more bytes arrive. It consumes
//   what it can and reports:
//     need_more - consumed() bytes were used; keep the rest (a partial line) and call
//                 feed() again with it, in order, followed by the new bytes. Partial lines
//                 are never consumed, so the caller's buffer holds at most one line:
//                 past the line limit the parser fails instead of waiting.
//     complete  - the response is whole; consumed() bytes belong to it, anything after is
//                 the next response (pipelining) or garbage, the caller's business.
//     error     - the response is malformed or breaks a limit; error() says why (a short
//                 sentence, reported to the producer). Sticky until begin().
//   finish() is called when the peer closed the connection: it completes a body that is
//   delimited by the close, and otherwise fails ("Empty reply from server" when no byte
//   of the response came, "Transferred a partial file" when some did).
//   The parser remembers its progress inside the current line as an offset, so the
//   caller may move its buffer between calls.
//
// Framing (RFC 9112 section 6.3): 1xx interim responses (except 101) are skipped with
// their headers; HEAD, 1xx, 204 and 304 responses end at the blank line; Transfer-Encoding
// whose last coding is chunked is decoded (extensions ignored, trailers skipped); any other
// Transfer-Encoding, or neither header, reads until the connection closes. A response
// carrying both Transfer-Encoding and Content-Length is framed by Transfer-Encoding (the
// RFC says it overrides) and the connection is closed afterwards, since such a response
// may be an attempt at response splitting; so is one with Transfer-Encoding on HTTP/1.0.
// Repeated Content-Length values must agree; a value that is not a decimal number (a sign,
// a blank, an overflow) is an error. Lines may end in CRLF or a bare LF; an obs-fold
// continuation line extends the previous header's value with one space.
//
// Limits are checked before anything is stored or waited for: a line longer than
// max_line, a head (status line and headers, or trailers) longer than max_head, or more
// than max_headers fields fail at once. The body: the first keep_body bytes are kept;
// past max_body bytes the response completes with truncated() set and the rest is not
// read (the connection cannot be reused). A Content-Length or chunk size above max_body
// is therefore no error: the body is read up to the limit, as a long one would be.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace respq::workers {

struct response_limits {
  std::size_t keep_body = 64 * 1024;        // body bytes kept in the response
  std::size_t max_body = 4 * 1024 * 1024;   // body bytes read; past them: truncated
  std::size_t max_line = 16 * 1024;         // status, header, chunk-size or trailer line
  std::size_t max_head = 64 * 1024;         // status line and headers together (or trailers)
  std::size_t max_headers = 100;            // header fields (or trailer fields)
};

class http1_response_parser {
 public:
  enum class status { need_more, complete, error };

  explicit http1_response_parser(response_limits limits = {}) : limits_(limits), keep_(limits.keep_body) {}

  // Starts a new response. head_request: the request was HEAD (the response has no body).
  // keep_body: body bytes to keep of this one (at most the limit's).
  void begin(bool head_request = false, std::size_t keep_body = SIZE_MAX);
  status feed(std::string_view in);
  // The connection was closed by the peer.
  status finish();

  std::size_t consumed() const { return consumed_; }
  std::string_view error() const { return error_; }
  // Some byte of this response (or of an interim one before it) has been consumed.
  bool started() const { return started_; }

  // The final response, valid once complete (code and headers are also valid while the
  // body is being read).
  int code() const { return code_; }
  std::string_view reason() const { return std::string_view(head_).substr(reason_.first, reason_.second); }
  bool http10() const { return http10_; }
  // Header fields in arrival order (names as sent); obs-folds already joined.
  std::size_t header_count() const { return headers_.size(); }
  std::pair<std::string_view, std::string_view> header_at(std::size_t i) const;
  // The first field with this name (case-insensitive), if any.
  std::optional<std::string_view> header(std::string_view name) const;
  // The first keep_body bytes of the (dechunked) body (as begin() asked, within the limit).
  const std::string& body() const { return body_; }
  std::string take_body() { return std::move(body_); }
  // Body bytes read (at most max_body + 1).
  std::size_t body_size() const { return body_seen_; }
  // The body was longer than max_body; what followed was not read.
  bool truncated() const { return truncated_; }
  // The connection may carry the next request once this response is complete.
  bool keep_alive() const { return keep_alive_; }

  const response_limits& limits() const { return limits_; }
  // Bytes its buffers keep for the next response (a caller pooling parsers drops one that
  // keeps much).
  std::size_t retained() const {
    return head_.capacity() + headers_.capacity() * sizeof(span) + body_.capacity() + error_.capacity();
  }

 private:
  enum class phase { status_line, headers, length, until_close, chunk_size, chunk_data, chunk_end, trailers, done, failed };
  struct span {
    std::size_t name_off, name_len, value_off, value_len;
  };

  // The next complete line at data[pos...] (without its CR LF / LF); false when none yet
  // (then the limit is checked). `next` is the offset after the line end.
  bool next_line(std::string_view in, std::size_t pos, std::string_view& line, std::size_t& next, const char* too_long);
  bool on_status_line(std::string_view line);
  bool on_header_line(std::string_view line);
  bool on_head_end();
  bool on_chunk_size(std::string_view line);
  void keep(std::string_view data);
  status fail(std::string msg);
  status done();
  // The body went past max_body: complete, marked truncated, connection not reusable.
  status cut_off();

  response_limits limits_;
  phase ph_ = phase::status_line;
  bool head_request_ = false;
  std::size_t consumed_ = 0;
  std::size_t scan_ = 0;       // bytes of the pending line already searched for its end
  bool started_ = false;
  std::string error_;

  int code_ = 0;
  bool http10_ = false;
  bool keep_alive_ = true;
  std::string head_;  // reason phrase and header names and values, back to back
  std::pair<std::size_t, std::size_t> reason_{0, 0};
  std::vector<span> headers_;
  std::size_t head_bytes_ = 0;  // of the current head or trailer section, line ends included
  std::size_t fields_ = 0;      // trailer fields so far
  // Framing gathered from the headers.
  std::optional<std::uint64_t> content_length_;
  bool has_transfer_encoding_ = false;
  bool chunked_ = false;
  bool close_ = false;       // Connection: close
  bool keep_alive_token_ = false;

  std::uint64_t body_left_ = 0;  // of the Content-Length body or the current chunk
  std::size_t body_seen_ = 0;
  std::size_t keep_;  // body bytes kept of this response
  bool truncated_ = false;
  std::string body_;
};

}  // namespace respq::workers
