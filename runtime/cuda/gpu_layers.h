// The GPU versions of models/'s layers (GpuLayer, gpu_stage.h) and the chain that composes them.
//
// Every GPU layer reads and writes exactly the CPU layer's flat parameter slice (same order,
// same layout), so weights, gradients and checkpoints move between devices unchanged. Records
// (`saved`) follow the CPU layers' layouts where the backward needs the same values (LayerNorm:
// xhat then rstd; attention: qkv, the probabilities of every sample and head, ctx, then dqkv),
// and a chain lays out its activations, their gradients and its layers' records exactly as
// models::Chain does. Scratch is each layer's own: attention keeps dctx and one sample's score
// gradients there, the embedding its sort buffers; the others need none.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "common/status.h"
#include "models/layer.h"
#include "runtime/cuda/gpu_stage.h"

namespace pipecast::runtime::cuda {

using GpuLayerPtr = std::shared_ptr<const GpuLayer>;

// The GPU version of `layer` (recursively for Sequential and Residual). `where` names the layer
// in messages ("layer 3", "layer 3.1"). Errors: kInvalidArgument naming a layer kind the CUDA
// device does not implement. Allocates nothing on the device.
Result<GpuLayerPtr> MakeGpuLayer(const models::Layer<float>& layer, const std::string& where);

// models::CausalSelfAttention on the device (gpu_attention.cc). REQUIRES: heads divides hidden.
GpuLayerPtr MakeGpuAttention(int64_t hidden, int64_t heads, int64_t sequence);

// A chain of GPU layers (models::Chain's layout and contracts); an empty chain is the identity
// on rows of `identity_width` columns.
int64_t ChainParams(std::span<const GpuLayerPtr> layers);
models::LayerMemory ChainMemory(std::span<const GpuLayerPtr> layers, int64_t rows);
void ChainForward(std::span<const GpuLayerPtr> layers, int64_t identity_width, const float* params,
                  const float* x, float* y, float* saved, float* scratch, int64_t rows,
                  const GpuContext& ctx);
void ChainBackwardInput(std::span<const GpuLayerPtr> layers, int64_t identity_width,
                        const float* params, const float* x, const float* y, const float* dy,
                        float* dx, float* saved, float* scratch, int64_t rows,
                        const GpuContext& ctx);
void ChainBackwardWeight(std::span<const GpuLayerPtr> layers, const float* x, const float* y,
                         const float* dy, const float* saved, float* grad, float* scratch,
                         int64_t rows, const GpuContext& ctx);

}  // namespace pipecast::runtime::cuda
