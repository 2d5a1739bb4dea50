// HTML text for self-contained reports that a browser opens offline: escaping, base64 and data: URIs for
// embedded images, inline SVG, small builders (a table, a section, the page) and a Markdown subset (headings,
// paragraphs, tables, images) turned into HTML. No run semantics: the reports that use it sit above
// (train/run_report.h, bench/efficiency/efficiency_html.h).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace draft {

/// `text` with &, <, >, " and ' replaced by their entities: safe inside elements and quoted attributes.
std::string html_escape(std::string_view text);

/// Standard base64 (RFC 4648, alphabet A-Z a-z 0-9 + /, '=' padding, no line breaks).
std::string base64_encode(std::string_view bytes);

/// A data: URI holding `bytes`: "data:<mime>;base64,<base64 of bytes>".
std::string data_uri(std::string_view bytes, std::string_view mime);

/// An <img> element showing the PNG file bytes `png` from a data: URI; `alt` is escaped.
std::string html_png_image(std::string_view png, std::string_view alt);

/// An SVG document (io/svg_plot.h's render_svg) as an element to put inside HTML: the XML declaration,
/// a DOCTYPE and the xmlns attributes are dropped (the HTML parser gives <svg> its namespace), so the page
/// names no http(s) address at all.
std::string html_inline_svg(std::string_view svg);

/// A <table>: `header` cells in <th>, one <tr> per row; every cell is escaped. Rows may be shorter than
/// the header.
std::string html_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

/// A <section> with an <h2> title (escaped) and `body` (HTML, inserted as is); `id` (when given) is the
/// section's anchor for in-page links.
std::string html_section(std::string_view title, std::string_view body, std::string_view id = "");

/// A complete page: UTF-8, the title (escaped), a small inline style sheet and `body` (HTML). The page
/// carries one small inline script that, once the page has loaded, records on the <html> element how many
/// images it has (data-images), how many did not load (data-broken-images, naturalWidth 0), how many script
/// errors happened (data-js-errors) and data-report-ready="1", so a headless browser's DOM dump can be
/// checked. Nothing is loaded from outside the page.
std::string html_document(std::string_view title, std::string_view body);

/// Resolves the image of a Markdown line `![alt](src)` to HTML (e.g. an inline SVG read from a file).
using MarkdownImage = std::function<std::string(const std::string& src, const std::string& alt)>;

/// A Markdown subset as HTML: ATX headings (# to ######), paragraphs (consecutive lines), pipe tables
/// (a header row, a |---| row, body rows), "- " bullet lists, and image lines `![alt](src)` (passed to
/// `image`); inline `**bold**` and `code` spans. Everything else is escaped text.
std::string markdown_to_html(std::string_view markdown, const MarkdownImage& image);

}  // namespace draft
