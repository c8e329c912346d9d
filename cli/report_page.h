// The page `pipecast report` writes, as plain data (sections of paragraphs, tables and SVG
// figures), and its two renderings: one self-contained HTML file (inline CSS and SVG, no script,
// nothing fetched) and Markdown with each figure in an SVG file of its own.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace pipecast::cli::report {

struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<bool> marked;        // per row: highlighted (the recommendation); may be short
  std::vector<bool> numeric;       // per column: right-aligned; may be short
  std::vector<std::string> notes;  // lines under the table
};

struct Figure {
  std::string name;  // file stem in Markdown ("memory-1f1b"); unique in the page
  std::string caption;
  std::string svg;    // one <svg> element; an XML declaration at its start is dropped in HTML
  bool wide = false;  // takes a whole row of the section's grid
};

struct Section {
  std::string id;  // HTML id, "summary"
  std::string title;
  std::vector<std::string> paragraphs;  // plain text
  std::vector<Table> tables;
  std::vector<Figure> figures;
  bool figures_wide = false;  // one figure per row (timelines), else a grid
};

struct Page {
  std::string title;
  std::string headline;             // the recommendation, in bold under the title
  std::vector<std::string> inputs;  // "sim.json (pipecast-sim 1: default, 12 methods)"
  std::vector<Section> sections;
};

// One HTML5 document: deterministic, UTF-8, text escaped.
std::string RenderHtml(const Page& page);

// Markdown whose figures are links to `figure_dir`/NAME.svg; `files` are those SVG files
// (relative names and contents) for the caller to write.
struct MarkdownOutput {
  std::string markdown;
  std::vector<std::pair<std::string, std::string>> files;
};
MarkdownOutput RenderMarkdown(const Page& page, const std::string& figure_dir);

}  // namespace pipecast::cli::report
