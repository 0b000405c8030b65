// file_util: see file_util.hpp.
#include "persistence/file_util.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace respq::persistence {

std::size_t write_all(int fd, std::string_view a, std::string_view b, int& err) {
  err = 0;
  std::size_t total = 0;
  while (!a.empty() || !b.empty()) {
    iovec iov[2];
    int n = 0;
    if (!a.empty()) iov[n++] = {const_cast<char*>(a.data()), a.size()};
    if (!b.empty()) iov[n++] = {const_cast<char*>(b.data()), b.size()};
    ssize_t w = ::writev(fd, iov, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      err = errno;
      return total;
    }
    if (w == 0) {  // nothing written and no error: treat as a full device
      err = ENOSPC;
      return total;
    }
    std::size_t done = static_cast<std::size_t>(w);
    total += done;
    std::size_t from_a = std::min(done, a.size());
    a.remove_prefix(from_a);
    b.remove_prefix(done - from_a);
  }
  return total;
}

int sync_data(int fd) {
  while (::fdatasync(fd) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

int sync_parent_dir(const std::string& path) {
  std::string dir = ".";
  if (auto slash = path.rfind('/'); slash != std::string::npos) dir = slash == 0 ? "/" : path.substr(0, slash);
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  int err = 0;
  while (::fsync(fd) != 0) {
    if (errno != EINTR) {
      err = errno;
      break;
    }
  }
  ::close(fd);
  return err;
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty() || dir == ".") return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

long long file_size(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return -1;
  return static_cast<long long>(st.st_size);
}

std::string error_text(int err) { return std::strerror(err); }

}  // namespace respq::persistence
