#include "common/method_options.h"

namespace pipecast::ir {

std::string_view DeltaRuleName(DeltaRule rule) {
  switch (rule) {
    case DeltaRule::kPaper:
      return "paper";
    case DeltaRule::kExact:
      return "exact";
    case DeltaRule::kCode:
      return "code";
    case DeltaRule::kSpecTrain:
      return "spectrain";
    case DeltaRule::kXPipe:
      return "xpipe";
  }
  return "?";
}

}  // namespace pipecast::ir
