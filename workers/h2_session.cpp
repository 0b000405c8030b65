// h2_session: see h2_session.hpp. nghttp2 calls back into h2_callbacks while it reads or
// writes; they only update the stream records and the finished list.
#include "workers/h2_session.hpp"

#include "resp/ascii.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

#include <nghttp2/nghttp2.h>

namespace respq::workers {

namespace {

// A 16 MB connection window and 1 MB per stream: responses are read as fast as they come;
// the read limit (max_body) is what bounds a stream, not flow control.
constexpr std::int32_t connection_window = 16 * 1024 * 1024;
constexpr std::uint32_t stream_window = 1024 * 1024;

// HTTP/1.1's connection management: meaningless, and forbidden, in HTTP/2 (RFC 9113 8.2.2).
bool connection_specific(std::string_view name, std::string_view value) {
  if (iequals(name, "TE")) return !iequals(value, "trailers");
  return iequals(name, "Connection") || iequals(name, "Keep-Alive") || iequals(name, "Proxy-Connection") ||
         iequals(name, "Transfer-Encoding") || iequals(name, "Upgrade") || iequals(name, "Content-Length") ||
         iequals(name, "Host");
}

nghttp2_nv make_nv(std::string_view name, std::string_view value) {
  // nghttp2 copies names and values when the request is submitted.
  return {reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          NGHTTP2_NV_FLAG_NONE};
}

std::string stream_error_text(std::int32_t id, std::uint32_t code) {
  return "HTTP/2 stream " + std::to_string(id) + " was not closed cleanly: " + nghttp2_http2_strerror(code) +
         " (err " + std::to_string(code) + ")";
}

}  // namespace

struct h2_callbacks {
  static h2_session& self(void* user) { return *static_cast<h2_session*>(user); }

  static h2_session::stream* find(h2_session& s, std::int32_t id) {
    auto it = s.streams_.find(id);
    return it == s.streams_.end() ? nullptr : &it->second;
  }

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    if (auto* st = find(self(user), frame->hd.stream_id)) {
      st->trailers = st->code >= 200;
      if (!st->trailers) {
        st->header_fields = 0;
        st->header_bytes = 0;
      }
    }
    return 0;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t namelen,
                       const std::uint8_t* value, std::size_t valuelen, std::uint8_t, void* user) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    h2_session& s = self(user);
    auto* st = find(s, frame->hd.stream_id);
    if (!st) return 0;
    const std::string_view n(reinterpret_cast<const char*>(name), namelen);
    const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    st->received += namelen + valuelen + 4;
    if (st->trailers) return 0;
    // The same bounds as the HTTP/1.1 parser's head (names, values and ": " + CRLF).
    st->header_bytes += namelen + valuelen + 4;
    if (++st->header_fields > s.limits_.max_headers + 1 || st->header_bytes > s.limits_.max_head) {
      st->error = st->header_fields > s.limits_.max_headers + 1 ? "Too many response headers" : "Response headers too large";
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // resets the stream
    }
    if (n == ":status") {
      int code = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), code);
      if (ec != std::errc() || p != v.data() + v.size() || code < 100 || code > 999) {
        st->error = "Invalid HTTP status line";
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
      }
      st->code = code;  // an interim 1xx is replaced by what follows
      st->retry_after.reset();
    } else if (n == "retry-after" && !st->retry_after) {
      st->retry_after.emplace(v);
    }
    return 0;
  }

  static int on_data(nghttp2_session* session, std::uint8_t, std::int32_t id, const std::uint8_t* data, std::size_t len,
                     void* user) {
    h2_session& s = self(user);
    auto* st = find(s, id);
    if (!st || st->cut) return 0;
    st->received += len;
    st->body_seen += len;
    if (st->body.size() < st->keep_body)
      st->body.append(reinterpret_cast<const char*>(data), std::min(len, st->keep_body - st->body.size()));
    if (st->body_seen > s.limits_.max_body) {
      // Past the read limit: the rest is not wanted. Reported as the response it is.
      st->cut = true;
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    }
    return 0;
  }

  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    h2_session& s = self(user);
    if (frame->hd.type == NGHTTP2_SETTINGS && !(frame->hd.flags & NGHTTP2_FLAG_ACK)) s.settings_ = true;
    if (frame->hd.stream_id != 0 && (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA ||
                                     frame->hd.type == NGHTTP2_RST_STREAM || frame->hd.type == NGHTTP2_WINDOW_UPDATE))
      ++s.stream_frames_;
    if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code == NGHTTP2_NO_ERROR &&
        frame->goaway.last_stream_id > 0)
      s.goaway_last_ = frame->goaway.last_stream_id;
    if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR) {
      s.goaway_ = std::string("HTTP/2 GOAWAY from the server: ") + nghttp2_http2_strerror(frame->goaway.error_code);
      return 0;
    }
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
      if (auto* st = find(s, frame->hd.stream_id)) st->ended = true;
    return 0;
  }

  static int on_frame_not_send(nghttp2_session*, const nghttp2_frame* frame, int lib_error, void* user) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    auto* st = find(self(user), frame->hd.stream_id);
    if (!st) return 0;
    if (lib_error == NGHTTP2_ERR_START_STREAM_NOT_ALLOWED || lib_error == NGHTTP2_ERR_SESSION_CLOSING ||
        lib_error == NGHTTP2_ERR_STREAM_CLOSED || lib_error == NGHTTP2_ERR_STREAM_CLOSING)
      st->not_sent = true;  // the connection is ending: another one may take it
    else if (lib_error == NGHTTP2_ERR_FRAME_SIZE_ERROR)
      st->error = "Request headers too large for HTTP/2 (a header block over 64 KB)";
    else
      st->error = std::string("HTTP/2 request not sent: ") + nghttp2_strerror(lib_error);
    return 0;
  }

  static int on_stream_close(nghttp2_session*, std::int32_t id, std::uint32_t error_code, void* user) {
    h2_session& s = self(user);
    if (auto* st = find(s, id)) s.report(id, *st, error_code);
    return 0;
  }

  static int on_invalid_frame(nghttp2_session*, const nghttp2_frame*, int lib_error, void* user) {
    h2_session& s = self(user);
    if (s.last_error_.empty()) s.last_error_ = std::string("invalid frame: ") + nghttp2_strerror(lib_error);
    return 0;
  }

  // A GOAWAY we send with an error code: nghttp2 ended the connection over a violation.
  static int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR) {
      h2_session& s = self(user);
      if (s.last_error_.empty()) s.last_error_ = nghttp2_http2_strerror(frame->goaway.error_code);
    }
    return 0;
  }

  static int on_error(nghttp2_session*, int, const char* msg, std::size_t len, void* user) {
    self(user).last_error_.assign(msg, len);
    return 0;
  }

  static ssize_t read_body(nghttp2_session*, std::int32_t id, std::uint8_t* buf, std::size_t length, std::uint32_t* flags,
                           nghttp2_data_source*, void* user) {
    auto* st = find(self(user), id);
    if (!st) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // cancelled: reset it
    const std::size_t n = std::min(length, st->out_body.size() - st->out_off);
    std::memcpy(buf, st->out_body.data() + st->out_off, n);
    st->out_off += n;
    if (st->out_off == st->out_body.size()) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      std::string().swap(st->out_body);
    }
    return static_cast<ssize_t>(n);
  }
};

h2_session::h2_session(response_limits limits) : limits_(limits) {}

h2_session::~h2_session() {
  if (session_) nghttp2_session_del(session_);  // calls no callback
}

bool h2_session::start() {
  nghttp2_session_callbacks* cb = nullptr;
  if (nghttp2_session_callbacks_new(&cb) != 0) {
    error_ = "HTTP/2: out of memory";
    return false;
  }
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &h2_callbacks::on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, &h2_callbacks::on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &h2_callbacks::on_data);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &h2_callbacks::on_frame_recv);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, &h2_callbacks::on_frame_not_send);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, &h2_callbacks::on_stream_close);
  nghttp2_session_callbacks_set_error_callback2(cb, &h2_callbacks::on_error);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, &h2_callbacks::on_invalid_frame);
  nghttp2_session_callbacks_set_on_frame_send_callback(cb, &h2_callbacks::on_frame_send);
  const int rv = nghttp2_session_client_new(&session_, cb, this);
  nghttp2_session_callbacks_del(cb);
  if (rv != 0) {
    error_ = std::string("HTTP/2: ") + nghttp2_strerror(rv);
    return false;
  }
  const std::array<nghttp2_settings_entry, 3> settings{{{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                                        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, stream_window},
                                                        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
                                                         static_cast<std::uint32_t>(limits_.max_head)}}};
  if (nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings.data(), settings.size()) != 0 ||
      nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, connection_window) != 0) {
    error_ = "HTTP/2: can't queue the client SETTINGS";
    return false;
  }
  return true;
}

std::int32_t h2_session::submit(const h2_request& r, std::string& error) {
  std::string_view authority = r.authority;
  bool has_ua = false, has_accept = false;
  const auto& headers = *r.headers;
  for (const auto& [k, v] : headers) {
    if (iequals(k, "Host")) authority = v;
    else if (iequals(k, "User-Agent")) has_ua = true;
    else if (iequals(k, "Accept")) has_accept = true;
  }
  // Names lower-cased, values without line breaks (as on HTTP/1.1), kept alive here until
  // nghttp2 has copied them.
  std::vector<std::string> store;
  store.reserve(headers.size() * 2 + 1);
  std::vector<nghttp2_nv> nva;
  nva.reserve(headers.size() + 8);
  nva.push_back(make_nv(":method", r.method));
  nva.push_back(make_nv(":scheme", "https"));
  nva.push_back(make_nv(":authority", authority));
  nva.push_back(make_nv(":path", r.path));
  if (!has_ua) nva.push_back(make_nv("user-agent", r.user_agent));
  if (!has_accept) nva.push_back(make_nv("accept", "*/*"));
  for (const auto& [k, v] : headers) {
    if (connection_specific(k, v)) continue;
    std::string& name = store.emplace_back(k);
    for (char& ch : name) ch = ascii_lower(ch);
    std::string& value = store.emplace_back(v);
    std::replace_if(value.begin(), value.end(), [](char ch) { return ch == '\r' || ch == '\n'; }, ' ');
    nva.push_back(make_nv(name, value));
  }
  const bool wants_body = r.body || r.method == "POST" || r.method == "PUT" || r.method == "PATCH";
  std::string& length = store.emplace_back(std::to_string(r.body ? r.body->size() : 0));
  if (wants_body) nva.push_back(make_nv("content-length", length));

  nghttp2_data_provider provider{};
  provider.read_callback = &h2_callbacks::read_body;
  const bool with_data = r.body && !r.body->empty();
  const std::int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), with_data ? &provider : nullptr, nullptr);
  if (id < 0) {
    error = std::string("HTTP/2: can't send the request: ") + nghttp2_strerror(id);
    return 0;
  }
  stream& st = streams_[id];
  st.keep_body = std::min(r.keep_body, limits_.keep_body);
  if (with_data) st.out_body = *r.body;
  return id;
}

void h2_session::cancel(std::int32_t id) {
  if (streams_.erase(id) != 0) nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
}

void h2_session::report(std::int32_t id, stream& st, std::uint32_t error_code) {
  finished f;
  f.stream = id;
  f.code = st.code;
  f.received = st.received;
  if ((st.cut || st.ended) && st.code >= 200 && st.error.empty()) {
    f.how = outcome::complete;
    f.retry_after = std::move(st.retry_after);
    f.body = std::move(st.body);
    f.truncated = st.cut;
  } else if (st.received == 0 && st.error.empty() && (st.not_sent || error_code == NGHTTP2_REFUSED_STREAM)) {
    // Not processed by the server (RFC 9113 8.7): another connection may take it.
    f.how = outcome::refused;
    f.error = stream_error_text(id, NGHTTP2_REFUSED_STREAM);
  } else {
    f.how = outcome::failed;
    if (!st.error.empty()) f.error = std::move(st.error);
    else if (error_code != NGHTTP2_NO_ERROR) f.error = stream_error_text(id, error_code);
    else f.error = st.received ? "Transferred a partial file" : "Empty reply from server";
  }
  done_.push_back(std::move(f));
  streams_.erase(id);
}

bool h2_session::receive(std::string_view in) {
  const ssize_t n = nghttp2_session_mem_recv(session_, reinterpret_cast<const std::uint8_t*>(in.data()), in.size());
  if (n < 0) {
    error_ = "HTTP/2 error: " + (last_error_.empty() ? std::string(nghttp2_strerror(static_cast<int>(n))) : last_error_);
    return false;
  }
  return true;
}

bool h2_session::produce(std::string& out) {
  for (;;) {
    const std::uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      error_ = std::string("HTTP/2 error: ") + nghttp2_strerror(static_cast<int>(n));
      return false;
    }
    if (n == 0) break;
    out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
  }
  if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_) && error_.empty()) {
    // nghttp2 ended the connection: a protocol error it answered with GOAWAY, or the
    // server's GOAWAY with nothing left open.
    if (!last_error_.empty()) error_ = "HTTP/2 protocol error: " + last_error_;
    else if (!goaway_.empty()) error_ = goaway_;
  }
  return true;
}

bool h2_session::accepts() const { return session_ && nghttp2_session_check_request_allowed(session_) != 0; }

std::uint32_t h2_session::max_streams() const {
  return nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

std::size_t h2_session::received(std::int32_t id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? 0 : it->second.received;
}

void h2_session::withdraw_unsent() {
  std::vector<std::int32_t> held;
  for (const auto& [id, st] : streams_)
    if (!nghttp2_session_find_stream(session_, id)) held.push_back(id);
  std::sort(held.begin(), held.end());  // reported in the order they were submitted
  for (std::int32_t id : held) {
    report(id, streams_.at(id), NGHTTP2_REFUSED_STREAM);  // refused, and forgotten
    // On a stream not opened yet this cancels the queued HEADERS; nothing is sent.
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
  }
}

bool h2_session::finished_both_ways() const {
  return !nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_);
}

void h2_session::terminate() { nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR); }

}  // namespace respq::workers
