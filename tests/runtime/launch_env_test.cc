// ReadLaunchEnv and ChooseGpu: every launcher's variables (torchrun, Open MPI, MPICH, Slurm,
// none), the documented precedence when several are set, and every error message, word for
// word, over a fake environment.
#include "runtime/launch_env.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <string>

namespace pipecast::runtime {
namespace {

using Vars = std::map<std::string, std::string>;

Result<LaunchEnv> Read(const Vars& vars) {
  return ReadLaunchEnv([&vars](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

// The message of the kInvalidArgument error ReadLaunchEnv must give for `vars`.
std::string ErrorOf(const Vars& vars) {
  Result<LaunchEnv> env = Read(vars);
  EXPECT_FALSE(env.ok());
  EXPECT_EQ(env.status().code(), StatusCode::kInvalidArgument);
  return env.status().message();
}

void ExpectEnv(const Result<LaunchEnv>& env, Launcher launcher, int rank, int world, int local,
               const std::string& addr, int port) {
  ASSERT_TRUE(env.ok()) << env.status().message();
  EXPECT_EQ(env->launcher, launcher);
  EXPECT_EQ(env->rank, rank);
  EXPECT_EQ(env->world_size, world);
  EXPECT_EQ(env->local_rank, local);
  EXPECT_EQ(env->master_addr, addr);
  EXPECT_EQ(env->master_port, port);
  EXPECT_EQ(env->has_store_address(), !addr.empty());
}

const Vars kTorchrun = {{"RANK", "3"},
                        {"WORLD_SIZE", "8"},
                        {"LOCAL_RANK", "1"},
                        {"MASTER_ADDR", "node0"},
                        {"MASTER_PORT", "29500"}};
const Vars kOpenMpi = {{"OMPI_COMM_WORLD_RANK", "5"},
                       {"OMPI_COMM_WORLD_SIZE", "6"},
                       {"OMPI_COMM_WORLD_LOCAL_RANK", "2"}};
const Vars kMpich = {{"PMI_RANK", "2"}, {"PMI_SIZE", "4"}, {"MPI_LOCALRANKID", "0"}};
const Vars kSlurm = {{"SLURM_PROCID", "7"},
                     {"SLURM_NTASKS", "16"},
                     {"SLURM_LOCALID", "3"},
                     {"MASTER_ADDR", "gpu-01"},
                     {"MASTER_PORT", "12345"}};

Vars Merge(Vars a, const Vars& b) {
  a.insert(b.begin(), b.end());
  return a;
}

TEST(ReadLaunchEnv, NoLauncherIsOneRank) {
  ExpectEnv(Read({}), Launcher::kNone, 0, 1, 0, "", 0);
  ExpectEnv(Read({{"WORLD_SIZE", "1"}}), Launcher::kNone, 0, 1, 0, "", 0);
  ExpectEnv(Read({{"MASTER_ADDR", "localhost"}, {"MASTER_PORT", "1"}}), Launcher::kNone, 0, 1, 0,
            "localhost", 1);
}

TEST(ReadLaunchEnv, Torchrun) {
  ExpectEnv(Read(kTorchrun), Launcher::kTorchrun, 3, 8, 1, "node0", 29500);
  // One rank needs no store.
  ExpectEnv(Read({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"LOCAL_RANK", "0"}}), Launcher::kTorchrun, 0,
            1, 0, "", 0);
}

TEST(ReadLaunchEnv, OpenMpiWithAndWithoutAnAddress) {
  ExpectEnv(Read(kOpenMpi), Launcher::kMpirun, 5, 6, 2, "", 0);
  ExpectEnv(Read(Merge(kOpenMpi, {{"MASTER_ADDR", "10.0.0.1"}, {"MASTER_PORT", "65535"}})),
            Launcher::kMpirun, 5, 6, 2, "10.0.0.1", 65535);
}

TEST(ReadLaunchEnv, MpichAndItsLocalRankVariables) {
  ExpectEnv(Read(kMpich), Launcher::kMpirun, 2, 4, 0, "", 0);
  ExpectEnv(Read({{"PMI_RANK", "3"}, {"PMI_SIZE", "4"}, {"PMI_LOCAL_RANK", "1"}}),
            Launcher::kMpirun, 3, 4, 1, "", 0);
  // srun --mpi=pmi2 sets PMI_RANK and SLURM_LOCALID.
  ExpectEnv(Read({{"PMI_RANK", "3"}, {"PMI_SIZE", "4"}, {"SLURM_LOCALID", "3"}}), Launcher::kMpirun,
            3, 4, 3, "", 0);
  // MPI_LOCALRANKID comes first.
  ExpectEnv(Read(Merge(kMpich, {{"PMI_LOCAL_RANK", "1"}, {"SLURM_LOCALID", "2"}})),
            Launcher::kMpirun, 2, 4, 0, "", 0);
}

TEST(ReadLaunchEnv, Slurm) {
  ExpectEnv(Read(kSlurm), Launcher::kSlurm, 7, 16, 3, "gpu-01", 12345);
  ExpectEnv(Read({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}, {"SLURM_LOCALID", "0"}}),
            Launcher::kSlurm, 0, 1, 0, "", 0);
}

TEST(ReadLaunchEnv, PrecedenceIsTorchrunThenMpirunThenSlurm) {
  // All four launchers' variables: torchrun's win (the innermost launcher).
  const Vars all = Merge(Merge(Merge(kTorchrun, kOpenMpi), kMpich), kSlurm);
  // kTorchrun's MASTER_ADDR wins the merge (insert keeps the first).
  ExpectEnv(Read(all), Launcher::kTorchrun, 3, 8, 1, "node0", 29500);
  // Open MPI before MPICH before Slurm.
  ExpectEnv(Read(Merge(Merge(kOpenMpi, kMpich), kSlurm)), Launcher::kMpirun, 5, 6, 2, "gpu-01",
            12345);
  ExpectEnv(Read(Merge(kMpich, kSlurm)), Launcher::kMpirun, 2, 4, 0, "gpu-01", 12345);
  // An empty variable counts as unset.
  ExpectEnv(Read(Merge({{"RANK", ""}}, kOpenMpi)), Launcher::kMpirun, 5, 6, 2, "", 0);
}

TEST(ReadLaunchEnv, MalformedNumbersNameTheVariableAndItsValue) {
  EXPECT_EQ(ErrorOf(Merge({{"RANK", "3x"}}, kTorchrun)), "RANK='3x' is not a whole number");
  EXPECT_EQ(ErrorOf(Merge({{"RANK", " 3"}}, kTorchrun)), "RANK=' 3' is not a whole number");
  EXPECT_EQ(ErrorOf(Merge({{"RANK", "+3"}}, kTorchrun)), "RANK='+3' is not a whole number");
  EXPECT_EQ(ErrorOf(Merge({{"WORLD_SIZE", "8.0"}}, kTorchrun)),
            "WORLD_SIZE='8.0' is not a whole number");
  EXPECT_EQ(ErrorOf(Merge({{"OMPI_COMM_WORLD_LOCAL_RANK", "one"}}, kOpenMpi)),
            "OMPI_COMM_WORLD_LOCAL_RANK='one' is not a whole number");
  EXPECT_EQ(ErrorOf(Merge({{"MASTER_PORT", "http"}}, kSlurm)),
            "MASTER_PORT='http' is not a whole number");
}

TEST(ReadLaunchEnv, OutOfRangeNumbersNameTheVariableValueAndRange) {
  EXPECT_EQ(ErrorOf(Merge({{"RANK", "-1"}}, kTorchrun)),
            "RANK='-1' is out of range: it must be 0 to 2147483647");
  EXPECT_EQ(ErrorOf(Merge({{"SLURM_NTASKS", "99999999999999999999"}}, kSlurm)),
            "SLURM_NTASKS='99999999999999999999' is out of range: it must be 1 to 2147483647");
  EXPECT_EQ(ErrorOf(Merge({{"WORLD_SIZE", "0"}}, kTorchrun)),
            "WORLD_SIZE='0' is out of range: it must be 1 to 2147483647");
  EXPECT_EQ(ErrorOf(Merge({{"MASTER_PORT", "70000"}}, kTorchrun)),
            "MASTER_PORT='70000' is out of range: it must be 1 to 65535");
  EXPECT_EQ(ErrorOf(Merge({{"MASTER_PORT", "0"}}, kTorchrun)),
            "MASTER_PORT='0' is out of range: it must be 1 to 65535");
}

TEST(ReadLaunchEnv, RankAndLocalRankMustBeBelowTheWorldSize) {
  EXPECT_EQ(ErrorOf(Merge({{"RANK", "8"}}, kTorchrun)),
            "RANK=8 is not below WORLD_SIZE=8: ranks count from 0 to WORLD_SIZE - 1");
  EXPECT_EQ(ErrorOf(Merge({{"OMPI_COMM_WORLD_RANK", "6"}}, kOpenMpi)),
            "OMPI_COMM_WORLD_RANK=6 is not below OMPI_COMM_WORLD_SIZE=6: ranks count from 0 to "
            "OMPI_COMM_WORLD_SIZE - 1");
  EXPECT_EQ(ErrorOf(Merge({{"LOCAL_RANK", "9"}}, kTorchrun)),
            "LOCAL_RANK=9 is not below WORLD_SIZE=8: a machine runs at most WORLD_SIZE ranks");
}

TEST(ReadLaunchEnv, ARankWithoutItsWorldSizeOrLocalRank) {
  EXPECT_EQ(ErrorOf({{"RANK", "1"}, {"LOCAL_RANK", "1"}}),
            "RANK is set (torchrun) but WORLD_SIZE is not: torchrun sets both; export WORLD_SIZE "
            "(the number of ranks) if you set RANK by hand");
  EXPECT_EQ(ErrorOf({{"SLURM_PROCID", "1"}}),
            "SLURM_PROCID is set (srun) but SLURM_NTASKS is not: srun sets both; export "
            "SLURM_NTASKS (the number of ranks) if you set SLURM_PROCID by hand");
  EXPECT_EQ(ErrorOf({{"RANK", "1"}, {"WORLD_SIZE", "2"}}),
            "RANK is set (torchrun) but LOCAL_RANK is not: export it (this process's index among "
            "the ranks of its machine, 0 for the first)");
  EXPECT_EQ(ErrorOf({{"PMI_RANK", "1"}, {"PMI_SIZE", "2"}}),
            "PMI_RANK is set (MPICH's mpirun) but MPI_LOCALRANKID is not: export it (this "
            "process's index among the ranks of its machine, 0 for the first)");
  EXPECT_EQ(ErrorOf({{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"}}),
            "OMPI_COMM_WORLD_RANK is set (Open MPI's mpirun) but OMPI_COMM_WORLD_LOCAL_RANK is "
            "not: export it (this process's index among the ranks of its machine, 0 for the "
            "first)");
  EXPECT_EQ(ErrorOf({{"WORLD_SIZE", "4"}}),
            "WORLD_SIZE=4 is set but RANK is not: export RANK (0 to 3) and LOCAL_RANK on every "
            "rank, or start with torchrun");
}

TEST(ReadLaunchEnv, SeveralRanksWithoutAnAddressNameWhatToExport) {
  EXPECT_EQ(ErrorOf({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "1"}}),
            "RANK is set (torchrun, 2 ranks) but MASTER_ADDR is not: the ranks meet at a TCP "
            "store on rank 0's machine; export MASTER_ADDR (rank 0's host name or address) and "
            "MASTER_PORT (a free port there, e.g. 29500) on every rank, or start with torchrun, "
            "which sets them");
  EXPECT_EQ(ErrorOf({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "4"}, {"SLURM_LOCALID", "0"}}),
            "SLURM_PROCID is set (srun, 4 ranks) but MASTER_ADDR is not: the ranks meet at a TCP "
            "store on rank 0's machine; in the batch script, before srun, export "
            "MASTER_ADDR=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1) and "
            "MASTER_PORT=29500 (any free port)");
}

TEST(ReadLaunchEnv, AddressAndPortComeTogether) {
  EXPECT_EQ(ErrorOf(Merge({{"MASTER_ADDR", "node0"}}, kOpenMpi)),
            "MASTER_ADDR is set but MASTER_PORT is not: export MASTER_PORT (a free port on rank "
            "0's machine, e.g. 29500)");
  EXPECT_EQ(ErrorOf({{"MASTER_PORT", "29500"}}),
            "MASTER_PORT is set but MASTER_ADDR is not: export MASTER_ADDR (rank 0's host name "
            "or address)");
  Vars slurm = kSlurm;
  slurm.erase("MASTER_ADDR");
  EXPECT_EQ(ErrorOf(slurm),
            "MASTER_PORT is set but MASTER_ADDR is not: export MASTER_ADDR (rank 0's host name "
            "or address)");
}

TEST(ReadProcessLaunchEnv, ReadsThisProcesssEnvironment) {
  // torchrun's variables take precedence over whatever launcher runs the test.
  const char* names[] = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"};
  const char* values[] = {"1", "2", "1", "127.0.0.1", "4242"};
  for (int i = 0; i < 5; ++i) ASSERT_EQ(::setenv(names[i], values[i], 1), 0);
  Result<LaunchEnv> env = ReadProcessLaunchEnv();
  for (const char* name : names) ::unsetenv(name);
  ExpectEnv(env, Launcher::kTorchrun, 1, 2, 1, "127.0.0.1", 4242);
}

TEST(DescribeLaunchEnv, NamesRankLauncherAndStore) {
  EXPECT_EQ(DescribeLaunchEnv(*Read(kTorchrun)),
            "rank 3 of 8 (local rank 1, torchrun), store at node0:29500");
  EXPECT_EQ(DescribeLaunchEnv(*Read(kOpenMpi)),
            "rank 5 of 6 (local rank 2, mpirun), no store address");
  EXPECT_EQ(DescribeLaunchEnv(LaunchEnv{}),
            "rank 0 of 1 (local rank 0, no launcher), no store "
            "address");
  EXPECT_STREQ(LauncherName(Launcher::kSlurm), "slurm");
  EXPECT_STREQ(LauncherName(Launcher::kNone), "none");
}

LaunchEnv AtLocalRank(int rank, int local_rank, Launcher launcher = Launcher::kTorchrun) {
  LaunchEnv env;
  env.launcher = launcher;
  env.rank = rank;
  env.world_size = 64;
  env.local_rank = local_rank;
  return env;
}

TEST(ChooseGpu, IsTheLocalRank) {
  EXPECT_EQ(*ChooseGpu(AtLocalRank(0, 0), 1), 0);
  EXPECT_EQ(*ChooseGpu(AtLocalRank(9, 1), 2), 1);
  EXPECT_EQ(*ChooseGpu(AtLocalRank(15, 7), 8), 7);
}

std::string GpuError(const LaunchEnv& env, int visible) {
  Result<int> gpu = ChooseGpu(env, visible);
  EXPECT_FALSE(gpu.ok());
  EXPECT_EQ(gpu.status().code(), StatusCode::kInvalidArgument);
  return gpu.status().message();
}

TEST(ChooseGpu, RefusesMoreRanksThanGpusNamingBoth) {
  EXPECT_EQ(GpuError(AtLocalRank(3, 3), 2),
            "rank 3 (local rank 3) needs a fourth GPU, this machine shows 2: start at most 2 "
            "ranks per machine");
  EXPECT_EQ(GpuError(AtLocalRank(5, 1), 1),
            "rank 5 (local rank 1) needs a second GPU, this machine shows 1: start at most 1 "
            "rank per machine");
  EXPECT_EQ(GpuError(AtLocalRank(7, 7), 4),
            "rank 7 (local rank 7) needs an eighth GPU, this machine shows 4: start at most 4 "
            "ranks per machine");
  EXPECT_EQ(GpuError(AtLocalRank(40, 24), 8),
            "rank 40 (local rank 24) needs at least 25 GPUs, this machine shows 8: start at most "
            "8 ranks per machine");
  EXPECT_EQ(GpuError(AtLocalRank(0, 0), 0),
            "rank 0 (local rank 0) needs a GPU, this machine shows none: check nvidia-smi and "
            "CUDA_VISIBLE_DEVICES");
}

TEST(ChooseGpu, UnderSlurmExplainsOneGpuPerTaskBindings) {
  EXPECT_EQ(GpuError(AtLocalRank(3, 3, Launcher::kSlurm), 1),
            "rank 3 (local rank 3) needs a fourth GPU, this machine shows 1: start at most 1 rank "
            "per machine (srun options that bind one GPU to each task, such as "
            "--gpus-per-task=1, leave each rank one visible GPU, and a rank uses the GPU "
            "numbered SLURM_LOCALID among those it sees: give the tasks all of the machine's "
            "GPUs with --gpus-per-node and --gpu-bind=none)");
}

}  // namespace
}  // namespace pipecast::runtime
