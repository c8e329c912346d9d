#include "runtime/checkpointer.h"

#include <nlohmann/json.hpp>

#include "runtime/safetensors.h"

namespace pipecast::runtime {
namespace {

constexpr char kFormat[] = "pipecast-checkpoint-1";

// Replica 0's copy of a stage under "stage<s>.", another copy r (kept only where the copies
// differ) under "replica<r>.stage<s>.".
std::string Prefix(int32_t stage, int32_t replica) {
  return (replica > 0 ? "replica" + std::to_string(replica) + "." : std::string()) + "stage" +
         std::to_string(stage) + ".";
}

// AvgPipe's copies of a stage differ (each pipeline steps on its own gradients): every copy is
// saved. Every other program's copies are identical: replica 0's is.
int32_t SavedCopies(const ir::Program& p) {
  return p.options.elastic_alpha > 0 && p.replicas > 1 ? p.replicas : 1;
}

}  // namespace

std::string RunIdentity(const Session& session) {
  const ir::Job& job = session.job();
  nlohmann::json j = {{"job", job.name},
                      {"method", session.method().name},
                      {"params", session.method().params},
                      {"seed", job.seed},
                      {"epochs", job.epochs}};
  if (job.pipeline.data_parallel > 1) j["data_parallel"] = job.pipeline.data_parallel;
  return j.dump();
}

Status SaveCheckpoint(const std::string& path, Session& session, const RunPosition& position) {
  SafetensorsFile ck;
  std::vector<int64_t> opt_steps;
  const ir::Program& p = session.placement();
  for (int32_t s = 0; s < session.num_stages(); ++s) {
    for (int32_t r = 0; r < SavedCopies(p); ++r) {
      auto state = session.devices()[p.device_of_replica(s, r)]->State(s);
      if (!state.ok()) return state.status();
      for (const auto& [name, values] : state->tensors)
        ck.tensors[Prefix(s, r) + name] = {{static_cast<int64_t>(values.size())}, values};
      if (r == 0) opt_steps.push_back(state->optimizer_steps);  // every copy steps alike
    }
  }
  const nlohmann::json state = {
      {"segment", position.segment},
      {"minibatches", position.minibatches},
      {"wall_s", position.wall_s},
      {"steps_before", position.steps_before},
      {"optimizer_steps", opt_steps},
      {"data_position", position.minibatches * session.microbatches_per_minibatch()},
      {"evaluations", nlohmann::json::parse(position.evaluations_json)}};
  ck.metadata["identity"] = RunIdentity(session);
  ck.metadata["state"] = state.dump();
  ck.metadata["format"] = kFormat;
  return WriteSafetensors(path, ck);
}

Result<RunPosition> LoadCheckpoint(const std::string& path, Session& session) {
  auto ck = ReadSafetensors(path);
  if (!ck.ok()) return ck.status();
  const auto& md = ck->metadata;
  const std::string identity = RunIdentity(session);
  if (!md.count("identity") || md.at("identity") != identity) {
    return InvalidArgument(path + ": the checkpoint is from another run (" +
                           (md.count("identity") ? md.at("identity") : "unknown") +
                           "); remove it or drop --resume");
  }
  RunPosition pos;
  try {
    const auto state = nlohmann::json::parse(md.at("state"));
    pos.segment = state.at("segment");
    pos.minibatches = state.at("minibatches");
    pos.wall_s = state.at("wall_s");
    pos.steps_before = state.at("steps_before").get<std::vector<int64_t>>();
    pos.evaluations_json = state.at("evaluations").dump();
    const auto opt_steps = state.at("optimizer_steps").get<std::vector<int64_t>>();
    if (static_cast<int32_t>(opt_steps.size()) != session.num_stages() ||
        static_cast<int32_t>(pos.steps_before.size()) != session.num_devices())
      return InvalidArgument(path + ": corrupt checkpoint state: wrong number of stages");
    const ir::Program& p = session.placement();
    for (int32_t s = 0; s < session.num_stages(); ++s) {
      // Every copy of the stage: its own state where the copies differ, else replica 0's.
      for (int32_t r = 0; r < p.replicas; ++r) {
        const int32_t d = p.device_of_replica(s, r);
        if (!session.IsLocal(d)) continue;
        StageState st;
        st.optimizer_steps = opt_steps[s];
        const std::string prefix = Prefix(s, SavedCopies(p) > 1 ? r : 0);
        for (const auto& [name, t] : ck->tensors)
          if (name.rfind(prefix, 0) == 0)
            st.tensors.emplace_back(name.substr(prefix.size()), t.data);
        if (Status ls = session.devices()[d]->LoadState(s, st); !ls.ok())
          return InvalidArgument(path + ": " + ls.message());
      }
    }
  } catch (const std::exception& e) {
    return InvalidArgument(path + ": corrupt checkpoint state: " + e.what());
  }
  return pos;
}

}  // namespace pipecast::runtime
