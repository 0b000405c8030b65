// aof_rewriter: see aof_rewriter.hpp for how the snapshot stays consistent.
#include "persistence/aof_rewriter.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>

#include "broker/core/script_engine.hpp"
#include "broker/core/server.hpp"
#include "broker/core/value_commands.hpp"
#include "resp/reply_writer.hpp"
#include "persistence/file_util.hpp"

namespace respq::persistence {

namespace {

constexpr std::size_t items_per_command = 64;  // Redis's AOF_REWRITE_ITEMS_PER_CMD
constexpr std::size_t write_threshold = 256 * 1024;

void put_len(std::string& out, char prefix, std::size_t n) {
  char buf[24];
  buf[0] = prefix;
  auto [p, ec] = std::to_chars(buf + 1, buf + sizeof buf - 2, n);
  (void)ec;
  *p++ = '\r';
  *p++ = '\n';
  out.append(buf, static_cast<std::size_t>(p - buf));
}

void put_bulk(std::string& out, std::string_view s) {
  put_len(out, '$', s.size());
  out.append(s);
  out.append("\r\n", 2);
}

void put_head(std::string& out, std::string_view cmd, std::string_view key, std::size_t items) {
  put_len(out, '*', 2 + items);
  put_bulk(out, cmd);
  put_bulk(out, key);
}

// After a key's last command: its deadline, as Redis's rewrite writes it.
void put_deadline(std::string& out, std::string_view key, const core::value& v) {
  if (!v.expire_at) return;
  put_head(out, "PEXPIREAT", key, 1);
  put_bulk(out, std::to_string(v.expire_at));
}

}  // namespace

aof_rewriter::aof_rewriter(core::server& s, std::string tmp_path) : s_(s), path_(std::move(tmp_path)) {}

aof_rewriter::~aof_rewriter() {
  if (fd_ >= 0) {
    ::unlink(path_.c_str());
    ::close(fd_);
  }
}

int aof_rewriter::open() {
  // O_APPEND: after a failed partial write the aof truncates the file back, and the next
  // write must land at the new end, not past a hole.
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) return errno;
  dbs_.assign(static_cast<std::size_t>(s_.db_count()), db_walk{});
  for (int i = 0; i < s_.db_count(); ++i) {
    std::uint64_t max_seq = 0;
    for (const auto& [k, v] : s_.db(i).all()) max_seq = std::max(max_seq, v.seq);
    auto& w = dbs_[static_cast<std::size_t>(i)];
    w.start_seq = max_seq + 1;
    w.done = s_.db(i).size() == 0;
  }
  walking_ = 0;
  file_db_ = 0;
  // The function libraries first, as Redis's rewrite does: they are server state, not
  // keys, and FUNCTION LOAD/DELETE/FLUSH made since now reach the file as effects after.
  for (const auto& [name, lib] : s_.scripts().libraries()) {
    put_len(out_, '*', 3);
    put_bulk(out_, "FUNCTION");
    put_bulk(out_, "LOAD");
    put_bulk(out_, lib.code);
  }
  snapshot_done_ = std::all_of(dbs_.begin(), dbs_.end(), [](const db_walk& w) { return w.done; });
  return 0;
}

int aof_rewriter::release_fd() {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

bool aof_rewriter::pending(int db, std::string_view key, const core::value& v) const {
  if (snapshot_done_) return false;
  const db_walk& w = dbs_[static_cast<std::size_t>(db)];
  if (w.done || v.seq >= w.start_seq || v.seq < w.cursor) return false;
  return w.done_early.find(key) == w.done_early.end();
}

void aof_rewriter::enter(int db) {
  if (file_db_ == db) return;
  const std::string n = std::to_string(db);
  put_len(out_, '*', 2);
  put_bulk(out_, "SELECT");
  put_bulk(out_, n);
  file_db_ = db;
}

void aof_rewriter::complete_snapshot() {
  snapshot_done_ = true;
  partial_ = false;
  for (auto& w : dbs_) {
    w.done = true;
    w.done_early.clear();
  }
  enter(0);  // what follows (effects, or nothing) is in database 0
}

void aof_rewriter::before_write(int db, std::string_view key, bool flush) {
  if (snapshot_done_) return;
  if (flush) {
    // The FLUSHALL/FLUSHDB effect follows everything written so far: see the header.
    if (db < 0) {
      complete_snapshot();
      return;
    }
    auto& w = dbs_[static_cast<std::size_t>(db)];
    w.done = true;
    w.done_early.clear();
    if (partial_ && partial_db_ == db) {
      partial_ = false;
      ++keys_;
    }
    if (std::all_of(dbs_.begin(), dbs_.end(), [](const db_walk& x) { return x.done; })) complete_snapshot();
    return;
  }
  core::value* v = s_.db(db).peek(key);
  if (!v) return;
  if (partial_ && partial_db_ == db && key == partial_key_) {
    enter(db);
    emit(key, *v, partial_index_, static_cast<std::size_t>(-1));
    partial_ = false;
    ++keys_;
    maybe_write();
    return;
  }
  if (!pending(db, key, *v)) return;
  enter(db);
  emit(key, *v, 0, static_cast<std::size_t>(-1));
  dbs_[static_cast<std::size_t>(db)].done_early.emplace(key);
  ++keys_;
  maybe_write();
}

void aof_rewriter::before_swapdb(int a, int b) {
  if (snapshot_done_) return;
  for (int db : {a, b}) {
    while (!dbs_[static_cast<std::size_t>(db)].done && !error_) step(db, static_cast<std::size_t>(-1));
    dbs_[static_cast<std::size_t>(db)].done = true;
  }
  if (std::all_of(dbs_.begin(), dbs_.end(), [](const db_walk& x) { return x.done; })) complete_snapshot();
  maybe_write();
}

void aof_rewriter::append_effects(std::string_view bytes) {
  if (error_) return;
  enter(0);  // batches start in database 0
  out_.append(bytes);
  maybe_write();
}

bool aof_rewriter::step(int db, std::size_t budget) {
  auto& w = dbs_[static_cast<std::size_t>(db)];
  if (w.done) return false;
  core::keyspace& ks = s_.db(db);
  if (partial_ && partial_db_ == db) {
    core::value* v = ks.peek(partial_key_);
    // The hook finishes a partial key before anything changes it, so it still exists.
    if (v && v->type() == core::value_type::list) {
      enter(db);
      partial_index_ = emit(partial_key_, *v, partial_index_, budget);
      if (partial_index_ < v->list().size()) return true;
    }
    partial_ = false;
    ++keys_;
    return true;
  }
  bool visited = false;
  std::string key;
  std::uint64_t seq = 0;
  ks.scan(w.cursor, 1, [&](const std::string& k, core::value& v) {
    visited = true;
    key = k;
    seq = v.seq;
  });
  if (!visited || seq >= w.start_seq) {
    w.done = true;
    w.done_early.clear();
    return false;
  }
  w.cursor = seq + 1;
  if (w.done_early.erase(key)) return true;
  core::value* v = ks.peek(key);
  enter(db);
  std::size_t next = emit(key, *v, 0, budget);
  if (v->type() == core::value_type::list && next < v->list().size()) {
    partial_ = true;
    partial_db_ = db;
    partial_key_ = key;
    partial_index_ = next;
    return true;
  }
  ++keys_;
  return true;
}

bool aof_rewriter::slice(std::size_t budget) {
  const std::uint64_t start = size();
  auto spent = [&] { return static_cast<std::size_t>(size() - start); };
  while (!snapshot_done_ && !error_ && spent() < budget) {
    // A partial list is finished first, wherever it is.
    const int db = partial_ ? partial_db_ : static_cast<int>(walking_);
    if (!partial_ && walking_ >= dbs_.size()) {
      complete_snapshot();
      break;
    }
    if (!step(db, budget - spent())) {
      if (!partial_) ++walking_;
      continue;
    }
    if (partial_) break;  // the budget ran out inside a list
  }
  maybe_write();
  return snapshot_done_;
}

std::size_t aof_rewriter::emit(std::string_view key, core::value& v, std::size_t from, std::size_t budget) {
  // A list stops once `budget` bytes were written (the rest in a later step); every other
  // value is written whole.
  std::size_t produced = 0;
  const std::size_t next = core::value_commands(key, v, items_per_command, from,
                                                [&](std::span<const std::string_view> argv) {
                                                  const std::size_t before = out_.size();
                                                  resp::reply_writer::command(out_, argv);
                                                  produced += out_.size() - before;
                                                  maybe_write();
                                                  return produced < budget;
                                                });
  if (v.type() != core::value_type::list || next >= v.list().size()) put_deadline(out_, key, v);
  return next;
}

void aof_rewriter::maybe_write() {
  if (out_.size() >= write_threshold) flush();
}

int aof_rewriter::flush() {
  if (error_ || out_.empty()) return error_;
  int err = 0;
  std::size_t n = write_all(fd_, out_, {}, err);
  written_ += n;
  if (err) {
    error_ = err;
    out_.clear();
    return error_;
  }
  out_.clear();
  return 0;
}

}  // namespace respq::persistence
