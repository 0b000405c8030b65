// The command table: every command respq answers, with Redis 7's arity, flags, key
// positions and documentation fields (COMMAND INFO / DOCS read them from here).
#include "broker/core/commands.hpp"

namespace respq::core {

namespace {

constexpr std::uint32_t W = flag_write, R = flag_readonly, F = flag_fast, D = flag_denyoom, A = flag_admin,
                        P = flag_pubsub, N = flag_noscript, B = flag_blocking, L = flag_loading, S = flag_stale,
                        NA = flag_no_auth, NM = flag_no_multi, DM = flag_deny_multi, AB = flag_allow_busy,
                        SUB = flag_sub_ok, MK = flag_movablekeys, MR = flag_may_replicate,
                        SM = flag_skip_monitor, NK = flag_no_keymiss;

command_def def(std::string_view name, int arity, std::uint32_t flags, int first, int last, int step, handler_fn fn,
                std::string_view group, std::string_view since, std::string_view complexity,
                std::string_view acl, std::string_view summary) {
  command_def d;
  d.name = name;
  d.arity = arity;
  d.flags = flags;
  d.first_key = first;
  d.last_key = last;
  d.key_step = step;
  d.fn = fn;
  d.group = group;
  d.since = since;
  d.complexity = complexity;
  d.acl_categories = acl;
  d.summary = summary;
  return d;
}

command_def sub(std::string_view name, int arity, std::uint32_t flags, handler_fn fn, std::string_view group,
                std::string_view since, std::string_view acl, std::string_view summary) {
  return def(name, arity, flags, 0, 0, 0, fn, group, since, "O(1)", acl, summary);
}

}  // namespace

void server::build_command_table() {
  auto& t = command_storage_;
  t.clear();
  // Connection.
  t.push_back(def("ping", -1, F | SUB, 0, 0, 0, cmd_ping, "connection", "1.0.0", "O(1)", "fast connection", "Ping the server"));
  t.push_back(def("echo", 2, F, 0, 0, 0, cmd_echo, "connection", "1.0.0", "O(1)", "fast connection", "Echo the given string"));
  t.push_back(def("quit", -1, AB | N | L | S | F | NA | NM | SUB, 0, 0, 0, cmd_quit, "connection", "1.0.0", "O(1)", "fast connection", "Close the connection"));
  t.push_back(def("select", 2, L | S | F, 0, 0, 0, cmd_select, "connection", "2.0.0", "O(1)", "fast connection", "Change the selected database for the current connection"));
  t.push_back(def("auth", -2, N | L | S | F | NA | AB, 0, 0, 0, cmd_auth, "connection", "1.0.0", "O(N) where N is the number of passwords defined for the user", "fast connection", "Authenticate to the server"));
  t.push_back(def("hello", -1, N | L | S | F | NA | AB, 0, 0, 0, cmd_hello, "connection", "6.0.0", "O(1)", "fast connection", "Handshake with Redis"));
  t.push_back(def("reset", 1, N | L | S | F | NA | AB | NM | SUB, 0, 0, 0, cmd_reset, "connection", "6.2.0", "O(1)", "fast connection", "Reset the connection"));
  {
    command_def c = def("client", -2, 0, 0, 0, 0, cmd_client, "connection", "2.4.0", "Depends on subcommand.", "slow", "A container for client connection commands");
    const std::uint32_t cf = N | L | S;
    c.subcommands.push_back(sub("id", 2, cf, cmd_client, "connection", "5.0.0", "slow connection", "Returns the client ID for the current connection"));
    c.subcommands.push_back(sub("setname", 3, cf, cmd_client, "connection", "2.6.9", "slow connection", "Set the current connection name"));
    c.subcommands.push_back(sub("getname", 2, cf, cmd_client, "connection", "2.6.9", "slow connection", "Get the current connection name"));
    c.subcommands.push_back(sub("list", -2, A | cf, cmd_client, "connection", "2.4.0", "admin slow dangerous connection", "Get the list of client connections"));
    c.subcommands.push_back(sub("info", 2, cf, cmd_client, "connection", "6.2.0", "slow connection", "Returns information about the current client connection."));
    c.subcommands.push_back(sub("kill", -3, A | cf, cmd_client, "connection", "2.4.0", "admin slow dangerous connection", "Kill the connection of a client"));
    c.subcommands.push_back(sub("no-evict", 3, A | cf, cmd_client, "connection", "7.0.0", "admin slow dangerous connection", "Set client eviction mode for the current connection"));
    c.subcommands.push_back(sub("pause", -3, A | cf, cmd_client, "connection", "2.9.50", "admin slow dangerous connection", "Stop processing commands from clients for some time"));
    c.subcommands.push_back(sub("unpause", 2, A | cf, cmd_client, "connection", "6.2.0", "admin slow dangerous connection", "Resume processing of clients that were paused"));
    c.subcommands.push_back(sub("reply", 3, cf, cmd_client, "connection", "3.2.0", "slow connection", "Instruct the server whether to reply to commands"));
    c.subcommands.push_back(sub("setinfo", 4, cf, cmd_client, "connection", "7.2.0", "slow connection", "Set client or connection specific info"));
    c.subcommands.push_back(sub("unblock", -3, A | cf, cmd_client, "connection", "5.0.0", "admin slow dangerous connection", "Unblock a client blocked in a blocking command from a different connection"));
    c.subcommands.push_back(sub("tracking", -3, cf, cmd_client, "connection", "6.0.0", "slow connection", "Enable or disable server assisted client side caching support"));
    c.subcommands.push_back(sub("caching", 3, cf, cmd_client, "connection", "6.0.0", "slow connection", "Instruct the server about tracking or not keys in the next request"));
    c.subcommands.push_back(sub("getredir", 2, cf, cmd_client, "connection", "6.0.0", "slow connection", "Get tracking notifications redirection client ID if any"));
    c.subcommands.push_back(sub("trackinginfo", 2, cf, cmd_client, "connection", "6.2.0", "slow connection", "Return information about server assisted client side caching for the current connection"));
    c.subcommands.push_back(sub("help", 2, L | S, cmd_client, "connection", "5.0.0", "slow connection", "Show helpful text about the different subcommands"));
    t.push_back(std::move(c));
  }
  // Lists.
  const char* lw = "write list fast";
  const char* lws = "write list slow";
  const char* lr = "read list fast";
  const char* lrs = "read list slow";
  const char* lb = "write list slow blocking";
  t.push_back(def("lpush", -3, W | D | F, 1, 1, 1, cmd_lpush, "list", "1.0.0", "O(1) for each element added", lw, "Prepend one or multiple elements to a list"));
  t.push_back(def("rpush", -3, W | D | F, 1, 1, 1, cmd_rpush, "list", "1.0.0", "O(1) for each element added", lw, "Append one or multiple elements to a list"));
  t.push_back(def("lpushx", -3, W | D | F, 1, 1, 1, cmd_lpushx, "list", "2.2.0", "O(1) for each element added", lw, "Prepend an element to a list, only if the list exists"));
  t.push_back(def("rpushx", -3, W | D | F, 1, 1, 1, cmd_rpushx, "list", "2.2.0", "O(1) for each element added", lw, "Append an element to a list, only if the list exists"));
  t.push_back(def("lpop", -2, W | F, 1, 1, 1, cmd_lpop, "list", "1.0.0", "O(N) where N is the number of elements returned", lw, "Remove and get the first elements in a list"));
  t.push_back(def("rpop", -2, W | F, 1, 1, 1, cmd_rpop, "list", "1.0.0", "O(N) where N is the number of elements returned", lw, "Remove and get the last elements in a list"));
  t.push_back(def("llen", 2, R | F, 1, 1, 1, cmd_llen, "list", "1.0.0", "O(1)", lr, "Get the length of a list"));
  t.push_back(def("lrange", 4, R, 1, 1, 1, cmd_lrange, "list", "1.0.0", "O(S+N)", lrs, "Get a range of elements from a list"));
  t.push_back(def("lindex", 3, R, 1, 1, 1, cmd_lindex, "list", "1.0.0", "O(N)", lrs, "Get an element from a list by its index"));
  t.push_back(def("lset", 4, W | D, 1, 1, 1, cmd_lset, "list", "1.0.0", "O(N)", lws, "Set the value of an element in a list by its index"));
  t.push_back(def("lrem", 4, W, 1, 1, 1, cmd_lrem, "list", "1.0.0", "O(N+M)", lws, "Remove elements from a list"));
  t.push_back(def("ltrim", 4, W, 1, 1, 1, cmd_ltrim, "list", "1.0.0", "O(N)", lws, "Trim a list to the specified range"));
  t.push_back(def("linsert", 5, W | D, 1, 1, 1, cmd_linsert, "list", "2.2.0", "O(N)", lws, "Insert an element before or after another element in a list"));
  t.push_back(def("lpos", -3, R, 1, 1, 1, cmd_lpos, "list", "6.0.6", "O(N)", lrs, "Return the index of matching elements on a list"));
  t.push_back(def("lmove", 5, W | D, 1, 2, 1, cmd_lmove, "list", "6.2.0", "O(1)", lws, "Pop an element from a list, push it to another list and return it"));
  t.push_back(def("rpoplpush", 3, W | D, 1, 2, 1, cmd_rpoplpush, "list", "1.2.0", "O(1)", lws, "Remove the last element in a list, prepend it to another list and return it"));
  t.push_back(def("blpop", -3, W | N | B, 1, -2, 1, cmd_blpop, "list", "2.0.0", "O(N) where N is the number of provided keys.", lb, "Remove and get the first element in a list, or block until one is available"));
  t.push_back(def("brpop", -3, W | N | B, 1, -2, 1, cmd_brpop, "list", "2.0.0", "O(N) where N is the number of provided keys.", lb, "Remove and get the last element in a list, or block until one is available"));
  t.push_back(def("blmove", 6, W | D | N | B, 1, 2, 1, cmd_blmove, "list", "6.2.0", "O(1)", lb, "Pop an element from a list, push it to another list and return it; or block until one is available"));
  t.push_back(def("brpoplpush", 4, W | D | N | B, 1, 2, 1, cmd_brpoplpush, "list", "2.2.0", "O(1)", lb, "Pop an element from a list, push it to another list and return it; or block until one is available"));
  t.push_back(def("lmpop", -4, W | MK, 0, 0, 0, cmd_lmpop, "list", "7.0.0", "O(N+M)", lws, "Pop elements from a list"));
  t.push_back(def("blmpop", -5, W | B | MK, 0, 0, 0, cmd_blmpop, "list", "7.0.0", "O(N+M)", lb, "Pop elements from a list, or block until one is available"));
  // Keys.
  t.push_back(def("del", -2, W, 1, -1, 1, cmd_del, "generic", "1.0.0", "O(N)", "keyspace write slow", "Delete a key"));
  t.push_back(def("unlink", -2, W | F, 1, -1, 1, cmd_unlink, "generic", "4.0.0", "O(1) for each key removed regardless of its size.", "keyspace write fast", "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking."));
  t.push_back(def("exists", -2, R | F, 1, -1, 1, cmd_exists, "generic", "1.0.0", "O(N) where N is the number of keys to check.", "keyspace read fast", "Determine if a key exists"));
  t.push_back(def("ttl", 2, R | F, 1, 1, 1, cmd_ttl, "generic", "1.0.0", "O(1)", "keyspace read fast", "Get the time to live for a key in seconds"));
  t.push_back(def("pttl", 2, R | F, 1, 1, 1, cmd_pttl, "generic", "2.6.0", "O(1)", "keyspace read fast", "Get the time to live for a key in milliseconds"));
  t.push_back(def("persist", 2, W | F, 1, 1, 1, cmd_persist, "generic", "2.2.0", "O(1)", "keyspace write fast", "Remove the expiration from a key"));
  t.push_back(def("expire", -3, W | F, 1, 1, 1, cmd_expire, "generic", "1.0.0", "O(1)", "keyspace write fast", "Set a key's time to live in seconds"));
  t.push_back(def("pexpire", -3, W | F, 1, 1, 1, cmd_pexpire, "generic", "2.6.0", "O(1)", "keyspace write fast", "Set a key's time to live in milliseconds"));
  t.push_back(def("expireat", -3, W | F, 1, 1, 1, cmd_expireat, "generic", "1.2.0", "O(1)", "keyspace write fast", "Set the expiration for a key as a UNIX timestamp"));
  t.push_back(def("pexpireat", -3, W | F, 1, 1, 1, cmd_pexpireat, "generic", "2.6.0", "O(1)", "keyspace write fast", "Set the expiration for a key as a UNIX timestamp specified in milliseconds"));
  t.push_back(def("expiretime", 2, R | F, 1, 1, 1, cmd_expiretime, "generic", "7.0.0", "O(1)", "keyspace read fast", "Get the expiration Unix timestamp for a key"));
  t.push_back(def("pexpiretime", 2, R | F, 1, 1, 1, cmd_pexpiretime, "generic", "7.0.0", "O(1)", "keyspace read fast", "Get the expiration Unix timestamp for a key in milliseconds"));
  t.push_back(def("type", 2, R | F, 1, 1, 1, cmd_type, "generic", "1.0.0", "O(1)", "keyspace read fast", "Determine the type stored at key"));
  t.push_back(def("keys", 2, R, 0, 0, 0, cmd_keys, "generic", "1.0.0", "O(N) with N being the number of keys in the database", "keyspace read slow dangerous", "Find all keys matching the given pattern"));
  t.push_back(def("scan", -2, R, 0, 0, 0, cmd_scan, "generic", "2.8.0", "O(1) for every call. O(N) for a complete iteration.", "keyspace read slow", "Incrementally iterate the keys space"));
  t.push_back(def("dbsize", 1, R | F, 0, 0, 0, cmd_dbsize, "server", "1.0.0", "O(1)", "keyspace read fast", "Return the number of keys in the selected database"));
  t.push_back(def("flushdb", -1, W, 0, 0, 0, cmd_flushdb, "server", "1.0.0", "O(N) where N is the total number of keys in the selected database", "keyspace write slow dangerous", "Remove all keys from the current database"));
  t.push_back(def("flushall", -1, W, 0, 0, 0, cmd_flushall, "server", "1.0.0", "O(N) where N is the total number of keys in all databases", "keyspace write slow dangerous", "Remove all keys from all databases"));
  t.push_back(def("move", 3, W | F, 1, 1, 1, cmd_move, "generic", "1.0.0", "O(1)", "keyspace write fast", "Move a key to another database"));
  t.push_back(def("swapdb", 3, W | F, 0, 0, 0, cmd_swapdb, "server", "4.0.0", "O(N) where N is the count of clients watching or blocking on keys from both databases.", "keyspace write fast dangerous", "Swaps two Redis databases"));
  t.push_back(def("rename", 3, W, 1, 2, 1, cmd_rename, "generic", "1.0.0", "O(1)", "keyspace write slow", "Rename a key"));
  t.push_back(def("renamenx", 3, W | F, 1, 2, 1, cmd_renamenx, "generic", "1.0.0", "O(1)", "keyspace write fast", "Rename a key, only if the new key does not exist"));
  t.push_back(def("copy", -3, W | D, 1, 2, 1, cmd_copy, "generic", "6.2.0", "O(N) worst case for collections, where N is the number of nested items. O(1) for string values.", "keyspace write slow", "Copy a key"));
  t.push_back(def("dump", 2, R, 1, 1, 1, cmd_dump, "generic", "2.6.0", "O(1) to access the key and additional O(N*M) to serialize it, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1).", "keyspace read slow", "Return a serialized version of the value stored at the specified key."));
  t.push_back(def("restore", -4, W | D, 1, 1, 1, cmd_restore, "generic", "2.6.0", "O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1). However for sorted set values the complexity is O(N*M*log(N)) because inserting values into sorted sets is O(log(N)).", "keyspace write slow dangerous", "Create a key using the provided serialized value, previously obtained using DUMP."));
  t.push_back(def("migrate", -6, W | MK, 3, 3, 1, cmd_migrate, "generic", "2.6.0", "This command actually executes a DUMP+DEL in the source instance, and a RESTORE in the target instance. See the pages of these commands for time complexity. Also an O(N) data transfer between the two instances is performed.", "keyspace write slow dangerous", "Atomically transfer a key from a Redis instance to another one."));
  t.push_back(def("touch", -2, R | F, 1, -1, 1, cmd_touch, "generic", "3.2.1", "O(N) where N is the number of keys that will be touched.", "keyspace read fast", "Alters the last access time of a key(s). Returns the number of existing keys specified."));
  t.push_back(def("randomkey", 1, R, 0, 0, 0, cmd_randomkey, "generic", "1.0.0", "O(1)", "keyspace read slow", "Return a random key from the keyspace"));
  {
    command_def c = def("object", -2, 0, 0, 0, 0, cmd_object, "generic", "2.2.3", "Depends on subcommand.", "slow", "A container for object introspection commands");
    auto keyed = [](std::string_view name, std::string_view since, std::string_view summary) {
      return def(name, 3, R | NK, 2, 2, 1, cmd_object, "generic", since, "O(1)", "keyspace read slow", summary);
    };
    c.subcommands.push_back(keyed("encoding", "2.2.3", "Inspect the internal encoding of a Redis object"));
    c.subcommands.push_back(keyed("freq", "4.0.0", "Get the logarithmic access frequency counter of a Redis object"));
    c.subcommands.push_back(keyed("idletime", "2.2.3", "Get the time since a Redis object was last accessed"));
    c.subcommands.push_back(keyed("refcount", "2.2.3", "Get the number of references to the value of the key"));
    c.subcommands.push_back(sub("help", 2, L | S, cmd_object, "generic", "6.2.0", "keyspace slow", "Show helpful text about the different subcommands"));
    t.push_back(std::move(c));
  }
  // Strings and hashes.
  t.push_back(def("get", 2, R | F, 1, 1, 1, cmd_get, "string", "1.0.0", "O(1)", "read string fast", "Get the value of a key"));
  t.push_back(def("set", -3, W | D, 1, 1, 1, cmd_set, "string", "1.0.0", "O(1)", "write string slow", "Set the string value of a key"));
  t.push_back(def("setnx", 3, W | D | F, 1, 1, 1, cmd_setnx, "string", "1.0.0", "O(1)", "write string fast", "Set the value of a key, only if the key does not exist"));
  t.push_back(def("setex", 4, W | D, 1, 1, 1, cmd_setex, "string", "2.0.0", "O(1)", "write string slow", "Set the value and expiration of a key"));
  t.push_back(def("psetex", 4, W | D, 1, 1, 1, cmd_psetex, "string", "2.6.0", "O(1)", "write string slow", "Set the value and expiration in milliseconds of a key"));
  t.push_back(def("getex", -2, W | F, 1, 1, 1, cmd_getex, "string", "6.2.0", "O(1)", "write string fast", "Get the value of a key and optionally set its expiration"));
  t.push_back(def("mget", -2, R | F, 1, -1, 1, cmd_mget, "string", "1.0.0", "O(N) where N is the number of keys to retrieve.", "read string fast", "Get the values of all the given keys"));
  t.push_back(def("mset", -3, W | D, 1, -1, 2, cmd_mset, "string", "1.0.1", "O(N) where N is the number of keys to set.", "write string slow", "Set multiple keys to multiple values"));
  t.push_back(def("incr", 2, W | D | F, 1, 1, 1, cmd_incr, "string", "1.0.0", "O(1)", "write string fast", "Increment the integer value of a key by one"));
  t.push_back(def("decr", 2, W | D | F, 1, 1, 1, cmd_decr, "string", "1.0.0", "O(1)", "write string fast", "Decrement the integer value of a key by one"));
  t.push_back(def("incrby", 3, W | D | F, 1, 1, 1, cmd_incrby, "string", "1.0.0", "O(1)", "write string fast", "Increment the integer value of a key by the given amount"));
  t.push_back(def("decrby", 3, W | D | F, 1, 1, 1, cmd_decrby, "string", "1.0.0", "O(1)", "write string fast", "Decrement the integer value of a key by the given number"));
  t.push_back(def("append", 3, W | D | F, 1, 1, 1, cmd_append, "string", "2.0.0", "O(1)", "write string fast", "Append a value to a key"));
  t.push_back(def("lcs", -3, R, 1, 2, 1, cmd_lcs, "string", "7.0.0", "O(N*M) where N and M are the lengths of s1 and s2, respectively", "read string slow", "Find longest common substring"));
  t.push_back(def("strlen", 2, R | F, 1, 1, 1, cmd_strlen, "string", "2.2.0", "O(1)", "read string fast", "Get the length of the value stored in a key"));
  t.push_back(def("getset", 3, W | D | F, 1, 1, 1, cmd_getset, "string", "1.0.0", "O(1)", "write string fast", "Set the string value of a key and return its old value"));
  t.push_back(def("getdel", 2, W | F, 1, 1, 1, cmd_getdel, "string", "6.2.0", "O(1)", "write string fast", "Get the value of a key and delete the key"));
  t.push_back(def("getrange", 4, R, 1, 1, 1, cmd_getrange, "string", "2.4.0", "O(N) where N is the length of the returned string.", "read string slow", "Get a substring of the string stored at a key"));
  t.push_back(def("substr", 4, R, 1, 1, 1, cmd_substr, "string", "1.0.0", "O(N) where N is the length of the returned string.", "read string slow", "Get a substring of the string stored at a key"));
  t.push_back(def("setrange", 4, W | D, 1, 1, 1, cmd_setrange, "string", "2.2.0", "O(1)", "write string slow", "Overwrite part of a string at key starting at the specified offset"));
  t.push_back(def("incrbyfloat", 3, W | D | F, 1, 1, 1, cmd_incrbyfloat, "string", "2.6.0", "O(1)", "write string fast", "Increment the float value of a key by the given amount"));
  t.push_back(def("msetnx", -3, W | D, 1, -1, 2, cmd_msetnx, "string", "1.0.1", "O(N) where N is the number of keys to set.", "write string slow", "Set multiple keys to multiple values, only if none of the keys exist"));
  t.push_back(def("setbit", 4, W | D, 1, 1, 1, cmd_setbit, "bitmap", "2.2.0", "O(1)", "write bitmap slow", "Sets or clears the bit at offset in the string value stored at key"));
  t.push_back(def("getbit", 3, R | F, 1, 1, 1, cmd_getbit, "bitmap", "2.2.0", "O(1)", "read bitmap fast", "Returns the bit value at offset in the string value stored at key"));
  t.push_back(def("bitcount", -2, R, 1, 1, 1, cmd_bitcount, "bitmap", "2.6.0", "O(N)", "read bitmap slow", "Count set bits in a string"));
  t.push_back(def("bitpos", -3, R, 1, 1, 1, cmd_bitpos, "bitmap", "2.8.7", "O(N)", "read bitmap slow", "Find first bit set or clear in a string"));
  t.push_back(def("bitop", -4, W | D, 2, -1, 1, cmd_bitop, "bitmap", "2.6.0", "O(N)", "write bitmap slow", "Perform bitwise operations between strings"));
  t.push_back(def("bitfield", -2, W | D, 1, 1, 1, cmd_bitfield, "bitmap", "3.2.0", "O(1) for each subcommand specified", "write bitmap slow", "Perform arbitrary bitfield integer operations on strings"));
  t.push_back(def("bitfield_ro", -2, R | F, 1, 1, 1, cmd_bitfield_ro, "bitmap", "6.0.0", "O(1) for each subcommand specified", "read bitmap fast", "Perform arbitrary bitfield integer operations on strings. Read-only variant of BITFIELD"));
  t.push_back(def("pfadd", -2, W | D | F, 1, 1, 1, cmd_pfadd, "hyperloglog", "2.8.9", "O(1) to add every element.", "write hyperloglog fast", "Adds the specified elements to the specified HyperLogLog."));
  t.push_back(def("pfcount", -2, R | MR, 1, -1, 1, cmd_pfcount, "hyperloglog", "2.8.9", "O(1) with a very small average constant time when called with a single key. O(N) with N being the number of keys, and much bigger constant times, when called with multiple keys.", "read hyperloglog slow", "Return the approximated cardinality of the set(s) observed by the HyperLogLog at key(s)."));
  t.push_back(def("pfmerge", -2, W | D, 1, -1, 1, cmd_pfmerge, "hyperloglog", "2.8.9", "O(N) to merge N HyperLogLogs, but with high constant times.", "write hyperloglog slow", "Merge N different HyperLogLogs into a single one."));
  t.push_back(def("pfdebug", 3, W | D | A, 2, 2, 1, cmd_pfdebug, "hyperloglog", "2.8.9", "N/A", "write hyperloglog admin slow", "Internal commands for debugging HyperLogLog values"));
  t.push_back(def("pfselftest", 1, A, 0, 0, 0, cmd_pfselftest, "hyperloglog", "2.8.9", "N/A", "hyperloglog admin slow dangerous", "An internal command for testing HyperLogLog values"));
  t.push_back(def("sort", -2, W | D | MK, 1, 1, 1, cmd_sort, "generic", "1.0.0", "O(N+M*log(M)) where N is the number of elements in the list or set to sort, and M the number of returned elements. When the elements are not sorted, complexity is O(N).", "write set sortedset list slow dangerous", "Sort the elements in a list, set or sorted set"));
  t.push_back(def("sort_ro", -2, R, 1, 1, 1, cmd_sort_ro, "generic", "7.0.0", "O(N+M*log(M)) where N is the number of elements in the list or set to sort, and M the number of returned elements. When the elements are not sorted, complexity is O(N).", "read set sortedset list slow dangerous", "Sort the elements in a list, set or sorted set. Read-only variant of SORT."));
  // Geo (sorted sets whose scores are geohashes).
  t.push_back(def("geoadd", -5, W | D, 1, 1, 1, cmd_geoadd, "geo", "3.2.0", "O(log(N)) for each item added, where N is the number of elements in the sorted set.", "write geo slow", "Add one or more geospatial items in the geospatial index represented using a sorted set"));
  t.push_back(def("geodist", -4, R, 1, 1, 1, cmd_geodist, "geo", "3.2.0", "O(log(N))", "read geo slow", "Returns the distance between two members of a geospatial index"));
  t.push_back(def("geohash", -2, R, 1, 1, 1, cmd_geohash, "geo", "3.2.0", "O(log(N)) for each member requested, where N is the number of elements in the sorted set.", "read geo slow", "Returns members of a geospatial index as standard geohash strings"));
  t.push_back(def("geopos", -2, R, 1, 1, 1, cmd_geopos, "geo", "3.2.0", "O(N) where N is the number of members requested.", "read geo slow", "Returns longitude and latitude of members of a geospatial index"));
  t.push_back(def("georadius", -6, W | D | MK, 1, 1, 1, cmd_georadius, "geo", "3.2.0", "O(N+log(M)) where N is the number of elements inside the bounding box of the circular area delimited by center and radius and M is the number of items inside the index.", "write geo slow", "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a point"));
  t.push_back(def("georadius_ro", -6, R, 1, 1, 1, cmd_georadius_ro, "geo", "3.2.10", "O(N+log(M)) where N is the number of elements inside the bounding box of the circular area delimited by center and radius and M is the number of items inside the index.", "read geo slow", "A read-only variant for GEORADIUS"));
  t.push_back(def("georadiusbymember", -5, W | D | MK, 1, 1, 1, cmd_georadiusbymember, "geo", "3.2.0", "O(N+log(M)) where N is the number of elements inside the bounding box of the circular area delimited by center and radius and M is the number of items inside the index.", "write geo slow", "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a member"));
  t.push_back(def("georadiusbymember_ro", -5, R, 1, 1, 1, cmd_georadiusbymember_ro, "geo", "3.2.10", "O(N+log(M)) where N is the number of elements inside the bounding box of the circular area delimited by center and radius and M is the number of items inside the index.", "read geo slow", "A read-only variant for GEORADIUSBYMEMBER"));
  t.push_back(def("geosearch", -7, R, 1, 1, 1, cmd_geosearch, "geo", "6.2.0", "O(N+log(M)) where N is the number of elements in the grid-aligned bounding box area around the shape provided as the filter and M is the number of items inside the shape", "read geo slow", "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle."));
  t.push_back(def("geosearchstore", -8, W | D, 1, 2, 1, cmd_geosearchstore, "geo", "6.2.0", "O(N+log(M)) where N is the number of elements in the grid-aligned bounding box area around the shape provided as the filter and M is the number of items inside the shape", "write geo slow", "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle, and store the result in another key."));
  t.push_back(def("hset", -4, W | D | F, 1, 1, 1, cmd_hset, "hash", "2.0.0", "O(1) for each field/value pair added", "write hash fast", "Set the string value of a hash field"));
  t.push_back(def("hget", 3, R | F, 1, 1, 1, cmd_hget, "hash", "2.0.0", "O(1)", "read hash fast", "Get the value of a hash field"));
  t.push_back(def("hdel", -3, W | F, 1, 1, 1, cmd_hdel, "hash", "2.0.0", "O(N) where N is the number of fields to be removed.", "write hash fast", "Delete one or more hash fields"));
  t.push_back(def("hlen", 2, R | F, 1, 1, 1, cmd_hlen, "hash", "2.0.0", "O(1)", "read hash fast", "Get the number of fields in a hash"));
  t.push_back(def("hgetall", 2, R, 1, 1, 1, cmd_hgetall, "hash", "2.0.0", "O(N) where N is the size of the hash.", "read hash slow", "Get all the fields and values in a hash"));
  t.push_back(def("hkeys", 2, R, 1, 1, 1, cmd_hkeys, "hash", "2.0.0", "O(N) where N is the size of the hash.", "read hash slow", "Get all the fields in a hash"));
  t.push_back(def("hvals", 2, R, 1, 1, 1, cmd_hvals, "hash", "2.0.0", "O(N) where N is the size of the hash.", "read hash slow", "Get all the values in a hash"));
  t.push_back(def("hexists", 3, R | F, 1, 1, 1, cmd_hexists, "hash", "2.0.0", "O(1)", "read hash fast", "Determine if a hash field exists"));
  t.push_back(def("hmset", -4, W | D | F, 1, 1, 1, cmd_hmset, "hash", "2.0.0", "O(N) where N is the number of fields being set.", "write hash fast", "Set multiple hash fields to multiple values"));
  t.push_back(def("hsetnx", 4, W | D | F, 1, 1, 1, cmd_hsetnx, "hash", "2.0.0", "O(1)", "write hash fast", "Set the value of a hash field, only if the field does not exist"));
  t.push_back(def("hincrby", 4, W | D | F, 1, 1, 1, cmd_hincrby, "hash", "2.0.0", "O(1)", "write hash fast", "Increment the integer value of a hash field by the given number"));
  t.push_back(def("hincrbyfloat", 4, W | D | F, 1, 1, 1, cmd_hincrbyfloat, "hash", "2.6.0", "O(1)", "write hash fast", "Increment the float value of a hash field by the given amount"));
  t.push_back(def("hstrlen", 3, R | F, 1, 1, 1, cmd_hstrlen, "hash", "3.2.0", "O(1)", "read hash fast", "Get the length of the value of a hash field"));
  t.push_back(def("hmget", -3, R | F, 1, 1, 1, cmd_hmget, "hash", "2.0.0", "O(N) where N is the number of fields being requested.", "read hash fast", "Get the values of all the given hash fields"));
  t.push_back(def("hscan", -3, R, 1, 1, 1, cmd_hscan, "hash", "2.8.0", "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.", "read hash slow", "Incrementally iterate hash fields and associated values"));
  t.push_back(def("hrandfield", -2, R, 1, 1, 1, cmd_hrandfield, "hash", "6.2.0", "O(N) where N is the number of fields returned", "read hash slow", "Get one or multiple random fields from a hash"));
  // Sets.
  const char* sw = "write set fast";
  const char* sws = "write set slow";
  const char* sr = "read set fast";
  const char* srs = "read set slow";
  const char* set_op = "O(N) where N is the total number of elements in all given sets.";
  const char* inter_op = "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.";
  t.push_back(def("sadd", -3, W | D | F, 1, 1, 1, cmd_sadd, "set", "1.0.0", "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.", sw, "Add one or more members to a set"));
  t.push_back(def("srem", -3, W | F, 1, 1, 1, cmd_srem, "set", "1.0.0", "O(N) where N is the number of members to be removed.", sw, "Remove one or more members from a set"));
  t.push_back(def("smembers", 2, R, 1, 1, 1, cmd_smembers, "set", "1.0.0", "O(N) where N is the set cardinality.", srs, "Get all the members in a set"));
  t.push_back(def("sismember", 3, R | F, 1, 1, 1, cmd_sismember, "set", "1.0.0", "O(1)", sr, "Determine if a given value is a member of a set"));
  t.push_back(def("smismember", -3, R | F, 1, 1, 1, cmd_smismember, "set", "6.2.0", "O(N) where N is the number of elements being checked for membership", sr, "Returns the membership associated with the given elements for a set"));
  t.push_back(def("scard", 2, R | F, 1, 1, 1, cmd_scard, "set", "1.0.0", "O(1)", sr, "Get the number of members in a set"));
  t.push_back(def("spop", -2, W | F, 1, 1, 1, cmd_spop, "set", "3.2.0", "Without the count argument O(1), otherwise O(N) where N is the value of the passed count.", sw, "Remove and return one or multiple random members from a set"));
  t.push_back(def("srandmember", -2, R, 1, 1, 1, cmd_srandmember, "set", "2.6.0", "Without the count argument O(1), otherwise O(N) where N is the absolute value of the passed count.", srs, "Get one or multiple random members from a set"));
  t.push_back(def("smove", 4, W | F, 1, 2, 1, cmd_smove, "set", "1.0.0", "O(1)", sw, "Move a member from one set to another"));
  t.push_back(def("sunion", -2, R, 1, -1, 1, cmd_sunion, "set", "1.0.0", set_op, srs, "Add multiple sets"));
  t.push_back(def("sinter", -2, R, 1, -1, 1, cmd_sinter, "set", "1.0.0", inter_op, srs, "Intersect multiple sets"));
  t.push_back(def("sdiff", -2, R, 1, -1, 1, cmd_sdiff, "set", "1.0.0", set_op, srs, "Subtract multiple sets"));
  t.push_back(def("sunionstore", -3, W | D, 1, -1, 1, cmd_sunionstore, "set", "1.0.0", set_op, sws, "Add multiple sets and store the resulting set in a key"));
  t.push_back(def("sinterstore", -3, W | D, 1, -1, 1, cmd_sinterstore, "set", "1.0.0", inter_op, sws, "Intersect multiple sets and store the resulting set in a key"));
  t.push_back(def("sdiffstore", -3, W | D, 1, -1, 1, cmd_sdiffstore, "set", "1.0.0", set_op, sws, "Subtract multiple sets and store the resulting set in a key"));
  t.push_back(def("sintercard", -3, R | MK, 0, 0, 0, cmd_sintercard, "set", "7.0.0", inter_op, srs, "Intersect multiple sets and return the cardinality of the result"));
  t.push_back(def("sscan", -3, R, 1, 1, 1, cmd_sscan, "set", "2.8.0", "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..", srs, "Incrementally iterate Set elements"));
  // Sorted sets.
  const char* zw = "write sortedset fast";
  const char* zws = "write sortedset slow";
  const char* zr = "read sortedset fast";
  const char* zrs = "read sortedset slow";
  const char* zbf = "write sortedset fast blocking";
  const char* zbs = "write sortedset slow blocking";
  t.push_back(def("zadd", -4, W | D | F, 1, 1, 1, cmd_zadd, "sorted_set", "1.2.0", "O(log(N)) for each item added, where N is the number of elements in the sorted set.", zw, "Add one or more members to a sorted set, or update its score if it already exists"));
  t.push_back(def("zincrby", 4, W | D | F, 1, 1, 1, cmd_zincrby, "sorted_set", "1.2.0", "O(log(N)) where N is the number of elements in the sorted set.", zw, "Increment the score of a member in a sorted set"));
  t.push_back(def("zrem", -3, W | F, 1, 1, 1, cmd_zrem, "sorted_set", "1.2.0", "O(M*log(N)) with N being the number of elements in the sorted set and M the number of elements to be removed.", zw, "Remove one or more members from a sorted set"));
  t.push_back(def("zcard", 2, R | F, 1, 1, 1, cmd_zcard, "sorted_set", "1.2.0", "O(1)", zr, "Get the number of members in a sorted set"));
  t.push_back(def("zscore", 3, R | F, 1, 1, 1, cmd_zscore, "sorted_set", "1.2.0", "O(1)", zr, "Get the score associated with the given member in a sorted set"));
  t.push_back(def("zmscore", -3, R | F, 1, 1, 1, cmd_zmscore, "sorted_set", "6.2.0", "O(N) where N is the number of members being requested.", zr, "Get the score associated with the given members in a sorted set"));
  t.push_back(def("zrank", 3, R | F, 1, 1, 1, cmd_zrank, "sorted_set", "2.0.0", "O(log(N))", zr, "Determine the index of a member in a sorted set"));
  t.push_back(def("zrevrank", 3, R | F, 1, 1, 1, cmd_zrevrank, "sorted_set", "2.0.0", "O(log(N))", zr, "Determine the index of a member in a sorted set, with scores ordered from high to low"));
  t.push_back(def("zcount", 4, R | F, 1, 1, 1, cmd_zcount, "sorted_set", "2.0.0", "O(log(N)) with N being the number of elements in the sorted set.", zr, "Count the members in a sorted set with scores within the given values"));
  t.push_back(def("zlexcount", 4, R | F, 1, 1, 1, cmd_zlexcount, "sorted_set", "2.8.9", "O(log(N)) with N being the number of elements in the sorted set.", zr, "Count the number of members in a sorted set between a given lexicographical range"));
  t.push_back(def("zrange", -4, R, 1, 1, 1, cmd_zrange, "sorted_set", "1.2.0", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.", zrs, "Return a range of members in a sorted set"));
  t.push_back(def("zrangestore", -5, W | D, 1, 2, 1, cmd_zrangestore, "sorted_set", "6.2.0", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements stored into the destination key.", zws, "Store a range of members from sorted set into another key"));
  t.push_back(def("zrangebyscore", -4, R, 1, 1, 1, cmd_zrangebyscore, "sorted_set", "1.0.5", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).", zrs, "Return a range of members in a sorted set, by score"));
  t.push_back(def("zrevrangebyscore", -4, R, 1, 1, 1, cmd_zrevrangebyscore, "sorted_set", "2.2.0", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).", zrs, "Return a range of members in a sorted set, by score, with scores ordered from high to low"));
  t.push_back(def("zrangebylex", -4, R, 1, 1, 1, cmd_zrangebylex, "sorted_set", "2.8.9", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).", zrs, "Return a range of members in a sorted set, by lexicographical range"));
  t.push_back(def("zrevrangebylex", -4, R, 1, 1, 1, cmd_zrevrangebylex, "sorted_set", "2.8.9", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).", zrs, "Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings."));
  t.push_back(def("zrevrange", -4, R, 1, 1, 1, cmd_zrevrange, "sorted_set", "1.2.0", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.", zrs, "Return a range of members in a sorted set, by index, with scores ordered from high to low"));
  t.push_back(def("zremrangebyscore", 4, W, 1, 1, 1, cmd_zremrangebyscore, "sorted_set", "1.2.0", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.", zws, "Remove all members in a sorted set within the given scores"));
  t.push_back(def("zremrangebyrank", 4, W, 1, 1, 1, cmd_zremrangebyrank, "sorted_set", "2.0.0", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.", zws, "Remove all members in a sorted set within the given indexes"));
  t.push_back(def("zremrangebylex", 4, W, 1, 1, 1, cmd_zremrangebylex, "sorted_set", "2.8.9", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.", zws, "Remove all members in a sorted set between the given lexicographical range"));
  t.push_back(def("zpopmin", -2, W | F, 1, 1, 1, cmd_zpopmin, "sorted_set", "5.0.0", "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.", zw, "Remove and return members with the lowest scores in a sorted set"));
  t.push_back(def("zpopmax", -2, W | F, 1, 1, 1, cmd_zpopmax, "sorted_set", "5.0.0", "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.", zw, "Remove and return members with the highest scores in a sorted set"));
  t.push_back(def("zmpop", -4, W | MK, 0, 0, 0, cmd_zmpop, "sorted_set", "7.0.0", "O(K) + O(N*log(M)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.", zws, "Remove and return members with scores in a sorted set"));
  t.push_back(def("zrandmember", -2, R, 1, 1, 1, cmd_zrandmember, "sorted_set", "6.2.0", "O(N) where N is the number of elements returned", zrs, "Get one or multiple random elements from a sorted set"));
  t.push_back(def("zscan", -3, R, 1, 1, 1, cmd_zscan, "sorted_set", "2.8.0", "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..", zrs, "Incrementally iterate sorted sets elements and associated scores"));
  t.push_back(def("zunion", -3, R | MK, 0, 0, 0, cmd_zunion, "sorted_set", "6.2.0", "O(N)+O(M*log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.", zrs, "Add multiple sorted sets"));
  t.push_back(def("zinter", -3, R | MK, 0, 0, 0, cmd_zinter, "sorted_set", "6.2.0", "O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.", zrs, "Intersect multiple sorted sets"));
  t.push_back(def("zdiff", -3, R | MK, 0, 0, 0, cmd_zdiff, "sorted_set", "6.2.0", "O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set.", zrs, "Subtract multiple sorted sets"));
  t.push_back(def("zunionstore", -4, W | D | MK, 1, 1, 1, cmd_zunionstore, "sorted_set", "2.0.0", "O(N)+O(M log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.", zws, "Add multiple sorted sets and store the resulting sorted set in a new key"));
  t.push_back(def("zinterstore", -4, W | D | MK, 1, 1, 1, cmd_zinterstore, "sorted_set", "2.0.0", "O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.", zws, "Intersect multiple sorted sets and store the resulting sorted set in a new key"));
  t.push_back(def("zdiffstore", -4, W | D | MK, 1, 1, 1, cmd_zdiffstore, "sorted_set", "6.2.0", "O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set.", zws, "Subtract multiple sorted sets and store the resulting sorted set in a new key"));
  t.push_back(def("zintercard", -3, R | MK, 0, 0, 0, cmd_zintercard, "sorted_set", "7.0.0", "O(N*K) worst case with N being the smallest input sorted set, K being the number of input sorted sets.", zrs, "Intersect multiple sorted sets and return the cardinality of the result"));
  t.push_back(def("bzpopmin", -3, W | N | B | F, 1, -2, 1, cmd_bzpopmin, "sorted_set", "5.0.0", "O(log(N)) with N being the number of elements in the sorted set.", zbf, "Remove and return the member with the lowest score from one or more sorted sets, or block until one is available"));
  t.push_back(def("bzpopmax", -3, W | N | B | F, 1, -2, 1, cmd_bzpopmax, "sorted_set", "5.0.0", "O(log(N)) with N being the number of elements in the sorted set.", zbf, "Remove and return the member with the highest score from one or more sorted sets, or block until one is available"));
  t.push_back(def("bzmpop", -5, W | B | MK, 0, 0, 0, cmd_bzmpop, "sorted_set", "7.0.0", "O(K) + O(N*log(M)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.", zbs, "Remove and return members with scores in a sorted set or block until one is available"));
  // Streams.
  const char* xw = "write stream fast";
  const char* xws = "write stream slow";
  const char* xr = "read stream fast";
  const char* xrs = "read stream slow";
  t.push_back(def("xadd", -5, W | D | F, 1, 1, 1, cmd_xadd, "stream", "5.0.0", "O(1) when adding a new entry, O(N) when trimming where N being the number of entries evicted.", xw, "Appends a new entry to a stream"));
  t.push_back(def("xlen", 2, R | F, 1, 1, 1, cmd_xlen, "stream", "5.0.0", "O(1)", xr, "Return the number of entries in a stream"));
  t.push_back(def("xrange", -4, R, 1, 1, 1, cmd_xrange, "stream", "5.0.0", "O(N) with N being the number of elements being returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1).", xrs, "Return a range of elements in a stream, with IDs matching the specified IDs interval"));
  t.push_back(def("xrevrange", -4, R, 1, 1, 1, cmd_xrevrange, "stream", "5.0.0", "O(N) with N being the number of elements returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1).", xrs, "Return a range of elements in a stream, with IDs matching the specified IDs interval, in reverse order (from greater to smaller IDs) compared to XRANGE"));
  t.push_back(def("xdel", -3, W | F, 1, 1, 1, cmd_xdel, "stream", "5.0.0", "O(1) for each single item to delete in the stream, regardless of the stream size.", xw, "Removes the specified entries from the stream. Returns the number of items actually deleted, that may be different from the number of IDs passed in case certain IDs do not exist."));
  t.push_back(def("xtrim", -4, W, 1, 1, 1, cmd_xtrim, "stream", "5.0.0", "O(N), with N being the number of evicted entries. Constant times are very small however, since entries are organized in macro nodes containing multiple entries that can be released with a single deallocation.", xws, "Trims the stream to (approximately if '~' is passed) a certain size"));
  t.push_back(def("xread", -4, R | B | MK, 0, 0, 0, cmd_xread, "stream", "5.0.0", "For each stream mentioned: O(N) with N being the number of elements being returned, it means that XREAD-ing with a fixed COUNT is O(1). Note that when the BLOCK option is used, XADD will pay O(M) time in order to serve the M clients blocked on the stream getting new data.", "read stream slow blocking", "Return never seen elements in multiple streams, with IDs greater than the ones reported by the caller for each stream. Can block."));
  t.push_back(def("xreadgroup", -7, W | B | MK, 0, 0, 0, cmd_xreadgroup, "stream", "5.0.0", "For each stream mentioned: O(M) with M being the number of elements returned. If M is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1). On the other side when XREADGROUP blocks, XADD will pay the O(N) time in order to serve the N clients blocked on the stream getting new data.", "write stream slow blocking", "Return new entries from a stream using a consumer group, or access the history of the pending entries for a given consumer. Can block."));
  t.push_back(def("xack", -4, W | F, 1, 1, 1, cmd_xack, "stream", "5.0.0", "O(1) for each message ID processed.", xw, "Marks a pending message as correctly processed, effectively removing it from the pending entries list of the consumer group. Return value of the command is the number of messages successfully acknowledged, that is, the IDs we were actually able to resolve in the PEL."));
  t.push_back(def("xpending", -3, R, 1, 1, 1, cmd_xpending, "stream", "5.0.0", "O(N) with N being the number of elements returned, so asking for a small fixed number of entries per call is O(1). O(M), where M is the total number of entries scanned when used with the IDLE filter. When the command returns just the summary and the list of consumers is small, it runs in O(1) time; otherwise, an additional O(N) time for iterating every consumer.", xrs, "Return information and entries from a stream consumer group pending entries list, that are messages fetched but never acknowledged."));
  t.push_back(def("xclaim", -6, W | F, 1, 1, 1, cmd_xclaim, "stream", "5.0.0", "O(log N) with N being the number of messages in the PEL of the consumer group.", xw, "Changes (or acquires) ownership of a message in a consumer group, as if the message was delivered to the specified consumer."));
  t.push_back(def("xautoclaim", -6, W | F, 1, 1, 1, cmd_xautoclaim, "stream", "6.2.0", "O(1) if COUNT is small.", xw, "Changes (or acquires) ownership of messages in a consumer group, as if the messages were delivered to the specified consumer."));
  {
    command_def c = def("xgroup", -2, 0, 0, 0, 0, cmd_xgroup, "stream", "5.0.0", "Depends on subcommand.", "slow", "A container for consumer groups commands");
    c.subcommands.push_back(def("create", -5, W | D, 2, 2, 1, cmd_xgroup, "stream", "5.0.0", "O(1)", xws, "Create a consumer group."));
    c.subcommands.push_back(def("createconsumer", 5, W | D, 2, 2, 1, cmd_xgroup, "stream", "6.2.0", "O(1)", xws, "Create a consumer in a consumer group."));
    c.subcommands.push_back(def("delconsumer", 5, W, 2, 2, 1, cmd_xgroup, "stream", "5.0.0", "O(1)", xws, "Delete a consumer from a consumer group."));
    c.subcommands.push_back(def("destroy", 4, W, 2, 2, 1, cmd_xgroup, "stream", "5.0.0", "O(N) where N is the number of entries in the group's pending entries list (PEL).", xws, "Destroy a consumer group."));
    c.subcommands.push_back(def("help", 2, L | S, 0, 0, 0, cmd_xgroup, "stream", "5.0.0", "O(1)", "stream slow", "Show helpful text about the different subcommands"));
    c.subcommands.push_back(def("setid", -5, W, 2, 2, 1, cmd_xgroup, "stream", "5.0.0", "O(1)", xws, "Set a consumer group to an arbitrary last delivered ID value."));
    t.push_back(std::move(c));
  }
  t.push_back(def("xsetid", -3, W | D | F, 1, 1, 1, cmd_xsetid, "stream", "5.0.0", "O(1)", xw, "An internal command for replication"));
  {
    command_def c = def("xinfo", -2, 0, 0, 0, 0, cmd_xinfo, "stream", "5.0.0", "Depends on subcommand.", "slow", "A container for stream introspection commands");
    c.subcommands.push_back(def("consumers", 4, R, 2, 2, 1, cmd_xinfo, "stream", "5.0.0", "O(1)", xrs, "List the consumers in a consumer group"));
    c.subcommands.push_back(def("groups", 3, R, 2, 2, 1, cmd_xinfo, "stream", "5.0.0", "O(1)", xrs, "List the consumer groups of a stream"));
    c.subcommands.push_back(def("help", 2, L | S, 0, 0, 0, cmd_xinfo, "stream", "5.0.0", "O(1)", "stream slow", "Show helpful text about the different subcommands"));
    c.subcommands.push_back(def("stream", -3, R, 2, 2, 1, cmd_xinfo, "stream", "5.0.0", "O(N) with N being the number of returned items for the subcommands CONSUMERS and GROUPS. The STREAM subcommand is O(log N) with N being the number of items in the stream.", xrs, "Get information about a stream"));
    t.push_back(std::move(c));
  }
  // Pub/sub.
  t.push_back(def("publish", 3, P | L | S | F | MR, 0, 0, 0, cmd_publish, "pubsub", "2.0.0", "O(N+M)", "pubsub fast", "Post a message to a channel"));
  t.push_back(def("spublish", 3, P | L | S | F | MR, 0, 0, 0, cmd_spublish, "pubsub", "7.0.0", "O(N) where N is the number of clients subscribed to the receiving shard channel.", "pubsub fast", "Post a message to a shard channel"));
  t.push_back(def("ssubscribe", -2, P | N | L | S | SUB, 0, 0, 0, cmd_ssubscribe, "pubsub", "7.0.0", "O(N) where N is the number of shard channels to subscribe to.", "pubsub slow", "Listen for messages published to the given shard channels"));
  t.push_back(def("sunsubscribe", -1, P | N | L | S | SUB, 0, 0, 0, cmd_sunsubscribe, "pubsub", "7.0.0", "O(N) where N is the number of clients already subscribed to a shard channel.", "pubsub slow", "Stop listening for messages posted to the given shard channels"));
  t.push_back(def("subscribe", -2, P | N | L | S | SUB, 0, 0, 0, cmd_subscribe, "pubsub", "2.0.0", "O(N) where N is the number of channels to subscribe to.", "pubsub slow", "Listen for messages published to the given channels"));
  t.push_back(def("unsubscribe", -1, P | N | L | S | SUB, 0, 0, 0, cmd_unsubscribe, "pubsub", "2.0.0", "O(N) where N is the number of clients already subscribed to a channel.", "pubsub slow", "Stop listening for messages posted to the given channels"));
  t.push_back(def("psubscribe", -2, P | N | L | S | SUB, 0, 0, 0, cmd_psubscribe, "pubsub", "2.0.0", "O(N) where N is the number of patterns the client is already subscribed to.", "pubsub slow", "Listen for messages published to channels matching the given patterns"));
  t.push_back(def("punsubscribe", -1, P | N | L | S | SUB, 0, 0, 0, cmd_punsubscribe, "pubsub", "2.0.0", "O(N+M)", "pubsub slow", "Stop listening for messages posted to channels matching the given patterns"));
  {
    command_def c = def("pubsub", -2, 0, 0, 0, 0, cmd_pubsub, "pubsub", "2.8.0", "Depends on subcommand.", "slow", "A container for Pub/Sub commands");
    c.subcommands.push_back(sub("channels", -2, P | L | S, cmd_pubsub, "pubsub", "2.8.0", "pubsub slow", "List active channels"));
    c.subcommands.push_back(sub("numsub", -2, P | L | S, cmd_pubsub, "pubsub", "2.8.0", "pubsub slow", "Get the count of subscribers for channels"));
    c.subcommands.push_back(sub("numpat", 2, P | L | S, cmd_pubsub, "pubsub", "2.8.0", "pubsub slow", "Get the count of unique patterns pattern subscriptions"));
    c.subcommands.push_back(sub("shardchannels", -2, P | L | S, cmd_pubsub, "pubsub", "7.0.0", "pubsub slow", "List active shard channels"));
    c.subcommands.push_back(sub("shardnumsub", -2, P | L | S, cmd_pubsub, "pubsub", "7.0.0", "pubsub slow", "Get the count of subscribers for shard channels"));
    c.subcommands.push_back(sub("help", 2, L | S, cmd_pubsub, "pubsub", "6.2.0", "slow", "Show helpful text about the different subcommands"));
    t.push_back(std::move(c));
  }
  // Transactions.
  t.push_back(def("multi", 1, N | L | S | F | AB | NM, 0, 0, 0, cmd_multi, "transactions", "1.2.0", "O(1)", "fast transaction", "Mark the start of a transaction block"));
  t.push_back(def("exec", 1, N | L | S | NM, 0, 0, 0, cmd_exec, "transactions", "1.2.0", "Depends on commands in the transaction", "slow transaction", "Execute all commands issued after MULTI"));
  t.push_back(def("discard", 1, N | L | S | F | AB | NM, 0, 0, 0, cmd_discard, "transactions", "2.0.0", "O(N), when N is the number of queued commands", "fast transaction", "Discard all commands issued after MULTI"));
  t.push_back(def("watch", -2, N | L | S | F | AB | NM | NK, 1, -1, 1, cmd_watch, "transactions", "2.2.0", "O(1) for every key.", "fast transaction", "Watch the given keys to determine execution of the MULTI/EXEC block"));
  t.push_back(def("unwatch", 1, N | L | S | F | AB, 0, 0, 0, cmd_unwatch, "transactions", "2.2.0", "O(1)", "fast transaction", "Forget about all watched keys"));
  // Scripting.
  t.push_back(def("eval", -3, N | S | SM | MK | MR, 0, 0, 0, cmd_eval, "scripting", "2.6.0", "Depends on the script that is executed.", "slow scripting", "Execute a Lua script server side"));
  t.push_back(def("evalsha", -3, N | S | SM | MK | MR, 0, 0, 0, cmd_evalsha, "scripting", "2.6.0", "Depends on the script that is executed.", "slow scripting", "Execute a Lua script server side"));
  t.push_back(def("eval_ro", -3, N | S | R | SM | MK, 0, 0, 0, cmd_eval_ro, "scripting", "7.0.0", "Depends on the script that is executed.", "slow scripting", "Execute a read-only Lua script server side"));
  t.push_back(def("evalsha_ro", -3, N | S | R | SM | MK, 0, 0, 0, cmd_evalsha_ro, "scripting", "7.0.0", "Depends on the script that is executed.", "slow scripting", "Execute a read-only Lua script server side"));
  {
    command_def c = def("script", -2, 0, 0, 0, 0, cmd_script, "scripting", "2.6.0", "Depends on subcommand.", "slow", "A container for Lua scripts management commands");
    c.subcommands.push_back(sub("debug", 3, N, cmd_script, "scripting", "3.2.0", "slow scripting", "Set the debug mode for executed scripts."));
    c.subcommands.push_back(sub("exists", -3, N, cmd_script, "scripting", "2.6.0", "slow scripting", "Check existence of scripts in the script cache."));
    c.subcommands.push_back(sub("flush", -2, N, cmd_script, "scripting", "2.6.0", "slow scripting", "Remove all the scripts from the script cache."));
    c.subcommands.push_back(sub("help", 2, L | S, cmd_script, "scripting", "5.0.0", "slow scripting", "Show helpful text about the different subcommands"));
    c.subcommands.push_back(sub("kill", 2, N | AB, cmd_script, "scripting", "2.6.0", "slow scripting", "Kill the script currently in execution."));
    c.subcommands.push_back(sub("load", 3, N | S, cmd_script, "scripting", "2.6.0", "slow scripting", "Load the specified Lua script into the script cache."));
    t.push_back(std::move(c));
  }
  // Functions (Redis 7.0). FCALL's write and denyoom flags come from the function's own
  // (server::may_replicate, script_denies_oom). FUNCTION DUMP and RESTORE are not here yet.
  t.push_back(def("fcall", -3, N | S | SM | MK | MR, 0, 0, 0, cmd_fcall, "scripting", "7.0.0", "Depends on the function that is executed.", "slow scripting", "Invoke a function"));
  t.push_back(def("fcall_ro", -3, N | S | R | SM | MK, 0, 0, 0, cmd_fcall_ro, "scripting", "7.0.0", "Depends on the function that is executed.", "slow scripting", "Invoke a read-only function"));
  {
    command_def c = def("function", -2, 0, 0, 0, 0, cmd_function, "scripting", "7.0.0", "Depends on subcommand.", "slow", "A container for function commands");
    c.subcommands.push_back(sub("delete", 3, W | N, cmd_function, "scripting", "7.0.0", "write slow scripting", "Delete a function by name"));
    c.subcommands.push_back(sub("dump", 2, N, cmd_function, "scripting", "7.0.0", "slow scripting", "Dump all functions into a serialized binary payload"));
    c.subcommands.push_back(sub("flush", -2, W | N, cmd_function, "scripting", "7.0.0", "write slow scripting", "Deleting all functions"));
    c.subcommands.push_back(sub("help", 2, L | S, cmd_function, "scripting", "7.0.0", "slow scripting", "Show helpful text about the different subcommands"));
    c.subcommands.push_back(sub("kill", 2, N | AB, cmd_function, "scripting", "7.0.0", "slow scripting", "Kill the function currently in execution."));
    c.subcommands.push_back(sub("list", -2, N, cmd_function, "scripting", "7.0.0", "slow scripting", "List information about all the functions"));
    c.subcommands.push_back(sub("load", -3, W | D | N, cmd_function, "scripting", "7.0.0", "write slow scripting", "Create a function with the given arguments (name, code, description)"));
    c.subcommands.push_back(sub("restore", -3, W | D | N, cmd_function, "scripting", "7.0.0", "write slow scripting", "Restore all the functions on the given payload"));
    c.subcommands.push_back(sub("stats", 2, N | AB, cmd_function, "scripting", "7.0.0", "slow scripting", "Return information about the function currently running (name, description, duration)"));
    t.push_back(std::move(c));
  }
  // Server.
  t.push_back(def("info", -1, L | S, 0, 0, 0, cmd_info, "server", "1.0.0", "O(1)", "slow dangerous", "Get information and statistics about the server"));
  {
    command_def c = def("command", -1, L | S, 0, 0, 0, cmd_command, "server", "2.8.13", "O(N) where N is the total number of Redis commands", "slow connection", "Get array of Redis command details");
    c.subcommands.push_back(sub("count", 2, L | S, cmd_command, "server", "2.8.13", "slow connection", "Get total number of Redis commands"));
    c.subcommands.push_back(sub("docs", -2, L | S, cmd_command, "server", "7.0.0", "slow connection", "Get array of specific Redis command documentation"));
    c.subcommands.push_back(sub("getkeys", -4, L | S, cmd_command, "server", "2.8.13", "slow connection", "Extract keys given a full Redis command"));
    c.subcommands.push_back(sub("getkeysandflags", -4, L | S, cmd_command, "server", "7.0.0", "slow connection", "Extract keys and access flags given a full Redis command"));
    c.subcommands.push_back(sub("info", -2, L | S, cmd_command, "server", "2.8.13", "slow connection", "Get array of specific Redis command details, or all when no argument is given."));
    c.subcommands.push_back(sub("list", -2, L | S, cmd_command, "server", "7.0.0", "slow connection", "Get an array of Redis command names"));
    c.subcommands.push_back(sub("help", 2, L | S, cmd_command, "server", "5.0.0", "slow connection", "Show helpful text about the different subcommands"));
    t.push_back(std::move(c));
  }
  {
    command_def c = def("config", -2, 0, 0, 0, 0, cmd_config, "server", "2.0.0", "Depends on subcommand.", "slow", "A container for server configuration commands");
    c.subcommands.push_back(sub("get", -3, A | N | L | S, cmd_config, "server", "2.0.0", "admin slow dangerous", "Get the values of configuration parameters"));
    c.subcommands.push_back(sub("set", -4, A | N | L | S, cmd_config, "server", "2.0.0", "admin slow dangerous", "Set configuration parameters to the given values"));
    c.subcommands.push_back(sub("resetstat", 2, A | N | L | S, cmd_config, "server", "2.0.0", "admin slow dangerous", "Reset the stats returned by INFO"));
    c.subcommands.push_back(sub("rewrite", 2, A | N | L | S, cmd_config, "server", "2.8.0", "admin slow dangerous", "Rewrite the configuration file with the in memory configuration"));
    c.subcommands.push_back(sub("help", 2, L | S, cmd_config, "server", "5.0.0", "slow", "Show helpful text about the different subcommands"));
    t.push_back(std::move(c));
  }
  t.push_back(def("time", 1, L | S | F, 0, 0, 0, cmd_time, "server", "2.6.0", "O(1)", "fast", "Return the current server time"));
  t.push_back(def("shutdown", -1, A | N | L | S | DM | AB, 0, 0, 0, cmd_shutdown, "server", "1.0.0", "O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)", "admin slow dangerous", "Synchronously save the dataset to disk and then shut down the server"));
  t.push_back(def("bgrewriteaof", 1, A | N, 0, 0, 0, cmd_bgrewriteaof, "server", "1.0.0", "O(1)", "admin slow dangerous", "Asynchronously rewrite the append-only file"));
  t.push_back(def("monitor", 1, A | N | L | S, 0, 0, 0, cmd_monitor, "server", "1.0.0", "O(1)", "admin slow dangerous", "Listen for all requests received by the server in real time"));
  t.push_back(def("wait", 3, N, 0, 0, 0, cmd_wait, "generic", "3.0.0", "O(1)", "slow connection", "Wait for the synchronous replication of all the write commands sent in the context of the current connection"));
  t.push_back(def("role", 1, N | L | S | F, 0, 0, 0, cmd_role, "server", "2.8.12", "O(1)", "admin fast dangerous", "Return the role of the instance in the context of replication"));
  t.push_back(def("lastsave", 1, L | S | F, 0, 0, 0, cmd_lastsave, "server", "1.0.0", "O(1)", "admin fast dangerous", "Get the UNIX time stamp of the last successful save to disk"));
  {
    command_def c = def("memory", -2, 0, 0, 0, 0, cmd_memory, "server", "4.0.0", "Depends on subcommand.", "slow", "A container for memory diagnostics commands");
    c.subcommands.push_back(def("usage", -3, R | L | NK, 2, 2, 1, cmd_memory, "server", "4.0.0", "O(N) where N is the number of samples.", "read slow", "Estimate the memory usage of a key"));
    c.subcommands.push_back(def("purge", 2, 0, 0, 0, 0, cmd_memory, "server", "4.0.0", "Depends on how much memory is allocated, could be slow", "slow", "Ask the allocator to release memory"));
    c.subcommands.push_back(sub("help", 2, L | S, cmd_memory, "server", "4.0.0", "slow", "Show helpful text about the different subcommands"));
    t.push_back(std::move(c));
  }
  {
    command_def c = def("slowlog", -2, 0, 0, 0, 0, cmd_slowlog, "server", "2.2.12", "Depends on subcommand.", "slow", "A container for slow log commands");
    c.subcommands.push_back(sub("get", -2, A | L | S, cmd_slowlog, "server", "2.2.12", "admin slow dangerous", "Get the slow log's entries"));
    c.subcommands.push_back(sub("help", 2, L | S, cmd_slowlog, "server", "6.2.0", "slow", "Show helpful text about the different subcommands"));
    c.subcommands.push_back(sub("len", 2, A | L | S, cmd_slowlog, "server", "2.2.12", "admin slow dangerous", "Get the slow log's length"));
    c.subcommands.push_back(sub("reset", 2, A | L | S, cmd_slowlog, "server", "2.2.12", "admin slow dangerous", "Clear all entries from the slow log"));
    t.push_back(std::move(c));
  }
  {
    command_def c = def("latency", -2, 0, 0, 0, 0, cmd_latency, "server", "2.8.13", "Depends on subcommand.", "slow", "A container for latency diagnostics commands");
    const std::uint32_t lf = A | N | L | S;
    c.subcommands.push_back(sub("doctor", 2, lf, cmd_latency, "server", "2.8.13", "admin slow dangerous", "Return a human readable latency analysis report."));
    c.subcommands.push_back(sub("graph", 3, lf, cmd_latency, "server", "2.8.13", "admin slow dangerous", "Return a latency graph for the event."));
    c.subcommands.push_back(sub("help", 2, L | S, cmd_latency, "server", "2.8.13", "slow", "Show helpful text about the different subcommands."));
    c.subcommands.push_back(sub("histogram", -2, lf, cmd_latency, "server", "7.0.0", "admin slow dangerous", "Return the cumulative distribution of latencies of a subset of commands or all."));
    c.subcommands.push_back(sub("history", 3, lf, cmd_latency, "server", "2.8.13", "admin slow dangerous", "Return timestamp-latency samples for the event."));
    c.subcommands.push_back(sub("latest", 2, lf, cmd_latency, "server", "2.8.13", "admin slow dangerous", "Return the latest latency samples for all events."));
    c.subcommands.push_back(sub("reset", -2, lf, cmd_latency, "server", "2.8.13", "admin slow dangerous", "Reset latency data for one or more events."));
    t.push_back(std::move(c));
  }
  // respq's own: control of HTTP queues (cmd_queue.cpp). "since" is the respq version
  // that added them.
  {
    command_def c = def("queue", -2, N, 0, 0, 0, cmd_queue, "server", "0.1.0", "Depends on subcommand.", "slow", "A container for HTTP queue control commands (respq)");
    c.subcommands.push_back(sub("pause", 3, W | N, cmd_queue, "server", "0.1.0", "write slow", "Stop dispatching new attempts of an HTTP queue (persisted as the key <queue>:paused)"));
    c.subcommands.push_back(sub("resume", 3, W | N, cmd_queue, "server", "0.1.0", "write slow", "Resume dispatching an HTTP queue"));
    c.subcommands.push_back(sub("replay", -3, W | N, cmd_queue, "server", "0.1.0", "write slow", "Move dead letters (all, or by ID, CODE, HOST) back into their queue at replay-rate"));
    c.subcommands.push_back(sub("deldead", 4, W | N, cmd_queue, "server", "0.1.0", "write slow", "Delete a dead letter by task id"));
    c.subcommands.push_back(sub("hostreset", 4, N, cmd_queue, "server", "0.1.0", "slow", "Trust a destination host of an HTTP queue afresh: close its circuit, end its hold, restore its cap"));
    c.subcommands.push_back(sub("help", 2, L | S, cmd_queue, "server", "0.1.0", "slow", "Show helpful text about the different subcommands"));
    t.push_back(std::move(c));
  }
  {
    command_def c = def("task", -2, N, 0, 0, 0, cmd_task, "server", "0.1.0", "Depends on subcommand.", "slow", "A container for HTTP task commands (respq)");
    c.subcommands.push_back(sub("get", 3, R | N, cmd_task, "server", "0.1.0", "read slow", "Find an HTTP task by id: its queue, state, attempts, next run, last error and payload"));
    c.subcommands.push_back(sub("cancel", 3, W | N, cmd_task, "server", "0.1.0", "write slow", "Cancel an HTTP task in custody by id (outcome 'cancelled')"));
    c.subcommands.push_back(sub("help", 2, L | S, cmd_task, "server", "0.1.0", "slow", "Show helpful text about the different subcommands"));
    t.push_back(std::move(c));
  }
  t.push_back(def("debug", -2, A | N | L | S, 0, 0, 0, cmd_debug, "server", "1.0.0", "Depends on subcommand.", "admin slow dangerous", "A container for debugging commands"));

  command_list_.clear();
  for (auto& row : lookup_buckets_)
    for (auto& bucket : row) bucket.clear();
  for (const auto& c : t) {
    lookup_buckets_[c.name.size()][static_cast<unsigned char>(c.name[0])].push_back(&c);
    command_list_.push_back(&c);
  }
}

}  // namespace respq::core
