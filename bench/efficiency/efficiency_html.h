// The HTML page of `draft bench efficiency` (<out>/report.html): the tables of results.md and the per-task
// plots inline, in one self-contained file that opens offline (io/html.h).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace draft {

/// The report page of a computed report (compute_efficiency_report): efficiency_report_markdown as HTML,
/// with every plot it links (efficiency_<task>.svg, read from `out_dir`) inlined as SVG. A plot file that
/// is missing shows as a note.
std::string efficiency_report_html(const nlohmann::json& report, const std::string& out_dir);

}  // namespace draft
