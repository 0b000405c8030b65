// h2_session: one HTTP/2 client connection's protocol state, on libnghttp2's I/O-free
// session API. Bytes in (receive), bytes out (produce), requests submitted as streams,
// finished streams taken out as plain values. No asio, no sockets, no TLS: the lean client
// (http1_client) owns the connection and carries the bytes, on the same TLS sockets as
// its HTTP/1.1 connections, once ALPN has selected "h2".
//
// Contract
//   submit() turns one request into a stream (HEADERS, then DATA for a body) and returns
//   its id; nothing is sent until produce() is called. Each stream submitted is reported
//   exactly once by take_finished(), unless cancel() removed it first:
//     complete - the response is whole (or cut at the body read limit: truncated set);
//     refused  - the server did not process it (RST_STREAM REFUSED_STREAM, or a GOAWAY
//                whose last stream id is below it, or it was not sent because the
//                connection was ending): safe to send again on another connection;
//     failed   - anything else (a request nghttp2 cannot send at all, e.g. headers
//                over its 64 KB block limit, fails); `error` says why in the curl
//                path's words.
//   receive() and produce() return false when the connection cannot go on (a malformed
//   frame, a flood, a protocol error: nghttp2 has queued a GOAWAY, which produce() still
//   returns); error() says why. finished() is false once neither side has anything left to
//   say (after a GOAWAY both ways): the owner closes the connection and fails the streams
//   still open with its own words.
//   The callbacks nghttp2 makes only record into this object: the owner acts on what
//   take_finished() returns, after receive()/produce(), never from inside nghttp2.
//
// Requests: the same headers as on HTTP/1.1 (User-Agent and Accept unless set, the task's
// headers, Content-Length for a body), names lower-cased as HTTP/2 requires; headers that
// are HTTP/1.1's connection management (Connection, Keep-Alive, Proxy-Connection,
// Transfer-Encoding, Upgrade, TE other than "trailers") are dropped, and Host becomes
// :authority.
// Responses: 1xx interim heads are skipped, trailers ignored; only Retry-After is kept of
// the headers. Limits are the HTTP/1.1 parser's (response_limits): the body kept up to
// keep_body and read up to max_body, past which the stream is reset (CANCEL) and reported
// complete with `truncated`; more than max_headers fields or max_head bytes of headers fail
// the stream.
//
// Thread: whoever owns it (the delivery engine thread); not shared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "workers/http1_response_parser.hpp"

struct nghttp2_session;

namespace respq::workers {

struct h2_request {
  std::string_view method;
  std::string_view authority;  // host[:port], unless a Host header replaces it
  std::string_view path;       // starts with '/'
  std::string_view user_agent;  // sent unless the headers carry one
  const std::vector<std::pair<std::string, std::string>>* headers = nullptr;
  const std::string* body = nullptr;  // null: none (POST/PUT/PATCH then send an empty one)
  std::size_t keep_body = SIZE_MAX;   // response body bytes to keep (within the limit)
};

class h2_session {
 public:
  enum class outcome { complete, refused, failed };
  struct finished {
    std::int32_t stream = 0;
    outcome how = outcome::failed;
    int code = 0;
    std::optional<std::string> retry_after;
    std::string body;  // the first keep_body bytes
    bool truncated = false;
    std::string error;
    std::size_t received = 0;  // response bytes seen (headers and body)
  };

  explicit h2_session(response_limits limits = {});
  ~h2_session();
  h2_session(const h2_session&) = delete;
  h2_session& operator=(const h2_session&) = delete;

  // False (error() set) when nghttp2 could not be set up. Queues the client preface and
  // SETTINGS.
  bool start();
  // The new stream's id, or 0 with `error` set.
  std::int32_t submit(const h2_request& r, std::string& error);
  // Resets a stream (CANCEL) and forgets it: it will not be reported.
  void cancel(std::int32_t stream);
  bool receive(std::string_view in);
  // Appends what is to be sent to `out`.
  bool produce(std::string& out);
  std::vector<finished>& take_finished() { return done_; }
  bool has_finished() const { return !done_.empty(); }

  // May a new request be submitted (no GOAWAY either way)?
  bool accepts() const;
  // The server's SETTINGS_MAX_CONCURRENT_STREAMS (100 until its SETTINGS arrive).
  std::uint32_t max_streams() const;
  // Has the server's first SETTINGS frame arrived? Until it has, streams go out under
  // assumed limits, and a server with a lower one refuses the excess.
  bool settings_received() const { return settings_; }
  // Was stream `id` above the last stream of a graceful GOAWAY (NO_ERROR) that took at
  // least one? Such a stream was shed at the end of a connection that worked, as servers
  // do after so many requests, not refused on its own.
  bool shed_by_goaway(std::int32_t id) const { return goaway_last_ > 0 && id > goaway_last_; }
  // Frames the server sent on streams (HEADERS, DATA, RST_STREAM, and WINDOW_UPDATE: it
  // reads a request body) so far: compared before and after, whether it did anything
  // with a stream meanwhile (SETTINGS and PING are no sign of that).
  std::uint64_t stream_frames() const { return stream_frames_; }
  // Streams submitted and not yet reported or cancelled.
  std::size_t open_streams() const { return streams_.size(); }
  // Takes back the streams whose HEADERS nghttp2 still holds (the server's concurrency
  // limit is reached: they have not left) and reports them refused.
  void withdraw_unsent();
  // Response bytes seen on a stream so far (0 when unknown).
  std::size_t received(std::int32_t stream) const;
  bool finished_both_ways() const;
  // Asks the server to finish (GOAWAY NO_ERROR); produce() then sends it.
  void terminate();
  const std::string& error() const { return error_; }

 private:
  struct stream {
    int code = 0;
    bool trailers = false;  // the HEADERS block being read comes after the final response
    bool ended = false;     // END_STREAM received
    bool cut = false;       // reset by us at the body read limit
    bool not_sent = false;  // the request never left
    std::optional<std::string> retry_after;
    std::string body;
    std::size_t keep_body = 0;  // of the response body, what the request asked to keep
    std::size_t body_seen = 0;
    std::size_t received = 0;
    std::size_t header_fields = 0;
    std::size_t header_bytes = 0;
    std::string error;
    std::string out_body;    // the request body
    std::size_t out_off = 0;
  };

  friend struct h2_callbacks;
  void report(std::int32_t id, stream& s, std::uint32_t error_code);

  response_limits limits_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<std::int32_t, stream> streams_;
  std::vector<finished> done_;
  std::string error_;       // why the connection cannot go on
  std::string last_error_;  // nghttp2's words for the last problem it saw
  std::string goaway_;      // the server's GOAWAY with an error code, in words
  bool settings_ = false;   // the server's SETTINGS (not an ACK) arrived
  std::int32_t goaway_last_ = 0;  // of the server's graceful GOAWAY that took some; 0: none
  std::uint64_t stream_frames_ = 0;
};

}  // namespace respq::workers
