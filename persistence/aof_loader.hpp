// aof_loader: replays an append-only file into the core at start-up.
//
// The file is a sequence of RESP arrays of bulks (what the command stream writes; also
// what Redis wrote before 7.0 without an RDB preamble). Each command is looked up in the
// command table and run with server::call() on the internal client, with the server in
// loading mode; replies are discarded. MULTI ... EXEC blocks are applied as a unit: their
// commands are held until EXEC, so a block the writer did not finish is never half
// applied.
//
// What the loader accepts at the end of the file, and what stops the start:
//   - an incomplete last command, or a MULTI whose EXEC never came (a torn write, the
//     process was killed mid-append): a torn tail. With aof-load-truncated yes the file
//     is truncated to the end of the last complete command (or to the start of the open
//     MULTI) and the start goes on, with a warning naming the offset; with no, the start
//     stops.
//   - anything else malformed (a protocol error, a record that is not an array, an
//     unknown command, a wrong number of arguments, EXEC without MULTI, nested MULTI):
//     the file is corrupt where it says; the start stops with a message naming the byte
//     offset of the bad record, and the file is left as it is.
//
// Runs on the broker thread before anything listens for clients or any stream sink is
// registered: effects of loaded commands are flushed from the command stream with no
// sink to receive them, so they are not written back to the file.
#pragma once

#include <cstdint>
#include <string>

namespace respq::core {
class server;
}

namespace respq::persistence {

struct load_result {
  std::string error;             // non-empty: the start must stop (message names the offset)
  bool found = false;            // the file existed
  std::uint64_t commands = 0;    // commands applied
  std::uint64_t size = 0;        // file size after loading (after a truncation)
  bool truncated = false;        // a torn tail was cut off
  std::uint64_t original_size = 0;
  int ends_in_db = 0;            // the database the file's last SELECT left a reader in
};

// Loads `path` (a missing file is an empty dataset; messages name the file by this path).
// `allow_truncated` is aof-load-truncated.
load_result load_aof(core::server& s, const std::string& path, bool allow_truncated);

}  // namespace respq::persistence
