// migrate_sockets: MIGRATE's connections to its target instances, plain blocking TCP
// with time-outs (Redis's syncio.c), for the core's migrate_connections. Owner: the
// broker thread.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "broker/core/migrate.hpp"

namespace respq::broker {

class migrate_sockets final : public core::migrate_connections {
 public:
  core::migrate_target* get(std::string_view host, std::string_view port, long long timeout_ms,
                            std::int64_t now) override;
  void close(std::string_view host, std::string_view port) override;
  void close_idle(std::int64_t now) override;
  std::size_t size() const override { return cached_.size(); }

 private:
  struct entry {
    std::unique_ptr<core::migrate_target> target;
    std::int64_t last_use = 0;
  };
  std::unordered_map<std::string, entry> cached_;
};

}  // namespace respq::broker
