// HTML helpers for self-contained reports: escaping, base64, data: URIs, inline SVG, builders, Markdown subset.
#include "io/html.h"

#include <algorithm>
#include <cstdint>

namespace draft {
namespace {

// The page's whole style: nothing from outside (no web font, no CSS file).
constexpr const char* kStyle = R"(body{font-family:sans-serif;margin:24px auto;max-width:1500px;padding:0 16px;color:#222}
h1{font-size:26px}h2{font-size:21px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}h3{font-size:17px}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}code,pre{font-family:monospace;background:#f6f6f6}pre{padding:8px;overflow:auto;max-height:480px}
figure{display:inline-block;margin:6px 10px 12px 0;vertical-align:top}figcaption{font-size:13px;color:#444;max-width:16em}
.plot{display:inline-block;vertical-align:top}
img{image-rendering:pixelated;border:1px solid #ddd}svg{max-width:100%;height:auto}
.plots svg{margin:4px 8px 4px 0}.warning{background:#fff3cd;border:1px solid #e0a800;padding:8px 12px;margin:8px 0}
.note{color:#555}nav a{margin-right:12px}
)";

// Records on <html>, after the load event, what a headless browser's DOM dump is checked for (html.h).
constexpr const char* kLoadCheck = R"(<script>
(function () {
  var errors = 0;
  var root = document.documentElement;
  window.addEventListener('error', function () { errors++; root.setAttribute('data-js-errors', String(errors)); });
  window.addEventListener('load', function () {
    var images = document.images, broken = 0;
    for (var i = 0; i < images.length; i++) {
      if (!images[i].complete || images[i].naturalWidth === 0) broken++;
    }
    root.setAttribute('data-images', String(images.length));
    root.setAttribute('data-broken-images', String(broken));
    root.setAttribute('data-js-errors', String(errors));
    root.setAttribute('data-report-ready', '1');
  });
})();
</script>
)";

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && text.compare(0, prefix.size(), prefix) == 0;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Inline Markdown: `code` spans (escaped as they are) and **bold** around escaped text.
std::string inline_markdown(std::string_view text) {
  std::string out;
  bool bold = false;
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] == '`') {
      const std::size_t end = text.find('`', i + 1);
      if (end != std::string_view::npos) {
        out += "<code>" + html_escape(text.substr(i + 1, end - i - 1)) + "</code>";
        i = end + 1;
        continue;
      }
    }
    if (text.compare(i, 2, "**") == 0 && (bold || text.find("**", i + 2) != std::string_view::npos)) {
      out += bold ? "</strong>" : "<strong>";
      bold = !bold;
      i += 2;
      continue;
    }
    out += html_escape(text.substr(i, 1));
    ++i;
  }
  return out;
}

// The cells of a pipe-table row "| a | b |".
std::vector<std::string_view> table_cells(std::string_view row) {
  row = trim(row);
  if (starts_with(row, "|")) row.remove_prefix(1);
  if (!row.empty() && row.back() == '|') row.remove_suffix(1);
  std::vector<std::string_view> cells;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= row.size(); ++i) {
    if (i == row.size() || row[i] == '|') {
      cells.push_back(trim(row.substr(start, i - start)));
      start = i + 1;
    }
  }
  return cells;
}

bool is_separator_row(std::string_view row) {
  row = trim(row);
  return starts_with(row, "|") && row.find_first_not_of("|-: ") == std::string_view::npos &&
         row.find('-') != std::string_view::npos;
}

std::string markdown_table(const std::vector<std::string_view>& lines) {
  std::string out = "<table>\n";
  for (std::size_t r = 0; r < lines.size(); ++r) {
    if (r == 1 && is_separator_row(lines[r])) continue;
    const bool header = r == 0 && lines.size() > 1 && is_separator_row(lines[1]);
    out += "<tr>";
    for (std::string_view cell : table_cells(lines[r])) {
      out += header ? "<th>" : "<td>";
      out += inline_markdown(cell);
      out += header ? "</th>" : "</td>";
    }
    out += "</tr>\n";
  }
  return out + "</table>\n";
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string base64_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  // Three bytes -> four characters of six bits each; the last group is padded with '='.
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])) << 16 |
                       static_cast<uint32_t>(static_cast<uint8_t>(bytes[i + 1])) << 8 |
                       static_cast<uint32_t>(static_cast<uint8_t>(bytes[i + 2]));
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
    out += kAlphabet[v & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])) << 16;
    if (rest == 2) v |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[i + 1])) << 8;
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += rest == 2 ? kAlphabet[v >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

std::string data_uri(std::string_view bytes, std::string_view mime) {
  return "data:" + std::string(mime) + ";base64," + base64_encode(bytes);
}

std::string html_png_image(std::string_view png, std::string_view alt) {
  return "<img src=\"" + data_uri(png, "image/png") + "\" alt=\"" + html_escape(alt) + "\">";
}

std::string html_inline_svg(std::string_view svg) {
  std::string out(svg);
  // Drop everything before the <svg element (an XML declaration, a DOCTYPE, comments).
  const std::size_t start = out.find("<svg");
  if (start != std::string::npos) out.erase(0, start);
  for (const char* attribute : {" xmlns=\"http://www.w3.org/2000/svg\"", " xmlns:xlink=\"http://www.w3.org/1999/xlink\""}) {
    for (std::size_t at = out.find(attribute); at != std::string::npos; at = out.find(attribute, at)) {
      out.erase(at, std::string_view(attribute).size());
    }
  }
  return out;
}

std::string html_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::string out = "<table>\n<tr>";
  for (const auto& cell : header) out += "<th>" + html_escape(cell) + "</th>";
  out += "</tr>\n";
  for (const auto& row : rows) {
    out += "<tr>";
    for (const auto& cell : row) out += "<td>" + html_escape(cell) + "</td>";
    out += "</tr>\n";
  }
  return out + "</table>\n";
}

std::string html_section(std::string_view title, std::string_view body, std::string_view id) {
  std::string out = id.empty() ? "<section>\n" : "<section id=\"" + html_escape(id) + "\">\n";
  out += "<h2>" + html_escape(title) + "</h2>\n";
  out += body;
  return out + "</section>\n";
}

std::string html_document(std::string_view title, std::string_view body) {
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  out += "<title>" + html_escape(title) + "</title>\n<style>\n" + kStyle + "</style>\n" + kLoadCheck;
  out += "</head>\n<body>\n";
  out += body;
  return out + "</body>\n</html>\n";
}

std::string markdown_to_html(std::string_view markdown, const MarkdownImage& image) {
  std::vector<std::string_view> lines;
  for (std::size_t start = 0; start <= markdown.size();) {
    const std::size_t end = std::min(markdown.find('\n', start), markdown.size());
    lines.push_back(markdown.substr(start, end - start));
    start = end + 1;
  }
  std::string out;
  std::vector<std::string_view> paragraph;
  auto flush_paragraph = [&] {
    if (paragraph.empty()) return;
    out += "<p>";
    for (std::size_t i = 0; i < paragraph.size(); ++i) out += (i ? " " : "") + inline_markdown(paragraph[i]);
    out += "</p>\n";
    paragraph.clear();
  };
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string_view line = trim(lines[i]);
    if (line.empty()) {
      flush_paragraph();
      continue;
    }
    std::size_t level = 0;
    while (level < line.size() && level < 7 && line[level] == '#') ++level;
    if (level >= 1 && level <= 6 && level < line.size() && line[level] == ' ') {
      flush_paragraph();
      const std::string tag = "h" + std::to_string(level);
      out += "<" + tag + ">" + inline_markdown(trim(line.substr(level))) + "</" + tag + ">\n";
      continue;
    }
    if (starts_with(line, "![") && line.back() == ')') {
      const std::size_t close = line.find("](");
      if (close != std::string_view::npos) {
        flush_paragraph();
        const std::string alt(line.substr(2, close - 2));
        const std::string src(line.substr(close + 2, line.size() - close - 3));
        out += image(src, alt) + "\n";
        continue;
      }
    }
    if (starts_with(line, "|")) {
      flush_paragraph();
      std::vector<std::string_view> rows;
      for (; i < lines.size() && starts_with(trim(lines[i]), "|"); ++i) rows.push_back(lines[i]);
      --i;
      out += markdown_table(rows);
      continue;
    }
    if (starts_with(line, "- ")) {
      flush_paragraph();
      out += "<ul>\n";
      for (; i < lines.size() && starts_with(trim(lines[i]), "- "); ++i) {
        out += "<li>" + inline_markdown(trim(lines[i]).substr(2)) + "</li>\n";
      }
      --i;
      out += "</ul>\n";
      continue;
    }
    paragraph.push_back(line);
  }
  flush_paragraph();
  return out;
}

}  // namespace draft
