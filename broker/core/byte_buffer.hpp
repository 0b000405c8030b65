// byte_buffer: a growable input buffer with a read position, without zero-filling on
// growth (std::string::resize would memset every 16 KB read). Owner: one client.
// Bytes in [begin, end) are unconsumed; prepare(n) makes room for n more at the end,
// compacting first when the dead space at the front is large enough.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>
#include <utility>

namespace respq::core {

class byte_buffer {
 public:
  byte_buffer() = default;
  byte_buffer(const byte_buffer&) = delete;
  byte_buffer& operator=(const byte_buffer&) = delete;
  ~byte_buffer() { std::free(data_); }

  const char* data() const { return data_ + begin_; }
  std::size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  std::size_t capacity() const { return cap_; }
  std::string_view view() const { return {data_ + begin_, end_ - begin_}; }

  // Room for at least n bytes after end(); returns where to write them.
  char* prepare(std::size_t n) {
    if (cap_ - end_ >= n) return data_ + end_;
    std::size_t live = end_ - begin_;
    if (begin_ > 0 && cap_ - live >= n && begin_ >= live) {
      std::memmove(data_, data_ + begin_, live);
    } else {
      std::size_t cap = cap_ ? cap_ : 1024;
      while (cap < live + n) cap *= 2;
      char* p = static_cast<char*>(std::malloc(cap));
      if (!p) throw std::bad_alloc();
      if (live) std::memcpy(p, data_ + begin_, live);
      std::free(data_);
      data_ = p;
      cap_ = cap;
    }
    begin_ = 0;
    end_ = live;
    return data_ + end_;
  }
  std::size_t writable() const { return cap_ - end_; }
  void commit(std::size_t n) { end_ += n; }
  void consume(std::size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  // Gives memory back after a burst (a large bulk) once the buffer is empty.
  void shrink_if_idle(std::size_t keep) {
    if (begin_ == end_ && cap_ > keep) {
      std::free(data_);
      data_ = nullptr;
      cap_ = begin_ = end_ = 0;
    }
  }
  void clear() { begin_ = end_ = 0; }

 private:
  char* data_ = nullptr;
  std::size_t begin_ = 0, end_ = 0, cap_ = 0;
};

}  // namespace respq::core
