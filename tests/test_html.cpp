// io/html.h: escaping, base64 against RFC 4648's test vectors, data: URIs, inline SVG without addresses,
// the builders, and the Markdown subset the benchmark's page is made from.
#include <string>

#include <gtest/gtest.h>

#include "io/html.h"
#include "io/svg_plot.h"

namespace {

TEST(Html, EscapesTheFiveSpecialCharacters) {
  EXPECT_EQ(draft::html_escape("a<b> & \"c\" 'd'"), "a&lt;b&gt; &amp; &quot;c&quot; &#39;d&#39;");
  EXPECT_EQ(draft::html_escape("plain ü"), "plain ü");
}

TEST(Html, Base64MatchesRfc4648) {
  EXPECT_EQ(draft::base64_encode(""), "");
  EXPECT_EQ(draft::base64_encode("f"), "Zg==");
  EXPECT_EQ(draft::base64_encode("fo"), "Zm8=");
  EXPECT_EQ(draft::base64_encode("foo"), "Zm9v");
  EXPECT_EQ(draft::base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(draft::base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(draft::base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(draft::base64_encode(std::string("\xff\x00\xfe\xfb\xef", 5)), "/wD+++8=");  // + and / appear
}

TEST(Html, DataUriAndImage) {
  EXPECT_EQ(draft::data_uri("foo", "image/png"), "data:image/png;base64,Zm9v");
  EXPECT_EQ(draft::html_png_image("foo", "a \"grid\""), "<img src=\"data:image/png;base64,Zm9v\" alt=\"a &quot;grid&quot;\">");
}

TEST(Html, InlineSvgNamesNoAddress) {
  draft::LinePlot plot;
  plot.series.push_back({"s", {0, 1}, {1, 2}, {}, "", false});
  const std::string svg = draft::render_svg(plot);
  ASSERT_NE(svg.find("http://"), std::string::npos);
  const std::string inline_svg = draft::html_inline_svg("<?xml version=\"1.0\"?>\n" + svg);
  EXPECT_EQ(inline_svg.rfind("<svg ", 0), 0U);
  EXPECT_EQ(inline_svg.find("http"), std::string::npos);
  EXPECT_NE(inline_svg.find("<polyline"), std::string::npos);
}

TEST(Html, TableSectionAndDocument) {
  EXPECT_EQ(draft::html_table({"a", "b<"}, {{"1", "&"}, {"2"}}),
            "<table>\n<tr><th>a</th><th>b&lt;</th></tr>\n<tr><td>1</td><td>&amp;</td></tr>\n<tr><td>2</td></tr>\n"
            "</table>\n");
  EXPECT_EQ(draft::html_section("T & U", "<p>x</p>\n", "t"), "<section id=\"t\">\n<h2>T &amp; U</h2>\n<p>x</p>\n</section>\n");
  const std::string page = draft::html_document("A <page>", "<p>body</p>\n");
  EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0U);
  EXPECT_NE(page.find("<meta charset=\"utf-8\">"), std::string::npos);
  EXPECT_NE(page.find("<title>A &lt;page&gt;</title>"), std::string::npos);
  EXPECT_NE(page.find("data-broken-images"), std::string::npos);  // the load check for headless browsers
  EXPECT_EQ(page.find("src="), std::string::npos);
  EXPECT_EQ(page.find("http"), std::string::npos);
}

TEST(Html, MarkdownSubset) {
  const std::string md =
      "# Title\n\nSome *text* with **bold** and `a<b`.\nSecond line.\n\n"
      "![the plot](plot.svg)\n\n"
      "### Table\n\n| method | reward |\n|---|---|\n| **A** | 0.5 [0.4, 0.6] |\n| B & C | n/a |\n\n"
      "- one\n- two\n";
  std::string seen;
  const std::string html = draft::markdown_to_html(md, [&](const std::string& src, const std::string& alt) {
    seen = src + "|" + alt;
    return std::string("<svg></svg>");
  });
  EXPECT_EQ(seen, "plot.svg|the plot");
  EXPECT_EQ(html,
            "<h1>Title</h1>\n"
            "<p>Some *text* with <strong>bold</strong> and <code>a&lt;b</code>. Second line.</p>\n"
            "<svg></svg>\n"
            "<h3>Table</h3>\n"
            "<table>\n<tr><th>method</th><th>reward</th></tr>\n"
            "<tr><td><strong>A</strong></td><td>0.5 [0.4, 0.6]</td></tr>\n"
            "<tr><td>B &amp; C</td><td>n/a</td></tr>\n</table>\n"
            "<ul>\n<li>one</li>\n<li>two</li>\n</ul>\n");
  // A lone "**" is text, not an unclosed <strong>.
  EXPECT_EQ(draft::markdown_to_html("a ** b", {}), "<p>a ** b</p>\n");
}

}  // namespace
