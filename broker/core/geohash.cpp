// Redis 7.0's geohash.c and geohash_helper.c (see geohash.hpp). Kept in Redis's shape and
// order of operations on purpose: a "simplified" formula would move the last bit of a
// coordinate or a distance, and with it a printed digit or a member at a search's edge.
#include "broker/core/geohash.hpp"

#include <cmath>
#include <cstdint>

namespace respq::core::geo {

namespace {

constexpr double d_r = M_PI / 180.0;
// Earth's quadratic mean radius for WGS-84.
constexpr double earth_radius_in_meters = 6372797.560856;
constexpr double mercator_max = 20037726.37;

inline double deg_rad(double ang) { return ang * d_r; }
inline double rad_deg(double ang) { return ang / d_r; }

std::uint64_t interleave64(std::uint32_t xlo, std::uint32_t ylo) {
  static const std::uint64_t B[] = {0x5555555555555555ULL, 0x3333333333333333ULL, 0x0F0F0F0F0F0F0F0FULL,
                                    0x00FF00FF00FF00FFULL, 0x0000FFFF0000FFFFULL};
  static const unsigned int S[] = {1, 2, 4, 8, 16};
  std::uint64_t x = xlo;
  std::uint64_t y = ylo;
  for (int i = 4; i >= 0; --i) {
    x = (x | (x << S[i])) & B[i];
    y = (y | (y << S[i])) & B[i];
  }
  return x | (y << 1);
}

std::uint64_t deinterleave64(std::uint64_t interleaved) {
  static const std::uint64_t B[] = {0x5555555555555555ULL, 0x3333333333333333ULL, 0x0F0F0F0F0F0F0F0FULL,
                                    0x00FF00FF00FF00FFULL, 0x0000FFFF0000FFFFULL, 0x00000000FFFFFFFFULL};
  static const unsigned int S[] = {0, 1, 2, 4, 8, 16};
  std::uint64_t x = interleaved;
  std::uint64_t y = interleaved >> 1;
  for (int i = 0; i <= 5; ++i) {
    x = (x | (x >> S[i])) & B[i];
    y = (y | (y >> S[i])) & B[i];
  }
  return x | (y << 32);
}

void coord_range(range& long_range, range& lat_range) {
  long_range.max = long_max;
  long_range.min = long_min;
  lat_range.max = lat_max;
  lat_range.min = lat_min;
}

// geohashMoveX / geohashMoveY: moves the box one step along one axis (forward when d > 0,
// back when d < 0; d == 0 leaves it), the axis whose
// bits are set in `axis` (x: the odd bits, 0xaa..; y: the even ones, 0x55..).
void move(hash_bits& hash, int d, std::uint64_t axis) {
  if (d == 0) return;
  std::uint64_t along = hash.bits & axis;
  const std::uint64_t across = hash.bits & ~axis;
  const std::uint64_t zz = ~axis >> (64 - hash.step * 2);
  if (d > 0) {
    along = along + (zz + 1);
  } else {
    along = along | zz;
    along = along - (zz + 1);
  }
  along &= (axis >> (64 - hash.step * 2));
  hash.bits = (along | across);
}

constexpr std::uint64_t x_bits = 0xaaaaaaaaaaaaaaaaULL, y_bits = 0x5555555555555555ULL;
void move_x(hash_bits& hash, int d) { move(hash, d, x_bits); }
void move_y(hash_bits& hash, int d) { move(hash, d, y_bits); }

neighbors neighbors_of(const hash_bits& hash) {
  neighbors n;
  n.east = n.west = n.north = n.south = n.south_east = n.south_west = n.north_east = n.north_west = hash;
  move_x(n.east, 1);
  move_x(n.west, -1);
  move_y(n.south, -1);
  move_y(n.north, 1);
  move_x(n.north_west, -1);
  move_y(n.north_west, 1);
  move_x(n.north_east, 1);
  move_y(n.north_east, 1);
  move_x(n.south_east, 1);
  move_y(n.south_east, -1);
  move_x(n.south_west, -1);
  move_y(n.south_west, -1);
  return n;
}

// geohashEstimateStepsByRadius: the precision of the 9 boxes of a search.
std::uint8_t estimate_steps_by_radius(double range_meters, double lat) {
  if (range_meters == 0) return 26;
  int step = 1;
  while (range_meters < mercator_max) {
    range_meters *= 2;
    step++;
  }
  step -= 2;  // make sure the range is included in most of the base cases
  // Wider towards the poles (an approximation, as Redis's).
  if (lat > 66 || lat < -66) {
    step--;
    if (lat > 80 || lat < -80) step--;
  }
  if (step < 1) step = 1;
  if (step > 26) step = 26;
  return static_cast<std::uint8_t>(step);
}

// geohashBoundingBox: the search area's bounds; the box is wider at the edge nearer the
// pole, so each hemisphere takes its longitude span from that edge.
void bounding_box(shape& s, double* bounds) {
  const double longitude = s.xy[0];
  const double latitude = s.xy[1];
  const double height = s.conversion * (s.kind == shape::circular ? s.radius : s.height / 2);
  const double width = s.conversion * (s.kind == shape::circular ? s.radius : s.width / 2);
  const double lat_delta = rad_deg(height / earth_radius_in_meters);
  const double long_delta_top = rad_deg(width / earth_radius_in_meters / std::cos(deg_rad(latitude + lat_delta)));
  const double long_delta_bottom = rad_deg(width / earth_radius_in_meters / std::cos(deg_rad(latitude - lat_delta)));
  const bool southern_hemisphere = latitude < 0;
  bounds[0] = southern_hemisphere ? longitude - long_delta_bottom : longitude - long_delta_top;
  bounds[2] = southern_hemisphere ? longitude + long_delta_bottom : longitude + long_delta_top;
  bounds[1] = latitude - lat_delta;
  bounds[3] = latitude + lat_delta;
}

double lat_distance(double lat1d, double lat2d) {
  return earth_radius_in_meters * std::fabs(deg_rad(lat2d) - deg_rad(lat1d));
}

}  // namespace

bool encode(const range& long_range, const range& lat_range, double longitude, double latitude, std::uint8_t step,
            hash_bits& out) {
  if (step > 32 || step == 0 || lat_range.is_zero() || long_range.is_zero()) return false;
  if (longitude > long_max || longitude < long_min || latitude > lat_max || latitude < lat_min) return false;
  out.bits = 0;
  out.step = step;
  if (latitude < lat_range.min || latitude > lat_range.max || longitude < long_range.min ||
      longitude > long_range.max)
    return false;
  double lat_offset = (latitude - lat_range.min) / (lat_range.max - lat_range.min);
  double long_offset = (longitude - long_range.min) / (long_range.max - long_range.min);
  // Fixed point by the step (the offsets lie in [0, 2^step], which fits 32 bits).
  lat_offset *= static_cast<double>(1ULL << step);
  long_offset *= static_cast<double>(1ULL << step);
  out.bits = interleave64(static_cast<std::uint32_t>(lat_offset), static_cast<std::uint32_t>(long_offset));
  return true;
}

bool encode_wgs84(double longitude, double latitude, std::uint8_t step, hash_bits& out) {
  range r[2];
  coord_range(r[0], r[1]);
  return encode(r[0], r[1], longitude, latitude, step, out);
}

bool decode(const range& long_range, const range& lat_range, const hash_bits& hash, area& out) {
  if (hash.is_zero() || lat_range.is_zero() || long_range.is_zero()) return false;
  out.hash = hash;
  const std::uint8_t step = hash.step;
  const std::uint64_t hash_sep = deinterleave64(hash.bits);  // [LAT][LONG]
  const double lat_scale = lat_range.max - lat_range.min;
  const double long_scale = long_range.max - long_range.min;
  const auto ilato = static_cast<std::uint32_t>(hash_sep);
  const auto ilono = static_cast<std::uint32_t>(hash_sep >> 32);
  const double div = static_cast<double>(1ULL << step);
  out.latitude.min = lat_range.min + (ilato * 1.0 / div) * lat_scale;
  out.latitude.max = lat_range.min + ((ilato + 1) * 1.0 / div) * lat_scale;
  out.longitude.min = long_range.min + (ilono * 1.0 / div) * long_scale;
  out.longitude.max = long_range.min + ((ilono + 1) * 1.0 / div) * long_scale;
  return true;
}

bool decode_to_long_lat(const hash_bits& hash, double* xy) {
  range r[2];
  coord_range(r[0], r[1]);
  area a;
  if (!decode(r[0], r[1], hash, a)) return false;
  xy[0] = (a.longitude.min + a.longitude.max) / 2;
  if (xy[0] > long_max) xy[0] = long_max;
  if (xy[0] < long_min) xy[0] = long_min;
  xy[1] = (a.latitude.min + a.latitude.max) / 2;
  if (xy[1] > lat_max) xy[1] = lat_max;
  if (xy[1] < lat_min) xy[1] = lat_min;
  return true;
}

std::uint64_t score_bits(double score) {
  constexpr double two63 = 9223372036854775808.0;
  // cvttsd2si: truncation, or 0x8000000000000000 for what does not fit (and NaN).
  auto cvtt = [](double d) -> std::uint64_t {
    if (!(d > -two63 && d < two63)) return 0x8000000000000000ULL;
    return static_cast<std::uint64_t>(static_cast<std::int64_t>(d));
  };
  if (!(score >= two63)) return cvtt(score);
  return cvtt(score - two63) ^ 0x8000000000000000ULL;
}

bool decode_score(double score, double* xy) {
  hash_bits hash;
  hash.bits = score_bits(score);
  hash.step = step_max;
  return decode_to_long_lat(hash, xy);
}

std::uint64_t align_52bits(const hash_bits& hash) { return hash.bits << (52 - hash.step * 2); }

search_areas areas_by_shape(shape& s) {
  range long_range, lat_range;
  hash_bits hash;
  area centre;

  bounding_box(s, s.bounds);
  const double min_lon = s.bounds[0];
  const double min_lat = s.bounds[1];
  const double max_lon = s.bounds[2];
  const double max_lat = s.bounds[3];
  const double longitude = s.xy[0];
  const double latitude = s.xy[1];
  // A circle: its radius; a box: the distance from its centre to a corner.
  double radius_meters =
      s.kind == shape::circular ? s.radius : std::sqrt((s.width / 2) * (s.width / 2) + (s.height / 2) * (s.height / 2));
  radius_meters *= s.conversion;

  int steps = estimate_steps_by_radius(radius_meters, latitude);
  coord_range(long_range, lat_range);
  encode(long_range, lat_range, longitude, latitude, static_cast<std::uint8_t>(steps), hash);
  neighbors around = neighbors_of(hash);
  decode(long_range, lat_range, hash, centre);

  // Near an edge of the centre box one of the N/S/E/W boxes may be too close to cover
  // the whole area: then one step less.
  bool decrease_step = false;
  {
    area north, south, east, west;
    decode(long_range, lat_range, around.north, north);
    decode(long_range, lat_range, around.south, south);
    decode(long_range, lat_range, around.east, east);
    decode(long_range, lat_range, around.west, west);
    if (north.latitude.max < max_lat) decrease_step = true;
    if (south.latitude.min > min_lat) decrease_step = true;
    if (east.longitude.max < max_lon) decrease_step = true;
    if (west.longitude.min > min_lon) decrease_step = true;
  }
  if (steps > 1 && decrease_step) {
    steps--;
    encode(long_range, lat_range, longitude, latitude, static_cast<std::uint8_t>(steps), hash);
    around = neighbors_of(hash);
    decode(long_range, lat_range, hash, centre);
  }

  // Leave out the boxes the area does not reach.
  if (steps >= 2) {
    if (centre.latitude.min < min_lat) around.south = around.south_west = around.south_east = hash_bits{};
    if (centre.latitude.max > max_lat) around.north = around.north_east = around.north_west = hash_bits{};
    if (centre.longitude.min < min_lon) around.west = around.south_west = around.north_west = hash_bits{};
    if (centre.longitude.max > max_lon) around.east = around.south_east = around.north_east = hash_bits{};
  }
  return search_areas{hash, around, centre};
}

double distance(double lon1d, double lat1d, double lon2d, double lat2d) {
  const double lon1r = deg_rad(lon1d);
  const double lon2r = deg_rad(lon2d);
  const double v = std::sin((lon2r - lon1r) / 2);
  // The same longitude: no need for the expensive part.
  if (v == 0.0) return lat_distance(lat1d, lat2d);
  const double lat1r = deg_rad(lat1d);
  const double lat2r = deg_rad(lat2d);
  const double u = std::sin((lat2r - lat1r) / 2);
  const double a = u * u + std::cos(lat1r) * std::cos(lat2r) * v * v;
  return 2.0 * earth_radius_in_meters * std::asin(std::sqrt(a));
}

bool distance_if_in_radius(double x1, double y1, double x2, double y2, double radius, double& dist) {
  dist = distance(x1, y1, x2, y2);
  return !(dist > radius);
}

bool distance_if_in_rectangle(double width_m, double height_m, double x1, double y1, double x2, double y2,
                              double& dist) {
  // The latitude distance is cheaper: test it first.
  if (lat_distance(y2, y1) > height_m / 2) return false;
  if (distance(x2, y2, x1, y2) > width_m / 2) return false;
  dist = distance(x1, y1, x2, y2);
  return true;
}

}  // namespace respq::core::geo
