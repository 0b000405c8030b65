#include "broker/core/allocator.hpp"

#include <dlfcn.h>

namespace respq::core {

std::string allocator_name() {
  using version_fn = int (*)();
  if (auto fn = reinterpret_cast<version_fn>(::dlsym(RTLD_DEFAULT, "mi_version"))) {
    const int v = fn();  // major * 100 + minor * 10 + patch
    return "mimalloc-" + std::to_string(v / 100) + "." + std::to_string(v / 10 % 10) + "." + std::to_string(v % 10);
  }
  return "libc";
}

void release_free_memory(bool force) {
  using collect_fn = void (*)(bool);
  static const auto collect = reinterpret_cast<collect_fn>(::dlsym(RTLD_DEFAULT, "mi_collect"));
  if (collect) collect(force);
}

}  // namespace respq::core
