// All of pipecast's CPU layers (models::Layer<T> implementations), for callers that want them
// together. Each layer's shapes, parameter layout, init and formulas are in its own header and
// in docs/models.md.
#pragma once

#include "models/activations.h"  // Relu, Gelu
#include "models/attention.h"    // CausalSelfAttention
#include "models/composite.h"    // Sequential, Residual
#include "models/embedding.h"    // Embedding (token + position)
#include "models/layernorm.h"    // LayerNorm
#include "models/linear.h"       // Linear
