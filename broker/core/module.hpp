// server_module: how a module outside the core (the AOF, the Redis link, the admin server,
// the composition root's own settings) plugs into the server. A module derives from
// server_module, overrides the calls it needs (every one does nothing by default) and
// registers once with server::register_module; it unregisters before it is destroyed
// (in its destructor, or in its stop() when it stops earlier). The server calls only
// registered modules, in registration order, so a module never guards its own lifetime.
//
// Most calls are rare (cron, INFO, CONFIG SET, shutdown). Three are made per command and
// cost every command something, so the server makes them only to modules that ask:
//   - write_refusal() and on_publish(): flags given to register_module (`extras`);
//   - before_key_write() and before_swapdb(): while the module has asked with
//     server::want_key_writes(*this, true). With no module asking, the core does not even
//     work out which keys a write command touches.
//
// Threads: the broker thread only, like the server. A module may register or unregister
// any module, itself included, from inside one of these calls: a module unregistered
// during a walk over the modules is skipped from then on, and one registered during it
// is called from the next walk on.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace respq::core {

class server_module {
 public:
  // The optional calls a module asks for when it registers.
  enum extra : unsigned {
    refuses_writes = 1u << 0,    // write_refusal() before each write command
    observes_publish = 1u << 1,  // on_publish() for each message published
    rewrites_aof = 1u << 2,      // bgrewriteaof(): the one module that answers BGREWRITEAOF
  };

  server_module() = default;
  server_module(const server_module&) = delete;
  server_module& operator=(const server_module&) = delete;
  virtual ~server_module() = default;

  // Ten times a second, from server::cron().
  virtual void cron() {}
  // INFO: when this module provides section `name` (lower case, one of INFO's sections),
  // appends its lines ("k:v\r\n") to body and returns true; the core's own text for that
  // section is then not used. Several providers of one section are concatenated.
  virtual bool info_section(std::string_view /*name*/, std::string& /*body*/) { return false; }
  // CONFIG SET changed setting `name` (lower case), already in server::cfg().
  virtual void on_config(const std::string& /*name*/) {}

  // refuses_writes: non-empty while write commands must be refused, with this error text
  // (the AOF's MISCONF). Reads go on.
  virtual std::string write_refusal() const { return {}; }
  // rewrites_aof: BGREWRITEAOF's status reply text, or an error starting with "ERR".
  virtual std::string bgrewriteaof() { return "ERR persistence is not available"; }
  // observes_publish: sees every message server::publish() delivers, before the
  // subscribers. Must not re-enter the server.
  virtual void on_publish(std::string_view /*channel*/, std::string_view /*message*/) {}

  // While want_key_writes: called just before a key of database `db` is modified, with
  // the key; before FLUSHDB with an empty key and flush == true (FLUSHALL: db == -1).
  virtual void before_key_write(int /*db*/, std::string_view /*key*/, bool /*flush*/) {}
  // While want_key_writes: called just before SWAPDB exchanges databases a and b.
  virtual void before_swapdb(int /*a*/, int /*b*/) {}

  // Shutdown's grace period, for modules with HTTP requests of their own (shared queues):
  // drain() stops them starting new ones; in_flight() says how many are left. The grace
  // period waits for these as for the task manager's.
  virtual void drain() {}
  virtual std::size_t in_flight() const { return 0; }
};

}  // namespace respq::core
