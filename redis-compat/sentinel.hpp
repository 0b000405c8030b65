// sentinel: finds the upstream master through Redis Sentinel (`upstream-sentinel <host>
// <port> ...`, `upstream-master-name <name>`), so the link follows a failover.
//
// Two connections to one sentinel at a time: one asks SENTINEL get-master-addr-by-name
// <name> when it comes up and then once a second; the other SUBSCRIBEs to +switch-master
// and reports a switch of <name> the moment the sentinel announces it. When the asking
// connection fails (the sentinel is down, or answers an error), both move to the next
// sentinel of the list, round robin. A reply naming no master (nil) changes nothing: the
// link keeps what it had, and while no master was ever named the link's connections stay
// down (pushes to shared queues wait in the local spool, the mirror buffers).
//
// on_master(host, port) runs each time the master's address differs from the last one
// reported. Sentinels are asked without a password (a sentinel's own requirepass is not
// supported).
//
// Thread: the broker thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

// The broker thread's event loop, passed by reference (asio stays out of this header).
namespace asio {
class io_context;
}

namespace respq::redis_compat {

class sentinel_watch {
 public:
  sentinel_watch(asio::io_context& io_context, std::vector<std::pair<std::string, int>> sentinels, std::string master_name,
                 std::string node_id);
  ~sentinel_watch();
  sentinel_watch(const sentinel_watch&) = delete;
  sentinel_watch& operator=(const sentinel_watch&) = delete;

  std::function<void(const std::string& host, int port)> on_master;

  void start();
  void stop();

  // For INFO mirror.
  std::string sentinel_address() const;  // the sentinel asked now
  std::string status() const;            // its connection's status
  std::uint64_t switches() const;        // master changes seen after the first
  std::string master() const;            // "host:port", or empty

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace respq::redis_compat
