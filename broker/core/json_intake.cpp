// json_intake: see json_intake.hpp.
#include "broker/core/json_intake.hpp"

#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

#include "broker/core/log.hpp"
#include "broker/core/server.hpp"
#include "tasks/records.hpp"

namespace respq::core {

namespace {

constexpr std::size_t garbage_run_max = 64 * 1024;

bool is_space(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; }

}  // namespace

json_splitter::piece json_splitter::next(std::string_view buf, bool eof) {
  std::size_t ws = 0;
  if (pos_ == 0)
    while (ws < buf.size() && is_space(buf[ws])) ++ws;
  std::string_view v = buf.substr(ws);
  if (v.empty()) return {kind::none, ws, ws};
  const char first = v[0];
  if (first == '{' || first == '[' || first == '"') {
    if (pos_ == 0) {
      in_string_ = first == '"';
      depth_ = first == '"' ? 0 : 1;
      pos_ = 1;
    }
    for (; pos_ < v.size(); ++pos_) {
      const char ch = v[pos_];
      if (in_string_) {
        if (escape_) escape_ = false;
        else if (ch == '\\') escape_ = true;
        else if (ch == '"') {
          in_string_ = false;
          if (depth_ == 0) break;
        }
      } else if (ch == '"') {
        in_string_ = true;
      } else if (ch == '{' || ch == '[') {
        ++depth_;
      } else if (ch == '}' || ch == ']') {
        if (--depth_ == 0) break;
      }
    }
    if (pos_ < v.size()) {
      const std::size_t len = pos_ + 1;
      reset();
      const bool ok = nlohmann::json::accept(v.substr(0, len));
      return {ok ? kind::json : kind::garbage, ws + len, ws};
    }
    if (eof) {
      reset();
      return {kind::garbage, buf.size(), ws};
    }
    return {kind::none, ws, ws};
  }
  // Not the start of a JSON value: bytes up to the next '{'.
  const std::size_t brace = v.find('{');
  if (brace != std::string_view::npos) return {kind::garbage, ws + brace, ws};
  if (eof || v.size() >= garbage_run_max) return {kind::garbage, buf.size(), ws};
  return {kind::none, ws, ws};
}

std::string json_intake(server& s, client& c, std::string_view bytes, bool is_json) {
  const std::string& queue = s.cfg().json_queue;
  std::string record, dead_key;
  std::string_view args[3];
  if (is_json) {
    args[0] = "LPUSH", args[1] = queue, args[2] = bytes;
  } else {
    static std::uint64_t seq = 0;
    const std::string id = "json-port-" + std::to_string(c.id) + "-" + std::to_string(++seq);
    tasks::dead_fields f;
    f.id = id;
    f.queue = queue;
    f.reason = "not JSON";
    f.error = "bytes received on json-port are not a JSON value";
    f.payload = bytes;
    f.failed_at =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    record = tasks::dead_record_json(f);
    dead_key = queue + ":dead";
    args[0] = "LPUSH", args[1] = dead_key, args[2] = record;
    log_warning("json-port: " + std::to_string(bytes.size()) + " bytes from " + c.addr +
                " are not JSON: kept in " + dead_key + " as " + id);
  }
  const std::size_t before = c.out.size();
  s.dispatch(c, std::span<const std::string_view>(args, 3));
  std::string err;
  if (c.out.size() > before && c.out[before] == '-') {
    err = c.out.substr(before + 1);
    while (!err.empty() && (err.back() == '\n' || err.back() == '\r')) err.pop_back();
  }
  c.out.clear();  // nothing is ever written back to a json-port client
  c.out_sent = 0;
  return err;
}

}  // namespace respq::core
