// The efficiency benchmark's HTML page: results.md through io/html.h's Markdown subset, SVG plots inlined.
#include "efficiency/efficiency_html.h"

#include <filesystem>
#include <fstream>
#include <iterator>

#include "efficiency/efficiency_report.h"
#include "io/html.h"

namespace draft {

std::string efficiency_report_html(const nlohmann::json& report, const std::string& out_dir) {
  // The Markdown's images are the plots written next to it (efficiency_<task>.svg).
  const MarkdownImage inline_plot = [&](const std::string& src, const std::string& alt) -> std::string {
    const std::string path = out_dir + "/" + src;
    std::ifstream in(path, std::ios::binary);
    if (src.find('/') != std::string::npos || !in) {
      return "<p class=\"note\">(plot " + html_escape(src) + " not found)</p>";
    }
    const std::string svg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return "<figure class=\"plot\">" + html_inline_svg(svg) + "<figcaption>" + html_escape(alt) +
           "</figcaption></figure>";
  };
  const std::string body =
      markdown_to_html(efficiency_report_markdown(report), inline_plot) +
      "<p class=\"note\">Written by <code>draft bench efficiency</code> next to results.md and results.json; "
      "self-contained (plots inline), opens offline.</p>\n";
  return html_document("draft bench efficiency", body);
}

}  // namespace draft
