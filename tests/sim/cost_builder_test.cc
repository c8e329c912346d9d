// Tests for sim/cost_builder.h and common/partition.h: BalancedPartition against brute force, the
// GPT-2 Medium numbers worked out by hand, interleaved splitting of explicit and model costs.
#include "sim/cost_builder.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/partition.h"
#include "common/scenario.h"

namespace pipecast::sim {
namespace {

using ir::BalancedPartition;
using ir::PartCosts;

// ---- BalancedPartition ----------------------------------------------------------------------

struct Best {
  double max = std::numeric_limits<double>::infinity();
  double squares = std::numeric_limits<double>::infinity();
  std::vector<int32_t> starts;
};

// Enumerates every partition of n layers into `parts` non-empty contiguous parts, keeping the
// best by (max, sum of squares, lexicographically smallest starts): the documented order.
void BruteForce(const std::vector<double>& costs, int32_t parts, std::vector<int32_t>* starts,
                Best* best) {
  const auto n = static_cast<int32_t>(costs.size());
  if (static_cast<int32_t>(starts->size()) == parts) {
    const std::vector<double> part = PartCosts(costs, *starts);
    double max = 0, squares = 0;
    for (double c : part) {
      max = std::max(max, c);
      squares += c * c;
    }
    // Enumeration is in lexicographic order of starts, so strict comparisons keep the earliest.
    if (max < best->max || (max == best->max && squares < best->squares)) {
      *best = Best{max, squares, *starts};
    }
    return;
  }
  const int32_t remaining = parts - static_cast<int32_t>(starts->size());
  for (int32_t s = starts->back() + 1; s + remaining <= n; ++s) {
    starts->push_back(s);
    BruteForce(costs, parts, starts, best);
    starts->pop_back();
  }
}

TEST(BalancedPartition, MatchesBruteForceOnRandomInputs) {
  std::mt19937 rng(12345);
  for (int trial = 0; trial < 2000; ++trial) {
    const int32_t n = 1 + static_cast<int32_t>(rng() % 10);
    const int32_t parts = 1 + static_cast<int32_t>(rng() % static_cast<uint32_t>(n));
    std::vector<double> costs(static_cast<size_t>(n));
    // Small integers (including zeros) make ties common and every sum exact.
    for (double& c : costs) c = static_cast<double>(rng() % 6);
    std::vector<int32_t> starts = {0};
    Best best;
    BruteForce(costs, parts, &starts, &best);
    const std::vector<int32_t> got = BalancedPartition(costs, parts);
    ASSERT_EQ(got, best.starts) << "trial " << trial << " n " << n << " parts " << parts;
  }
}

TEST(BalancedPartition, OptimalMaximumOnRealValuedCosts) {
  std::mt19937 rng(777);
  std::uniform_real_distribution<double> cost(0.0, 10.0);
  for (int trial = 0; trial < 500; ++trial) {
    const int32_t n = 2 + static_cast<int32_t>(rng() % 9);
    const int32_t parts = 1 + static_cast<int32_t>(rng() % static_cast<uint32_t>(n));
    std::vector<double> costs(static_cast<size_t>(n));
    for (double& c : costs) c = cost(rng);
    std::vector<int32_t> starts = {0};
    Best best;
    BruteForce(costs, parts, &starts, &best);
    const std::vector<int32_t> got = BalancedPartition(costs, parts);
    ASSERT_EQ(got.size(), static_cast<size_t>(parts));
    double max = 0;
    for (double c : PartCosts(costs, got)) max = std::max(max, c);
    EXPECT_NEAR(max, best.max, 1e-9) << "trial " << trial;
  }
}

TEST(BalancedPartition, SmallCases) {
  EXPECT_EQ(BalancedPartition({1, 1, 1, 1}, 2), (std::vector<int32_t>{0, 2}));
  EXPECT_EQ(BalancedPartition({5}, 1), (std::vector<int32_t>{0}));
  EXPECT_EQ(BalancedPartition({1, 2, 3}, 3), (std::vector<int32_t>{0, 1, 2}));
  // {3},{1,4} has maximum 5; {3,1},{4} has 4.
  EXPECT_EQ(BalancedPartition({3, 1, 4}, 2), (std::vector<int32_t>{0, 2}));
  // A free first layer (an embedding) joins real work: {0,1,1},{1,1} has maximum 2, every other
  // split at least 3.
  EXPECT_EQ(BalancedPartition({0, 1, 1, 1, 1}, 2), (std::vector<int32_t>{0, 3}));
  // {1},{1},{0,1} and {1},{1,0},{1} tie on maximum (1) and squares (3): earliest splits win.
  EXPECT_EQ(BalancedPartition({1, 1, 0, 1}, 3), (std::vector<int32_t>{0, 1, 2}));
  // Maximum 4: {0,2},{2},{2,2}, {0,2},{2,2},{2} and {0,2,2},{2},{2} all have squares 24 and
  // beat {0},{2,2},{2,2} (32), which leaves the first part empty of work; earliest splits win.
  EXPECT_EQ(BalancedPartition({0, 2, 2, 2, 2}, 3), (std::vector<int32_t>{0, 2, 3}));
  // The 6 fixes the maximum; evenness then splits the five 1s 2 + 3 (squares 4 + 9 + 36) rather
  // than 1 + 4 (1 + 16 + 36).
  EXPECT_EQ(BalancedPartition({1, 1, 1, 1, 1, 6}, 3), (std::vector<int32_t>{0, 2, 5}));
}

// ---- Transformer formulas, GPT-2 Medium -----------------------------------------------------

ir::Scenario Gpt2Medium(int32_t stages, int32_t microbatch_size) {
  ir::Scenario s;
  s.name = "gpt2-medium";
  s.pipeline = {stages, 16, 1, microbatch_size};
  ir::TransformerSpec m;
  m.layers = 24;
  m.hidden = 1024;
  m.heads = 16;
  m.sequence = 1024;
  m.vocabulary = 50257;
  s.model = m;
  s.cluster = ir::ClusterSpec{312e12, 0.5};
  s.device_memory_bytes = 80LL << 30;
  s.device_memory_bandwidth = 2e12;
  s.network_latency_ns = 5000;
  s.network_bandwidth = 25e9;
  return s;
}

TEST(TransformerLayers, Gpt2MediumByHand) {
  const ir::Scenario s = Gpt2Medium(8, 1);
  const std::vector<LayerCost> layers = TransformerLayers(*s.model, 1);
  ASSERT_EQ(layers.size(), 26u);  // embedding, 24 blocks, head
  EXPECT_EQ(layers[0].name, "embedding");
  EXPECT_EQ(layers[1].name, "block 0");
  EXPECT_EQ(layers[25].name, "head");

  // b = 1, s = 1024, h = 1024, a = 16, V = 50257; b s h = 1024 * 1024 = 1,048,576.
  const LayerCost& block = layers[1];
  // F = b s h (24h + 4s) = 1,048,576 * (24,576 + 4,096) = 1,048,576 * 28,672 = 30,064,771,072.
  EXPECT_DOUBLE_EQ(block.forward_flops, 30'064'771'072.0);
  // B = b s h (24h + 8s) = 1,048,576 * 32,768 = 34,359,738,368.
  EXPECT_DOUBLE_EQ(block.backward_input_flops, 34'359'738'368.0);
  // W = b s h * 24h = 1,048,576 * 24,576 = 25,769,803,776. B + W = 2F, as the ZB paper notes.
  EXPECT_DOUBLE_EQ(block.backward_weight_flops, 25'769'803'776.0);
  EXPECT_DOUBLE_EQ(block.backward_input_flops + block.backward_weight_flops,
                   2 * block.forward_flops);
  // M_B = s b (34h + 5 a s) = 1024 * (34,816 + 81,920) = 1024 * 116,736 = 119,537,664 bytes.
  EXPECT_DOUBLE_EQ(block.activation_bytes, 119'537'664.0);
  // M_W = 32 s b h = 32 * 1,048,576 = 33,554,432 bytes.
  EXPECT_DOUBLE_EQ(block.activation_bytes_after_input_grad, 33'554'432.0);
  // 12 h^2 + 13 h = 12,582,912 + 13,312 = 12,596,224 parameters.
  EXPECT_DOUBLE_EQ(block.params, 12'596'224.0);

  const LayerCost& embedding = layers[0];
  EXPECT_DOUBLE_EQ(embedding.forward_flops, 0);
  // V h + s h = 51,463,168 + 1,048,576 = 52,511,744 parameters.
  EXPECT_DOUBLE_EQ(embedding.params, 52'511'744.0);

  const LayerCost& head = layers[25];
  // 2 b s h V = 2 * 1,048,576 * 50,257 = 105,396,568,064 for each of F, B and W.
  EXPECT_DOUBLE_EQ(head.forward_flops, 105'396'568'064.0);
  EXPECT_DOUBLE_EQ(head.backward_input_flops, 105'396'568'064.0);
  EXPECT_DOUBLE_EQ(head.backward_weight_flops, 105'396'568'064.0);
  // 2 s b h * 2 B + 4 s b V = 4,194,304 + 205,852,672 = 210,046,976 bytes.
  EXPECT_DOUBLE_EQ(head.activation_bytes, 210'046'976.0);
  // The last stage's copy of the V h matrix plus the final LayerNorm: 51,463,168 + 2,048.
  EXPECT_DOUBLE_EQ(head.params, 51'465'216.0);

  // GPT-2 Medium's well-known 355M parameters: everything but the head's copy of the embedding,
  // 24 * 12,596,224 + 52,511,744 + 2,048 = 302,309,376 + 52,513,792 = 354,823,168.
  double total = 0;
  for (const LayerCost& l : layers) total += l.params;
  EXPECT_DOUBLE_EQ(total - 51'463'168.0, 354'823'168.0);
}

TEST(TransformerLayers, RecomputeKeepsOnlyTheInputAndRedoesTheForward) {
  ir::TransformerSpec m = *Gpt2Medium(8, 1).model;
  m.recompute = true;
  const LayerCost block = TransformerLayers(m, 2)[1];
  // b = 2: s b h * 2 bytes = 1024 * 2 * 1024 * 2 = 4,194,304 bytes.
  EXPECT_DOUBLE_EQ(block.activation_bytes, 4'194'304.0);
  // B + F = 2 * (34,359,738,368 + 30,064,771,072) = 128,849,018,880.
  EXPECT_DOUBLE_EQ(block.backward_input_flops, 128'849'018'880.0);
  EXPECT_DOUBLE_EQ(block.backward_weight_flops, 2 * 25'769'803'776.0);
}

TEST(BuildCostModel, Gpt2MediumEightStages) {
  const ir::Scenario s = Gpt2Medium(8, 1);
  Result<std::vector<int32_t>> starts = TransformerStageStarts(s, 8);
  ASSERT_TRUE(starts.ok()) << starts.status().message();
  // Per-layer work F + B + W: a block is 86,016 b s h FLOPs, the head 6 V = 301,542 b s h, i.e.
  // 3.51 blocks. The best maximum is 4 blocks (24 blocks + head over 8 stages can do no better
  // than the head alone on the last stage and 24 blocks over 7 stages); the most even split
  // under that is three stages of 4 and four of 3, with the 3s first (earliest splits):
  //   [emb b0 b1 b2] [b3 b4 b5] [b6 b7 b8] [b9 b10 b11] [b12..b15] [b16..b19] [b20..b23] [head]
  EXPECT_EQ(*starts, (std::vector<int32_t>{0, 4, 7, 10, 13, 17, 21, 25}));

  Result<CostModel> cost = BuildCostModel(s, 8);
  ASSERT_TRUE(cost.ok()) << cost.status().message();
  ASSERT_EQ(cost->stages.size(), 8u);
  // 3 blocks at 312 TFLOPS * 0.5 = 156e12 FLOP/s: 3 * 30,064,771,072 / 156e12 s = 578,168.67 ns.
  EXPECT_EQ(cost->stages[0].forward, 578'169);
  // Input and weight gradients: 3 * 34,359,738,368 / 156e3 = 660,764.2; 3 * 25,769,803,776 /
  // 156e3 = 495,573.2; full backward 1,156,337.2 ns.
  EXPECT_EQ(cost->stages[0].backward_input, 660'764);
  EXPECT_EQ(cost->stages[0].backward_weight, 495'573);
  EXPECT_EQ(cost->stages[0].backward, 1'156'337);
  // Head only: 105,396,568,064 / 156e3 = 675,619.0 ns for each of F, B, W.
  EXPECT_EQ(cost->stages[7].forward, 675'619);
  EXPECT_EQ(cost->stages[7].backward, 1'351'238);
  EXPECT_EQ(cost->stages[0].optimizer_step, -1);
  // Stage 0 memory: 3 blocks of activations, and the embedding's and 3 blocks' parameters:
  // 52,511,744 + 3 * 12,596,224 = 90,300,416 parameters -> 180,600,832 bytes of bf16 weights,
  // the same of gradients, 12 bytes each of optimizer state = 1,083,604,992 bytes.
  EXPECT_EQ(cost->stages[0].activation_bytes, 3 * 119'537'664);
  EXPECT_EQ(cost->stages[0].activation_bytes_after_input_grad, 3 * 33'554'432);
  EXPECT_EQ(cost->stages[0].weight_bytes, 180'600'832);
  EXPECT_EQ(cost->stages[0].gradient_bytes, 180'600'832);
  EXPECT_EQ(cost->stages[0].optimizer_state_bytes, 1'083'604'992);
  // Message: s b h * 2 bytes = 2,097,152 everywhere.
  for (const StageCost& c : cost->stages) EXPECT_EQ(c.message_bytes, 2'097'152);
  // Hardware.
  ASSERT_EQ(cost->devices.size(), 1u);
  EXPECT_EQ(cost->devices[0].memory_bytes, 80LL << 30);
  EXPECT_DOUBLE_EQ(cost->devices[0].memory_bandwidth, 2e12);
  EXPECT_EQ(cost->link.latency, 5000);
  EXPECT_DOUBLE_EQ(cost->link.bandwidth, 25e9);
}

TEST(BuildCostModel, Gpt2MediumInterleavedThreeChunks) {
  ir::Scenario s = Gpt2Medium(8, 2);
  s.model->partition = ir::PartitionRule::kEven;  // Megatron-LM's rule, the default before
  Result<std::vector<int32_t>> starts = TransformerStageStarts(s, 24);
  ASSERT_TRUE(starts.ok()) << starts.status().message();
  // One block per virtual stage; the embedding joins the first, the head the last.
  std::vector<int32_t> expected = {0};
  for (int32_t vs = 1; vs < 24; ++vs) expected.push_back(vs + 1);
  EXPECT_EQ(*starts, expected);
  Result<CostModel> cost = BuildCostModel(s, 24);
  ASSERT_TRUE(cost.ok()) << cost.status().message();
  // b = 2: one block's forward is 60,129,542,144 FLOPs / 156e3 = 385,445.8 ns.
  EXPECT_EQ(cost->stages[5].forward, 385'446);
  // The last virtual stage holds block 23 and the head: (60,129,542,144 + 210,793,136,128) /
  // 156e3 = 1,736,683.8 ns.
  EXPECT_EQ(cost->stages[23].forward, 1'736'684);
}

// The default partition balances every virtual stage on F + B + W, the embedding and the head at
// their own cost, whatever the chunks: GPT-2 Medium on 8 x 3 virtual stages puts the head (3.5
// blocks) alone on the last and otherwise one block each, but two on one (24 blocks over 23
// stages). Megatron-Core's rule counts the embedding and the head as one layer each.
TEST(BuildCostModel, PartitionRulesForChunks) {
  const ir::Scenario s = Gpt2Medium(8, 2);
  Result<std::vector<int32_t>> starts = TransformerStageStarts(s, 24);
  ASSERT_TRUE(starts.ok()) << starts.status().message();
  std::vector<int32_t> expected = {0};  // [E b0] [b1] ... [b21] [b22 b23] [H]
  for (int32_t vs = 1; vs < 23; ++vs) expected.push_back(vs + 1);
  expected.push_back(25);
  EXPECT_EQ(*starts, expected);
  EXPECT_EQ(DeviceLayers(s, 24),
            (std::vector<std::string>{"E+0,8,16", "1,9,17", "2,10,18", "3,11,19", "4,12,20",
                                      "5,13,21", "6,14,22-23", "7,15,H"}));
  EXPECT_EQ(DeviceLayers(s, 8)[0], "E+0-2");
  // ZB-V's placement: device 0 holds the first and the last virtual stage, so the embedding
  // and the head; device 1 the two middle ones.
  const std::vector<std::string> v =
      DeviceLayers(Gpt2Medium(2, 1), std::vector<int32_t>{0, 1, 1, 0});
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].rfind("E+", 0), 0u) << v[0];
  EXPECT_EQ(v[0].substr(v[0].size() - 2), "+H") << v[0];
  EXPECT_EQ(v[1].find_first_of("EH"), std::string::npos) << v[1];
  ir::Scenario core = Gpt2Medium(2, 1);  // 26 slots over 2 x 13 virtual stages
  core.model->partition = ir::PartitionRule::kMegatronCore;
  Result<std::vector<int32_t>> two = TransformerStageStarts(core, 26);
  ASSERT_TRUE(two.ok()) << two.status().message();
  for (int32_t vs = 0; vs < 26; ++vs) EXPECT_EQ((*two)[vs], vs);
  EXPECT_EQ(DeviceLayers(core, 2)[0], "E+0-11");  // 13 slots: the embedding and 12 blocks
  EXPECT_EQ(DeviceLayers(core, 2)[1], "12-23+H");
  core.pipeline.stages = 8;
  EXPECT_EQ(TransformerStageStarts(core, 24).status().message(),
            "model.partition megatron-core needs model.layers + 2 (26: the blocks, the embedding "
            "and the head) divisible by 24 virtual stages (8 stages x 3 chunks); chunk counts "
            "that divide with 8 stages: none; or use model.partition: balanced");
}

// FlashAttention keeps no scores: a block's activations lose the 5 a s term of M_B.
TEST(TransformerLayers, FlashAttentionDropsTheScoreTerm) {
  ir::TransformerSpec m = Gpt2Medium(8, 1).model.value();
  const double standard = TransformerLayers(m, 1)[1].activation_bytes;
  m.attention = ir::AttentionKind::kFlash;
  const LayerCost flash = TransformerLayers(m, 1)[1];
  // s b (34 h + 5 a s) = 1024 (34,816 + 81,920) bytes; flash: 1024 x 34,816 = 35,651,584.
  EXPECT_DOUBLE_EQ(standard, 1024.0 * (34.0 * 1024 + 5.0 * 16 * 1024));
  EXPECT_DOUBLE_EQ(flash.activation_bytes, 35'651'584.0);
  EXPECT_DOUBLE_EQ(flash.activation_bytes_after_input_grad, 32.0 * 1024 * 1024);
}

TEST(BuildCostModel, ChunksMustDivideTheLayers) {
  ir::Scenario s = Gpt2Medium(8, 1);
  s.model->partition = ir::PartitionRule::kEven;
  Result<CostModel> cost = BuildCostModel(s, 16);
  ASSERT_FALSE(cost.ok());
  EXPECT_EQ(cost.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(cost.status().message(),
            "model.layers (24) is not divisible by 16 virtual stages (8 stages x 2 chunks); "
            "chunk counts that divide the layers with 8 stages: 1, 3");
  ir::Scenario four = Gpt2Medium(4, 1);
  four.model->partition = ir::PartitionRule::kEven;
  EXPECT_EQ(BuildCostModel(four, 20).status().message(),
            "model.layers (24) is not divisible by 20 virtual stages (4 stages x 5 chunks); "
            "chunk counts that divide the layers with 4 stages: 1, 2, 3, 6");
}

TEST(BuildCostModel, MoreStagesThanLayers) {
  ir::Scenario s = Gpt2Medium(32, 1);
  EXPECT_EQ(BuildCostModel(s, 32).status().message(),
            "model has 26 layers (24 blocks, the embedding and the head) but 32 virtual stages "
            "were asked for");
  s.pipeline.stages = 26;  // one layer per stage is fine
  Result<CostModel> cost = BuildCostModel(s, 26);
  ASSERT_TRUE(cost.ok()) << cost.status().message();
  EXPECT_EQ(cost->stages[0].forward, 0);  // the embedding alone
}

TEST(BuildCostModel, VirtualStagesMustBeAMultipleOfStages) {
  EXPECT_EQ(BuildCostModel(Gpt2Medium(8, 1), 12).status().message(),
            "12 virtual stages were asked for, which is not a positive multiple of "
            "pipeline.stages (8)");
  EXPECT_FALSE(BuildCostModel(Gpt2Medium(8, 1), 0).ok());
}

// ---- Explicit costs --------------------------------------------------------------------------

ir::Scenario Explicit() {
  Result<ir::Scenario> s = ir::ParseScenario(R"(pipeline: {stages: 2, microbatches: 4}
costs:
  forward: [1ms, 3ms]
  backward: [2ms, 6ms]
  activation_bytes: [100MB, 300MB]
  message_bytes: 10MB
  weight_bytes: 1GB
  optimizer_state_bytes: 3
network: {latency: 2us, bandwidth: 100Gbit/s}
device: {memory: 40GB}
)",
                                             "explicit.yaml");
  EXPECT_TRUE(s.ok()) << s.status().message();
  return *s;
}

TEST(BuildCostModel, ExplicitCostsAsGiven) {
  Result<CostModel> cost = BuildCostModel(Explicit(), 2);
  ASSERT_TRUE(cost.ok()) << cost.status().message();
  ASSERT_EQ(cost->stages.size(), 2u);
  const StageCost& s1 = cost->stages[1];
  EXPECT_EQ(s1.forward, 3'000'000);
  EXPECT_EQ(s1.backward, 6'000'000);
  // Backward not split: I is the whole backward and W is free, as in UniformCostModel.
  EXPECT_EQ(s1.backward_input, 6'000'000);
  EXPECT_EQ(s1.backward_weight, 0);
  EXPECT_EQ(s1.optimizer_step, -1);
  EXPECT_EQ(s1.activation_bytes, 300'000'000);
  EXPECT_EQ(s1.activation_bytes_after_input_grad, 300'000'000);
  EXPECT_EQ(s1.message_bytes, 10'000'000);
  EXPECT_EQ(s1.weight_bytes, 1'000'000'000);
  EXPECT_EQ(s1.gradient_bytes, -1);  // same as weights
  EXPECT_EQ(s1.optimizer_state_bytes, 3);
  EXPECT_EQ(cost->devices[0].memory_bytes, 40'000'000'000);
  EXPECT_DOUBLE_EQ(cost->devices[0].memory_bandwidth, 0);
  EXPECT_EQ(cost->link.latency, 2000);
  EXPECT_DOUBLE_EQ(cost->link.bandwidth, 12.5e9);
}

TEST(BuildCostModel, ExplicitCostsInterleavedSplitByChunks) {
  // 2 devices x 2 chunks: virtual stage vs = c * 2 + k gets stage k's values / 2, messages whole.
  Result<CostModel> cost = BuildCostModel(Explicit(), 4);
  ASSERT_TRUE(cost.ok()) << cost.status().message();
  ASSERT_EQ(cost->stages.size(), 4u);
  const std::vector<int64_t> forward = {500'000, 1'500'000, 500'000, 1'500'000};
  const std::vector<int64_t> activations = {50'000'000, 150'000'000, 50'000'000, 150'000'000};
  for (size_t vs = 0; vs < 4; ++vs) {
    EXPECT_EQ(cost->stages[vs].forward, forward[vs]);
    EXPECT_EQ(cost->stages[vs].backward, 2 * forward[vs]);
    EXPECT_EQ(cost->stages[vs].activation_bytes, activations[vs]);
    EXPECT_EQ(cost->stages[vs].message_bytes, 10'000'000);
    EXPECT_EQ(cost->stages[vs].weight_bytes, 500'000'000);
    EXPECT_EQ(cost->stages[vs].optimizer_state_bytes, 2);  // 3 / 2 = 1.5, rounded half up
    EXPECT_EQ(cost->stages[vs].optimizer_step, -1);        // "derive" stays "derive"
    EXPECT_EQ(cost->stages[vs].gradient_bytes, -1);
  }
}

// ZB-V's placement (device k holds virtual stages k and 2D - 1 - k): each virtual stage gets half
// of its device's costs, so the last stage (on device 0) costs what stage 0 does.
TEST(BuildCostModel, ExplicitCostsFollowThePlacement) {
  Result<CostModel> cost = BuildCostModel(Explicit(), std::vector<int32_t>{0, 1, 1, 0});
  ASSERT_TRUE(cost.ok()) << cost.status().message();
  const std::vector<int64_t> forward = {500'000, 1'500'000, 1'500'000, 500'000};
  for (size_t vs = 0; vs < 4; ++vs) EXPECT_EQ(cost->stages[vs].forward, forward[vs]) << vs;
  EXPECT_EQ(BuildCostModel(Explicit(), std::vector<int32_t>{0, 2}).status().message(),
            "a virtual stage is placed on device 2, but pipeline.stages is 2");
}

TEST(BuildCostModel, HandBuiltScenarioWithWrongListLengths) {
  ir::Scenario s = Explicit();
  s.costs->weight_bytes = {1, 2, 3};
  EXPECT_EQ(BuildCostModel(s, 2).status().message(),
            "costs.weight_bytes has 3 values but pipeline.stages is 2");
  s.costs->forward_ns.clear();
  EXPECT_EQ(BuildCostModel(s, 2).status().message(),
            "costs.forward has 0 values but pipeline.stages is 2");
  ir::Scenario neither;
  EXPECT_EQ(BuildCostModel(neither, 1).status().message(),
            "the scenario has neither costs nor model and cluster");
}

TEST(BuildCostModel, ExplicitSplitBackward) {
  Result<ir::Scenario> s = ir::ParseScenario(R"(pipeline: {stages: 4, microbatches: 8}
costs:
  forward: 1ms
  backward_input: 1ms
  backward_weight: 1ms
  optimizer_step: 0ns
  activation_bytes: 64MiB
  activation_bytes_after_input_grad: 16MiB
  weight_bytes: 1GiB
  gradient_bytes: 2GiB
)",
                                             "zb.yaml");
  ASSERT_TRUE(s.ok()) << s.status().message();
  Result<CostModel> cost = BuildCostModel(*s, 4);
  ASSERT_TRUE(cost.ok()) << cost.status().message();
  for (const StageCost& c : cost->stages) {
    EXPECT_EQ(c.forward, 1'000'000);
    EXPECT_EQ(c.backward_input, 1'000'000);
    EXPECT_EQ(c.backward_weight, 1'000'000);
    EXPECT_EQ(c.backward, 2'000'000);
    EXPECT_EQ(c.optimizer_step, 0);
    EXPECT_EQ(c.activation_bytes, 64LL << 20);
    EXPECT_EQ(c.activation_bytes_after_input_grad, 16LL << 20);
    EXPECT_EQ(c.gradient_bytes, 2LL << 30);
  }
  EXPECT_TRUE(cost->link.bandwidth == 0 && cost->link.latency == 0);  // free network
  EXPECT_EQ(cost->devices[0].memory_bytes, 0);                        // unlimited
}

}  // namespace
}  // namespace pipecast::sim
