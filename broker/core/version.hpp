// The product's version, and the Redis version respq reports to clients
// (redis_version in INFO, HELLO's "version"): clients gate features on it, and respq
// implements the Redis 7.0 behaviour of the commands it has.
#pragma once

#define RESPQ_VERSION "0.1.0"
#define RESPQ_REDIS_VERSION "7.0.15"
