// aof_rewriter: one AOF rewrite without fork. It writes a temp file that replays to the
// dataset: a snapshot of every key as it was when the rewrite began, followed (and
// interleaved) by the effects logged since.
//
// How the snapshot stays a snapshot while clients keep writing (copy-on-write by hand):
//   - open() marks the snapshot point: every key existing then (creation sequence below
//     start_seq_) is pending. Keys are visited in creation order by a cursor; cron
//     slices serialize the next pending keys, a bounded number of bytes per slice (a long
//     list may be split across slices, as RPUSH batches).
//   - The core calls before_write(key) just before it modifies a key (the AOF, a server
//     module, wants key writes while a rewrite runs). A key still pending is serialized right then, so what the file
//     gets is its value at the snapshot point; it is then marked done.
//   - Effects arrive through append_effects() once per loop turn, after the commands
//     that made them. Every snapshot record of a key precedes the first effect that
//     touches the key (the hook runs before the modification, the effect is delivered
//     later), and effects keep their order, so replaying the file applies to each key
//     first its old value, then exactly the changes made since. Records of different
//     keys commute, so their interleaving does not matter. This is why no separate
//     rewrite buffer is needed: effects go to the temp file as they come.
//   - FLUSHALL/FLUSHDB during the rewrite (before_write with flush == true): every key
//     still pending is about to vanish, and the FLUSHALL effect itself will be written
//     after everything already in the file, so on replay it wipes whatever the snapshot
//     put there. Pending keys therefore need no snapshot at all: the snapshot is simply
//     declared complete. Keys made after the FLUSHALL reach the file as effects.
//   - A key that vanishes and comes back, or is renamed, gets a new creation sequence
//     (>= start_seq_), so the cursor never mistakes it for a pending key; a pending key
//     touched by RENAME is snapshotted by the hook before it moves.
//   Limit: a pending key is serialized whole by its first write, so writing to a very
//   long list early in a rewrite costs one pass over that list on that command.
//
// Databases: the snapshot point, the cursor and the keys done early are per database,
// and the cursor walks database 0, then 1, ... Every snapshot record is preceded by
// SELECT n when the file is in another database, and the file is back in database 0
// before each batch of effects and when the snapshot completes: the command stream's
// batches start and end in database 0 (command_stream.hpp), so the two interleave
// correctly. FLUSHDB (before_write with flush for one database) completes that
// database's snapshot as FLUSHALL does for all. SWAPDB (before_swapdb) first serializes
// every pending key of both databases where they are, then declares both complete: the
// SWAPDB effect comes after those records, so replay swaps them, and no record written
// later can land on the wrong side of it. MOVE's hook covers both of its keys.
//
// Effects must start at a batch boundary: the aof starts a rewrite only when the command
// stream holds no unflushed effects, otherwise effects already in the snapshot would be
// written again.
//
// Lists are written as RPUSH batches of up to 64 elements (as Redis's rewrite does),
// hashes as HSET batches of up to 64 pairs, strings as SET.
//
// Owner: the aof (broker thread). Writes to the temp file are plain write() calls of
// buffered bytes; the aof does the slow fsync of the finished snapshot in the background.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "broker/core/keyspace.hpp"

namespace respq::core {
class server;
}

namespace respq::persistence {

class aof_rewriter {
 public:
  aof_rewriter(core::server& s, std::string tmp_path);
  // Closes and unlinks the temp file unless release_fd() took it.
  ~aof_rewriter();
  aof_rewriter(const aof_rewriter&) = delete;
  aof_rewriter& operator=(const aof_rewriter&) = delete;

  // Creates the temp file and marks the snapshot point. Returns 0 or the errno.
  int open();
  // The core is about to modify `key` of database `db` (or, with flush, to drop every
  // key of it; db == -1: of every database).
  void before_write(int db, std::string_view key, bool flush);
  // The core is about to exchange databases a and b (SWAPDB).
  void before_swapdb(int a, int b);
  // The effects of one loop turn, RESP-encoded, in order.
  void append_effects(std::string_view bytes);
  // Serializes pending keys until about `budget` bytes were produced. Returns true when
  // the snapshot is complete.
  bool slice(std::size_t budget);
  bool snapshot_done() const { return snapshot_done_; }
  // Writes every buffered byte to the file. Returns 0 or the sticky errno.
  int flush();
  // The first write error on the temp file (sticky), 0 when none.
  int error() const { return error_; }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  // Bytes produced so far (written or buffered).
  std::uint64_t size() const { return written_ + out_.size(); }
  std::uint64_t keys_snapshotted() const { return keys_; }
  // The file became the AOF: hands over its descriptor and forgets the temp path.
  int release_fd();

 private:
  struct db_walk {
    std::uint64_t start_seq = 0;  // keys with seq below were in the database at the start
    std::uint64_t cursor = 0;     // next creation sequence to visit
    bool done = false;            // nothing of it is pending any more
    std::unordered_set<std::string, core::string_hash, std::equal_to<>> done_early;  // by the hook
  };
  bool pending(int db, std::string_view key, const core::value& v) const;
  // Serializes the next pending key of database `db` (or finishes the partial one) within
  // `budget` bytes. False when the database has nothing pending left.
  bool step(int db, std::size_t budget);
  // Writes SELECT db when the file is in another database.
  void enter(int db);
  void complete_snapshot();
  // Serializes a whole value (strings, hashes) or a list from element `from` on, until
  // `budget` bytes; returns the next list index (the list size when done).
  std::size_t emit(std::string_view key, core::value& v, std::size_t from, std::size_t budget);
  void maybe_write();

  core::server& s_;
  std::string path_;
  int fd_ = -1;
  int error_ = 0;
  std::string out_;            // serialized bytes not yet written
  std::uint64_t written_ = 0;
  std::vector<db_walk> dbs_;
  std::size_t walking_ = 0;       // the database the slices walk
  int file_db_ = 0;               // the database a replay of the file so far is in
  std::string partial_key_;       // a list being serialized across slices
  std::size_t partial_index_ = 0;
  int partial_db_ = 0;
  bool partial_ = false;
  bool snapshot_done_ = false;
  std::uint64_t keys_ = 0;
};

}  // namespace respq::persistence
