// glob_match: Redis's stringmatchlen (KEYS, SCAN MATCH, PSUBSCRIBE, CONFIG GET,
// mirror-keys): * ? [abc] [^a] [a-z] and \ escapes, byte-wise, optionally case-insensitive.
#pragma once

#include <string_view>

namespace respq::core {

bool glob_match(std::string_view pattern, std::string_view str, bool nocase = false);

}  // namespace respq::core
