// Helpers for the tests of the SVG writers (timeline, charts) and the report page: a small XML
// well-formedness check, and counting or finding text.
#pragma once

#include <string>
#include <vector>

namespace pipecast::sim::testing_xml {

inline size_t Count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + 1)) ++n;
  return n;
}

inline bool Has(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}

// A small XML well-formedness check: tags nest and match, attribute values are quoted, '&' only
// starts the five predefined entities or a character reference, '<' never appears in text.
// Returns "" when well-formed, else what is wrong.
inline std::string CheckWellFormed(const std::string& xml) {
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

}  // namespace pipecast::sim::testing_xml
