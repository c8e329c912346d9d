#include "common/yaml_document.h"

#include <fmt/format.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <sstream>
#include <vector>

namespace pipecast::ir::internal {
namespace {

// Records where each document starts; the events themselves are not needed.
class DocumentStarts : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { start = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  YAML::Mark start = YAML::Mark::null_mark();
};

// A character for a message: printable as itself, anything else as its code.
std::string ShownChar(char c) {
  if (c >= 0x20 && c < 0x7f) return std::string(1, c);
  return fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
}

}  // namespace

std::string WhereIs(std::string_view file, const YAML::Mark& mark) {
  if (mark.is_null() || mark.line < 0) return std::string(file);
  return fmt::format("{}:{}:{}", file, mark.line + 1, mark.column + 1);
}

Result<YAML::Node> LoadOneDocument(std::string_view text, std::string_view file,
                                   std::string_view what) {
  const std::string owned(text);
  try {
    // Count the documents first. yaml-cpp 0.7's LoadAll never returns on some malformed input
    // (e.g. a stray ',' at the top level: jbeder/yaml-cpp#1040, fixed upstream by #1319):
    // the parser keeps reporting an empty document without consuming anything. Such a
    // document starts where the previous one did, which is how it is detected here.
    std::istringstream stream(owned);
    YAML::Parser parser(stream);
    std::vector<YAML::Mark> starts;
    while (starts.size() < 2) {
      DocumentStarts handler;
      if (!parser.HandleNextDocument(handler)) break;
      if (!starts.empty() && handler.start.pos == starts.back().pos) {
        const auto pos = static_cast<size_t>(std::max(0, handler.start.pos));
        return ParseError(fmt::format("{}: invalid YAML: unexpected '{}'",
                                      WhereIs(file, handler.start),
                                      pos < owned.size() ? ShownChar(owned[pos]) : ""));
      }
      starts.push_back(handler.start);
    }
    if (starts.size() > 1) {
      return InvalidArgument(fmt::format("{}: {} is one YAML document, but the file has more",
                                         WhereIs(file, starts[1]), what));
    }
    return YAML::Load(owned);
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's own message for this is just "bad file".
    return ParseError(fmt::format("{}: invalid YAML: nested more than {} levels deep",
                                  WhereIs(file, e.mark), e.depth() - 1));
  } catch (const YAML::Exception& e) {
    return ParseError(fmt::format("{}: invalid YAML: {}", WhereIs(file, e.mark), e.msg));
  }
}

}  // namespace pipecast::ir::internal
