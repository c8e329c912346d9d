#include "runtime/launch_env.h"

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <vector>

namespace pipecast::runtime {
namespace {

constexpr int64_t kIntMax = std::numeric_limits<int>::max();

// The variables one launcher sets, in the order of precedence (launch_env.h).
struct LauncherVars {
  Launcher launcher;
  const char* label;  // for messages: "torchrun", "Open MPI's mpirun"
  const char* rank;   // its presence selects this launcher
  const char* size;
  std::vector<const char*> locals;  // the local rank, the first one set wins
  bool needs_address;               // MASTER_ADDR / MASTER_PORT required when size > 1
  const char* address_hint;         // how to set them, when needed
};

const std::vector<LauncherVars>& Launchers() {
  static const std::vector<LauncherVars> kLaunchers = {
      {Launcher::kTorchrun,
       "torchrun",
       "RANK",
       "WORLD_SIZE",
       {"LOCAL_RANK"},
       true,
       "export MASTER_ADDR (rank 0's host name or address) and MASTER_PORT (a free port there, "
       "e.g. 29500) on every rank, or start with torchrun, which sets them"},
      {Launcher::kMpirun,
       "Open MPI's mpirun",
       "OMPI_COMM_WORLD_RANK",
       "OMPI_COMM_WORLD_SIZE",
       {"OMPI_COMM_WORLD_LOCAL_RANK"},
       false,
       ""},
      {Launcher::kMpirun,
       "MPICH's mpirun",
       "PMI_RANK",
       "PMI_SIZE",
       {"MPI_LOCALRANKID", "PMI_LOCAL_RANK", "SLURM_LOCALID"},
       false,
       ""},
      {Launcher::kSlurm,
       "srun",
       "SLURM_PROCID",
       "SLURM_NTASKS",
       {"SLURM_LOCALID"},
       true,
       "in the batch script, before srun, export MASTER_ADDR=$(scontrol show hostnames "
       "\"$SLURM_JOB_NODELIST\" | head -n 1) and MASTER_PORT=29500 (any free port)"},
  };
  return kLaunchers;
}

// `lookup` with empty values read as unset.
const char* Get(const EnvLookup& lookup, const char* name) {
  const char* value = lookup(name);
  return value != nullptr && value[0] != '\0' ? value : nullptr;
}

// The value of `name` as an integer in [min, max].
Result<int> ParseInt(const char* name, const char* value, int64_t min, int64_t max) {
  const std::string text(value);
  int64_t parsed = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), parsed);
  const bool digits_only = end == text.data() + text.size();
  if (error == std::errc::invalid_argument || !digits_only) {
    return InvalidArgument(std::string(name) + "='" + text + "' is not a whole number");
  }
  if (error == std::errc::result_out_of_range || parsed < min || parsed > max) {
    return InvalidArgument(std::string(name) + "='" + text + "' is out of range: it must be " +
                           std::to_string(min) + " to " + std::to_string(max));
  }
  return static_cast<int>(parsed);
}

// MASTER_ADDR and MASTER_PORT into `env`: both or neither.
Status ReadAddress(const EnvLookup& lookup, LaunchEnv& env) {
  const char* addr = Get(lookup, "MASTER_ADDR");
  const char* port = Get(lookup, "MASTER_PORT");
  if (addr != nullptr && port == nullptr) {
    return InvalidArgument(
        "MASTER_ADDR is set but MASTER_PORT is not: export MASTER_PORT (a free port on rank 0's "
        "machine, e.g. 29500)");
  }
  if (addr == nullptr && port != nullptr) {
    return InvalidArgument(
        "MASTER_PORT is set but MASTER_ADDR is not: export MASTER_ADDR (rank 0's host name or "
        "address)");
  }
  if (addr == nullptr) return Status::Ok();
  Result<int> parsed = ParseInt("MASTER_PORT", port, 1, 65535);
  if (!parsed.ok()) return parsed.status();
  env.master_addr = addr;
  env.master_port = *parsed;
  return Status::Ok();
}

// Rank, world size and local rank of launcher `vars`, whose rank variable is set.
Result<LaunchEnv> ReadLauncher(const EnvLookup& lookup, const LauncherVars& vars) {
  LaunchEnv env;
  env.launcher = vars.launcher;
  const std::string label = std::string(" (") + vars.label + ")";
  const char* size = Get(lookup, vars.size);
  if (size == nullptr) {
    return InvalidArgument(std::string(vars.rank) + " is set" + label + " but " + vars.size +
                           " is not: " + vars.label + " sets both; export " + vars.size +
                           " (the number of ranks) if you set " + vars.rank + " by hand");
  }
  const char* local = nullptr;
  const char* local_name = vars.locals.front();
  for (const char* name : vars.locals) {
    if ((local = Get(lookup, name)) != nullptr) {
      local_name = name;
      break;
    }
  }
  if (local == nullptr) {
    return InvalidArgument(std::string(vars.rank) + " is set" + label + " but " +
                           vars.locals.front() +
                           " is not: export it (this process's index among the ranks of its "
                           "machine, 0 for the first)");
  }
  Result<int> rank = ParseInt(vars.rank, Get(lookup, vars.rank), 0, kIntMax);
  if (!rank.ok()) return rank.status();
  Result<int> world = ParseInt(vars.size, size, 1, kIntMax);
  if (!world.ok()) return world.status();
  Result<int> local_rank = ParseInt(local_name, local, 0, kIntMax);
  if (!local_rank.ok()) return local_rank.status();
  env.rank = *rank;
  env.world_size = *world;
  env.local_rank = *local_rank;
  const std::string of_size = std::string(vars.size) + "=" + std::to_string(env.world_size);
  if (env.rank >= env.world_size) {
    return InvalidArgument(std::string(vars.rank) + "=" + std::to_string(env.rank) +
                           " is not below " + of_size + ": ranks count from 0 to " + vars.size +
                           " - 1");
  }
  if (env.local_rank >= env.world_size) {
    return InvalidArgument(std::string(local_name) + "=" + std::to_string(env.local_rank) +
                           " is not below " + of_size + ": a machine runs at most " + vars.size +
                           " ranks");
  }
  PIPECAST_RETURN_IF_ERROR(ReadAddress(lookup, env));
  if (vars.needs_address && env.world_size > 1 && !env.has_store_address()) {
    return InvalidArgument(std::string(vars.rank) + " is set (" + vars.label + ", " +
                           std::to_string(env.world_size) +
                           " ranks) but MASTER_ADDR is not: the ranks meet at a TCP store on "
                           "rank 0's machine; " +
                           vars.address_hint);
  }
  return env;
}

// "a fourth GPU" for n = 4, up to 20; "at least 25 GPUs" beyond.
std::string NthGpu(int n) {
  static const char* const kOrdinals[] = {"first",       "second",     "third",      "fourth",
                                          "fifth",       "sixth",      "seventh",    "eighth",
                                          "ninth",       "tenth",      "eleventh",   "twelfth",
                                          "thirteenth",  "fourteenth", "fifteenth",  "sixteenth",
                                          "seventeenth", "eighteenth", "nineteenth", "twentieth"};
  if (n < 1 || n > 20) return "at least " + std::to_string(n) + " GPUs";
  const std::string word = kOrdinals[n - 1];
  const bool vowel = word[0] == 'e';  // eighth, eleventh, eighteenth
  return std::string(vowel ? "an " : "a ") + word + " GPU";
}

}  // namespace

const char* LauncherName(Launcher launcher) {
  switch (launcher) {
    case Launcher::kNone:
      return "none";
    case Launcher::kMpirun:
      return "mpirun";
    case Launcher::kTorchrun:
      return "torchrun";
    case Launcher::kSlurm:
      return "slurm";
  }
  return "?";
}

Result<LaunchEnv> ReadLaunchEnv(const EnvLookup& lookup) {
  for (const LauncherVars& vars : Launchers()) {
    if (Get(lookup, vars.rank) != nullptr) return ReadLauncher(lookup, vars);
  }
  // No launcher: one rank. A world size above 1 without a rank is a half-done manual launch.
  if (const char* size = Get(lookup, "WORLD_SIZE"); size != nullptr) {
    Result<int> world = ParseInt("WORLD_SIZE", size, 1, kIntMax);
    if (!world.ok()) return world.status();
    if (*world > 1) {
      return InvalidArgument(
          "WORLD_SIZE=" + std::to_string(*world) + " is set but RANK is not: export RANK (0 to " +
          std::to_string(*world - 1) + ") and LOCAL_RANK on every rank, or start with torchrun");
    }
  }
  LaunchEnv env;
  PIPECAST_RETURN_IF_ERROR(ReadAddress(lookup, env));
  return env;
}

Result<LaunchEnv> ReadProcessLaunchEnv() {
  return ReadLaunchEnv([](const char* name) -> const char* { return std::getenv(name); });
}

std::string DescribeLaunchEnv(const LaunchEnv& env) {
  std::string text = "rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) +
                     " (local rank " + std::to_string(env.local_rank) + ", " +
                     (env.launcher == Launcher::kNone ? std::string("no launcher")
                                                      : std::string(LauncherName(env.launcher))) +
                     "), ";
  if (!env.has_store_address()) return text + "no store address";
  return text + "store at " + env.master_addr + ":" + std::to_string(env.master_port);
}

Result<int> ChooseGpu(const LaunchEnv& env, int visible_gpus) {
  const std::string who =
      "rank " + std::to_string(env.rank) + " (local rank " + std::to_string(env.local_rank) + ")";
  if (visible_gpus <= 0) {
    return InvalidArgument(who +
                           " needs a GPU, this machine shows none: check nvidia-smi and "
                           "CUDA_VISIBLE_DEVICES");
  }
  if (env.local_rank < visible_gpus) return env.local_rank;
  const std::string ranks = visible_gpus == 1 ? " rank" : " ranks";
  std::string message = who + " needs " + NthGpu(env.local_rank + 1) + ", this machine shows " +
                        std::to_string(visible_gpus) + ": start at most " +
                        std::to_string(visible_gpus) + ranks + " per machine";
  if (env.launcher == Launcher::kSlurm) {
    message +=
        " (srun options that bind one GPU to each task, such as --gpus-per-task=1, leave each "
        "rank one visible GPU, and a rank uses the GPU numbered SLURM_LOCALID among those it sees: "
        "give the tasks all of the machine's GPUs with --gpus-per-node and --gpu-bind=none)";
  }
  return InvalidArgument(message);
}

}  // namespace pipecast::runtime
