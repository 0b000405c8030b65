// modules: the server's side of module.hpp. It keeps the registered modules in order
// and makes each call to those that take it; counts of the modules asking for the
// per-command calls let the hot paths (server.hpp's inline before_key_write,
// write_refusal, publish) skip everything with a single test when none does.
#include <algorithm>
#include <cassert>

#include "broker/core/server.hpp"

namespace respq::core {

template <class F>
void server::walk_modules(F&& f) {
  // A module may unregister one (itself too) from inside its call: the slot becomes a
  // hole and the vector is compacted once no walk is in progress any more.
  struct walk {
    server& s;
    explicit walk(server& srv) : s(srv) { ++s.module_walks_; }
    ~walk() {
      if (--s.module_walks_ == 0 && s.module_holes_) {
        std::erase_if(s.modules_, [](const module_slot& m) { return m.m == nullptr; });
        s.module_holes_ = false;
      }
    }
    walk(const walk&) = delete;
    walk& operator=(const walk&) = delete;
  } w(*this);
  // Indexes, not iterators: a module registered during the walk may grow the vector.
  const std::size_t n = modules_.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (modules_[i].m == nullptr) continue;
    if (f(modules_[i])) break;
  }
}

void server::register_module(server_module& m, unsigned extras) {
  assert(std::none_of(modules_.begin(), modules_.end(), [&m](const module_slot& x) { return x.m == &m; }));
  assert(!(extras & server_module::rewrites_aof) ||
         std::none_of(modules_.begin(), modules_.end(),
                      [](const module_slot& x) { return x.m && (x.extras & server_module::rewrites_aof); }));
  modules_.push_back({&m, extras, false});
  if (extras & server_module::refuses_writes) ++write_refusers_;
  if (extras & server_module::observes_publish) ++publish_observers_;
}

void server::unregister_module(server_module& m) {
  auto it = std::find_if(modules_.begin(), modules_.end(), [&m](const module_slot& x) { return x.m == &m; });
  if (it == modules_.end()) return;
  if (it->extras & server_module::refuses_writes) --write_refusers_;
  if (it->extras & server_module::observes_publish) --publish_observers_;
  if (it->key_writes) --key_writers_;
  if (module_walks_ > 0) {
    *it = {nullptr, 0, false};
    module_holes_ = true;
  } else {
    modules_.erase(it);
  }
}

void server::want_key_writes(server_module& m, bool on) {
  auto it = std::find_if(modules_.begin(), modules_.end(), [&m](const module_slot& x) { return x.m == &m; });
  assert(it != modules_.end());
  if (it == modules_.end() || it->key_writes == on) return;
  it->key_writes = on;
  if (on) ++key_writers_;
  else --key_writers_;
}

void server::modules_before_key_write(int db, std::string_view key, bool flush) {
  walk_modules([&](module_slot& x) {
    if (x.key_writes) x.m->before_key_write(db, key, flush);
    return false;
  });
}

void server::modules_before_swapdb(int a, int b) {
  walk_modules([&](module_slot& x) {
    if (x.key_writes) x.m->before_swapdb(a, b);
    return false;
  });
}

std::string server::modules_write_refusal() {
  std::string refusal;
  walk_modules([&](module_slot& x) {
    if (x.extras & server_module::refuses_writes) refusal = x.m->write_refusal();
    return !refusal.empty();
  });
  return refusal;
}

void server::modules_publish(std::string_view channel, std::string_view message) {
  walk_modules([&](module_slot& x) {
    if (x.extras & server_module::observes_publish) x.m->on_publish(channel, message);
    return false;
  });
}

void server::modules_cron() {
  walk_modules([](module_slot& x) {
    x.m->cron();
    return false;
  });
}

bool server::module_info(std::string_view name, std::string& body) {
  bool provided = false;
  walk_modules([&](module_slot& x) {
    if (x.m->info_section(name, body)) provided = true;
    return false;
  });
  return provided;
}

void server::config_changed(const std::string& name) {
  walk_modules([&](module_slot& x) {
    x.m->on_config(name);
    return false;
  });
}

std::string server::bgrewriteaof() {
  std::string reply = "ERR persistence is not available";
  walk_modules([&](module_slot& x) {
    if (!(x.extras & server_module::rewrites_aof)) return false;
    reply = x.m->bgrewriteaof();
    return true;
  });
  return reply;
}

void server::drain_modules() {
  walk_modules([](module_slot& x) {
    x.m->drain();
    return false;
  });
}

std::size_t server::modules_in_flight() {
  std::size_t n = 0;
  walk_modules([&n](module_slot& x) {
    n += x.m->in_flight();
    return false;
  });
  return n;
}

}  // namespace respq::core
