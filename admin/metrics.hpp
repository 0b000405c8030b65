// metrics: the Prometheus text exposition (format 0.0.4) of the server's figures. A pure
// function: structs in (core::server_figures, gathered on the broker thread), text out,
// on any thread. Every family has its HELP and TYPE lines; a family with no sample is
// left out. Counters end in _total; the latency histograms are the queues' own fixed
// buckets (tasks/latency_histogram.hpp), in seconds, cumulative as Prometheus wants.
//
// Label values are escaped as the format requires (backslash, double quote, newline).
// No label has unbounded values beyond what the operator configured: queue names come
// from the configuration, command names from the command table.
#pragma once

#include <string>
#include <string_view>

#include "broker/core/figures.hpp"

namespace respq::admin {

inline constexpr std::string_view metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";

std::string render_metrics(const core::server_figures& f);
// The same, appended to `out` (whose capacity a caller can keep from one scrape to the next).
void render_metrics(const core::server_figures& f, std::string& out);

// A label value escaped for the text format.
std::string escape_label(std::string_view v);

}  // namespace respq::admin
