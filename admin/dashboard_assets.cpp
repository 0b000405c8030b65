// dashboard_assets: see dashboard_assets.hpp (the files themselves are generated).
#include "admin/dashboard_assets.hpp"

namespace respq::admin {

const asset* find_asset(std::string_view path) {
  for (const asset& a : dashboard_assets())
    if (a.path == path) return &a;
  return nullptr;
}

}  // namespace respq::admin
