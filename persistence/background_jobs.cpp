// background_jobs: see background_jobs.hpp.
#include "persistence/background_jobs.hpp"

namespace respq::persistence {

background_jobs::background_jobs() : worker_([this] { run(); }) {}

background_jobs::~background_jobs() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  worker_.join();
}

void background_jobs::submit(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
}

std::size_t background_jobs::pending() const {
  std::lock_guard<std::mutex> lk(mu_);
  return jobs_.size() + running_;
}

void background_jobs::drain() {
  std::unique_lock<std::mutex> lk(mu_);
  idle_.wait(lk, [this] { return jobs_.empty() && running_ == 0; });
}

void background_jobs::run() {
  std::unique_lock<std::mutex> lk(mu_);
  while (true) {
    wake_.wait(lk, [this] { return stop_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stop_ and nothing left: queued jobs always run first
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    ++running_;
    lk.unlock();
    job();
    lk.lock();
    --running_;
    if (jobs_.empty()) idle_.notify_all();
  }
}

}  // namespace respq::persistence
