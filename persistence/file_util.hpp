// file_util: the few POSIX file operations the AOF needs, with errors as errno values
// (never exceptions: they run inside the event loop). Any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace respq::persistence {

// Writes a then b (either may be empty) with writev, retrying short writes and EINTR.
// Returns the bytes written; sets err to the errno of the failure (0 when all was
// written). A failure after some bytes leaves those bytes in the file.
std::size_t write_all(int fd, std::string_view a, std::string_view b, int& err);
// fdatasync, retried on EINTR. Returns 0 or the errno.
int sync_data(int fd);
// fsync of the directory holding `path`, so a rename inside it is durable. 0 or errno.
int sync_parent_dir(const std::string& path);
// "dir/name" (name alone when dir is empty or ".").
std::string join_path(const std::string& dir, const std::string& name);
// Size of an open file, or -1.
long long file_size(int fd);
// strerror as a std::string.
std::string error_text(int err);

}  // namespace respq::persistence
