// command_stream: see command_stream.hpp.
#include "broker/core/command_stream.hpp"

#include <algorithm>

#include "resp/reply_writer.hpp"

namespace respq::core {

void command_stream::append_select(int db) {
  const std::string n = std::to_string(db);
  effect_meta m;
  m.offset = bytes_.size();
  const std::string_view argv[] = {"SELECT", n};
  resp::reply_writer::command(bytes_, argv);
  m.length = bytes_.size() - m.offset;
  m.keyless = true;
  m.db = db;
  m.select = true;
  effects_.push_back(std::move(m));
  emitted_db_ = db;
}

void command_stream::append(std::span<const std::string_view> argv, std::size_t key_index) {
  ++total_;
  if (sinks_.empty()) return;  // nobody persists or mirrors: nothing to encode
  if (db_ != emitted_db_) append_select(db_);
  effect_meta m;
  m.db = db_;
  m.offset = bytes_.size();
  resp::reply_writer::command(bytes_, argv);
  m.length = bytes_.size() - m.offset;
  m.keyless = key_index == 0 || key_index >= argv.size();
  if (!m.keyless) m.key.assign(argv[key_index]);
  effects_.push_back(std::move(m));
}

void command_stream::append_publish(std::string_view channel, std::string_view message, bool sharded) {
  if (sinks_.empty()) return;
  // Channels are in no database: no SELECT for it.
  ++total_;
  effect_meta m;
  m.offset = bytes_.size();
  const std::string_view argv[] = {sharded ? "SPUBLISH" : "PUBLISH", channel, message};
  resp::reply_writer::command(bytes_, argv);
  m.length = bytes_.size() - m.offset;
  m.keyless = true;
  m.persist = false;
  m.db = -1;
  effects_.push_back(std::move(m));
}

void command_stream::begin_atomic() {
  if (atomic_depth_++ == 0) {
    atomic_start_bytes_ = bytes_.size();
    atomic_start_index_ = effects_.size();
    atomic_start_db_ = emitted_db_;
  }
}

void command_stream::end_atomic() {
  if (--atomic_depth_ > 0) return;
  std::size_t n = effects_.size() - atomic_start_index_;
  if (n < 2) return;
  static constexpr std::string_view multi = "*1\r\n$5\r\nMULTI\r\n";
  static constexpr std::string_view exec = "*1\r\n$4\r\nEXEC\r\n";
  bytes_.insert(atomic_start_bytes_, multi);
  for (std::size_t i = atomic_start_index_; i < effects_.size(); ++i) effects_[i].offset += multi.size();
  effects_.insert(effects_.begin() + static_cast<std::ptrdiff_t>(atomic_start_index_),
                  effect_meta{atomic_start_bytes_, multi.size(), {}, true, true, -1, false});
  effects_.push_back(effect_meta{bytes_.size(), exec.size(), {}, true, true, -1, false});
  bytes_.append(exec);
}

void command_stream::abort_atomic() {
  if (atomic_depth_ == 0) return;
  atomic_depth_ = 0;
  bytes_.resize(atomic_start_bytes_);
  effects_.erase(effects_.begin() + static_cast<std::ptrdiff_t>(atomic_start_index_), effects_.end());
  emitted_db_ = atomic_start_db_;
}

bool command_stream::flush() {
  if (effects_.empty()) return true;
  if (emitted_db_ != 0) append_select(0);  // every batch ends in database 0
  bool ok = true;
  for (stream_sink* s : sinks_) ok = s->on_effects(bytes_, effects_) && ok;
  bytes_.clear();
  effects_.clear();
  return ok;
}

void command_stream::remove_sink(stream_sink* s) {
  sinks_.erase(std::remove(sinks_.begin(), sinks_.end(), s), sinks_.end());
}

}  // namespace respq::core
