// The layers' *Into passes allocate nothing: each layer (and a whole GPT stage, and the loss)
// runs its forward and both backward passes in caller memory sized by Memory(rows), with every
// allocation of the process counted. The shapes make Eigen's GEMM packing exceed its 128 KiB
// stack limit, where Eigen's own expressions would allocate on the heap.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "models/layers.h"
#include "models/loss.h"
#include "models/model.h"
#include "support/counting_allocator.h"

namespace pipecast::models {
namespace {

using pipecast::testing::CountAllocations;

// Runs every pass twice and returns the allocations of the second round.
template <typename Passes>
int64_t SecondRoundAllocations(Passes& passes) {
  passes();
  CountAllocations count;
  passes();
  return count.count();
}

// Buffers for one microbatch through `layer`, and its passes.
struct LayerRun {
  LayerRun(LayerPtr<float> l, int64_t rows, bool token_input)
      : layer(std::move(l)),
        m(layer->Memory(rows)),
        params(layer->num_params(), 0.01f),
        grad(layer->num_params(), 0.0f),
        x(rows * layer->input_width(), token_input ? 1.0f : 0.5f),
        y(rows * layer->output_width()),
        dy(rows * layer->output_width(), 0.25f),
        dx(rows * layer->input_width()),
        saved(m.saved),
        scratch(m.scratch),
        r(rows) {}
  void operator()() {
    const int64_t in = layer->input_width(), out = layer->output_width();
    layer->ForwardInto(params, MakeConstView(x.data(), r, in), MakeView(y.data(), r, out), saved,
                       scratch);
    layer->BackwardInputInto(params, MakeConstView(x.data(), r, in),
                             MakeConstView(y.data(), r, out), MakeConstView(dy.data(), r, out),
                             MakeView(dx.data(), r, in), saved, scratch);
    layer->BackwardWeightInto(MakeConstView(x.data(), r, in), MakeConstView(y.data(), r, out),
                              MakeConstView(dy.data(), r, out), saved, grad, scratch);
  }
  LayerPtr<float> layer;
  LayerMemory m;
  std::vector<float> params, grad, x, y, dy, dx, saved, scratch;
  int64_t r;
};

TEST(Allocation, EveryLayerRunsInCallerMemory) {
  const int64_t rows = 64;
  std::vector<std::pair<LayerPtr<float>, bool>> layers = {
      {std::make_shared<Linear<float>>(784, 256), false},
      {std::make_shared<Relu<float>>(256), false},
      {std::make_shared<Gelu<float>>(256), false},
      {std::make_shared<LayerNorm<float>>(256), false},
      {std::make_shared<Embedding<float>>(100, 16, 64), true},
      {std::make_shared<CausalSelfAttention<float>>(256, 4, 16), false},
      {std::make_shared<Residual<float>>(
           256, std::vector<LayerPtr<float>>{std::make_shared<LayerNorm<float>>(256),
                                             std::make_shared<Linear<float>>(256, 1024),
                                             std::make_shared<Gelu<float>>(1024),
                                             std::make_shared<Linear<float>>(1024, 256)}),
       false},
  };
  for (auto& [layer, tokens] : layers) {
    LayerRun run(layer, rows, tokens);
    EXPECT_EQ(SecondRoundAllocations(run), 0) << layer->name();
  }
}

TEST(Allocation, GptStageAndLossRunInCallerMemory) {
  auto model = MakeGpt<float>({64, 16, 128, 4, 2});
  ASSERT_TRUE(model.ok());
  const Stage<float>& stage = model->whole();
  const int64_t rows = 4 * 16;
  const LayerMemory m = stage.Memory(rows);
  std::vector<float> params = model->Init(1), grad(params.size(), 0.0f);
  std::vector<float> x(rows, 3.0f), y(rows * 64), dy(rows * 64), record(m.saved),
      scratch(m.scratch);
  std::vector<int32_t> labels(rows, 5);
  auto passes = [&] {
    stage.ForwardInto(params, MakeConstView(x.data(), rows, 1), MakeView(y.data(), rows, 64),
                      record, scratch);
    SoftmaxCrossEntropyInto<float>(MakeConstView(y.data(), rows, 64), labels, 0.5,
                                   MakeView(dy.data(), rows, 64));
    stage.BackwardInputInto(params, MakeConstView(x.data(), rows, 1),
                            MakeConstView(y.data(), rows, 64), MakeConstView(dy.data(), rows, 64),
                            View<float>(nullptr, 0, 0), record, scratch);
    stage.BackwardWeightInto(MakeConstView(x.data(), rows, 1), MakeConstView(y.data(), rows, 64),
                             MakeConstView(dy.data(), rows, 64), record, grad, scratch);
  };
  EXPECT_EQ(SecondRoundAllocations(passes), 0);
  // The counter does count: a vector allocates.
  CountAllocations count;
  std::vector<float> v(1000);
  EXPECT_GE(count.count(), 1);
  EXPECT_EQ(v.size(), 1000u);
}

}  // namespace
}  // namespace pipecast::models
