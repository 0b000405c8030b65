// geohash: Redis 7.0's geohash.c and geohash_helper.c, ported step for step so that the
// GEO commands (cmd_geo.cpp) encode, decode, pick search areas and measure distances
// exactly as redis-server does. A point is stored as a sorted-set score: 26 bits of
// longitude and 26 of latitude interleaved (latitude range -85.05112878..85.05112878,
// the Web Mercator limits; longitude -180..180). A search looks at the geohash box
// around its centre and its 8 neighbours, at a precision (step) estimated from the
// radius, then filters the candidates by distance (haversine on a sphere of radius
// 6372797.560856 m).
//
// The arithmetic is Redis's own, operation for operation (the same libm calls in the
// same order): results, their order and the digits printed depend on the last bit.
// No state; everything here is a pure function.
#pragma once

#include <cstdint>

namespace respq::core::geo {

constexpr int step_max = 26;  // 26 * 2 = 52 bits
constexpr double lat_min = -85.05112878;
constexpr double lat_max = 85.05112878;
constexpr double long_min = -180;
constexpr double long_max = 180;

struct hash_bits {
  std::uint64_t bits = 0;
  std::uint8_t step = 0;
  bool is_zero() const { return bits == 0 && step == 0; }
};

struct range {
  double min = 0, max = 0;
  bool is_zero() const { return max == 0 && min == 0; }
};

struct area {
  hash_bits hash;
  range longitude, latitude;
};

struct neighbors {
  hash_bits north, east, west, south, north_east, south_east, north_west, south_west;
};

// Redis's GeoShape: a circle (radius) or an axis-aligned box (width x height) around
// xy = {longitude, latitude}; `conversion` is the unit in meters (km: 1000).
struct shape {
  enum kind_t { none = 0, circular = 1, rectangle = 2 } kind = none;
  double xy[2] = {0, 0};
  double conversion = 0;
  double bounds[4] = {0, 0, 0, 0};  // min lon, min lat, max lon, max lat
  double radius = 0;
  double height = 0, width = 0;
};

// The centre box and its neighbours to search (a neighbour zeroed: not needed).
struct search_areas {
  hash_bits hash;
  neighbors around;
  area centre;
};

// geohashEncode over the given ranges; false when the point is outside them.
bool encode(const range& long_range, const range& lat_range, double longitude, double latitude, std::uint8_t step,
            hash_bits& out);
// geohashEncodeWGS84: over Redis's coordinate ranges.
bool encode_wgs84(double longitude, double latitude, std::uint8_t step, hash_bits& out);
bool decode(const range& long_range, const range& lat_range, const hash_bits& hash, area& out);
// geohashDecodeToLongLatWGS84: the centre of the box, clamped to the valid ranges.
bool decode_to_long_lat(const hash_bits& hash, double* xy);
// decodeGeohash: a sorted-set score (any double, as Redis casts it) to {lon, lat}.
bool decode_score(double score, double* xy);
// geohashAlign52Bits.
std::uint64_t align_52bits(const hash_bits& hash);
// geohashCalculateAreasByShapeWGS84 (fills s.bounds).
search_areas areas_by_shape(shape& s);
// geohashGetDistance: meters between two {lon, lat} points.
double distance(double lon1d, double lat1d, double lon2d, double lat2d);
// geoWithinShape's tests: true (and the distance from the centre) when the point lies in
// the circle (geohashGetDistanceIfInRadiusWGS84) or the box (...IfInRectangle).
bool distance_if_in_radius(double x1, double y1, double x2, double y2, double radius, double& dist);
bool distance_if_in_rectangle(double width_m, double height_m, double x1, double y1, double x2, double y2,
                              double& dist);

// The (uint64_t) cast of a double as gcc compiles it for x86-64 (cvttsd2si, with 2^63
// subtracted first at or above it): Redis applies that cast to any score, also one that
// is not a geohash, and the GEO commands must decode such a member the same way.
std::uint64_t score_bits(double score);

}  // namespace respq::core::geo
