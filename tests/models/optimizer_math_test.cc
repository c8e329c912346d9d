// Tests for models/optimizer_math.h: each element function on values worked out by hand (chosen
// as powers of two where possible, so that float arithmetic is exact and EXPECT_EQ applies), and
// each coefficient struct against torch's formulas evaluated by hand in decimal.
#include "models/optimizer_math.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "models/optimizer.h"

namespace pipecast::models {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

OptimizerConfig Config(OptimizerKind kind) {
  OptimizerConfig c;
  c.kind = kind;
  return c;
}

TEST(OptimizerMath, SignAndMaxFollowTorchAndStdMax) {
  EXPECT_EQ(SignOf(2.5f), 1.0f);
  EXPECT_EQ(SignOf(-1e-40f), -1.0f);  // a denormal still has a sign
  EXPECT_EQ(SignOf(0.0f), 0.0f);
  EXPECT_TRUE(std::signbit(SignOf(-0.0f)));  // torch.sign(-0.) is -0.
  EXPECT_TRUE(std::isnan(SignOf(kNaN)));
  EXPECT_EQ(MaxOf(1.0f, 2.0f), 2.0f);
  EXPECT_EQ(MaxOf(1.0f, kNaN), 1.0f);  // std::max(a, b) = a < b ? b : a
  EXPECT_TRUE(std::isnan(MaxOf(kNaN, 1.0f)));
  EXPECT_EQ(AddScaled(1.0f, -0.25f, 2.0f), 0.5f);
}

// ---------------------------------------------------------------------------------------------
// SGD

TEST(OptimizerMath, SgdCoefficientsAreTorchs) {
  OptimizerConfig c = Config(OptimizerKind::kSgd);
  c.momentum = 0.9;
  c.dampening = 0.25;
  c.weight_decay = 1e-50;  // rounds to 0 in float, but torch still adds λ·p
  const SgdCoefficients k1 = SgdCoefficientsFor(c, 1, 0.01);
  EXPECT_EQ(k1.neg_lr, -0.01f);
  EXPECT_EQ(k1.momentum, 0.9f);
  EXPECT_EQ(k1.dampening_complement, 0.75f);
  EXPECT_EQ(k1.weight_decay, 0.0f);
  EXPECT_TRUE(k1.decay);
  EXPECT_TRUE(k1.has_momentum);
  EXPECT_FALSE(k1.nesterov);
  EXPECT_TRUE(k1.first);
  EXPECT_FALSE(SgdCoefficientsFor(c, 2, 0.01).first);
  // Without momentum the buffer is not used; a zero decay is no decay.
  const SgdCoefficients k0 = SgdCoefficientsFor(Config(OptimizerKind::kSgd), 1, 0.5);
  EXPECT_FALSE(k0.has_momentum);
  EXPECT_FALSE(k0.decay);
  EXPECT_EQ(k0.neg_lr, -0.5f);
}

TEST(OptimizerMath, SgdStepByHand) {
  SgdCoefficients k;
  k.neg_lr = -0.25f;
  // Plain: p = 1 − 0.25·0.5 = 0.875; d = g.
  float p = 1.0f, buf = 7.0f;
  EXPECT_EQ(SgdStep(p, 0.5f, buf, k), 0.5f);
  EXPECT_EQ(p, 0.875f);
  EXPECT_EQ(buf, 7.0f);  // no momentum: untouched
  // Coupled decay λ = 0.5: g = 0.5 + 0.5·1 = 1; p = 1 − 0.25 = 0.75.
  k.decay = true;
  k.weight_decay = 0.5f;
  p = 1.0f;
  EXPECT_EQ(SgdStep(p, 0.5f, buf, k), 1.0f);
  EXPECT_EQ(p, 0.75f);
  // Momentum μ = 0.5, τ = 0.5 after the first step: b = 0.5·2 + 0.5·1 = 1.5 = d (g = 1 after the
  // decay); p = 1 − 0.25·1.5 = 0.625.
  k.has_momentum = true;
  k.momentum = 0.5f;
  k.dampening_complement = 0.5f;
  p = 1.0f;
  buf = 2.0f;
  EXPECT_EQ(SgdStep(p, 0.5f, buf, k), 1.5f);
  EXPECT_EQ(buf, 1.5f);
  EXPECT_EQ(p, 0.625f);
  // First step: b = g = 1, no dampening.
  k.first = true;
  p = 1.0f;
  buf = 2.0f;
  EXPECT_EQ(SgdStep(p, 0.5f, buf, k), 1.0f);
  EXPECT_EQ(buf, 1.0f);
  // Nesterov (τ = 0): b = 0.5·2 + 1·1 = 2; d = g + μ·b = 1 + 1 = 2; p = 1 − 0.5 = 0.5.
  k.first = false;
  k.dampening_complement = 1.0f;
  k.nesterov = true;
  p = 1.0f;
  buf = 2.0f;
  EXPECT_EQ(SgdStep(p, 0.5f, buf, k), 2.0f);
  EXPECT_EQ(buf, 2.0f);
  EXPECT_EQ(p, 0.5f);
}

TEST(OptimizerMath, SgdDeltaWByHand) {
  OptimizerConfig c = Config(OptimizerKind::kSgd);
  c.momentum = 0.5;
  c.dampening = 0.25;
  const SgdDeltaCoefficients code = SgdDeltaCoefficientsFor(c, DeltaRule::kCode);
  const SgdDeltaCoefficients spec = SgdDeltaCoefficientsFor(c, DeltaRule::kSpecTrain);
  EXPECT_EQ(code.grad_scale, 0.75f);  // 1 − τ
  EXPECT_EQ(spec.grad_scale, 1.0f);   // SpecTrain ignores dampening
  // buf 2, last grad 4, last step 3.
  EXPECT_EQ(SgdDeltaW(DeltaRule::kPaper, 2.0f, 4.0f, 3.0f, code), 2.0f);      // the buffer
  EXPECT_EQ(SgdDeltaW(DeltaRule::kExact, 2.0f, 4.0f, 3.0f, code), 3.0f);      // the step
  EXPECT_EQ(SgdDeltaW(DeltaRule::kCode, 2.0f, 4.0f, 3.0f, code), 4.0f);       // 0.5·2 + 0.75·4
  EXPECT_EQ(SgdDeltaW(DeltaRule::kSpecTrain, 2.0f, 4.0f, 3.0f, spec), 5.0f);  // 0.5·2 + 4
  // Without momentum kPaper is the last step.
  const SgdDeltaCoefficients none =
      SgdDeltaCoefficientsFor(Config(OptimizerKind::kSgd), DeltaRule::kPaper);
  EXPECT_EQ(SgdDeltaW(DeltaRule::kPaper, 0.0f, 4.0f, 3.0f, none), 3.0f);
}

// ---------------------------------------------------------------------------------------------
// Adam and AdamW

TEST(OptimizerMath, AdamCoefficientsAreTorchs) {
  // torch: bias_correction1 = 1 − β1^t, step_size = lr / bias_correction1,
  // bias_correction2_sqrt = sqrt(1 − β2^t), AdamW's param.mul_(1 − lr·λ). At t = 3 with the
  // defaults: 1 − 0.9³ = 0.271, 1 − 0.999³ = 0.002997001.
  OptimizerConfig c = Config(OptimizerKind::kAdamW);
  c.weight_decay = 0.01;
  const AdamCoefficients k = AdamCoefficientsFor(c, 3, 1e-3);
  EXPECT_FLOAT_EQ(k.inv_bc1, 3.690036900369f);         // 1/0.271
  EXPECT_FLOAT_EQ(k.neg_step_size, -0.003690036900f);  // −1e-3/0.271
  EXPECT_FLOAT_EQ(k.bc2_sqrt, 0.054744871906f);        // √0.002997001
  EXPECT_FLOAT_EQ(k.one_minus_beta1, 0.1f);
  EXPECT_FLOAT_EQ(k.one_minus_beta2, 0.001f);
  EXPECT_EQ(k.beta2, 0.999f);
  EXPECT_FLOAT_EQ(k.eps, 1e-8f);
  EXPECT_FLOAT_EQ(k.decay, 0.99999f);  // 1 − 1e-3·0.01
  EXPECT_EQ(k.weight_decay, 0.01f);
  EXPECT_TRUE(k.has_decay && k.decoupled && !k.amsgrad);
  EXPECT_FALSE(AdamCoefficientsFor(Config(OptimizerKind::kAdam), 1, 1e-3).decoupled);
  // β1 = 0.5, β2 = 0.75 at t = 2: bc1 = 0.75, bc2 = 1 − 0.5625 = 0.4375.
  c.beta1 = 0.5;
  c.beta2 = 0.75;
  const AdamCoefficients k2 = AdamCoefficientsFor(c, 2, 0.75);
  EXPECT_FLOAT_EQ(k2.inv_bc1, 1.3333333333f);
  EXPECT_EQ(k2.neg_step_size, -1.0f);  // −0.75/0.75
  EXPECT_FLOAT_EQ(k2.bc2_sqrt, 0.66143782777f);
}

// β1 = 0.5, β2 = 0.75, t = 1: 1 − β1 = 0.5, 1 − β2 = 0.25, bc1 = 0.5, √bc2 = 0.5; lr 0.125.
AdamCoefficients SimpleAdam(OptimizerKind kind, double eps, double weight_decay, bool amsgrad) {
  OptimizerConfig c = Config(kind);
  c.beta1 = 0.5;
  c.beta2 = 0.75;
  c.eps = eps;
  c.weight_decay = weight_decay;
  c.amsgrad = amsgrad;
  return AdamCoefficientsFor(c, 1, 0.125);
}

TEST(OptimizerMath, AdamStepByHand) {
  // g = 1, m = v = 0, ε = 0: m = 0 + 0.5·(1 − 0) = 0.5; v = 0·0.75 + 0.25·1·1 = 0.25;
  // r = 0.5/(√0.25/0.5 + 0) = 0.5; p = 2 + (−0.125/0.5)·0.5 = 1.875; d = 0.5·2 = 1 (= m̂/√v̂).
  const AdamCoefficients k = SimpleAdam(OptimizerKind::kAdam, 0.0, 0.0, false);
  float p = 2.0f, m = 0.0f, v = 0.0f, vmax = 9.0f;
  EXPECT_EQ(AdamStep(p, 1.0f, m, v, vmax, k), 1.0f);
  EXPECT_EQ(m, 0.5f);
  EXPECT_EQ(v, 0.25f);
  EXPECT_EQ(p, 1.875f);
  EXPECT_EQ(vmax, 9.0f);  // no amsgrad: untouched
  // ε = 0.25: r = 0.5/(1 + 0.25) = 0.4; p = 2 − 0.25·0.4 = 1.9; d = 0.8.
  const AdamCoefficients ke = SimpleAdam(OptimizerKind::kAdam, 0.25, 0.0, false);
  p = 2.0f, m = 0.0f, v = 0.0f;
  EXPECT_FLOAT_EQ(AdamStep(p, 1.0f, m, v, vmax, ke), 0.8f);
  EXPECT_FLOAT_EQ(p, 1.9f);
  // Adam's coupled decay λ = 0.25: g = 1 + 0.25·2 = 1.5; m = 0.75; v = 0.25·2.25 = 0.5625;
  // r = 0.75/(0.75/0.5) = 0.5; p = 2 − 0.25·0.5 = 1.875; d = 1.
  const AdamCoefficients kc = SimpleAdam(OptimizerKind::kAdam, 0.0, 0.25, false);
  p = 2.0f, m = 0.0f, v = 0.0f;
  EXPECT_EQ(AdamStep(p, 1.0f, m, v, vmax, kc), 1.0f);
  EXPECT_EQ(m, 0.75f);
  EXPECT_EQ(v, 0.5625f);
  EXPECT_EQ(p, 1.875f);
  // AdamW λ = 0.25: p·(1 − 0.125·0.25) = 2·0.96875 = 1.9375, then − 0.25·0.5 = 1.8125; the
  // moments see the raw g; d = 1 + 0.25·2 = 1.5.
  const AdamCoefficients kw = SimpleAdam(OptimizerKind::kAdamW, 0.0, 0.25, false);
  EXPECT_EQ(kw.decay, 0.96875f);
  p = 2.0f, m = 0.0f, v = 0.0f;
  EXPECT_EQ(AdamStep(p, 1.0f, m, v, vmax, kw), 1.5f);
  EXPECT_EQ(m, 0.5f);
  EXPECT_EQ(v, 0.25f);
  EXPECT_EQ(p, 1.8125f);
}

TEST(OptimizerMath, AmsgradUsesTheRunningMaximumOfRawV) {
  // vmax = 1 > v = 0.25: r = 0.5/(1/0.5) = 0.25; p = 2 − 0.25·0.25 = 1.9375; d = 0.5.
  const AdamCoefficients k = SimpleAdam(OptimizerKind::kAdam, 0.0, 0.0, true);
  float p = 2.0f, m = 0.0f, v = 0.0f, vmax = 1.0f;
  EXPECT_EQ(AdamStep(p, 1.0f, m, v, vmax, k), 0.5f);
  EXPECT_EQ(vmax, 1.0f);
  EXPECT_EQ(p, 1.9375f);
  // vmax = 0.0625 < v = 0.25: the maximum becomes v.
  p = 2.0f, m = 0.0f, v = 0.0f, vmax = 0.0625f;
  EXPECT_EQ(AdamStep(p, 1.0f, m, v, vmax, k), 1.0f);
  EXPECT_EQ(vmax, 0.25f);
}

TEST(OptimizerMath, AdamDeltaWByHand) {
  // m = 0.5, v = 0.25, vmax = 1: paper and code read vmax (0.5/2·2 = 0.5), xpipe reads v
  // (0.5/1·2 = 1), exact the last step.
  const AdamCoefficients k = SimpleAdam(OptimizerKind::kAdam, 0.0, 0.0, true);
  EXPECT_EQ(AdamDeltaW(DeltaRule::kPaper, 0.5f, 0.25f, 1.0f, 3.0f, k), 0.5f);
  EXPECT_EQ(AdamDeltaW(DeltaRule::kCode, 0.5f, 0.25f, 1.0f, 3.0f, k), 0.5f);
  EXPECT_EQ(AdamDeltaW(DeltaRule::kXPipe, 0.5f, 0.25f, 1.0f, 3.0f, k), 1.0f);
  EXPECT_EQ(AdamDeltaW(DeltaRule::kExact, 0.5f, 0.25f, 1.0f, 3.0f, k), 3.0f);
  const AdamCoefficients plain = SimpleAdam(OptimizerKind::kAdam, 0.0, 0.0, false);
  EXPECT_EQ(AdamDeltaW(DeltaRule::kPaper, 0.5f, 0.25f, 1.0f, 3.0f, plain), 1.0f);
}

// ---------------------------------------------------------------------------------------------
// RMSprop

TEST(OptimizerMath, RmspropCoefficientsAreTorchs) {
  OptimizerConfig c = DefaultOptimizerConfig(OptimizerKind::kRmsprop);
  c.momentum = 0.9;
  c.centered = true;
  const RmspropCoefficients k = RmspropCoefficientsFor(c, 0.01);
  EXPECT_EQ(k.alpha, 0.99f);
  EXPECT_FLOAT_EQ(k.one_minus_alpha, 0.01f);
  EXPECT_FLOAT_EQ(k.eps, 1e-8f);
  EXPECT_EQ(k.momentum, 0.9f);
  EXPECT_EQ(k.neg_lr, -0.01f);
  EXPECT_TRUE(k.has_momentum && k.centered && !k.decay);
}

TEST(OptimizerMath, RmspropStepByHand) {
  OptimizerConfig c = Config(OptimizerKind::kRmsprop);
  c.alpha = 0.75;
  c.eps = 0;
  RmspropCoefficients k = RmspropCoefficientsFor(c, 0.5);
  // g = 2, sa = 4: sa = 4·0.75 + 0.25·2·2 = 4; avg = 2; d = 1; p = 3 − 0.5 = 2.5.
  float p = 3.0f, sa = 4.0f, buf = 7.0f, ga = 7.0f;
  EXPECT_EQ(RmspropStep(p, 2.0f, sa, buf, ga, k), 1.0f);
  EXPECT_EQ(sa, 4.0f);
  EXPECT_EQ(p, 2.5f);
  EXPECT_EQ(buf, 7.0f);
  EXPECT_EQ(ga, 7.0f);
  // Centered, ga = 0: ga = 0.25·2 = 0.5; avg = √(4 − 0.25) = 1.9364916731; d = 2/avg.
  k.centered = true;
  p = 3.0f, sa = 4.0f, ga = 0.0f;
  EXPECT_FLOAT_EQ(RmspropStep(p, 2.0f, sa, buf, ga, k), 1.0327955590f);
  EXPECT_EQ(ga, 0.5f);
  // Momentum μ = 0.5, not centered, buf = 1: buf = 0.5 + 1 = 1.5 = d; p = 3 − 0.75 = 2.25.
  k.centered = false;
  k.has_momentum = true;
  k.momentum = 0.5f;
  p = 3.0f, sa = 4.0f, buf = 1.0f;
  EXPECT_EQ(RmspropStep(p, 2.0f, sa, buf, ga, k), 1.5f);
  EXPECT_EQ(buf, 1.5f);
  EXPECT_EQ(p, 2.25f);
  // Coupled decay λ = 1 with p = 3: g = 2 + 3 = 5; sa = 3 + 0.25·25 = 9.25.
  k.has_momentum = false;
  k.decay = true;
  k.weight_decay = 1.0f;
  p = 3.0f, sa = 4.0f;
  EXPECT_FLOAT_EQ(RmspropStep(p, 2.0f, sa, buf, ga, k), 1.6439898730f);  // 5/√9.25
  EXPECT_EQ(sa, 9.25f);
}

// ---------------------------------------------------------------------------------------------
// Lion

TEST(OptimizerMath, LionStepByHand) {
  OptimizerConfig c = Config(OptimizerKind::kLion);
  c.beta1 = 0.5;
  c.beta2 = 0.75;
  const LionCoefficients k = LionCoefficientsFor(c, 0.25);
  EXPECT_EQ(k.neg_lr, -0.25f);
  EXPECT_FALSE(k.has_decay);
  // m = −1, g = 3: c = −0.5 + 1.5 = 1, u = 1; p = 2 − 0.25 = 1.75; m = −0.75 + 0.75 = 0.
  float p = 2.0f, m = -1.0f, sign = 9.0f;
  EXPECT_EQ(LionStep(p, 3.0f, m, sign, k), 1.0f);
  EXPECT_EQ(sign, 1.0f);
  EXPECT_EQ(p, 1.75f);
  EXPECT_EQ(m, 0.0f);
  // λ = 0.5, g = −3: q = 2·(1 − 0.25·0.5) = 1.75; c = −0.5 + 0.5·(−3) = −2, u = −1;
  // p = 1.75 + 0.25 = 2; d = −1 + 0.5·2 = 0.
  c.weight_decay = 0.5;
  const LionCoefficients kd = LionCoefficientsFor(c, 0.25);
  EXPECT_EQ(kd.decay, 0.875f);
  p = 2.0f, m = -1.0f;
  EXPECT_EQ(LionStep(p, -3.0f, m, sign, kd), 0.0f);
  EXPECT_EQ(sign, -1.0f);
  EXPECT_EQ(p, 2.0f);
  EXPECT_EQ(m, -1.5f);  // −0.75 + 0.25·(−3)
  EXPECT_EQ(LionDeltaW(DeltaRule::kPaper, -1.0f, 0.0f), -1.0f);
  EXPECT_EQ(LionDeltaW(DeltaRule::kExact, -1.0f, 0.0f), 0.0f);
}

// ---------------------------------------------------------------------------------------------
// Prediction

TEST(OptimizerMath, PredictCoefficients) {
  const PredictCoefficients k = PredictCoefficientsFor(0.1, 3, 5);
  EXPECT_FLOAT_EQ(k.neg_scale, -0.3f);
  EXPECT_FALSE(k.copy || k.zero_delta);
  EXPECT_EQ(PredictCoefficientsFor(0.5, -2, 1).neg_scale, 1.0f);  // s may be negative
  EXPECT_TRUE(PredictCoefficientsFor(0.0, 3, 5).copy);
  EXPECT_TRUE(PredictCoefficientsFor(0.1, 0, 5).copy);
  EXPECT_TRUE(PredictCoefficientsFor(0.1, 3, 0).zero_delta);
}

}  // namespace
}  // namespace pipecast::models
