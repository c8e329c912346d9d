// Job files: every shipped job parses with the values it states; errors name file:line:col.
#include "common/job.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/limits.h"

namespace pipecast::ir {
namespace {

TEST(Jobs, EveryShippedJobParses) {
  int jobs = 0;
  for (const auto& entry : std::filesystem::directory_iterator(PIPECAST_SOURCE_DIR "/scenarios")) {
    if (!entry.path().string().ends_with(".job.yaml")) continue;
    ++jobs;
    auto j = LoadJobFile(entry.path().string());
    ASSERT_TRUE(j.ok()) << j.status().message();
    EXPECT_FALSE(j->methods.empty());
    EXPECT_GE(j->pipeline.stages, 2);
  }
  EXPECT_GE(jobs, 3);
  auto fashion = LoadJobFile(PIPECAST_SOURCE_DIR "/scenarios/fashion-mlp.job.yaml");
  ASSERT_TRUE(fashion.ok());
  EXPECT_EQ(fashion->methods.size(), 20u);
  EXPECT_EQ(fashion->model.hidden_sizes, (std::vector<int64_t>{256, 128, 64, 64}));
  EXPECT_DOUBLE_EQ(fashion->optimizer.lr, 0.01);
  EXPECT_EQ(fashion->lr_schedule.milestones, (std::vector<double>{2}));
  EXPECT_EQ(fashion->methods[2].params.at("chunks"), "2");
}

TEST(Jobs, ErrorsNamePositionKeyAndFix) {
  auto a = ParseJob("model: {type: mlp}\ndata: {dataset: fashion-mnst}\n", "j.yaml");
  ASSERT_FALSE(a.ok());
  auto b = ParseJob(
      "model: {type: mlp}\ndata: {dataset: fashion-mnst}\noptimizer: {name: sgd}\n"
      "pipeline: {stages: 2, microbatches: 2, microbatch_size: 2}\nmethods: [1f1b]\n",
      "j.yaml");
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("j.yaml:2:17: data.dataset 'fashion-mnst' is not one of"),
            std::string::npos)
      << b.status().message();
  EXPECT_NE(b.status().message().find("(did you mean 'fashion-mnist'?)"), std::string::npos);
  auto c = ParseJob(
      "model: {type: mlp}\ndata: {dataset: synthetic}\noptimizer: {name: sgd, lr: -1}\n"
      "pipeline: {stages: 2, microbatches: 2, microbatch_size: 2}\nmethods: [1f1b]\n",
      "j.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(
      c.status().message().find("j.yaml:3:28: optimizer.lr must be between 0 and 1000, got -1"),
      std::string::npos)
      << c.status().message();
  auto d = ParseJob(
      "model: {type: mlp}\ndata: {dataset: synthetic}\noptimizer: {name: sgd}\n"
      "pipeline: {stages: 2, microbatches: 2}\nmethods: [1f1b]\n",
      "j.yaml");
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("pipeline.microbatch_size is required"), std::string::npos);
  EXPECT_EQ(LoadJobFile("/no/such.job.yaml").status().code(), StatusCode::kNotFound);
}

// pipeline.data_parallel: absent means one copy; given, it is read like the other sizes, and a
// bad value names its position.
TEST(Jobs, DataParallelIsOptionalAndChecked) {
  const std::string head =
      "model: {type: mlp}\ndata: {dataset: synthetic}\noptimizer: {name: sgd}\n"
      "pipeline: {stages: 2, microbatches: 2, microbatch_size: 2";
  auto one = ParseJob(head + "}\nmethods: [1f1b]\n", "j.yaml");
  ASSERT_TRUE(one.ok()) << one.status().message();
  EXPECT_EQ(one->pipeline.data_parallel, 1);
  auto two = ParseJob(head + ", data_parallel: 2}\nmethods: [chimera]\n", "j.yaml");
  ASSERT_TRUE(two.ok()) << two.status().message();
  EXPECT_EQ(two->pipeline.data_parallel, 2);
  auto zero = ParseJob(head + ", data_parallel: 0}\nmethods: [1f1b]\n", "j.yaml");
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.status().message().find("j.yaml:4:75: pipeline.data_parallel must be between 1"),
            std::string::npos)
      << zero.status().message();
}

// Duplicate keys, unknown optimizers and devices are refused when the file is read, before any
// data is loaded, naming the position.
TEST(Jobs, DuplicatesAndUnknownNamesAreRefusedOnParsing) {
  const std::string rest =
      "pipeline: {stages: 2, microbatches: 2, microbatch_size: 2}\nmethods: [1f1b]\n";
  auto dup = ParseJob(
      "model: {type: mlp}\ndata: {dataset: synthetic}\n"
      "optimizer: {name: sgd, lr: 0.1, lr: 0.2}\n" +
          rest,
      "j.yaml");
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.status().message().find("j.yaml:3:33: duplicate key 'optimizer.lr'"),
            std::string::npos)
      << dup.status().message();
  auto top = ParseJob(
      "seed: 1\nmodel: {type: mlp}\ndata: {dataset: synthetic}\n"
      "optimizer: {name: sgd}\nseed: 2\n" +
          rest,
      "j.yaml");
  ASSERT_FALSE(top.ok());
  EXPECT_NE(top.status().message().find("j.yaml:5:1: duplicate key 'seed'"), std::string::npos)
      << top.status().message();
  auto opt = ParseJob(
      "model: {type: mlp}\ndata: {dataset: synthetic}\n"
      "optimizer: {name: adamm}\n" +
          rest,
      "j.yaml");
  ASSERT_FALSE(opt.ok());
  EXPECT_NE(opt.status().message().find("j.yaml:3:19: optimizer.name 'adamm' is not one of sgd, "
                                        "adam, adamw, rmsprop, lion (did you mean 'adam'?)"),
            std::string::npos)
      << opt.status().message();
  auto param = ParseJob(
      "model: {type: mlp}\ndata: {dataset: synthetic}\noptimizer: {name: sgd}\n"
      "pipeline: {stages: 2, microbatches: 2, microbatch_size: 2}\n"
      "methods: [{name: paci, accumulation: 2, accumulation: 3}]\n",
      "j.yaml");
  ASSERT_FALSE(param.ok());
  EXPECT_NE(param.status().message().find("duplicate parameter 'accumulation'"), std::string::npos)
      << param.status().message();
  auto dev = ParseJob(
      "model: {type: mlp}\ndata: {dataset: synthetic}\noptimizer: {name: sgd}\n"
      "device: tpu\n" +
          rest,
      "j.yaml");
  ASSERT_FALSE(dev.ok());
  EXPECT_NE(dev.status().message().find("j.yaml:4:9: device must be cpu or cuda, got 'tpu'"),
            std::string::npos)
      << dev.status().message();
  auto cuda = ParseJob(
      "model: {type: mlp}\ndata: {dataset: synthetic}\noptimizer: {name: sgd}\n"
      "device: cuda\n" +
          rest,
      "j.yaml");
  ASSERT_TRUE(cuda.ok()) << cuda.status().message();
  EXPECT_EQ(cuda->device, JobDevice::kCuda);
  EXPECT_FALSE(cuda->bf16);
  EXPECT_EQ(cuda->gpus, 0);
  EXPECT_FALSE(cuda->sm_partition);
}

TEST(Jobs, GpuKeysAreCheckedAndNeedTheCudaDevice) {
  const std::string head =
      "model: {type: mlp}\ndata: {dataset: synthetic}\noptimizer: {name: sgd}\n";
  const std::string rest =
      "pipeline: {stages: 2, microbatches: 2, microbatch_size: 4}\nmethods: [1f1b]\n";
  auto gpu = ParseJob(head + "device: cuda\ngpus: 2\nsm_partition: true\nprecision: bf16\n" + rest,
                      "j.yaml");
  ASSERT_TRUE(gpu.ok()) << gpu.status().message();
  EXPECT_EQ(gpu->gpus, 2);
  EXPECT_TRUE(gpu->sm_partition);
  EXPECT_TRUE(gpu->bf16);
  auto fp16 = ParseJob(head + "device: cuda\nprecision: fp16\n" + rest, "j.yaml");
  ASSERT_FALSE(fp16.ok());
  EXPECT_NE(fp16.status().message().find("j.yaml:5:12: precision must be fp32 or bf16, got 'fp16'"),
            std::string::npos)
      << fp16.status().message();
  auto cpu = ParseJob(head + "precision: bf16\n" + rest, "j.yaml");
  ASSERT_FALSE(cpu.ok());
  EXPECT_NE(cpu.status().message().find("j.yaml:4:12: gpus, sm_partition and precision: bf16 apply "
                                        "to device: cuda"),
            std::string::npos)
      << cpu.status().message();
}

// Jobs are read like scenarios: one YAML document, yaml-cpp's looping inputs caught, oversized
// files refused before they are read whole.
TEST(Jobs, ReadLikeScenarios) {
  auto two = ParseJob("name: a\n---\nname: b\n", "j.yaml");
  ASSERT_FALSE(two.ok());
  EXPECT_NE(two.status().message().find("j.yaml:2:1: a job file is one YAML document, but the "
                                        "file has more"),
            std::string::npos)
      << two.status().message();
  auto comma = ParseJob(",", "j.yaml");
  ASSERT_FALSE(comma.ok());
  EXPECT_EQ(comma.status().message(), "j.yaml:1:1: invalid YAML: unexpected ','");
  const std::string big =
      (std::filesystem::temp_directory_path() / "pipecast_big.job.yaml").string();
  {
    std::ofstream out(big);
    out << "name: big\n#" << std::string(static_cast<size_t>(kMaxInputBytes), 'x') << "\n";
  }
  auto huge = LoadJobFile(big);
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.status().message().find("job file"), std::string::npos) << huge.status().message();
  std::filesystem::remove(big);
}

}  // namespace
}  // namespace pipecast::ir
