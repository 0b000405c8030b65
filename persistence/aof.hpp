// aof: the append-only file. A sink of the core's command stream that writes every
// persisted effect (PUBLISH is not) to <dir>/<appendfilename> in RESP: the single-file
// layout of Redis before 7.0, so `redis-cli --pipe < appendonly.aof` replays it into a
// real Redis.
//
// Durability, per appendfsync:
//   always    group commit: on_effects() runs once per loop turn, before any reply of the
//             turn is written; it does one write() and one fdatasync() for the whole
//             batch. When either fails it returns false, and the core withholds the
//             replies of that turn's writers (and closes their connections): nothing is
//             acknowledged that is not on disk, even to kill -9.
//   everysec  write() per turn; fdatasync on the background thread at most once a
//             second. As in Redis, when the previous fsync is still running the write is
//             postponed, for at most 2 s, then done anyway (aof_delayed_fsync counts it).
//   no        write() per turn; the kernel decides when data reaches the disk.
// A clean stop (SHUTDOWN, SIGTERM) writes and fsyncs everything under every policy.
//
// Write failures (disk full, I/O error): the bytes that could not be written stay
// buffered (a partial write is truncated away when possible, so the file never keeps
// half a record that is later written again), and write commands are refused with
// "MISCONF Errors writing to the AOF file: <strerror>" while reads go on. The write and
// fsync are retried every cron tick (and with every new batch); the first success makes
// writes acceptable again. Under always an fsync failure also truncates the unsynced
// bytes away and writes them again, so a later success really covers them.
//
// Rewrite (BGREWRITEAOF, automatic growth, CONFIG SET appendonly yes): see
// aof_rewriter.hpp. Here: a rewrite starts only at a batch boundary (no unflushed
// effects in the stream; otherwise it is scheduled for the end of the current batch),
// is advanced by cron slices, its finished snapshot is fsynced in the background, then
// the temp file is fsynced once more, renamed over the AOF and the directory fsynced;
// appending continues on the new file and the old descriptor is closed in the background.
//
// Threads: everything here runs on the broker thread except the jobs given to
// background_jobs (fsync, close), which report through atomics in file_sync.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "broker/core/command_stream.hpp"
#include "broker/core/figures.hpp"
#include "broker/core/module.hpp"
#include "persistence/background_jobs.hpp"

namespace respq::core {
class server;
}

namespace respq::persistence {

class aof_rewriter;

class aof final : public core::stream_sink, public core::server_module {
 public:
  // `dir` is where the file lives ("." when the process already runs in the configured
  // dir, as respq-server does).
  aof(core::server& s, std::string dir);
  ~aof() override;
  aof(const aof&) = delete;
  aof& operator=(const aof&) = delete;

  // Loads the file when appendonly is yes, opens it for appending, then registers with
  // the server as a module (write refusal, INFO persistence, BGREWRITEAOF, cron, CONFIG
  // SET); the destructor unregisters it. The sink is registered only while the AOF is on
  // or a rewrite runs (the stream encodes nothing without sinks), key writes are wanted
  // only while a rewrite runs. Call before the task manager recovers and before clients
  // are served. Returns an error text when the server must not start.
  std::string start();
  // Writes and fsyncs everything buffered, abandons a rewrite in progress, closes the
  // file and waits for background jobs. Idempotent.
  void shutdown();

  bool on_effects(std::string_view bytes, std::span<const core::effect_meta> effects) override;

  // Ten times a second (server::cron): retries failed writes, schedules the everysec
  // fsync, runs a rewrite slice, starts automatic rewrites.
  void cron() override;
  // BGREWRITEAOF: the status text, or an error starting with "ERR".
  std::string bgrewriteaof() override;
  // The figures of INFO persistence's aof_ lines, as data (INFO renders them from it).
  core::aof_figures figures() const;
  std::string info() const;
  // INFO persistence is info().
  bool info_section(std::string_view name, std::string& body) override;
  // Non-empty while writes must be refused (MISCONF ...).
  std::string write_refusal() const override;
  // CONFIG SET appendonly, appendfsync, ...
  void on_config(const std::string& name) override;
  // While a rewrite runs: its copy-on-write of the key (or of the flushed or swapped
  // databases) before the write.
  void before_key_write(int db, std::string_view key, bool flush) override;
  void before_swapdb(int a, int b) override;

  bool enabled() const { return state_ != state::off; }
  bool rewrite_in_progress() const { return rw_ != nullptr; }
  const std::string& path() const { return path_; }
  std::uint64_t current_size() const { return current_size_; }
  // Bytes a cron slice of a rewrite serializes (tests make it small).
  void set_slice_budget(std::size_t bytes) { slice_budget_ = bytes; }
  // Waits for the background thread (tests).
  void wait_background() { jobs_.drain(); }

 private:
  enum class state { off, on, wait_rewrite };  // wait_rewrite: turned on, file being made
  // Sync state of one open AOF descriptor, shared with its background fsync jobs.
  struct file_sync {
    std::atomic<int> in_flight{0};
    std::atomic<int> err{0};
    std::atomic<std::uint64_t> synced{0};
  };

  std::string_view persisted(std::string_view bytes, std::span<const core::effect_meta> effects);
  void update_sink();
  bool open_file(std::string& err);
  std::size_t total_keys() const;  // in every database
  // Writes buf_ then `extra` per the policy; false when the write or the always-fsync
  // failed (unwritten bytes are kept in buf_). `force` ignores the everysec postponing.
  bool write_out(std::string_view extra, bool force);
  void background_fsync(bool force);
  void set_write_error(int err, const char* what);
  void clear_write_error();
  bool write_failing() const;

  void request_rewrite();
  bool start_rewrite();
  void step_rewrite(bool at_boundary);
  void finish_rewrite();
  void abort_rewrite(const std::string& why);
  void close_in_background(int fd);

  void enable();   // CONFIG SET appendonly yes
  void disable();  // CONFIG SET appendonly no

  core::server& s_;
  std::string dir_, path_;
  state state_ = state::off;
  int fd_ = -1;
  std::shared_ptr<file_sync> sync_ = std::make_shared<file_sync>();
  std::string buf_;      // bytes not yet written to fd_ (postponed or failed)
  std::string scratch_;  // a batch without its non-persisted effects
  std::uint64_t current_size_ = 0, base_size_ = 0;
  std::uint64_t fsync_offset_ = 0;  // bytes known synced (always) / handed to an fsync (everysec)
  std::chrono::steady_clock::time_point last_fsync_{};
  bool postponed_ = false;
  std::chrono::steady_clock::time_point postponed_since_{};
  std::uint64_t delayed_fsync_ = 0;
  int write_errno_ = 0;  // last write/fsync failure of the foreground path, 0 when fine
  std::chrono::steady_clock::time_point last_error_log_{};

  std::unique_ptr<aof_rewriter> rw_;
  bool rewrite_scheduled_ = false;
  bool bulk_sync_submitted_ = false;
  std::shared_ptr<std::atomic<int>> bulk_sync_;  // -1 running, else errno of the fsync
  std::chrono::steady_clock::time_point rewrite_started_{};
  std::chrono::steady_clock::time_point rewrite_retry_after_{};
  long long last_rewrite_secs_ = -1;
  bool last_rewrite_ok_ = true;
  std::uint64_t rewrites_ = 0;
  std::uint64_t rewrite_failures_ = 0;  // consecutive
  std::size_t slice_budget_ = 4 * 1024 * 1024;

  bool stopped_ = false;
  bool sink_registered_ = false;
  background_jobs jobs_;
};

}  // namespace respq::persistence
