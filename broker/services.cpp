// services: see services.hpp.
#include "broker/services.hpp"

#include "broker/core/server.hpp"
#include "broker/network.hpp"

namespace respq::broker {

struct services::impl {
  impl(core::server& srv, network& n) : s(srv), net(n) {}
  core::server& s;
  network& net;
};

services::services(core::server& s, network& net) : impl_(std::make_unique<impl>(s, net)) {}
services::~services() = default;

std::string services::start() { return {}; }

void services::stop() {}

}  // namespace respq::broker
