// Schedule generators: one per method. Each produces a compute-only Program (F, B/I, W and
// Steps with weight annotations); InsertCommunication (lower.h) adds the sends and receives.
//
// Synchronous methods (gpipe, 1f1b, interleaved, zb-h1, zb-h2, zb-1p, zb-2p, zb-v) repeat one
// flushed iteration per minibatch and step once per minibatch; zb-v places two chunks per device
// in a V (device k holds virtual stages k and 2D - 1 - k), every other method round-robin. Asynchronous methods stream every microbatch of all
// minibatches without a flush and step on their own cadence: every microbatch (pipedream,
// spectrain, pipemare, pipeoptim), every minibatch (pipedream-2bw, xpipe, and wpipe with one
// more Step at the end) or every `a` backwards (paci). Orders and version rules follow the papers docs/methods.md cites; where a
// paper and its code disagree, the paper is the default and the code an option.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/ir.h"
#include "common/method_options.h"
#include "common/status.h"

namespace pipecast::ir {

// What values a method parameter takes.
enum class ParamType {
  kChoice,             // one of `choices`
  kPositiveInt,        // an integer >= 1
  kNonNegativeInt,     // an integer >= 0
  kFraction,           // a number in [0, 1)
  kPositiveIntOrAuto,  // an integer >= 1, or "auto"
};

struct ParamInfo {
  std::string name;
  std::string default_value;  // as text; "" = no default (computed, see help)
  std::string help;
  ParamType type = ParamType::kChoice;
  std::vector<std::string> choices;  // for kChoice
};

struct MethodInfo {
  std::string name;
  std::string summary;
  bool asynchronous = false;
  std::vector<ParamInfo> params;
};

// Every method pipecast can generate, in a fixed order (the order of comparison tables).
const std::vector<MethodInfo>& Methods();
const MethodInfo* FindMethod(const std::string& name);

struct GenerateOptions {
  std::string method;
  int32_t devices = 4;
  int32_t microbatches = 8;
  int32_t minibatches = 1;
  int32_t microbatch_size = 1;
  std::map<std::string, std::string> params;  // method parameters, validated against Methods()
  // Copies of the pipeline for data parallelism (replicate.h): `devices` and `microbatches`
  // are one copy's; the program has data_parallel times as many of both.
  int32_t data_parallel = 1;
};

// Errors (kInvalidArgument) for unknown methods or parameters (with a "did you mean"), values
// out of range, and violated preconditions (e.g. microbatches < devices for pipedream-2bw).
// The program's `options` are the parameters typed (MethodOptionsFor).
Result<Program> Generate(const GenerateOptions& options);

// Generate, handing every device's actions to `sink` as soon as they are complete instead of
// keeping them: the returned program has the metadata and empty device programs, so a caller can
// re-encode a large program device by device without ever holding it whole (compact_program.h).
// Devices come in order 0, 1, ...
using DeviceSink = std::function<void(int32_t device, std::vector<Action>&& actions)>;
Result<Program> Generate(const GenerateOptions& options, const DeviceSink& sink);

// The size of the program Generate would produce, computed from the options alone (no program
// is built), so a caller can check what a run would need before it spends the memory.
struct ProgramSize {
  int32_t devices = 0;
  int32_t stages = 0;           // virtual stages
  int64_t microbatches = 0;     // of all minibatches
  int64_t compute_actions = 0;  // F, B, I, W
  int64_t steps = 0;            // optimizer steps of all devices
  int64_t collectives = 0;      // all-reduce actions of all devices
  bool stashes = false;         // some backward computes with stashed weights
  // Some action computes with weights other than the current or predicted ones (stashes, 2BW's
  // buffers, PipeMare's corrections, explicit versions): the simulator tracks every copy.
  bool tracked_copies = false;
  int64_t cells() const { return static_cast<int64_t>(stages) * microbatches; }
  int64_t actions() const { return compute_actions + steps + collectives; }
};
// The same errors as Generate for the method, its parameters and the sizes; the program's own
// preconditions (e.g. pipedream-2bw's microbatches >= stages) are Generate's to report.
Result<ProgramSize> SizeOf(const GenerateOptions& options);

// The typed options of `method` with `params` (missing ones take their defaults), for the
// schedule-file readers: the values of the method's parameters are checked as Generate checks
// them; keys the method does not define are ignored (a file may carry its own notes), and a
// method pipecast does not know (a hand-written "custom" schedule) has the default options.
Result<MethodOptions> MethodOptionsFor(const std::string& method,
                                       const std::map<std::string, std::string>& params);

// The closest candidate to `word` by edit distance, or "" if none is close.
std::string DidYouMean(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace pipecast::ir
