// mirror: replays respq's writes on the upstream Redis, in order, pipelined, exactly once.
//
// Contract. The link's stream sink hands every loop turn's effects to on_effects(), which
// translates them (mirror_stream.hpp), appends them to the bounded backlog and returns at
// once: clients never wait for the upstream and the mirror never fails a batch. The
// sender wraps runs of whole turns in
//     MULTI; <commands>; SET respq:mirror:<node-id>:offset <run id>:<offset>; EXEC
// with up to 2 such batches in flight on one connection; under load a batch leaves at most
// once a millisecond unless 64 KB are waiting (turns that come meanwhile join the next
// batch: fewer, larger batches). EXEC's reply acknowledges the
// batch and frees its backlog entries. A batch whose EXEC reports an error (the upstream
// refused a command, e.g. WRONGTYPE because someone else wrote that key) means the
// upstream diverged: resync.
//
// Link cuts. After every reconnect the sender reads the offset key back: the MULTI made
// it exact, so the upstream applied precisely the turns up to that offset. Sending
// resumes right after it: no loss, no duplicate. While the link is down the backlog
// grows; past mirror-backlog-size it is dropped and a resync is due.
//
// Resync (at start, after an overflow, after FLUSHALL, when the offset read back can't be
// bridged, or after an EXEC error). With the link up: SCAN the upstream for the keys the
// mirror-keys patterns match; then, at one instant of the broker thread, take the snapshot
// point R (a fresh offset), DEL every scanned key respq doesn't hold, and for every
// mirrored key respq holds send MULTI; DEL k; RPUSH/HSET/SET ...; EXEC (several small keys
// per MULTI), then SET the offset to R. Effects of later turns follow in the same pipeline,
// so the upstream converges to respq's state. Turns that happen while a resync is pending
// are not stored: the snapshot includes them. A cut during the resync is caught by the
// offset read back (it is not R), which triggers another resync.
//
// Shutdown: what the upstream has not acknowledged is sent over a blocking connection
// (offset read back first), so a stopped sidecar leaves its upstream exact.
//
// After a restart of respq the run id differs, so the first connection always resyncs:
// the upstream's mirrored keys become exactly what respq loaded (from its AOF, or nothing).
// Limits: a resync holds a copy of the mirrored data (the commands queued for hiredis)
// until it is written; SCAN sees the whole upstream db, so several sidecars mirroring into
// one upstream db need disjoint mirror-keys (or different upstream-db), or their resyncs
// delete each other's keys.
//
// Thread: the broker thread.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "broker/core/command_stream.hpp"
#include "broker/core/figures.hpp"
#include "redis-compat/mirror_stream.hpp"

struct redisContext;

// The broker thread's event loop, passed by reference (asio stays out of this header).
namespace asio {
class io_context;
}

namespace respq::core {
class server;
}

namespace respq::redis_compat {

class upstream_connection;

class mirror {
 public:
  mirror(core::server& s, upstream_connection& conn, asio::io_context& io_context, std::string node_id, key_filter filter);
  ~mirror();

  void on_effects(std::string_view bytes, std::span<const core::effect_meta> effects);
  void on_link_ready();
  void on_link_lost();
  void cron();
  // The mirrored keys changed (a queue became shared or stopped being shared): resync.
  void set_filter(key_filter filter);
  // Shutdown, after the loop ended and the asynchronous connection closed: commands the
  // upstream may not have applied yet.
  bool has_unapplied() const;
  // Sends them over a blocking connection, resuming after the upstream's offset as a
  // reconnect would. Returns how many commands were sent (0 when there was nothing to
  // send or it could not be done; the next start resyncs anyway).
  std::size_t drain(redisContext* c);
  // Lines for INFO mirror ("k:v\r\n").
  std::string info() const;
  // Fills the mirror part of the link's figures.
  void figures(core::link_figures& f) const;

  const std::string& offset_key() const { return offset_key_; }

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  std::string offset_key_;
};

}  // namespace respq::redis_compat
