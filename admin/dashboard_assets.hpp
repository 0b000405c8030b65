// dashboard_assets: the dashboard's files (admin/web), embedded in the binary at build
// time by admin/web/embed.cmake: the page, its scripts and styles, and uPlot from
// node_modules as npm installed it from package-lock.json. No file is read at run time
// and nothing is fetched from elsewhere, so the dashboard works offline.
#pragma once

#include <string_view>
#include <vector>

namespace respq::admin {

struct asset {
  std::string_view path;          // the URL path it is served at ("/", "/ui/app.js")
  std::string_view content_type;
  std::string_view etag;          // quoted: the first 16 hex digits of its SHA-256
  std::string_view body;
};

// Every embedded file (generated source).
const std::vector<asset>& dashboard_assets();

// The one served at `path`, or nullptr.
const asset* find_asset(std::string_view path);

}  // namespace respq::admin
