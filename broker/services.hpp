// services: the composition root. Wires the modules around the core: the HTTP delivery
// engine (workers/, its own thread), persistence (the AOF), the Redis link. Each module
// talks to the core only on the broker thread (results come back through
// network::post). Start order: persistence loads the AOF, the task manager recovers
// what was in flight, then delivery and the link start.
#pragma once

#include <memory>
#include <string>

namespace respq::core {
class server;
}

namespace respq::broker {

class network;

class services {
 public:
  services(core::server& s, network& net);
  ~services();
  // Returns an error text when a module can't start (the server then exits with 1).
  std::string start();
  // After the loop ended: stop threads, close files.
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace respq::broker
