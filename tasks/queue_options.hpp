// queue_options: what `http-queue <name> [option value ...]` sets for one HTTP queue. The
// lifecycle decision (tasks/lifecycle.hpp) reads the retry part; the broker and the Redis
// link read the rest (in-flight cap, rate, delivery pool). A plain value: whoever holds
// the configuration owns it (the broker thread).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tasks/egress.hpp"
#include "tasks/signing.hpp"

namespace respq::tasks {

struct queue_options {
  unsigned concurrency = 64;   // in-flight cap
  double rate = 0;             // dispatches per second, 0 = unlimited
  unsigned per_host = 32;      // connections per host
  double host_rate = 0;        // attempts per second to each host, 0 = unlimited (tasks/host_health.hpp)
  double timeout = 30;         // seconds for a whole request
  int retries = 5;             // retries after the first attempt
  double backoff_min = 1;      // seconds
  double backoff_max = 300;    // seconds
  bool shared = false;         // queue lives on the upstream Redis (redis-compat)
  // Egress level for this queue's attempts and callbacks; none: the global egress-policy.
  std::optional<egress_level> egress;
  // Standard Webhooks secrets (`signing-secret whsec_...`, up to two during a rotation):
  // every attempt is signed with each.
  std::vector<signing_secret> signing_secrets;
  // Outgoing TLS (tasks/tls_trust.hpp): the queue's CA bundle (empty: the global
  // tls-ca-cert-file/dir, else the system store) and its client certificate and key (mTLS).
  std::string ca_file, client_cert, client_key;
};

}  // namespace respq::tasks
