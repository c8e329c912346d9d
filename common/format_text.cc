#include "common/format_text.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <map>
#include <optional>
#include <unordered_set>
#include <utility>

#include "common/generators.h"
#include "common/schedule_source.h"
#include "common/suggest.h"
#include "common/validate.h"

namespace pipecast::ir {
namespace {

constexpr std::string_view kMagic = "# pipecast schedule v";
constexpr int32_t kInt32Max = std::numeric_limits<int32_t>::max();

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

// A non-negative decimal number made only of digits, or nullopt (empty, other characters,
// or larger than int64).
std::optional<int64_t> ParseDecimal(std::string_view s) {
  if (s.empty() || !std::all_of(s.begin(), s.end(), IsDigit)) return std::nullopt;
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

uint64_t CellKey(int32_t stage, int32_t microbatch) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(stage)) << 32) |
         static_cast<uint32_t>(microbatch);
}

std::unordered_set<uint64_t> WeightGradCells(const std::vector<Action>& program) {
  std::unordered_set<uint64_t> cells;
  for (const Action& a : program)
    if (a.kind == ActionKind::kWeightGrad) cells.insert(CellKey(a.stage, a.microbatch));
  return cells;
}

constexpr ActionKind kAllKinds[] = {
    ActionKind::kForward,      ActionKind::kBackward,       ActionKind::kBackwardInput,
    ActionKind::kWeightGrad,   ActionKind::kSendActivation, ActionKind::kRecvActivation,
    ActionKind::kSendGradient, ActionKind::kRecvGradient,   ActionKind::kStep,
    ActionKind::kAllReduce,    ActionKind::kAverage};
constexpr WeightSource kAllSources[] = {WeightSource::kCurrent,     WeightSource::kStashed,
                                        WeightSource::kPredicted,   WeightSource::kBufferOlder,
                                        WeightSource::kBufferNewer, WeightSource::kCorrected,
                                        WeightSource::kVersion};

bool SourceTakesValue(WeightSource s) {
  return s == WeightSource::kPredicted || s == WeightSource::kCorrected ||
         s == WeightSource::kVersion;
}

// One whitespace-separated word of a line and its 1-based column.
struct Word {
  std::string_view text;
  int32_t column = 0;
};

// The words of `line` from byte `begin` on.
std::vector<Word> SplitWords(std::string_view line, size_t begin) {
  std::vector<Word> words;
  size_t i = begin;
  while (i < line.size()) {
    while (i < line.size() && IsSpace(line[i])) ++i;
    if (i >= line.size()) break;
    const size_t start = i;
    while (i < line.size() && !IsSpace(line[i])) ++i;
    words.push_back({line.substr(start, i - start), static_cast<int32_t>(start + 1)});
  }
  return words;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// The line without its comment: a '#' at the start or after whitespace begins one.
std::string_view StripComment(std::string_view line) {
  for (size_t i = 0; i < line.size(); ++i)
    if (line[i] == '#' && (i == 0 || IsSpace(line[i - 1]))) return line.substr(0, i);
  return line;
}

const std::vector<std::string_view>& HeaderKeys() {
  static const std::vector<std::string_view> keys = {
      "method",          "devices",           "stages", "placement", "microbatches", "minibatches",
      "microbatch_size", "max_live_versions", "param",  "device",    "replicas",
      "microbatch_replica"};
  return keys;
}

// A header line: its key's position and its values.
struct HeaderLine {
  int32_t line = 0;
  int32_t column = 0;
  std::vector<Word> values;
};

// A "device N: ..." line, kept until the header is known.
struct DeviceLine {
  int32_t line = 0;
  Word index;
  std::vector<Word> tokens;
};

class TextParser {
 public:
  TextParser(std::string_view text, std::string_view filename, ScheduleSource* source)
      : text_(text), filename_(filename), source_(source) {}

  Result<Program> Parse() {
    int32_t line_number = 0;
    size_t begin = 0;
    if (source_ != nullptr) {
      source_->format = ScheduleSource::Format::kText;
      source_->file = std::string(filename_);
      source_->text = std::string(text_);
    }
    while (begin < text_.size()) {
      if (source_ != nullptr) source_->line_starts.push_back(begin);
      size_t end = text_.find('\n', begin);
      if (end == std::string_view::npos) end = text_.size();
      std::string_view line = text_.substr(begin, end - begin);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      begin = end + 1;
      PIPECAST_RETURN_IF_ERROR(ScanLine(line, ++line_number));
    }
    return Build();
  }

 private:
  Status Error(int32_t line, int32_t column, const std::string& message) const {
    return ParseError(std::string(filename_) + ":" + std::to_string(line) + ":" +
                      std::to_string(column) + ": " + message);
  }

  // Records one line: a header key, a param, a device line, or nothing.
  Status ScanLine(std::string_view raw, int32_t line_number) {
    const std::string_view trimmed = Trim(raw);
    if (trimmed.substr(0, kMagic.size()) == kMagic) {
      const std::string_view version = Trim(trimmed.substr(kMagic.size()));
      if (version != "1") {
        return Error(
            line_number, 1,
            "unsupported schedule format version " + Quote(version) + " (this pipecast reads v1)");
      }
    }
    const std::string_view line = StripComment(raw);
    std::vector<Word> words = SplitWords(line, 0);
    if (words.empty()) return Status::Ok();
    const Word key = words.front();
    if (key.text == "device") return ScanDeviceLine(line, key, line_number);
    if (key.text == "param") return ScanParam(line, key, line_number);
    const auto& keys = HeaderKeys();
    if (std::find(keys.begin(), keys.end(), key.text) == keys.end()) {
      return Error(line_number, key.column,
                   "unknown key " + Quote(key.text) + DidYouMeanSuffix(key.text, keys));
    }
    const std::string name(key.text);
    if (auto it = headers_.find(name); it != headers_.end()) {
      return Error(
          line_number, key.column,
          "duplicate " + Quote(name) + " (first on line " + std::to_string(it->second.line) + ")");
    }
    words.erase(words.begin());
    headers_[name] = HeaderLine{line_number, key.column, std::move(words)};
    return Status::Ok();
  }

  Status ScanDeviceLine(std::string_view line, const Word& key, int32_t line_number) {
    const size_t after_key = static_cast<size_t>(key.column - 1) + key.text.size();
    const size_t colon = line.find(':', after_key);
    if (colon == std::string_view::npos) {
      return Error(line_number, key.column, "expected 'device N: actions...'");
    }
    std::vector<Word> index = SplitWords(line.substr(0, colon), after_key);
    if (index.size() != 1) {
      return Error(line_number, key.column, "expected one device index before ':'");
    }
    device_lines_.push_back({line_number, index.front(), SplitWords(line, colon + 1)});
    return Status::Ok();
  }

  Status ScanParam(std::string_view line, const Word& key, int32_t line_number) {
    const size_t after_key = static_cast<size_t>(key.column - 1) + key.text.size();
    const std::string_view rest = line.substr(after_key);
    const size_t eq = rest.find('=');
    const std::string_view name = Trim(rest.substr(0, std::min(eq, rest.size())));
    if (eq == std::string_view::npos || name.empty()) {
      return Error(line_number, key.column, "expected 'param key=value'");
    }
    if (std::any_of(name.begin(), name.end(), IsSpace)) {
      return Error(line_number, key.column,
                   "parameter name " + Quote(name) + " contains whitespace");
    }
    const std::string value(Trim(rest.substr(eq + 1)));
    if (!program_.params.emplace(std::string(name), value).second) {
      return Error(line_number, key.column, "duplicate parameter " + Quote(name));
    }
    return Status::Ok();
  }

  // Reads integer header `key` into `out` if present; it must lie in [lo, hi].
  Status ReadCount(const std::string& key, int64_t lo, int64_t hi, int32_t& out) const {
    const auto it = headers_.find(key);
    if (it == headers_.end()) return Status::Ok();
    const HeaderLine& h = it->second;
    if (h.values.size() != 1) {
      return Error(h.line, h.column,
                   Quote(key) + " takes one value, got " + std::to_string(h.values.size()));
    }
    return ReadNumber(h.values.front(), h.line, key, lo, hi, out);
  }

  Status ReadNumber(const Word& w, int32_t line, const std::string& what, int64_t lo, int64_t hi,
                    int32_t& out) const {
    const std::optional<int64_t> value = ParseDecimal(w.text);
    if (!value || *value < lo || *value > hi) {
      return Error(line, w.column,
                   what + " must be an integer in [" + std::to_string(lo) + ", " +
                       std::to_string(hi) + "], got " + Quote(w.text));
    }
    out = static_cast<int32_t>(*value);
    return Status::Ok();
  }

  // Reads list header `key` (exactly `count` integers in [lo, hi]) into `out` if present.
  Status ReadList(const std::string& key, size_t count, int64_t lo, int64_t hi,
                  std::vector<int32_t>& out) const {
    const auto it = headers_.find(key);
    if (it == headers_.end()) return Status::Ok();
    const HeaderLine& h = it->second;
    if (h.values.size() != count) {
      return Error(h.line, h.column,
                   Quote(key) + " needs " + std::to_string(count) + " values, got " +
                       std::to_string(h.values.size()));
    }
    out.resize(count);
    for (size_t i = 0; i < count; ++i)
      PIPECAST_RETURN_IF_ERROR(ReadNumber(h.values[i], h.line, key + " entry", lo, hi, out[i]));
    return Status::Ok();
  }

  Status Require(const std::string& key) const {
    if (headers_.count(key) == 0) {
      return ParseError(std::string(filename_) + ": missing " + Quote(key) + " line");
    }
    return Status::Ok();
  }

  // Checks the header, places the device lines and parses their tokens.
  Result<Program> Build() {
    Program& p = program_;
    PIPECAST_RETURN_IF_ERROR(Require("devices"));
    PIPECAST_RETURN_IF_ERROR(Require("microbatches"));
    if (const auto it = headers_.find("method"); it != headers_.end()) {
      if (it->second.values.size() != 1) {
        return Error(it->second.line, it->second.column, "'method' takes one value");
      }
      p.method = std::string(it->second.values.front().text);
      auto options = MethodOptionsFor(p.method, p.params);
      if (!options.ok())
        return Error(it->second.line, it->second.column, options.status().message());
      p.options = *options;
    }
    PIPECAST_RETURN_IF_ERROR(ReadCount("devices", 1, kMaxCount, p.num_devices));
    p.num_stages = p.num_devices;
    PIPECAST_RETURN_IF_ERROR(ReadCount("stages", 1, kMaxCount, p.num_stages));
    PIPECAST_RETURN_IF_ERROR(ReadCount("microbatches", 1, kMaxCount, p.microbatches));
    PIPECAST_RETURN_IF_ERROR(ReadCount("minibatches", 1, kMaxCount, p.minibatches));
    PIPECAST_RETURN_IF_ERROR(
        ReadCount("microbatch_size", 1, kMaxMicrobatchSize, p.microbatch_size));
    const int64_t total = static_cast<int64_t>(p.microbatches) * p.minibatches;
    if (total > kMaxCount || total * p.num_stages > kMaxCells) {
      const HeaderLine& h = headers_.at("microbatches");
      return Error(h.line, h.column,
                   "schedule too large: " + std::to_string(p.num_stages) + " stages x " +
                       std::to_string(total) + " microbatches exceeds the limits (" +
                       std::to_string(kMaxCount) + " microbatches, " + std::to_string(kMaxCells) +
                       " stage-microbatch pairs)");
    }
    PIPECAST_RETURN_IF_ERROR(ReadCount("replicas", 1, kMaxCount, p.replicas));
    if (static_cast<int64_t>(p.replicas) * p.num_stages > kMaxCount) {
      const HeaderLine& h = headers_.at("replicas");
      return Error(h.line, h.column, "replicas x stages exceeds " + std::to_string(kMaxCount));
    }
    if (p.replicas > 1 && !headers_.count("placement")) {
      const HeaderLine& h = headers_.at("replicas");
      return Error(h.line, h.column,
                   "'replicas' needs a 'placement' line with replicas x stages = " +
                       std::to_string(static_cast<int64_t>(p.replicas) * p.num_stages) +
                       " devices (replica 0's stages first)");
    }
    p.placement = RoundRobinPlacement(p.num_stages, p.num_devices);
    PIPECAST_RETURN_IF_ERROR(ReadList("placement",
                                      static_cast<size_t>(p.num_stages) * p.replicas, 0,
                                      p.num_devices - 1, p.placement));
    if (headers_.count("microbatch_replica")) {
      PIPECAST_RETURN_IF_ERROR(ReadList("microbatch_replica",
                                        static_cast<size_t>(p.microbatches), 0,
                                        p.replicas - 1, p.microbatch_replica));
    }
    PIPECAST_RETURN_IF_ERROR(ReadList("max_live_versions", static_cast<size_t>(p.num_devices), 1,
                                      kMaxCount, p.max_live_versions));

    // Device lines: each index once, in range, none missing.
    std::vector<const DeviceLine*> line_of(static_cast<size_t>(p.num_devices), nullptr);
    for (const DeviceLine& dl : device_lines_) {
      int32_t d = 0;
      PIPECAST_RETURN_IF_ERROR(
          ReadNumber(dl.index, dl.line, "device index", 0, p.num_devices - 1, d));
      if (line_of[d] != nullptr) {
        return Error(dl.line, dl.index.column,
                     "duplicate line for device " + std::to_string(d) + " (first on line " +
                         std::to_string(line_of[d]->line) + ")");
      }
      line_of[d] = &dl;
    }
    for (int32_t d = 0; d < p.num_devices; ++d) {
      if (line_of[d] == nullptr) {
        const HeaderLine& h = headers_.at("devices");
        return Error(h.line, h.column,
                     "no 'device " + std::to_string(d) + ":' line (devices is " +
                         std::to_string(p.num_devices) + ")");
      }
    }

    p.devices.assign(static_cast<size_t>(p.num_devices), {});
    const std::vector<int32_t> implicit = ImplicitStages(p);
    if (source_ != nullptr) {
      for (const auto& [key, h] : headers_) source_->keys[key] = {h.line, h.column};
      source_->actions.resize(static_cast<size_t>(p.num_devices));
      source_->devices.resize(static_cast<size_t>(p.num_devices));
    }
    for (int32_t d = 0; d < p.num_devices; ++d) {
      const DeviceLine& dl = *line_of[d];
      if (source_ != nullptr) {
        source_->devices[d] = {dl.line, 1};
        auto& positions = source_->actions[d];
        positions.reserve(dl.tokens.size());
        for (const Word& w : dl.tokens) positions.push_back({dl.line, w.column});
      }
      const TokenContext context{p.num_stages, p.total_microbatches(), implicit[d]};
      std::vector<Action>& program = p.devices[d];
      program.reserve(dl.tokens.size());
      for (const Word& w : dl.tokens) {
        Result<Action> action = ParseActionToken(w.text, context);
        if (!action.ok()) {
          return Error(dl.line, w.column,
                       "token " + Quote(w.text) + ": " + action.status().message());
        }
        program.push_back(*action);
      }
      ResolveSplitBackwards(program);
    }
    return std::move(program_);
  }

  std::string_view text_;
  std::string_view filename_;
  ScheduleSource* source_;
  Program program_;
  std::map<std::string, HeaderLine> headers_;
  std::vector<DeviceLine> device_lines_;
};

bool IsRoundRobin(const Program& p) {
  if (p.num_devices <= 0 || p.placement.size() != static_cast<size_t>(std::max(p.num_stages, 0)))
    return false;
  for (size_t s = 0; s < p.placement.size(); ++s)
    if (p.placement[s] != static_cast<int32_t>(s % p.num_devices)) return false;
  return true;
}

void AppendList(std::string& out, std::string_view key, const std::vector<int32_t>& values) {
  out += key;
  for (int32_t v : values) {
    out += ' ';
    out += std::to_string(v);
  }
  out += '\n';
}

}  // namespace

std::string DidYouMeanSuffix(std::string_view word,
                             const std::vector<std::string_view>& candidates) {
  const std::string best = ClosestMatch(word, candidates);
  return best.empty() ? "" : " (did you mean " + Quote(best) + "?)";
}

std::vector<int32_t> ImplicitStages(const Program& p) {
  const int32_t num_devices = static_cast<int32_t>(p.devices.size());
  std::vector<int32_t> implicit(p.devices.size(), TokenContext::kNoStage);
  for (size_t s = 0; s < p.placement.size(); ++s) {
    const int32_t d = p.placement[s];
    if (d < 0 || d >= num_devices) continue;
    const auto stage = static_cast<int32_t>(s % static_cast<size_t>(std::max(p.num_stages, 1)));
    implicit[d] = implicit[d] == TokenContext::kNoStage ? stage : TokenContext::kSeveralStages;
  }
  return implicit;
}

Result<Action> ParseActionToken(std::string_view token, const TokenContext& context) {
  // Syntax first: [stage] kind [microbatch] ['@' name [':' value]].
  size_t pos = 0;
  auto take = [&](bool (*accept)(char)) {
    const size_t start = pos;
    while (pos < token.size() && accept(token[pos])) ++pos;
    return token.substr(start, pos - start);
  };
  const std::string_view stage_text = take(IsDigit);
  const std::string_view kind_text = take(IsAlpha);
  const std::string_view microbatch_text = take(IsDigit);

  if (kind_text.empty()) {
    return ParseError("expected an action kind (F, B, I, W, SA, RA, SG, RG, S, AR or AV)");
  }
  std::optional<ActionKind> kind;
  for (ActionKind k : kAllKinds)
    if (KindToken(k) == kind_text) kind = k;
  if (!kind) {
    std::vector<std::string_view> names;
    for (ActionKind k : kAllKinds) names.push_back(KindToken(k));
    return ParseError("unknown action kind " + Quote(kind_text) +
                      DidYouMeanSuffix(kind_text, names));
  }
  if (*kind == ActionKind::kStep) {
    if (!stage_text.empty()) return ParseError("a step 'S' takes no stage prefix");
    if (!microbatch_text.empty()) return ParseError("a step 'S' takes no microbatch index");
    if (pos < token.size()) return ParseError("a step 'S' takes nothing after it");
    return Action{ActionKind::kStep, -1, -1, {}};
  }
  if (microbatch_text.empty()) {
    return ParseError("missing microbatch index after " + Quote(kind_text));
  }

  Action a;
  a.kind = *kind;
  if (pos < token.size()) {
    if (token[pos] != '@') {
      return ParseError("unexpected " + Quote(token.substr(pos)) + " after the microbatch index");
    }
    ++pos;
    const std::string_view name = take(IsAlpha);
    if (name.empty()) return ParseError("expected a weight annotation name after '@'");
    std::optional<WeightSource> source;
    for (WeightSource s : kAllSources)
      if (WeightSourceName(s) == name) source = s;
    if (!source) {
      std::vector<std::string_view> names;
      for (WeightSource s : kAllSources) names.push_back(WeightSourceName(s));
      return ParseError("unknown weight annotation " + Quote(name) + DidYouMeanSuffix(name, names));
    }
    const bool has_value = pos < token.size() && token[pos] == ':';
    if (has_value) {
      ++pos;
      const std::optional<int64_t> value = ParseDecimal(take(IsDigit));
      if (!value || *value > kInt32Max) {
        return ParseError("'@" + std::string(name) + ":' needs a non-negative integer value");
      }
      a.weights.value = static_cast<int32_t>(*value);
    }
    if (pos < token.size()) {
      return ParseError("unexpected " + Quote(token.substr(pos)) + " after the weight annotation");
    }
    if (SourceTakesValue(*source) && !has_value) {
      return ParseError("'@" + std::string(name) + "' needs a value, e.g. '@" + std::string(name) +
                        ":1'");
    }
    if (!SourceTakesValue(*source) && has_value) {
      return ParseError("'@" + std::string(name) + "' takes no value");
    }
    if (!UsesWeights(a.kind)) return ParseError("weight annotations apply only to F, B and I");
    a.weights.source = *source;
  }

  // Then ranges and the device's stage.
  const std::optional<int64_t> microbatch = ParseDecimal(microbatch_text);
  if (!microbatch || *microbatch >= context.total_microbatches) {
    return ParseError("microbatch " + std::string(microbatch_text) + " out of range [0, " +
                      std::to_string(context.total_microbatches) + ")");
  }
  a.microbatch = static_cast<int32_t>(*microbatch);
  if (!stage_text.empty()) {
    const std::optional<int64_t> stage = ParseDecimal(stage_text);
    if (!stage || *stage >= context.num_stages) {
      return ParseError("stage " + std::string(stage_text) + " out of range [0, " +
                        std::to_string(context.num_stages) + ")");
    }
    a.stage = static_cast<int32_t>(*stage);
  } else if (context.implicit_stage == TokenContext::kSeveralStages) {
    return ParseError("needs a stage prefix: this device holds several virtual stages");
  } else if (context.implicit_stage == TokenContext::kNoStage) {
    return ParseError("needs a stage prefix: no virtual stage is placed on this device");
  } else {
    a.stage = context.implicit_stage;
  }
  return a;
}

void ResolveSplitBackwards(std::vector<Action>& program) {
  const std::unordered_set<uint64_t> w_cells = WeightGradCells(program);
  if (w_cells.empty()) return;
  for (Action& a : program) {
    if (a.kind == ActionKind::kBackward && w_cells.count(CellKey(a.stage, a.microbatch)))
      a.kind = ActionKind::kBackwardInput;
  }
}

std::vector<std::string> DeviceTokens(const std::vector<Action>& program, int32_t implicit_stage,
                                      bool always_stage) {
  const std::unordered_set<uint64_t> w_cells = WeightGradCells(program);
  std::vector<std::string> tokens;
  tokens.reserve(program.size());
  for (const Action& a : program) {
    Action printed = a;
    if (a.kind == ActionKind::kBackwardInput && w_cells.count(CellKey(a.stage, a.microbatch)))
      printed.kind = ActionKind::kBackward;
    tokens.push_back(ActionToken(printed, always_stage || a.stage != implicit_stage));
  }
  return tokens;
}

std::string ProgramToText(const Program& p) {
  std::string out(kMagic);
  out += "1\n";
  out += "method " + p.method + "\n";
  out += "devices " + std::to_string(p.num_devices) + "\n";
  out += "stages " + std::to_string(p.num_stages) + "\n";
  if (p.replicas != 1) out += "replicas " + std::to_string(p.replicas) + "\n";
  if (!IsRoundRobin(p)) AppendList(out, "placement", p.placement);
  if (!p.microbatch_replica.empty())
    AppendList(out, "microbatch_replica", p.microbatch_replica);
  out += "microbatches " + std::to_string(p.microbatches) + "\n";
  out += "minibatches " + std::to_string(p.minibatches) + "\n";
  out += "microbatch_size " + std::to_string(p.microbatch_size) + "\n";
  if (!p.max_live_versions.empty()) AppendList(out, "max_live_versions", p.max_live_versions);
  for (const auto& [key, value] : p.params) out += "param " + key + "=" + value + "\n";
  const std::vector<int32_t> implicit = ImplicitStages(p);
  for (size_t d = 0; d < p.devices.size(); ++d) {
    out += "device " + std::to_string(d) + ":";
    for (const std::string& token : DeviceTokens(p.devices[d], implicit[d], false))
      out += " " + token;
    out += '\n';
  }
  return out;
}

Result<Program> ParseProgramText(std::string_view text, std::string_view filename,
                                 ScheduleSource* source) {
  return TextParser(text, filename, source).Parse();
}

}  // namespace pipecast::ir
