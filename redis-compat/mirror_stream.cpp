// mirror_stream: see mirror_stream.hpp for the translation rules and offsets.
#include "redis-compat/mirror_stream.hpp"

#include <algorithm>
#include <charconv>
#include <cctype>
#include <cstring>

#include "broker/core/glob.hpp"
#include "broker/core/server.hpp"
#include "broker/core/value_commands.hpp"
#include "resp/ascii.hpp"
#include "resp/reply_writer.hpp"

namespace respq::redis_compat {

namespace {

// Reads "<prefix><digits>\r\n" at `at`; advances past it. The stream wrote these bytes,
// but they are checked all the same (no sign, no overflow, CRLF present).
bool read_number_line(std::string_view b, std::size_t& at, char prefix, std::size_t& out) {
  if (at >= b.size() || b[at] != prefix) return false;
  std::size_t i = at + 1, v = 0;
  const std::size_t first = i;
  while (i < b.size() && b[i] >= '0' && b[i] <= '9') {
    v = v * 10 + static_cast<std::size_t>(b[i] - '0');
    if (++i - first > 18) return false;
  }
  if (i == first || i + 1 >= b.size() || b[i] != '\r' || b[i + 1] != '\n') return false;
  out = v;
  at = i + 2;
  return true;
}

}  // namespace

// ---- key_filter -----------------------------------------------------------------------

key_filter::key_filter(std::vector<std::string> patterns) : patterns_(std::move(patterns)) {
  match_all_ = std::find(patterns_.begin(), patterns_.end(), "*") != patterns_.end();
}

void key_filter::exclude_key(std::string key) { excluded_.insert(std::move(key)); }
void key_filter::exclude_prefix(std::string prefix) { excluded_prefixes_.push_back(std::move(prefix)); }

bool key_filter::matches(std::string_view key) const {
  if (!excluded_.empty() && excluded_.find(key) != excluded_.end()) return false;
  for (const auto& p : excluded_prefixes_)
    if (key.substr(0, p.size()) == p) return false;
  if (match_all_) return true;
  for (const auto& p : patterns_)
    if (core::glob_match(p, key)) return true;
  return false;
}

// ---- command_batch ----------------------------------------------------------------------

void command_batch::add_encoded(std::string_view command) {
  bytes.append(command);
  lengths.push_back(static_cast<std::uint32_t>(command.size()));
}

void command_batch::add(std::initializer_list<std::string_view> argv) {
  add(std::span<const std::string_view>(argv.begin(), argv.size()));
}

void command_batch::add(std::span<const std::string_view> argv) {
  std::size_t before = bytes.size();
  resp::reply_writer::command(bytes, argv);
  lengths.push_back(static_cast<std::uint32_t>(bytes.size() - before));
}

void command_batch::append(const command_batch& other) {
  bytes.append(other.bytes);
  lengths.insert(lengths.end(), other.lengths.begin(), other.lengths.end());
}

void command_batch::clear() {
  bytes.clear();
  lengths.clear();
}

void append_snapshot(command_batch& out, std::string_view key, core::value* v, std::size_t chunk) {
  out.add({"DEL", key});
  if (!v) return;
  core::value_commands(key, *v, chunk, 0, [&out](std::span<const std::string_view> argv) {
    out.add(argv);
    return true;
  });
  if (v->expire_at) out.add({"PEXPIREAT", key, std::to_string(v->expire_at)});
}

bool parse_command(std::string_view b, std::vector<std::string_view>& argv) {
  argv.clear();
  std::size_t at = 0, n = 0;
  if (!read_number_line(b, at, '*', n)) return false;
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t len = 0;
    if (!read_number_line(b, at, '$', len)) return false;
    if (at + len + 2 > b.size() || b[at + len] != '\r' || b[at + len + 1] != '\n') return false;
    argv.push_back(b.substr(at, len));
    at += len + 2;
  }
  return at == b.size();
}

// ---- translation ------------------------------------------------------------------------

namespace {

struct refresh_set {
  std::vector<std::pair<int, std::string>> order;
  std::unordered_set<std::string, core::string_hash, std::equal_to<>> members;  // "<db> <key>"
  int db = 0;  // the database of the keys asked about and added

  static std::string member(int d, std::string_view k) {
    std::string m = std::to_string(d);
    m += ' ';
    m += k;
    return m;
  }
  bool contains(std::string_view k) const { return !members.empty() && members.find(member(db, k)) != members.end(); }
  void add(std::string_view k) {
    if (contains(k)) return;
    order.emplace_back(db, k);
    members.emplace(member(db, k));
  }
};

// How an effect is translated, by its command name.
enum class effect_kind {
  marker,     // the stream's MULTI/EXEC, and FUNCTION: dropped
  flush,      // FLUSHALL/FLUSHDB: resync
  push,       // LPUSH/RPUSH: single key, merged with the next ones on the same key
  single,     // names exactly one key, argv[1]: forwarded or dropped by that key
  general,    // anything else: parsed and checked key by key
};

// The command name of an encoded effect ("*N\r\n$L\r\nNAME\r\n$K\r\nKEY\r\n...") and its
// argument count; `rest` is where the bytes after the key begin (npos without a key).
bool effect_head(std::string_view cmd, std::string_view& name, std::size_t& argc, std::size_t& rest) {
  std::size_t at = 0, len = 0;
  if (!read_number_line(cmd, at, '*', argc) || argc == 0) return false;
  if (!read_number_line(cmd, at, '$', len) || at + len + 2 > cmd.size()) return false;
  name = cmd.substr(at, len);
  at += len + 2;
  rest = std::string_view::npos;
  if (argc >= 2 && read_number_line(cmd, at, '$', len) && at + len + 2 <= cmd.size()) rest = at + len + 2;
  return true;
}

// Consecutive pushes to one key become one command: LPUSH k a; LPUSH k b == LPUSH k a b.
// Fewer commands for the upstream to queue, run and answer, and for hiredis to track.
class push_run {
 public:
  static constexpr std::size_t max_values = 4096;
  static constexpr std::size_t max_bytes = 512 * 1024;

  bool extends(std::string_view name, std::string_view key) const {
    return effects_ > 0 && name == name_ && key == key_ && count_ < max_values && bytes_ < max_bytes;
  }
  // values: the effect's value bulks, verbatim.
  void add(std::string_view cmd, std::string_view name, std::string_view key, std::string_view values,
           std::size_t count) {
    if (effects_ == 0) {
      first_ = cmd;
      first_values_ = values;
      name_ = name;
      key_ = key;
    } else {
      if (effects_ == 1) buf_.assign(first_values_);
      buf_.append(values);
    }
    ++effects_;
    count_ += count;
    bytes_ += cmd.size();
  }
  void flush(command_batch& out) {
    if (effects_ == 0) return;
    if (effects_ == 1) {
      out.add_encoded(first_);
    } else {
      const std::size_t start = out.bytes.size();
      auto bulk = [&out](std::string_view v) {
        out.bytes += '$';
        out.bytes += std::to_string(v.size());
        out.bytes += "\r\n";
        out.bytes.append(v);
        out.bytes += "\r\n";
      };
      out.bytes += '*';
      out.bytes += std::to_string(count_ + 2);
      out.bytes += "\r\n";
      bulk(name_);
      bulk(key_);
      out.bytes += buf_;
      out.lengths.push_back(static_cast<std::uint32_t>(out.bytes.size() - start));
    }
    effects_ = count_ = bytes_ = 0;
    buf_.clear();
  }

 private:
  std::string_view first_, first_values_, name_, key_;
  std::string buf_;
  std::size_t effects_ = 0, count_ = 0, bytes_ = 0;
};

// The kinds of the names seen in this turn (turns repeat a few names many times).
class kind_cache {
 public:
  explicit kind_cache(const key_source& src) : src_(src) {}
  effect_kind of(std::string_view name) {
    for (const auto& [n, k] : seen_)
      if (n == name) return k;
    effect_kind k = classify(name);
    if (seen_.size() < 16) seen_.emplace_back(name, k);
    return k;
  }

 private:
  effect_kind classify(std::string_view name) const {
    if (iequals(name, "multi") || iequals(name, "exec")) return effect_kind::marker;
    // FUNCTION LOAD/DELETE/FLUSH: libraries are server state, not keys; like the script
    // cache they stay local (an FCALL's effects are mirrored as the commands it ran).
    if (iequals(name, "function")) return effect_kind::marker;
    if (iequals(name, "flushall") || iequals(name, "flushdb") || iequals(name, "move") || iequals(name, "swapdb"))
      return effect_kind::flush;
    if (iequals(name, "lpush") || iequals(name, "rpush")) return effect_kind::push;
    return src_.single_key(name) ? effect_kind::single : effect_kind::general;
  }
  const key_source& src_;
  std::vector<std::pair<std::string_view, effect_kind>> seen_;
};

}  // namespace

translate_status translate_effects(std::string_view bytes, std::span<const core::effect_meta> effects,
                                   const key_filter& filter, const key_source& src, command_batch& out,
                                   int db_base) {
  std::vector<std::string_view> argv, keys, rewritten;
  std::vector<bool> matched;
  refresh_set refresh;
  push_run run;
  kind_cache kinds(src);
  // The last key checked against the filter: effects come in runs on one key.
  std::string_view last_key;
  bool last_match = false, have_last = false;
  auto key_matches = [&](std::string_view k) {
    if (!have_last || k != last_key) {
      last_key = k;
      last_match = filter.matches(k);
      have_last = true;
    }
    return last_match;
  };

  // The database the effects apply in, and the one the upstream is in (both relative to
  // db_base; a turn starts and ends in 0).
  int cur = 0, out_db = 0;
  auto select_upstream = [&](int d) {
    if (out_db == d) return;
    run.flush(out);
    const std::string n = std::to_string(d + db_base);
    out.add({"SELECT", n});
    out_db = d;
  };
  for (const auto& e : effects) {
    std::string_view cmd = bytes.substr(e.offset, e.length);
    if (e.select) {
      run.flush(out);  // a run of pushes never spans databases
      cur = e.db;
      refresh.db = cur;
      have_last = false;
      continue;
    }
    if (!e.persist) {  // PUBLISH
      run.flush(out);
      out.add_encoded(cmd);
      continue;
    }
    // Everything written below applies in `cur`.
    auto add_encoded = [&](std::string_view c) {
      select_upstream(cur);
      out.add_encoded(c);
    };
    auto add = [&](std::span<const std::string_view> command) {
      select_upstream(cur);
      out.add(command);
    };
    std::string_view name;
    std::size_t argc = 0, rest = 0;
    if (!effect_head(cmd, name, argc, rest)) continue;
    const effect_kind kind = kinds.of(name);
    if (kind == effect_kind::marker) continue;
    if (kind == effect_kind::flush) return translate_status::resync;
    if ((kind == effect_kind::push || kind == effect_kind::single) && !e.keyless) {
      const std::string_view key = e.key;
      if (refresh.contains(key) || !key_matches(key)) continue;
      if (kind == effect_kind::push && argc >= 3 && rest != std::string_view::npos) {
        if (!run.extends(name, key)) run.flush(out);
        select_upstream(cur);
        run.add(cmd, name, key, cmd.substr(rest), argc - 2);
        continue;
      }
      run.flush(out);
      add_encoded(cmd);
      continue;
    }
    // General: parse and look at every key.
    run.flush(out);
    if (!parse_command(cmd, argv) || argv.empty()) continue;
    keys.clear();
    if (!src.keys(argv, keys) && !e.keyless) keys.push_back(e.key);
    if (keys.empty()) {
      add_encoded(cmd);
      continue;
    }
    matched.assign(keys.size(), false);
    bool any = false, all = true, touches_refresh = false;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      matched[i] = filter.matches(keys[i]);
      any = any || matched[i];
      all = all && matched[i];
      touches_refresh = touches_refresh || refresh.contains(keys[i]);
    }
    if (touches_refresh) {
      for (std::size_t i = 0; i < keys.size(); ++i)
        if (matched[i]) refresh.add(keys[i]);
      continue;
    }
    if (all) {
      add_encoded(cmd);
      continue;
    }
    if (!any) continue;
    // Mixed: some keys mirrored, some not.
    if (iequals(name, "del") || iequals(name, "unlink")) {
      rewritten.assign({name});
      for (std::size_t i = 0; i < keys.size(); ++i)
        if (matched[i]) rewritten.push_back(keys[i]);
      add(rewritten);
    } else if (iequals(name, "mset") && argv.size() % 2 == 1) {
      rewritten.assign({name});
      for (std::size_t i = 1; i + 1 < argv.size(); i += 2)
        if (filter.matches(argv[i])) {
          rewritten.push_back(argv[i]);
          rewritten.push_back(argv[i + 1]);
        }
      add(rewritten);
    } else if ((iequals(name, "lmove") && argv.size() == 5) || (iequals(name, "rpoplpush") && argv.size() == 3)) {
      if (filter.matches(argv[1])) {
        bool left = argv.size() == 5 && iequals(argv[3], "left");
        {
          const std::string_view pop[] = {left ? "LPOP" : "RPOP", argv[1]};
          add(pop);
        }
      } else {
        refresh.add(argv[2]);
      }
    } else if ((iequals(name, "rename") || iequals(name, "renamenx")) && argv.size() == 3) {
      if (filter.matches(argv[1])) {
        const std::string_view del[] = {"DEL", argv[1]};
        add(del);
      }
      else refresh.add(argv[2]);
    } else {
      for (std::size_t i = 0; i < keys.size(); ++i)
        if (matched[i]) refresh.add(keys[i]);
    }
  }
  run.flush(out);
  for (const auto& [d, k] : refresh.order) {
    select_upstream(d);
    append_snapshot(out, k, src.find_in(d, k));
  }
  select_upstream(0);
  return translate_status::ok;
}

// ---- offsets ----------------------------------------------------------------------------

std::string offset_value(std::string_view run_id, std::uint64_t offset) {
  std::string v(run_id);
  v += ':';
  v += std::to_string(offset);
  return v;
}

std::optional<std::uint64_t> parse_offset_value(std::string_view value, std::string_view run_id) {
  if (value.size() <= run_id.size() + 1 || value.substr(0, run_id.size()) != run_id || value[run_id.size()] != ':')
    return std::nullopt;
  std::string_view digits = value.substr(run_id.size() + 1);
  std::uint64_t n = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || p != digits.data() + digits.size()) return std::nullopt;
  return n;
}

// ---- backlog ----------------------------------------------------------------------------

void mirror_backlog::reset(std::uint64_t offset) {
  entries_.clear();
  sent_ = 0;
  base_ = head_ = offset;
  bytes_ = unsent_bytes_ = 0;
}

void mirror_backlog::mark_sent(std::size_t upto) {
  for (std::size_t i = sent_; i < upto && i < entries_.size(); ++i) unsent_bytes_ -= entries_[i].commands.memory();
  sent_ = upto;
}

bool mirror_backlog::append(command_batch&& b) {
  if (b.empty()) return true;
  const std::uint64_t n = b.size();
  const std::uint64_t m = b.memory();
  if (bytes_ + m > limit_) {
    reset(head_ + n);
    return false;
  }
  head_ += n;
  bytes_ += m;
  unsent_bytes_ += m;
  entries_.push_back(entry{head_, std::move(b)});
  return true;
}

std::size_t mirror_backlog::next_send_count(std::size_t max_commands, std::size_t max_bytes) const {
  std::size_t count = 0, commands = 0, bytes = 0;
  for (std::size_t i = sent_; i < entries_.size(); ++i) {
    const auto& c = entries_[i].commands;
    if (count > 0 && (commands + c.size() > max_commands || bytes + c.bytes.size() > max_bytes)) break;
    ++count;
    commands += c.size();
    bytes += c.bytes.size();
  }
  return count;
}

void mirror_backlog::acked(std::uint64_t offset) {
  while (!entries_.empty() && entries_.front().end <= offset) {
    bytes_ -= entries_.front().commands.memory();
    entries_.pop_front();
    if (sent_ > 0) --sent_;
  }
  base_ = std::max(base_, offset);
}

bool mirror_backlog::resume_from(std::uint64_t offset) {
  if (offset < base_ || offset > head_) return false;
  if (offset != base_) {
    bool boundary = false;
    for (const auto& e : entries_) {
      if (e.end == offset) {
        boundary = true;
        break;
      }
      if (e.end > offset) break;
    }
    if (!boundary) return false;
  }
  acked(offset);
  sent_ = 0;
  unsent_bytes_ = bytes_;
  return true;
}

bool server_key_source::keys(std::span<const std::string_view> argv, std::vector<std::string_view>& out) const {
  const core::command_def* cmd = s_.lookup(argv[0]);
  if (!cmd) return false;
  auto k = s_.command_keys(*cmd, argv);
  out.insert(out.end(), k.begin(), k.end());
  return true;
}

bool server_key_source::single_key(std::string_view name) const {
  const core::command_def* c = s_.lookup(name);
  return c && c->first_key == 1 && c->last_key == 1 && !(c->flags & core::flag_movablekeys);
}

core::value* server_key_source::find(std::string_view key) const { return s_.db(0).peek(key); }

core::value* server_key_source::find_in(int db, std::string_view key) const {
  return db >= 0 && db < s_.db_count() ? s_.db(db).peek(key) : nullptr;
}

}  // namespace respq::redis_compat
