#include "cli/report_page.h"

#include <fmt/format.h>

#include <string>
#include <vector>

#include "sim/chart.h"

namespace pipecast::cli::report {
namespace {

using sim::EscapeText;

// Print-friendly, no web fonts: the fonts every machine has.
constexpr const char* kCss = R"(
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; color: #222; margin: 0 auto;
       max-width: 1240px; padding: 16px 24px 48px; line-height: 1.45; }
h1 { font-size: 26px; margin: 8px 0 4px; }
h2 { font-size: 20px; border-bottom: 1px solid #ccc; padding-bottom: 4px; margin-top: 36px; }
.headline { font-size: 17px; background: #eef5fb; border-left: 5px solid #0072B2;
            padding: 8px 12px; }
.inputs { color: #555; font-size: 13px; }
nav ol { columns: 2; font-size: 14px; }
table { border-collapse: collapse; margin: 12px 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.marked td { background: #fff3d6; font-weight: bold; }
.note { color: #555; font-size: 12px; margin: 2px 0; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr));
           gap: 12px 20px; }
.figures.wide { grid-template-columns: 1fr; }
figure.wide { grid-column: 1 / -1; }
figure { margin: 8px 0; }
figure svg { max-width: 100%; height: auto; display: block; }
figcaption { font-size: 12px; color: #444; margin-top: 4px; }
footer { margin-top: 40px; color: #777; font-size: 12px; }
@media print { section { break-inside: avoid-page; } nav { display: none; } }
)";

// Every id="X" of an inlined SVG becomes id="X-suffix" (and its references), so two pictures
// that define the same pattern do not share one id in the page.
std::string ScopeIds(std::string svg, const std::string& suffix) {
  std::vector<std::string> ids;
  for (size_t pos = svg.find(" id=\""); pos != std::string::npos;
       pos = svg.find(" id=\"", pos + 1)) {
    const size_t end = svg.find('"', pos + 5);
    if (end != std::string::npos) ids.push_back(svg.substr(pos + 5, end - pos - 5));
  }
  auto replace_all = [&](const std::string& from, const std::string& to) {
    for (size_t pos = svg.find(from); pos != std::string::npos;
         pos = svg.find(from, pos + to.size()))
      svg.replace(pos, from.size(), to);
  };
  for (const std::string& id : ids) {
    replace_all(" id=\"" + id + "\"", " id=\"" + id + "-" + suffix + "\"");
    replace_all("url(#" + id + ")", "url(#" + id + "-" + suffix + ")");
  }
  return svg;
}

std::string WithoutDeclaration(const std::string& svg) {
  if (svg.rfind("<?xml", 0) != 0) return svg;
  const size_t end = svg.find("?>");
  return end == std::string::npos ? svg : svg.substr(svg.find_first_not_of("\r\n", end + 2));
}

bool Flag(const std::vector<bool>& flags, size_t i) { return i < flags.size() && flags[i]; }

std::string HtmlTable(const Table& t) {
  std::string out = "<table>\n<thead><tr>";
  for (const std::string& h : t.header) out += "<th>" + EscapeText(h) + "</th>";
  out += "</tr></thead>\n<tbody>\n";
  for (size_t r = 0; r < t.rows.size(); ++r) {
    out += Flag(t.marked, r) ? "<tr class=\"marked\">" : "<tr>";
    for (size_t c = 0; c < t.rows[r].size(); ++c) {
      out += Flag(t.numeric, c) ? "<td class=\"num\">" : "<td>";
      out += EscapeText(t.rows[r][c]) + "</td>";
    }
    out += "</tr>\n";
  }
  out += "</tbody>\n</table>\n";
  for (const std::string& n : t.notes) out += "<p class=\"note\">" + EscapeText(n) + "</p>\n";
  return out;
}

std::string HtmlSection(const Section& s, size_t number, size_t& figure_number) {
  std::string out = fmt::format("<section id=\"{}\">\n<h2>{}. {}</h2>\n", EscapeText(s.id), number,
                                EscapeText(s.title));
  for (const std::string& p : s.paragraphs) out += "<p>" + EscapeText(p) + "</p>\n";
  for (const Table& t : s.tables) out += HtmlTable(t);
  if (!s.figures.empty()) {
    out += s.figures_wide ? "<div class=\"figures wide\">\n" : "<div class=\"figures\">\n";
    for (const Figure& f : s.figures) {
      ++figure_number;
      out += fmt::format("<figure id=\"fig-{}\"{}>\n", EscapeText(f.name),
                         f.wide ? " class=\"wide\"" : "");
      out += ScopeIds(WithoutDeclaration(f.svg), std::to_string(figure_number));
      out += fmt::format("<figcaption>Figure {}: {}</figcaption>\n</figure>\n", figure_number,
                         EscapeText(f.caption));
    }
    out += "</div>\n";
  }
  return out + "</section>\n";
}

// Markdown: backslash before the characters that would start markup.
std::string MdEscape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\\' || c == '*' || c == '_' || c == '[' || c == ']' || c == '<' || c == '|' ||
        c == '`') {
      out += '\\';
    }
    out += c;
  }
  return out;
}

std::string MdTable(const Table& t) {
  std::string out = "|";
  for (const std::string& h : t.header) out.append(" ").append(MdEscape(h)).append(" |");
  out += "\n|";
  for (size_t c = 0; c < t.header.size(); ++c) out += Flag(t.numeric, c) ? " ---: |" : " --- |";
  out += "\n";
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const char* mark = Flag(t.marked, r) ? "**" : "";
    out += "|";
    for (const std::string& cell : t.rows[r]) {
      out.append(" ").append(mark).append(MdEscape(cell)).append(mark).append(" |");
    }
    out += "\n";
  }
  out += "\n";
  for (const std::string& n : t.notes) out.append("*").append(MdEscape(n)).append("*\n\n");
  return out;
}

}  // namespace

std::string RenderHtml(const Page& page) {
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<link rel=\"icon\" href=\"data:,\">\n";
  out += "<title>" + EscapeText(page.title) + "</title>\n<style>" + kCss + "</style>\n</head>\n";
  out += "<body>\n<header>\n<h1>" + EscapeText(page.title) + "</h1>\n";
  if (!page.headline.empty()) {
    out += "<p class=\"headline\" id=\"recommendation\">" + EscapeText(page.headline) + "</p>\n";
  }
  for (const std::string& in : page.inputs)
    out += "<p class=\"inputs\">" + EscapeText(in) + "</p>\n";
  out += "<nav><ol>\n";
  for (const Section& s : page.sections) {
    out += fmt::format("<li><a href=\"#{}\">{}</a></li>\n", EscapeText(s.id), EscapeText(s.title));
  }
  out += "</ol></nav>\n</header>\n<main>\n";
  size_t figure_number = 0;
  for (size_t i = 0; i < page.sections.size(); ++i) {
    out += HtmlSection(page.sections[i], i + 1, figure_number);
  }
  out +=
      "</main>\n<footer>Written by pipecast report; every number comes from the input files "
      "named above (docs/outputs.md describes them).</footer>\n</body>\n</html>\n";
  return out;
}

MarkdownOutput RenderMarkdown(const Page& page, const std::string& figure_dir) {
  MarkdownOutput md;
  std::string& out = md.markdown;
  out += "# " + MdEscape(page.title) + "\n\n";
  if (!page.headline.empty()) out += "**" + MdEscape(page.headline) + "**\n\n";
  for (const std::string& in : page.inputs) out += MdEscape(in) + "  \n";
  out += "\n";
  size_t figure_number = 0;
  for (size_t i = 0; i < page.sections.size(); ++i) {
    const Section& s = page.sections[i];
    out += fmt::format("## {}. {}\n\n", i + 1, MdEscape(s.title));
    for (const std::string& p : s.paragraphs) out += MdEscape(p) + "\n\n";
    for (const Table& t : s.tables) out += MdTable(t);
    for (const Figure& f : s.figures) {
      ++figure_number;
      const std::string file = f.name + ".svg";
      out += fmt::format("![{}]({}/{})\n\n*Figure {}: {}*\n\n", MdEscape(f.caption), figure_dir,
                         file, figure_number, MdEscape(f.caption));
      const bool declared = f.svg.rfind("<?xml", 0) == 0;
      md.files.emplace_back(file, declared ? f.svg : sim::kSvgDeclaration + f.svg);
    }
  }
  return md;
}

}  // namespace pipecast::cli::report
