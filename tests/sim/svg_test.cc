// Tests of the SVG timeline (sim/svg.h) on a hand-timed two-device run. The picture itself was
// checked by eye (rendered to PNG); these tests check that it is well-formed standalone SVG with
// one box per compute action, a legend, an axis and escaped text.
#include "sim/svg.h"
#include "sim/timed_run.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "common/version_plan.h"

namespace pipecast::sim {
namespace {

using ir::ActionKind;
using ir::WeightSource;

using testing_runs::TimedRun;

size_t Count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + 1)) ++n;
  return n;
}

// A small XML well-formedness check: tags nest and match, attribute values are quoted, '&' only
// starts the five predefined entities or a character reference, '<' never appears in text.
// Returns "" when well-formed, else what is wrong.
std::string CheckWellFormed(const std::string& xml) {
  std::vector<std::string> stack;
  size_t i = 0;
  int roots = 0;
  auto check_text = [&](size_t from, size_t to) -> std::string {
    for (size_t k = from; k < to; ++k) {
      if (xml[k] != '&') continue;
      const size_t semi = xml.find(';', k);
      if (semi == std::string::npos || semi > to) return "unterminated entity";
      const std::string ent = xml.substr(k + 1, semi - k - 1);
      if (ent != "amp" && ent != "lt" && ent != "gt" && ent != "quot" && ent != "apos" &&
          ent.rfind('#', 0) != 0) {
        return "unknown entity &" + ent + ";";
      }
    }
    return "";
  };
  while (i < xml.size()) {
    const size_t lt = xml.find('<', i);
    if (lt == std::string::npos) {
      if (auto e = check_text(i, xml.size()); !e.empty()) return e;
      break;
    }
    if (auto e = check_text(i, lt); !e.empty()) return e;
    if (xml.compare(lt, 5, "<?xml") == 0) {
      if (lt != 0) return "XML declaration not at the start";
      const size_t end = xml.find("?>", lt);
      if (end == std::string::npos) return "unterminated declaration";
      i = end + 2;
      continue;
    }
    if (xml.compare(lt, 4, "<!--") == 0) {
      const size_t end = xml.find("-->", lt);
      if (end == std::string::npos) return "unterminated comment";
      i = end + 3;
      continue;
    }
    // Find the tag's end, skipping quoted attribute values.
    size_t k = lt + 1;
    char quote = 0;
    for (; k < xml.size(); ++k) {
      if (quote != 0) {
        if (xml[k] == quote)
          quote = 0;
        else if (xml[k] == '<')
          return "'<' in an attribute value";
      } else if (xml[k] == '"' || xml[k] == '\'') {
        quote = xml[k];
      } else if (xml[k] == '>') {
        break;
      }
    }
    if (k >= xml.size()) return "unterminated tag";
    std::string tag = xml.substr(lt + 1, k - lt - 1);
    if (auto e = check_text(lt + 1, k); !e.empty()) return e;
    if (!tag.empty() && tag[0] == '/') {
      const std::string name = tag.substr(1);
      if (stack.empty() || stack.back() != name) return "unmatched </" + name + ">";
      stack.pop_back();
    } else {
      const bool self_closing = !tag.empty() && tag.back() == '/';
      const std::string name = tag.substr(0, tag.find_first_of(" \t\n/"));
      if (name.empty()) return "empty tag name";
      if (stack.empty()) ++roots;
      if (!self_closing) stack.push_back(name);
    }
    i = k + 1;
  }
  if (!stack.empty()) return "unclosed <" + stack.back() + ">";
  if (roots != 1) return "expected one root element, got " + std::to_string(roots);
  return "";
}

TEST(SvgTest, IsWellFormedStandaloneSvg) {
  const std::string svg = FormatSvg(TimedRun());
  EXPECT_EQ(CheckWellFormed(svg), "");
  EXPECT_EQ(svg.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", 0), 0u);
  EXPECT_NE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1200.00\""),
            std::string::npos);
  EXPECT_EQ(Count(svg, "<svg"), Count(svg, "</svg>"));
  EXPECT_EQ(Count(svg, "<g"), Count(svg, "</g>"));
  EXPECT_EQ(Count(svg, "<text"), Count(svg, "</text>"));
}

TEST(SvgTest, OneBoxPerComputeActionAndALegend) {
  const std::string svg = FormatSvg(TimedRun());
  EXPECT_EQ(Count(svg, "<rect class=\"action\""), 10u);  // F, F, B, B, S per device
  EXPECT_EQ(Count(svg, "<title>"), 10u);                 // one tooltip per box
  // Legend: the kinds that occur (F, B, S), idle, and the stash and prediction hints.
  EXPECT_EQ(Count(svg, "<rect class=\"legend\""), 6u);
  for (const char* text : {"F forward", "B backward", "S optimizer step", "idle", "stashed weights",
                           "predicted weights"}) {
    EXPECT_NE(svg.find(std::string(">") + text + "</text>"), std::string::npos) << text;
  }
  EXPECT_EQ(svg.find("I input grad"), std::string::npos);
  // The predicted F is hatched (box and legend swatch); the stashed B has a heavy border.
  EXPECT_EQ(Count(svg, "<rect class=\"hatch\""), 2u);
  EXPECT_EQ(Count(svg, "fill=\"#009E73\" stroke=\"#000000\" stroke-width=\"2\""), 1u);
  EXPECT_EQ(Count(svg, "fill=\"#ffffff\" stroke=\"#000000\" stroke-width=\"2\""), 1u);
  // Rows, title, axis.
  EXPECT_NE(svg.find(">dev 0</text>"), std::string::npos);
  EXPECT_NE(svg.find(">dev 1</text>"), std::string::npos);
  EXPECT_NE(svg.find("custom \u2014 makespan 22.0 µs"), std::string::npos);
  EXPECT_NE(svg.find(">time (µs)</text>"), std::string::npos);
  EXPECT_NE(svg.find(">20</text>"), std::string::npos);  // a tick label
  // The boxes are wide enough for microbatch numbers (F = 2 µs of 22 µs is about 100 px).
  EXPECT_GE(Count(svg, "dominant-baseline=\"central\" fill="), 10u);
  // Distinct colours per kind.
  EXPECT_EQ(Count(svg, "<rect class=\"action\" x=\"64.00\" y=\"55.00\""), 1u);  // 0F0 at t=0
}

TEST(SvgTest, BoxesScaleToTheMakespan) {
  const std::string svg = FormatSvg(TimedRun());
  // Plot width 1200 - 64 - 40 = 1096 px for 22 µs: the step of device 0 (20-22 µs) ends at the
  // right edge, 1160 px, so it starts at 64 + 1096 * 20 / 22 = 1060.36 px and is 99.64 px wide.
  EXPECT_NE(svg.find("x=\"1060.36\" y=\"55.00\" width=\"99.64\""), std::string::npos);
}

TEST(SvgTest, EscapesTextAndDrawsTransfersWhenAsked) {
  MethodRun run = TimedRun();
  run.method = "a<b&c";
  run.params = {{"k", "\"q\""}};
  SvgOptions options;
  options.show_transfers = true;
  const std::string svg = FormatSvg(run, options);
  EXPECT_EQ(CheckWellFormed(svg), "");
  EXPECT_NE(svg.find("a&lt;b&amp;c(k=&quot;q&quot;)"), std::string::npos);
  EXPECT_EQ(svg.find("a<b"), std::string::npos);
  EXPECT_EQ(Count(svg, "<line class=\"transfer\""), 4u);
  EXPECT_EQ(Count(FormatSvg(TimedRun()), "class=\"transfer\""), 0u);
}

TEST(SvgTest, EmptyAndUntimedRunsStillRender) {
  MethodRun run = TimedRun();
  run.result.timing.clear();
  run.result.makespan = 0;
  const std::string svg = FormatSvg(run);
  EXPECT_EQ(CheckWellFormed(svg), "");
  EXPECT_EQ(Count(svg, "<rect class=\"action\""), 0u);
  EXPECT_EQ(CheckWellFormed(FormatSvg(MethodRun{})), "");
}


}  // namespace
}  // namespace pipecast::sim
