// rdb_codec: DUMP payloads, Redis 7.0's serialized form of one value (the RDB object
// encoding, then the RDB version, 2 bytes little-endian, then the CRC64 of everything
// before, 8 bytes little-endian), both ways. DUMP and RESTORE use it; so can any tool that
// moves keys between Redis and respq (MIGRATE on a redis-server sends RESTORE).
//
// Writing (dump_value) follows redis-server 7.0.15 byte for byte where respq holds the
// value the way Redis would: strings (integer and LZF encodings, with the LZF that Redis
// bundles: liblzf 3.6 gives the same bytes), lists as QUICKLIST_2 nodes of listpacks
// split as Redis splits an RPUSHed list (list-max-listpack-size -2: 8 KB nodes), small
// sorted sets and hashes as listpacks, integer sets as intsets, larger ones as ZSET_2,
// HASH and SET. A small hash keeps insertion order as Redis's listpack (hash_value.hpp),
// so its listpack is Redis's too; respq's larger hash and set tables iterate in their own
// order, so those bytes differ from Redis's; they RESTORE into the same value anywhere.
//
// Streams are written as STREAM_LISTPACKS_2 with their consumer groups, pending entries
// and consumers; the listpacks are cut as Redis cuts a stream built by XADD, so such a
// stream's payload is Redis's byte for byte (deleted entries are left out, see
// dump_stream).
//
// Reading (restore_value) takes every encoding a Redis 5.0 to 7.0 writes (STRING; LIST,
// LIST_ZIPLIST, LIST_QUICKLIST, LIST_QUICKLIST_2; SET, SET_INTSET; ZSET, ZSET_2,
// ZSET_ZIPLIST, ZSET_LISTPACK; HASH, HASH_ZIPMAP, HASH_ZIPLIST, HASH_LISTPACK;
// STREAM_LISTPACKS, STREAM_LISTPACKS_2). The
// payload comes from a client and may be anything: every length is checked against the
// bytes that remain before anything is allocated, and every listpack, ziplist, intset and
// zipmap is validated whole, as Redis's deep sanitization does (entry counts, back
// lengths, terminators, sorted intsets, duplicate members or fields, NaN scores). Empty
// collections are refused, as Redis refuses them. Nothing is built into the keyspace
// here: the value comes back whole or not at all.
//
// Module values are refused (respq has no modules).
//
// No I/O, no clock: pure functions over bytes. Owner: none (any thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "broker/core/keyspace.hpp"

namespace respq::core::rdb {

inline constexpr std::uint16_t rdb_version = 10;  // Redis 7.0's RDB_VERSION

// Redis's crc64 (Jones polynomial, reflected, as crc64.c): crc64(0, p, n).
std::uint64_t crc64(std::uint64_t crc, const unsigned char* p, std::size_t n);

// Appends the DUMP payload of `v` to `out` (a stream's listpacks are cut by `limits`, the
// server's stream-node-max-bytes and -entries).
bool dump_value(const value& v, std::string& out, const stream_node_limits& limits = {});

enum class restore_status {
  ok,
  bad_footer,   // "DUMP payload version or checksum are wrong"
  bad_format,   // "Bad data format"
  module_type,  // a module's value: respq has no modules
};

// Checks the footer (length, version <= 10, CRC64) and decodes the value into `out` (its
// data and a string's encoding hint; a stream's entries go in blocks cut by `limits`). On
// any error `out` is left as it was.
restore_status restore_value(std::string_view payload, value& out, const stream_node_limits& limits = {});

// FUNCTION DUMP: each library's code (RDB_OPCODE_FUNCTION2, then the code as an RDB
// string), then the footer: what redis-server 7.0 writes for the same libraries.
std::string dump_functions(const std::vector<std::string_view>& codes);
// FUNCTION RESTORE: the libraries' code in payload order into `codes`; on a bad payload
// Redis's error text (without "ERR ") and `codes` untouched.
std::string restore_functions(std::string_view payload, std::vector<std::string>& codes);

}  // namespace respq::core::rdb
