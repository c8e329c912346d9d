// Which launcher started this process (mpirun, torchrun, Slurm's srun, or none) and what it
// says about the process: its rank, the number of ranks, its index on its machine, and where
// the ranks meet (MASTER_ADDR:MASTER_PORT, the TCP store of runtime/tcp_store.h). Read from a
// getenv-like function so every launcher's variables are tested without launching anything;
// host code only (no CUDA), used by --device cuda to pick a GPU and bootstrap NCCL.
//
// Precedence when several launchers' variables are set: torchrun (RANK), then mpirun
// (OMPI_COMM_WORLD_RANK, then MPICH's PMI_RANK), then Slurm (SLURM_PROCID), then none. The
// launcher started last sets the variables of the process itself: torchrun inside a Slurm
// allocation or under mpirun, mpirun inside an allocation. An empty variable counts as unset.
#pragma once

#include <functional>
#include <string>

#include "common/status.h"

namespace pipecast::runtime {

enum class Launcher {
  kNone,      // started by hand: one rank
  kMpirun,    // Open MPI (OMPI_COMM_WORLD_*) or MPICH / Intel MPI (PMI_RANK, PMI_SIZE)
  kTorchrun,  // torchrun, or RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT set by hand
  kSlurm,     // srun (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID)
};

// "none", "mpirun", "torchrun", "slurm".
const char* LauncherName(Launcher launcher);

struct LaunchEnv {
  Launcher launcher = Launcher::kNone;
  int rank = 0;        // 0 .. world_size - 1
  int world_size = 1;  // >= 1
  int local_rank = 0;  // this process's index among the ranks of its machine, < world_size
  // Where the TCP store listens (rank 0's machine). Empty and 0 when the launcher gave none:
  // always so for one rank; mpirun may leave them unset (its ranks bootstrap over MPI).
  std::string master_addr;
  int master_port = 0;  // 1 .. 65535 when master_addr is set

  bool has_store_address() const { return !master_addr.empty(); }
};

// Returns the value of an environment variable, or nullptr when it is not set.
using EnvLookup = std::function<const char*(const char* name)>;

// Reads the launcher's variables through `lookup` (precedence above). Errors (kInvalidArgument),
// each naming the variable and what to do: a number that is malformed or out of range (names
// the variable and its value), a rank that is not below the world size, a local rank that is
// not below the world size, a launcher's rank without its world size or local rank, torchrun's
// or Slurm's variables with more than one rank but no MASTER_ADDR / MASTER_PORT (names what to
// export), and MASTER_ADDR without MASTER_PORT or the reverse.
Result<LaunchEnv> ReadLaunchEnv(const EnvLookup& lookup);
// ReadLaunchEnv over this process's environment (std::getenv).
Result<LaunchEnv> ReadProcessLaunchEnv();

// "rank 2 of 4 (local rank 0, torchrun), store at node1:29500", for logs.
std::string DescribeLaunchEnv(const LaunchEnv& env);

// The GPU of this rank: its local rank, which must be below `visible_gpus` (the CUDA device
// count this process sees; a parameter so this is tested without a GPU). One GPU per rank:
// kInvalidArgument otherwise, naming the rank, its local rank and the count, e.g. "rank 3
// (local rank 3) needs a fourth GPU, this machine shows 2: start at most 2 ranks per machine".
Result<int> ChooseGpu(const LaunchEnv& env, int visible_gpus);

}  // namespace pipecast::runtime
