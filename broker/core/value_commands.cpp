// value_commands: see value_commands.hpp.
#include "broker/core/value_commands.hpp"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "resp/reply_writer.hpp"

namespace respq::core {

namespace {
constexpr std::size_t max_set_items = 64;  // Redis's AOF_REWRITE_ITEMS_PER_CMD
}

std::size_t value_commands(std::string_view key, value& v, std::size_t per_command, std::size_t from,
                           const command_sink& sink) {
  per_command = std::max<std::size_t>(per_command, 1);
  std::vector<std::string_view> argv;
  switch (v.type()) {
    case value_type::string: {
      const std::string_view cmd[] = {"SET", key, v.str()};
      sink(cmd);
      return 0;
    }
    case value_type::list: {
      auto& l = v.list();
      std::size_t i = from;
      if (i >= l.size()) return i;
      auto cur = l.seek(i);
      while (i < l.size()) {
        argv.assign({"RPUSH", key});
        for (std::size_t n = 0; n < per_command && i < l.size(); ++n, ++i, cur.next()) argv.push_back(cur.value());
        if (!sink(argv)) break;
      }
      return i;
    }
    case value_type::hash: {
      // Values as clients read them (hash_text: a packed task envelope as its JSON).
      auto& h = v.hash();
      auto it = h.begin();
      std::deque<std::string> shown;  // values stored in another form than their text
      while (it != h.end()) {
        argv.assign({"HSET", key});
        shown.clear();
        for (std::size_t n = 0; n < per_command && it != h.end(); ++n, ++it) {
          const auto [field, stored] = *it;
          argv.push_back(field);
          if (hash_text::plain(stored)) {
            argv.push_back(stored);
          } else {
            shown.emplace_back(hash_text(field, stored).view());
            argv.push_back(shown.back());
          }
        }
        sink(argv);
      }
      return 0;
    }
    case value_type::set: {
      // The members are copied: an intset spells its integers into a temporary buffer.
      const std::size_t per = std::min(per_command, max_set_items);
      std::vector<std::string> batch;
      batch.reserve(per);
      auto put_batch = [&] {
        argv.assign({"SADD", key});
        for (const auto& m : batch) argv.push_back(m);
        sink(argv);
        batch.clear();
      };
      v.set().for_each([&](std::string_view m) {
        batch.emplace_back(m);
        if (batch.size() == per) put_batch();
      });
      if (!batch.empty()) put_batch();
      return 0;
    }
    case value_type::zset: {
      auto& z = v.zset();
      const std::size_t per = std::min(per_command, max_set_items);
      std::vector<std::string> scores;
      for (std::size_t i = 0; i < z.size();) {
        const std::size_t n = std::min(per, z.size() - i);
        argv.assign({"ZADD", key});
        scores.clear();
        scores.reserve(n);  // argv's views point into it: no reallocation
        z.walk(i, n, false, [&](const zset_value::entry& e) {
          scores.push_back(resp::format_double(e.score));
          argv.push_back(scores.back());
          argv.push_back(e.member);
        });
        sink(argv);
        i += n;
      }
      return 0;
    }
    case value_type::stream: {
      auto& st = v.stream();
      if (st.empty()) {
        const std::string_view cmd[] = {"XADD", key, "MAXLEN", "0", "0-1", "x", "y"};
        sink(cmd);
      } else {
        std::string id;
        st.range(stream_id{0, 0}, stream_id{UINT64_MAX, UINT64_MAX}, 0, false, [&](const stream_value::entry& e) {
          id = e.id.str();
          argv.assign({"XADD", key, id});
          for (const auto& [f, x] : e.fields) {
            argv.push_back(f);
            argv.push_back(x);
          }
          sink(argv);
          return true;
        });
      }
      const std::string last = st.last_id.str(), added = std::to_string(st.entries_added),
                        maxdel = st.max_deleted_id.str();
      const std::string_view setid[] = {"XSETID", key, last, "ENTRIESADDED", added, "MAXDELETEDID", maxdel};
      sink(setid);
      st.group_commands(key, [&](const std::vector<std::string>& cmd) {
        argv.assign(cmd.begin(), cmd.end());
        sink(argv);
      });
      return 0;
    }
  }
  return 0;
}

}  // namespace respq::core
