// aof: see aof.hpp for the durability contract and the rewrite's steps.
#include "persistence/aof.hpp"

#include <sys/stat.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "broker/core/log.hpp"
#include "broker/core/server.hpp"
#include "persistence/aof_loader.hpp"
#include "persistence/aof_rewriter.hpp"
#include "persistence/file_util.hpp"

namespace respq::persistence {

using std::chrono::steady_clock;
using core::fsync_policy;

namespace {

constexpr auto postpone_limit = std::chrono::seconds(2);         // Redis: 2 s of fsync in progress
constexpr auto error_log_interval = std::chrono::seconds(30);    // Redis: AOF_WRITE_LOG_ERROR_RATE
constexpr auto rewrite_retry_delay = std::chrono::seconds(5);

void line(std::string& o, std::string_view k, const std::string& v) {
  o.append(k);
  o += ':';
  o += v;
  o += "\r\n";
}

}  // namespace

aof::aof(core::server& s, std::string dir) : s_(s), dir_(std::move(dir)) {
  path_ = join_path(dir_, s_.cfg().appendfilename);
}

aof::~aof() {
  shutdown();
  s_.stream().remove_sink(this);
  s_.unregister_module(*this);
}

std::string aof::start() {
  bool loaded = false;
  if (s_.cfg().appendonly) {
    load_result r = load_aof(s_, path_, s_.cfg().aof_load_truncated);
    if (!r.error.empty()) return r.error;
    loaded = r.found;
    std::string err;
    if (!open_file(err)) return err;
    state_ = state::on;
    // Batches are appended in database 0 (see command_stream.hpp); a file whose tail left
    // another one selected (cut short inside a batch) gets it selected back first.
    if (r.ends_in_db != 0) buf_.assign("*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n");
  }
  // A directory Redis wrote: respq starts without its data, and says how to bring it over.
  if (!loaded) {
    struct stat st {};
    const bool redis_aof = ::stat(join_path(dir_, "appendonlydir").c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    const bool redis_rdb = ::stat(join_path(dir_, "dump.rdb").c_str(), &st) == 0;
    if (redis_aof || redis_rdb)
      core::log_warning(std::string("This directory holds Redis's data (") +
                        (redis_aof ? "appendonlydir/" : "") + (redis_aof && redis_rdb ? ", " : "") +
                        (redis_rdb ? "dump.rdb" : "") +
                        "), which respq does not read: it starts without it. To bring it over, MIGRATE the keys "
                        "from a Redis running on it (respq's RESTORE reads Redis 7.0's payloads), or have that "
                        "Redis rewrite its AOF as commands (CONFIG SET aof-use-rdb-preamble no, BGREWRITEAOF) and "
                        "give respq its .base.aof and .incr.aof files, concatenated in the manifest's order, as " +
                        s_.cfg().appendfilename);
  }
  // Effects of the loaded commands are already in the file: drop them before this sink
  // (or any other) can receive them.
  if (!s_.stream().empty()) s_.stream().flush();
  update_sink();

  s_.register_module(*this, core::server_module::refuses_writes | core::server_module::rewrites_aof);
  return {};
}

bool aof::info_section(std::string_view name, std::string& body) {
  if (name != "persistence") return false;
  body += info();
  return true;
}

void aof::before_key_write(int db, std::string_view key, bool flush) {
  if (rw_) rw_->before_write(db, key, flush);
}

void aof::before_swapdb(int a, int b) {
  if (rw_) rw_->before_swapdb(a, b);
}

std::size_t aof::total_keys() const {
  std::size_t n = 0;
  for (int i = 0; i < s_.db_count(); ++i) n += s_.db(i).size();
  return n;
}

bool aof::open_file(std::string& err) {
  const bool existed = ::access(path_.c_str(), F_OK) == 0;
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    err = "Can't open the append-only file " + path_ + ": " + error_text(errno);
    return false;
  }
  long long size = file_size(fd_);
  current_size_ = base_size_ = fsync_offset_ = size > 0 ? static_cast<std::uint64_t>(size) : 0;
  sync_ = std::make_shared<file_sync>();
  sync_->synced = current_size_;
  // A new file's name must survive a crash as much as its first record does.
  if (!existed) {
    if (int e = sync_parent_dir(path_)) core::log_warning("fsync of the directory of " + path_ + " failed: " + error_text(e));
  }
  return true;
}

void aof::update_sink() {
  // The stream encodes effects only while a sink listens, so the AOF listens only while
  // it needs them: on, turning on, or rewriting.
  const bool want = state_ != state::off || rw_ || rewrite_scheduled_;
  if (want == sink_registered_) return;
  if (want) s_.stream().add_sink(this);
  else s_.stream().remove_sink(this);
  sink_registered_ = want;
}

void aof::shutdown() {
  if (stopped_) return;
  stopped_ = true;
  if (rw_) abort_rewrite("the server is shutting down (the AOF is complete without it)");
  if (fd_ >= 0) {
    core::log_notice("Calling fsync() on the AOF file.");
    write_out({}, true);
    if (!buf_.empty())
      core::log_warning("Could not write " + std::to_string(buf_.size()) + " bytes to the AOF at shutdown: " +
                        error_text(write_errno_));
    jobs_.drain();
    if (int e = sync_data(fd_)) core::log_warning("fsync of the AOF at shutdown failed: " + error_text(e));
    ::close(fd_);
    fd_ = -1;
  }
  jobs_.drain();
  state_ = state::off;
}

// ---- the write path ------------------------------------------------------------------

std::string_view aof::persisted(std::string_view bytes, std::span<const core::effect_meta> effects) {
  bool all = true;
  for (const auto& e : effects)
    if (!e.persist) {
      all = false;
      break;
    }
  if (all) return bytes;
  scratch_.clear();
  for (const auto& e : effects)
    if (e.persist) scratch_.append(bytes.substr(e.offset, e.length));
  return scratch_;
}

bool aof::on_effects(std::string_view bytes, std::span<const core::effect_meta> effects) {
  bool ok = true;
  if (state_ != state::off || rw_) {
    std::string_view data = persisted(bytes, effects);
    if (!data.empty()) {
      if (rw_) rw_->append_effects(data);
      if (state_ == state::on) ok = write_out(data, false);
    }
  }
  // A batch boundary: the keyspace now matches every effect handed out, which is where
  // a rewrite may begin.
  if (rewrite_scheduled_ && !rw_) start_rewrite();
  else step_rewrite(true);
  return ok;
}

bool aof::write_out(std::string_view extra, bool force) {
  const fsync_policy policy = s_.cfg().appendfsync;
  const auto now = steady_clock::now();
  if (fd_ < 0) {
    buf_.append(extra);
    return false;
  }
  const bool have_bytes = !buf_.empty() || !extra.empty();
  if (policy == fsync_policy::everysec && !force && have_bytes && sync_->in_flight.load() > 0) {
    // write() would wait behind the running fsync on most file systems: hold the bytes,
    // but not for more than 2 s (Redis's rule).
    if (!postponed_) {
      postponed_ = true;
      postponed_since_ = now;
      buf_.append(extra);
      return true;
    }
    if (now - postponed_since_ < postpone_limit) {
      buf_.append(extra);
      return true;
    }
    ++delayed_fsync_;
    core::log_notice("Asynchronous AOF fsync is taking too long (disk is busy?). Writing the AOF buffer without "
                     "waiting for fsync to complete, this may slow down respq.");
  }
  postponed_ = false;
  const std::uint64_t before = current_size_;
  if (have_bytes) {
    int err = 0;
    // LATENCY: Redis's aof-write events (the monitor is off unless its threshold is set).
    const bool timed = s_.cfg().latency_monitor_threshold > 0;
    const auto write_start = timed ? steady_clock::now() : steady_clock::time_point{};
    std::size_t n = write_all(fd_, buf_, extra, err);
    if (timed) {
      const long long ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - write_start).count();
      s_.latency_sample(sync_->in_flight.load() > 0 ? "aof-write-pending-fsync"
                        : rw_                       ? "aof-write-active-child"
                                                    : "aof-write-alone",
                        ms);
      s_.latency_sample("aof-write", ms);
    }
    if (err) {
      // Cut a partial record off so the file ends on a record boundary; the bytes stay
      // buffered and are written again, whole, on the next attempt.
      if (n > 0 && ::ftruncate(fd_, static_cast<off_t>(before)) == 0) n = 0;
      if (n >= buf_.size()) {
        std::string rest(extra.substr(n - buf_.size()));
        buf_ = std::move(rest);
      } else {
        buf_.erase(0, n);
        buf_.append(extra);
      }
      current_size_ += n;
      set_write_error(err, "writing to");
      return policy != fsync_policy::always;
    }
    current_size_ += n;
    if (policy != fsync_policy::always) buf_.clear();
  }
  if (policy == fsync_policy::always) {
    if (fsync_offset_ != current_size_) {
      const auto sync_start = steady_clock::now();
      const int sync_err = sync_data(fd_);
      s_.latency_sample("aof-fsync-always",
                        std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - sync_start).count());
      if (int err = sync_err) {
        // After a failed fsync the kernel may have marked the pages clean without writing
        // them: cut the bytes off and write them again, so a later successful fsync
        // really covers them.
        if (current_size_ > before && ::ftruncate(fd_, static_cast<off_t>(before)) == 0) {
          current_size_ = before;
          buf_.append(extra);
        } else {
          buf_.clear();
        }
        set_write_error(err, "fsync-ing");
        return false;
      }
      fsync_offset_ = current_size_;
      sync_->synced = current_size_;
      last_fsync_ = now;
    }
    buf_.clear();
  } else if (policy == fsync_policy::everysec) {
    background_fsync(false);
  }
  clear_write_error();
  return true;
}

void aof::background_fsync(bool force) {
  if (fd_ < 0) return;
  if (fsync_offset_ == current_size_ && sync_->err.load() == 0) return;
  if (sync_->in_flight.load() > 0) return;
  const auto now = steady_clock::now();
  if (!force && now - last_fsync_ < std::chrono::seconds(1)) return;
  const int fd = fd_;
  const std::uint64_t upto = current_size_;
  auto st = sync_;
  ++st->in_flight;
  jobs_.submit([fd, upto, st] {
    if (int e = sync_data(fd)) {
      if (st->err.exchange(e) == 0) core::log_warning("Fail to fsync the AOF file: " + error_text(e));
    } else {
      if (st->err.exchange(0) != 0) core::log_warning("AOF fsync succeeded again: writes are accepted");
      st->synced = upto;
    }
    --st->in_flight;
  });
  fsync_offset_ = upto;
  last_fsync_ = now;
}

void aof::set_write_error(int err, const char* what) {
  const auto now = steady_clock::now();
  if (write_errno_ == 0 || now - last_error_log_ > error_log_interval) {
    last_error_log_ = now;
    core::log_warning(std::string("Error ") + what + " the AOF file: " + error_text(err) +
                      ". Write commands are refused (MISCONF) until it succeeds again; reads go on.");
  }
  write_errno_ = err;
}

void aof::clear_write_error() {
  if (write_errno_ == 0) return;
  write_errno_ = 0;
  core::log_warning("AOF write error looks solved, respq can write again.");
}

bool aof::write_failing() const { return state_ != state::off && (write_errno_ != 0 || sync_->err.load() != 0); }

std::string aof::write_refusal() const {
  if (!write_failing()) return {};
  int e = write_errno_ ? write_errno_ : sync_->err.load();
  return "MISCONF Errors writing to the AOF file: " + error_text(e);
}

// ---- cron ------------------------------------------------------------------------------

void aof::cron() {
  if (stopped_) return;
  // A sink that is no longer needed leaves here, never from inside on_effects(), which
  // the stream calls while walking its sinks.
  update_sink();
  const fsync_policy policy = s_.cfg().appendfsync;
  if (state_ == state::on) {
    // Failed or postponed bytes, and an always-fsync that failed, are retried here even
    // when no new write arrives.
    if (!buf_.empty() || write_errno_ != 0 || (policy == fsync_policy::always && fsync_offset_ != current_size_))
      write_out({}, false);
    if (policy == fsync_policy::everysec) background_fsync(false);
  }
  step_rewrite(false);
  if (rw_) return;
  const auto now = steady_clock::now();
  if (rewrite_scheduled_) {
    request_rewrite();
  } else if (state_ == state::wait_rewrite && now >= rewrite_retry_after_) {
    request_rewrite();  // turning the AOF on needs a rewrite; the last one failed
  } else if (state_ == state::on && now >= rewrite_retry_after_) {
    const auto& cfg = s_.cfg();
    if (cfg.auto_aof_rewrite_percentage > 0 && current_size_ > cfg.auto_aof_rewrite_min_size) {
      const std::uint64_t base = base_size_ ? base_size_ : 1;
      const std::uint64_t growth = current_size_ * 100 / base - 100;
      if (current_size_ >= base && growth >= cfg.auto_aof_rewrite_percentage) {
        core::log_notice("Starting automatic rewriting of AOF on " + std::to_string(growth) + "% growth");
        request_rewrite();
      }
    }
  }
}

// ---- rewrite ---------------------------------------------------------------------------

std::string aof::bgrewriteaof() {
  if (rw_ || rewrite_scheduled_) return "ERR Background append only file rewriting already in progress";
  if (!s_.stream().empty()) {
    // Effects of this turn are not flushed yet (another sink listens): begin at the end
    // of the batch.
    rewrite_scheduled_ = true;
    update_sink();
    return "Background append only file rewriting started";
  }
  if (!start_rewrite())
    return "ERR Can't execute an AOF background rewriting. Please check the server logs for more information.";
  return "Background append only file rewriting started";
}

void aof::request_rewrite() {
  if (rw_) return;
  if (s_.stream().empty()) {
    start_rewrite();
  } else {
    rewrite_scheduled_ = true;
    update_sink();
  }
}

bool aof::start_rewrite() {
  rewrite_scheduled_ = false;
  if (stopped_) return false;
  std::string tmp = join_path(dir_, "temp-rewriteaof-bg-" + std::to_string(::getpid()) + ".aof");
  auto rw = std::make_unique<aof_rewriter>(s_, tmp);
  if (int e = rw->open()) {
    core::log_warning("Can't open the temporary file " + tmp + " for the AOF rewrite: " + error_text(e));
    last_rewrite_ok_ = false;
    ++rewrite_failures_;
    rewrite_retry_after_ = steady_clock::now() + rewrite_retry_delay;
    return false;
  }
  rw_ = std::move(rw);
  update_sink();  // effects from here on are the rewrite's (a no-op inside on_effects: already a sink)
  // Key writes are wanted only while a rewrite runs: without a module wanting them the
  // core skips computing the keys of every write command.
  s_.want_key_writes(*this, true);
  bulk_sync_submitted_ = false;
  rewrite_started_ = steady_clock::now();
  core::log_notice("Background append only file rewriting started (" + std::to_string(total_keys()) + " keys)");
  return true;
}

void aof::step_rewrite(bool at_boundary) {
  if (!rw_) return;
  if (rw_->error()) {
    abort_rewrite("error writing " + rw_->path() + ": " + error_text(rw_->error()));
    return;
  }
  if (!rw_->snapshot_done()) {
    // Slices run from cron only, so one loop turn never pays for more than one.
    if (at_boundary) return;
    rw_->slice(slice_budget_);
    if (rw_->error()) {
      abort_rewrite("error writing " + rw_->path() + ": " + error_text(rw_->error()));
      return;
    }
    if (!rw_->snapshot_done()) return;
  }
  if (!bulk_sync_submitted_) {
    if (int e = rw_->flush()) {
      abort_rewrite("error writing " + rw_->path() + ": " + error_text(e));
      return;
    }
    // The bulk of the new file reaches the disk off the loop; the last bytes are synced
    // in finish_rewrite().
    bulk_sync_ = std::make_shared<std::atomic<int>>(-1);
    const int fd = rw_->fd();
    auto st = bulk_sync_;
    jobs_.submit([fd, st] { st->store(sync_data(fd)); });
    bulk_sync_submitted_ = true;
    return;
  }
  const int r = bulk_sync_->load();
  if (r < 0) return;
  if (r != 0) {
    abort_rewrite("fsync of " + rw_->path() + " failed: " + error_text(r));
    return;
  }
  finish_rewrite();
}

void aof::finish_rewrite() {
  if (int e = rw_->flush()) {
    abort_rewrite("error writing " + rw_->path() + ": " + error_text(e));
    return;
  }
  if (int e = sync_data(rw_->fd())) {
    abort_rewrite("fsync of " + rw_->path() + " failed: " + error_text(e));
    return;
  }
  const auto rename_start = steady_clock::now();
  const int renamed = ::rename(rw_->path().c_str(), path_.c_str()) == 0 ? 0 : errno;
  s_.latency_sample("aof-rename",
                    std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - rename_start).count());
  if (renamed != 0) {
    abort_rewrite("can't rename " + rw_->path() + " to " + path_ + ": " + error_text(renamed));
    return;
  }
  if (int e = sync_parent_dir(path_))
    core::log_warning("fsync of the directory of " + path_ + " after the rewrite failed: " + error_text(e));
  const std::uint64_t size = rw_->size();
  const std::uint64_t keys = rw_->keys_snapshotted();
  const int newfd = rw_->release_fd();
  rw_.reset();
  s_.want_key_writes(*this, false);
  bulk_sync_submitted_ = false;
  if (fd_ >= 0) close_in_background(fd_);  // after any fsync still queued on it
  fd_ = newfd;
  // The new file holds every effect, failed or postponed ones included, and is synced.
  sync_ = std::make_shared<file_sync>();
  sync_->synced = size;
  current_size_ = base_size_ = fsync_offset_ = size;
  buf_.clear();
  postponed_ = false;
  if (write_errno_ != 0) {
    write_errno_ = 0;
    core::log_warning("AOF write error looks solved (the rewritten file holds every write), respq can write again.");
  }
  if (state_ == state::wait_rewrite) {
    state_ = state::on;
    core::log_notice("Append only file enabled: " + path_ + " holds the dataset; appending to it from now on");
  } else if (state_ == state::off) {
    close_in_background(fd_);  // BGREWRITEAOF with appendonly no: the file is written, not kept open
    fd_ = -1;
  }
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(steady_clock::now() - rewrite_started_);
  last_rewrite_secs_ = secs.count();
  last_rewrite_ok_ = true;
  rewrite_failures_ = 0;
  ++rewrites_;
  core::log_notice("Background AOF rewrite finished successfully (" + std::to_string(keys) + " keys, " +
                   std::to_string(size) + " bytes)");
}

void aof::abort_rewrite(const std::string& why) {
  core::log_warning("Background AOF rewrite terminated with error: " + why);
  ::unlink(rw_->path().c_str());
  // The descriptor may still be in a queued fsync: close it after that, off the loop.
  close_in_background(rw_->release_fd());
  rw_.reset();
  s_.want_key_writes(*this, false);
  bulk_sync_submitted_ = false;
  last_rewrite_ok_ = false;
  ++rewrite_failures_;
  last_rewrite_secs_ = std::chrono::duration_cast<std::chrono::seconds>(steady_clock::now() - rewrite_started_).count();
  rewrite_retry_after_ = steady_clock::now() + rewrite_retry_delay;
}

void aof::close_in_background(int fd) {
  if (fd < 0) return;
  jobs_.submit([fd] { ::close(fd); });
}

// ---- CONFIG SET ------------------------------------------------------------------------

void aof::on_config(const std::string& name) {
  if (stopped_) return;
  if (name == "appendonly") {
    if (s_.cfg().appendonly) enable();
    else disable();
  } else if (name == "appendfsync") {
    if (state_ == state::on && s_.cfg().appendfsync == fsync_policy::always) {
      // From now on every acknowledged write is synced: start from a synced file.
      jobs_.drain();
      fsync_offset_ = sync_->err.load() ? 0 : sync_->synced.load();
      write_out({}, true);
    }
  }
}

void aof::enable() {
  if (state_ != state::off) return;
  state_ = state::wait_rewrite;
  core::log_notice("AOF enabled at run time: writing the dataset to " + path_ + " with a rewrite");
  update_sink();
  if (!rw_) request_rewrite();
}

void aof::disable() {
  if (state_ == state::off) return;
  if (rw_) abort_rewrite("the append only file was turned off");
  if (fd_ >= 0) {
    write_out({}, true);
    jobs_.drain();
    sync_data(fd_);
    close_in_background(fd_);
    fd_ = -1;
  }
  state_ = state::off;
  rewrite_scheduled_ = false;
  buf_.clear();
  write_errno_ = 0;
  sync_ = std::make_shared<file_sync>();
  update_sink();
  core::log_notice("Append only file disabled");
}

// ---- INFO ------------------------------------------------------------------------------

core::aof_figures aof::figures() const {
  core::aof_figures f;
  f.enabled = state_ != state::off;
  f.rewrite_in_progress = rw_ != nullptr;
  f.rewrite_scheduled = rewrite_scheduled_;
  f.last_write_ok = !write_failing();
  f.last_rewrite_ok = last_rewrite_ok_;
  f.rewrites = rewrites_;
  f.rewrite_failures = rewrite_failures_;
  if (f.enabled) {
    f.current_size = current_size_;
    f.base_size = base_size_;
    f.buffer_length = buf_.size();
    f.pending_fsync = jobs_.pending();
    f.delayed_fsync = delayed_fsync_;
  }
  return f;
}

std::string aof::info() const {
  std::string o;
  const auto now = steady_clock::now();
  const core::aof_figures f = figures();
  line(o, "loading", s_.loading() ? "1" : "0");
  line(o, "async_loading", "0");
  // respq never forks: its AOF rewrite runs in slices of the cron (aof_rewriter.hpp).
  line(o, "current_cow_peak", "0");
  line(o, "current_cow_size", "0");
  line(o, "current_cow_size_age", "0");
  line(o, "current_fork_perc", "0.00");
  line(o, "current_save_keys_processed", "0");
  line(o, "current_save_keys_total", "0");
  line(o, "rdb_changes_since_last_save", std::to_string(s_.dirty()));
  line(o, "rdb_bgsave_in_progress", "0");
  line(o, "rdb_last_save_time",
       std::to_string(std::chrono::duration_cast<std::chrono::seconds>(s_.start_time().time_since_epoch()).count()));
  line(o, "rdb_last_bgsave_status", "ok");
  line(o, "rdb_last_bgsave_time_sec", "-1");
  line(o, "rdb_current_bgsave_time_sec", "-1");
  line(o, "rdb_saves", "0");
  line(o, "rdb_last_cow_size", "0");
  line(o, "rdb_last_load_keys_expired", "0");
  line(o, "rdb_last_load_keys_loaded", "0");
  line(o, "aof_enabled", f.enabled ? "1" : "0");
  line(o, "aof_rewrite_in_progress", f.rewrite_in_progress ? "1" : "0");
  line(o, "aof_rewrite_scheduled", f.rewrite_scheduled ? "1" : "0");
  line(o, "aof_last_rewrite_time_sec", std::to_string(last_rewrite_secs_));
  line(o, "aof_current_rewrite_time_sec",
       rw_ ? std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - rewrite_started_).count()) : "-1");
  line(o, "aof_last_bgrewrite_status", f.last_rewrite_ok ? "ok" : "err");
  line(o, "aof_rewrites", std::to_string(f.rewrites));
  line(o, "aof_rewrites_consecutive_failures", std::to_string(f.rewrite_failures));
  line(o, "aof_last_write_status", f.last_write_ok ? "ok" : "err");
  line(o, "aof_last_cow_size", "0");
  line(o, "module_fork_in_progress", "0");
  line(o, "module_fork_last_cow_size", "0");
  if (f.enabled) {
    line(o, "aof_current_size", std::to_string(f.current_size));
    line(o, "aof_base_size", std::to_string(f.base_size));
    line(o, "aof_pending_rewrite", f.rewrite_scheduled ? "1" : "0");
    line(o, "aof_buffer_length", std::to_string(f.buffer_length));
    line(o, "aof_pending_bio_fsync", std::to_string(f.pending_fsync));
    line(o, "aof_delayed_fsync", std::to_string(f.delayed_fsync));
  }
  return o;
}

}  // namespace respq::persistence
