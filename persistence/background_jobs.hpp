// background_jobs: one worker thread that runs slow file operations in order (fsync of
// the AOF under everysec, fsync of a rewritten file, close of a replaced file whose last
// close frees a large inode). Like Redis's bio thread for the AOF: jobs run one at a
// time in submission order, so a close queued after an fsync of the same descriptor
// never races it.
//
// Threads: submit(), pending() and drain() are called from the broker thread; the jobs
// run on the worker. A job communicates its result through state it captured (atomics).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace respq::persistence {

class background_jobs {
 public:
  background_jobs();
  // Runs every queued job, then joins the thread.
  ~background_jobs();
  background_jobs(const background_jobs&) = delete;
  background_jobs& operator=(const background_jobs&) = delete;

  void submit(std::function<void()> job);
  // Jobs queued or running.
  std::size_t pending() const;
  // Waits until every job submitted so far has finished.
  void drain();

 private:
  void run();

  mutable std::mutex mu_;
  std::condition_variable wake_;  // worker: a job arrived or stop
  std::condition_variable idle_;  // drain(): the queue became empty
  std::deque<std::function<void()>> jobs_;
  std::size_t running_ = 0;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace respq::persistence
