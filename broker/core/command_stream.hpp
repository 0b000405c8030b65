// command_stream: the one write path. Every change to the keyspace is appended here as
// the command that reproduces it (an effect: a served BRPOP is an RPOP, a dispatched HTTP
// task is an RPOP plus an HSET on <queue>:inflight), RESP-encoded once. Sinks (the AOF,
// the Redis mirror) receive each loop turn's batch before any reply of that turn is
// written, which is what makes group commit possible.
//
// Databases: every effect applies in a database (effect_meta::db, the server's current
// one when it was appended). The bytes carry `SELECT n` before an effect whose database
// differs from the previous effect's (as Redis's feedAppendOnlyFile does with its last
// selected db), and every batch starts and ends in database 0: a batch that left it ends
// with SELECT 0. So a sink can write, replay or forward any batch on its own: the AOF is
// in database 0 between batches whatever was appended before, and so is the mirror's
// upstream connection. A SELECT inside an atomic group's MULTI/EXEC is valid for Redis.
//
// Owner: the server core (broker thread). Sinks are called on the broker thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace respq::core {

// Where one effect sits inside a batch, for sinks that filter by key (mirror-keys).
struct effect_meta {
  std::size_t offset;   // into the batch bytes
  std::size_t length;
  std::string key;      // first key the effect touches; empty for MULTI/EXEC/FLUSHALL
  bool keyless;         // FLUSHALL/FLUSHDB/MULTI/EXEC: applies to every filter
  bool persist = true;  // false for PUBLISH: mirrored, never written to the AOF
  int db = 0;           // the database it applies in; -1 for MULTI/EXEC/PUBLISH
  bool select = false;  // a SELECT db (keyless) the stream put in
};

class stream_sink {
 public:
  virtual ~stream_sink() = default;
  // A batch of effects, in order. Called once per loop turn with at least one effect,
  // before any reply of that turn is written. Returning false means the batch could not
  // be made durable as promised (appendfsync always): the server then withholds the
  // replies of the clients that wrote in this turn and closes their connections, so no
  // write is acknowledged that was not persisted.
  virtual bool on_effects(std::string_view bytes, std::span<const effect_meta> effects) = 0;
};

class command_stream {
 public:
  // Appends one effect. `key_index` is the argument index of the key (0: keyless).
  void append(std::span<const std::string_view> argv, std::size_t key_index = 1);
  void append(std::initializer_list<std::string_view> argv, std::size_t key_index = 1) {
    append(std::span<const std::string_view>(argv.begin(), argv.size()), key_index);
  }
  // PUBLISH channel message: for the mirror only (the AOF skips it, as Redis's does).
  void append_publish(std::string_view channel, std::string_view message, bool sharded = false);
  // Effects between begin_atomic() and end_atomic() are wrapped in MULTI/EXEC when there
  // are two or more of them (so a torn tail of the log can't apply half of them).
  void begin_atomic();
  void end_atomic();
  // Ends the outermost atomic block by dropping every effect appended since it began
  // (a script stopped by SHUTDOWN NOSAVE: its half-run writes reach no sink).
  void abort_atomic();
  // The database of the effects appended from now on (the server's current one).
  void set_db(int db) { db_ = db; }

  bool empty() const { return effects_.empty(); }
  // Hands the batch to every sink and clears it. False when a sink failed.
  bool flush();
  void add_sink(stream_sink* s) { sinks_.push_back(s); }
  void remove_sink(stream_sink* s);

  std::uint64_t total_effects() const { return total_; }
  // Effects are only encoded while a sink listens (AOF or mirror on).
  bool active() const { return !sinks_.empty(); }

 private:
  std::string bytes_;
  std::vector<effect_meta> effects_;
  std::vector<stream_sink*> sinks_;
  void append_select(int db);

  int db_ = 0;           // database of the next effect
  int emitted_db_ = 0;   // database the bytes so far leave the reader in
  int atomic_depth_ = 0;
  std::size_t atomic_start_bytes_ = 0, atomic_start_index_ = 0;
  int atomic_start_db_ = 0;
  std::uint64_t total_ = 0;
};

}  // namespace respq::core
