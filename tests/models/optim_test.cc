// Tests for models/optimizer.h and models/lr_schedule.h. Expected values are worked out by hand
// from the torch formulas (docs/optimizers.md) in double; the arithmetic is in the comments.
// Every optimizer test starts from θ0 = (1, −2) with gradients g1 = (0.5, −1), g2 = (0.25, 0.5),
// g3 = (−1, 2) and lr = 0.1 unless it says otherwise.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <numbers>
#include <span>
#include <vector>

#include "models/lr_schedule.h"
#include "models/optimizer.h"

namespace pipecast::models {
namespace {

const std::vector<std::vector<float>> kGrads = {{0.5f, -1.0f}, {0.25f, 0.5f}, {-1.0f, 2.0f}};
constexpr double kLr = 0.1;

void ExpectClose(std::span<const float> got, const std::vector<double>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], 2e-6 * std::abs(want[i]) + 1e-7) << what << " [" << i << "]";
  }
}

std::unique_ptr<Optimizer> Make(const OptimizerConfig& config, size_t n = 2) {
  Result<std::unique_ptr<Optimizer>> opt = Optimizer::Create(config, n);
  EXPECT_TRUE(opt.ok()) << opt.status().message();
  return opt.ok() ? std::move(opt).value() : nullptr;
}

OptimizerConfig Config(OptimizerKind kind) {
  OptimizerConfig c;
  c.kind = kind;
  c.lr = kLr;
  return c;
}

// Runs `steps` steps from θ0 with kGrads; returns θ after each step.
struct Trace {
  std::unique_ptr<Optimizer> opt;
  std::vector<std::vector<float>> after;  // after[t-1] = θ_t
};
Trace Steps(const OptimizerConfig& config, int steps) {
  Trace run{Make(config), {}};
  std::vector<float> params = {1.0f, -2.0f};
  for (int t = 0; t < steps; ++t) {
    run.opt->Step(params, kGrads[static_cast<size_t>(t)], kLr);
    run.after.push_back(params);
  }
  return run;
}

std::vector<float> Delta(const Optimizer& opt, DeltaRule rule) {
  std::vector<float> params(opt.num_params(), 0.0f), out(opt.num_params(), -7.0f);
  opt.DeltaW(params, rule, out);
  return out;
}

// ------------------------------------------------------------------------------------------
// SGD

TEST(Sgd, Plain) {
  Trace r = Steps(Config(OptimizerKind::kSgd), 2);
  // θ1 = θ0 − 0.1·g1 = (1 − 0.05, −2 + 0.1) = (0.95, −1.9)
  ExpectClose(r.after[0], {0.95, -1.9}, "θ1");
  // θ2 = θ1 − 0.1·g2 = (0.95 − 0.025, −1.9 − 0.05)
  ExpectClose(r.after[1], {0.925, -1.95}, "θ2");
  EXPECT_EQ(r.opt->steps(), 2);
}

TEST(Sgd, FirstStepHasNoDampening) {
  OptimizerConfig c = Config(OptimizerKind::kSgd);
  c.momentum = 0.9;
  c.dampening = 0.5;
  Trace r = Steps(c, 3);
  // b1 = g1 = (0.5, −1) (not 0.5·g1); θ1 = (1 − 0.05, −2 + 0.1) = (0.95, −1.9)
  ExpectClose(r.after[0], {0.95, -1.9}, "θ1");
  // b2 = 0.9·b1 + 0.5·g2 = (0.45 + 0.125, −0.9 + 0.25) = (0.575, −0.65)
  // θ2 = θ1 − 0.1·b2 = (0.95 − 0.0575, −1.9 + 0.065) = (0.8925, −1.835)
  ExpectClose(r.after[1], {0.8925, -1.835}, "θ2");
  // b3 = 0.9·b2 + 0.5·g3 = (0.5175 − 0.5, −0.585 + 1) = (0.0175, 0.415)
  // θ3 = (0.8925 − 0.00175, −1.835 − 0.0415) = (0.89075, −1.8765)
  ExpectClose(r.after[2], {0.89075, -1.8765}, "θ3");
  ExpectClose(Delta(*r.opt, DeltaRule::kPaper), {0.0175, 0.415}, "paper = b3");
}

TEST(Sgd, Nesterov) {
  OptimizerConfig c = Config(OptimizerKind::kSgd);
  c.momentum = 0.9;
  c.nesterov = true;
  Trace r = Steps(c, 2);
  // b1 = g1; d1 = g1 + 0.9·b1 = 1.9·g1 = (0.95, −1.9); θ1 = (1 − 0.095, −2 + 0.19)
  ExpectClose(r.after[0], {0.905, -1.81}, "θ1");
  // b2 = 0.9·b1 + g2 = (0.45 + 0.25, −0.9 + 0.5) = (0.7, −0.4)
  // d2 = g2 + 0.9·b2 = (0.25 + 0.63, 0.5 − 0.36) = (0.88, 0.14)
  // θ2 = θ1 − 0.1·d2 = (0.905 − 0.088, −1.81 − 0.014)
  ExpectClose(r.after[1], {0.817, -1.824}, "θ2");
  // Table I's v_t is the buffer; the exact last step is the Nesterov direction.
  ExpectClose(Delta(*r.opt, DeltaRule::kPaper), {0.7, -0.4}, "paper = b2");
  ExpectClose(Delta(*r.opt, DeltaRule::kExact), {0.88, 0.14}, "exact = d2");
}

TEST(Sgd, CoupledWeightDecay) {
  OptimizerConfig c = Config(OptimizerKind::kSgd);
  c.momentum = 0.9;
  c.weight_decay = 0.1;
  Trace r = Steps(c, 2);
  // g = g1 + 0.1·θ0 = (0.5 + 0.1, −1 − 0.2) = (0.6, −1.2) = b1; θ1 = (1 − 0.06, −2 + 0.12)
  ExpectClose(r.after[0], {0.94, -1.88}, "θ1");
  // g = g2 + 0.1·θ1 = (0.25 + 0.094, 0.5 − 0.188) = (0.344, 0.312)
  // b2 = 0.9·b1 + g = (0.54 + 0.344, −1.08 + 0.312) = (0.884, −0.768)
  // θ2 = θ1 − 0.1·b2 = (0.94 − 0.0884, −1.88 + 0.0768) = (0.8516, −1.8032)
  ExpectClose(r.after[1], {0.8516, -1.8032}, "θ2");
  // Paper and exact are both b2 (the decay is inside the buffer). The code's look-ahead reads the
  // raw gradient (modern torch's p.grad): 0.9·b2 + g2 = (0.7956 + 0.25, −0.6912 + 0.5).
  ExpectClose(Delta(*r.opt, DeltaRule::kPaper), {0.884, -0.768}, "paper");
  ExpectClose(Delta(*r.opt, DeltaRule::kExact), {0.884, -0.768}, "exact");
  ExpectClose(Delta(*r.opt, DeltaRule::kCode), {1.0456, -0.1912}, "code");
  ExpectClose(Delta(*r.opt, DeltaRule::kSpecTrain), {1.0456, -0.1912}, "spectrain");
}

TEST(Sgd, CodeAndSpecTrainLookAheads) {
  OptimizerConfig c = Config(OptimizerKind::kSgd);
  c.momentum = 0.9;
  c.dampening = 0.5;
  Trace r = Steps(c, 2);  // b2 = (0.575, −0.65), g2 = (0.25, 0.5) as in FirstStepHasNoDampening
  // code: 0.9·b2 + (1 − 0.5)·g2 = (0.5175 + 0.125, −0.585 + 0.25)
  ExpectClose(Delta(*r.opt, DeltaRule::kCode), {0.6425, -0.335}, "code");
  // SpecTrain ignores dampening: 0.9·b2 + g2 = (0.5175 + 0.25, −0.585 + 0.5)
  ExpectClose(Delta(*r.opt, DeltaRule::kSpecTrain), {0.7675, -0.085}, "spectrain");
}

TEST(Sgd, WithoutMomentumDeltaIsTheLastStep) {
  OptimizerConfig c = Config(OptimizerKind::kSgd);
  c.weight_decay = 0.1;
  Trace r = Steps(c, 1);
  // d1 = g1 + 0.1·θ0 = (0.6, −1.2); code: 0·b + 1·g1 (raw) = (0.5, −1)
  ExpectClose(Delta(*r.opt, DeltaRule::kPaper), {0.6, -1.2}, "paper");
  ExpectClose(Delta(*r.opt, DeltaRule::kExact), {0.6, -1.2}, "exact");
  ExpectClose(Delta(*r.opt, DeltaRule::kCode), {0.5, -1.0}, "code");
}

TEST(Sgd, NesterovNeedsMomentumAndNoDampening) {
  OptimizerConfig c = Config(OptimizerKind::kSgd);
  c.nesterov = true;
  Result<std::unique_ptr<Optimizer>> no_momentum = Optimizer::Create(c, 2);
  ASSERT_FALSE(no_momentum.ok());
  EXPECT_EQ(no_momentum.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(no_momentum.status().message().find("Nesterov"), std::string::npos)
      << no_momentum.status().message();
  c.momentum = 0.9;
  c.dampening = 0.1;
  EXPECT_FALSE(Optimizer::Create(c, 2).ok());
  c.dampening = 0;
  EXPECT_TRUE(Optimizer::Create(c, 2).ok());
}

// ------------------------------------------------------------------------------------------
// Adam, AdamW

TEST(Adam, BiasCorrectionAndEpsilonOutsideTheRoot) {
  OptimizerConfig c = Config(OptimizerKind::kAdam);
  c.eps = 0.01;  // large enough to see where it sits
  Trace r = Steps(c, 2);
  // t=1: m = 0.1·g1 = (0.05, −0.1); v = 0.001·g1² = (0.00025, 0.001)
  //      m̂ = m/0.1 = g1; √v̂ = √(v/0.001) = |g1| = (0.5, 1)
  //      d1 = m̂/(√v̂ + 0.01) = (0.5/0.51, −1/1.01) = (0.980392, −0.990099)
  ExpectClose(r.after[0], {1 - 0.1 * 0.5 / 0.51, -2 + 0.1 / 1.01}, "θ1");
  // t=2: m = 0.9·m + 0.1·g2 = (0.045 + 0.025, −0.09 + 0.05) = (0.07, −0.04)
  //      v = 0.999·v + 0.001·g2² = (0.00024975 + 0.0000625, 0.000999 + 0.00025)
  //        = (0.00031225, 0.001249)
  //      bc1 = 1 − 0.81 = 0.19, bc2 = 1 − 0.998001 = 0.001999
  //      m̂ = (0.368421, −0.210526); √v̂ = (√0.156203, √0.624812) = (0.395225, 0.790451)
  //      d2 = m̂/(√v̂ + 0.01) = (0.909176, −0.263010)
  //      θ2 = θ1 − 0.1·d2 = (0.901961 − 0.090918, −1.900990 + 0.026301)
  ExpectClose(r.after[1], {0.8110432183918574, -1.8746891288639818}, "θ2");
  ExpectClose(Delta(*r.opt, DeltaRule::kPaper), {0.9091756592186805, -0.26300970145919184},
              "paper = d2");
  // Adam's exact step is the paper's (coupled L2 is folded into g); the code and XPipe agree.
  EXPECT_EQ(Delta(*r.opt, DeltaRule::kExact), Delta(*r.opt, DeltaRule::kPaper));
  EXPECT_EQ(Delta(*r.opt, DeltaRule::kCode), Delta(*r.opt, DeltaRule::kPaper));
  EXPECT_EQ(Delta(*r.opt, DeltaRule::kXPipe), Delta(*r.opt, DeltaRule::kPaper));
}

TEST(Adam, CoupledWeightDecayGoesIntoTheMoments) {
  OptimizerConfig c = Config(OptimizerKind::kAdam);
  c.eps = 0.01;
  c.weight_decay = 0.1;
  Trace r = Steps(c, 1);
  // g = g1 + 0.1·θ0 = (0.6, −1.2); m̂ = g, √v̂ = |g|; d1 = (0.6/0.61, −1.2/1.21)
  ExpectClose(r.after[0], {1 - 0.1 * 0.6 / 0.61, -2 + 0.1 * 1.2 / 1.21}, "θ1");
}

TEST(AdamW, DecoupledDecayIsAppliedFirst) {
  OptimizerConfig c = Config(OptimizerKind::kAdamW);
  c.eps = 0.01;
  c.weight_decay = 0.1;
  Trace r = Steps(c, 2);
  // θ ← θ0·(1 − 0.1·0.1) = (0.99, −1.98); then the Adam step from raw g1 (d1 as in Adam):
  // θ1 = (0.99 − 0.1·0.5/0.51, −1.98 + 0.1/1.01) = (0.891961, −1.880990).
  // (Decaying after the step would give (0.90196·0.99, …) = (0.892941, …).)
  ExpectClose(r.after[0], {0.99 - 0.1 * 0.5 / 0.51, -1.98 + 0.1 / 1.01}, "θ1");
  // θ2 = θ1·0.99 − 0.1·d2 with Adam's d2 = (0.909176, −0.263010)
  ExpectClose(r.after[1], {0.7921236105487202, -1.8358792278738827}, "θ2");
  // Paper (Table I): no decay term. Exact: the decay on the pre-step weights θ1 is added.
  const std::vector<float> paper = Delta(*r.opt, DeltaRule::kPaper);
  const std::vector<float> exact = Delta(*r.opt, DeltaRule::kExact);
  ExpectClose(paper, {0.9091756592186805, -0.26300970145919184}, "paper");
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_NEAR(exact[i] - paper[i], 0.1 * r.after[0][i], 1e-6) << i;
  }
  // The exact rule reproduces the applied step: θ1 − lr·exact = θ2.
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_NEAR(r.after[0][i] - kLr * exact[i], r.after[1][i], 1e-6) << i;
  }
  EXPECT_EQ(Delta(*r.opt, DeltaRule::kCode), paper);
}

TEST(Adam, Amsgrad) {
  OptimizerConfig c = Config(OptimizerKind::kAdam);
  c.eps = 0.01;
  c.beta2 = 0.5;  // so that v falls at step 2 and the running maximum matters
  c.amsgrad = true;
  Trace r = Steps(c, 2);
  // t=1: v = 0.5·g1² = (0.125, 0.5) = vmax; bc2 = 0.5; √v̂ = |g1|: θ1 as in Adam.
  ExpectClose(r.after[0], {1 - 0.1 * 0.5 / 0.51, -2 + 0.1 / 1.01}, "θ1");
  // t=2: v = 0.5·v + 0.5·g2² = (0.0625 + 0.03125, 0.25 + 0.125) = (0.09375, 0.375) < vmax,
  //      so vmax stays (0.125, 0.5); bc2 = 0.75; √(vmax/bc2) = (0.408248, 0.816497)
  //      m̂ = (0.07, −0.04)/0.19 = (0.368421, −0.210526)
  //      d2 = (0.368421/0.418248, −0.210526/0.826497) = (0.880867, −0.254721)
  ExpectClose(r.after[1], {0.8138740996740879, -1.8755179651078875}, "θ2");
  ExpectClose(Delta(*r.opt, DeltaRule::kPaper), {0.880866846396377, -0.25472133902013494},
              "paper uses vmax");
  // XPipe's formula has no running maximum: √v̂ = (0.353553, 0.707107) →
  // (0.368421/0.363553, −0.210526/0.717107) = (1.013389, −0.293577).
  ExpectClose(Delta(*r.opt, DeltaRule::kXPipe), {1.0133891256807197, -0.2935773601821617}, "xpipe");
}

// ------------------------------------------------------------------------------------------
// RMSprop, Lion

TEST(Rmsprop, Plain) {
  OptimizerConfig c = Config(OptimizerKind::kRmsprop);
  c.alpha = 0.9;
  c.eps = 0.01;
  Trace r = Steps(c, 2);
  // t=1: sa = 0.1·g1² = (0.025, 0.1); √sa + ε = (0.158114 + 0.01, 0.316228 + 0.01)
  //      θ1 = (1 − 0.1·0.5/0.168114, −2 + 0.1/0.326228) = (0.702583, −1.693466)
  ExpectClose(r.after[0], {0.7025825642401224, -1.6934656996828448}, "θ1");
  // t=2: sa = 0.9·sa + 0.1·g2² = (0.0225 + 0.00625, 0.09 + 0.025) = (0.02875, 0.115)
  //      √sa + ε = (0.169558 + 0.01, 0.339116 + 0.01)
  //      θ2 = (0.702583 − 0.1·0.25/0.179558, −1.693466 − 0.1·0.5/0.349116)
  ExpectClose(r.after[1], {0.5633519799660109, -1.8366843677229943}, "θ2");
  ExpectClose(Delta(*r.opt, DeltaRule::kPaper),
              {0.25 / 0.17955824957813173, 0.5 / 0.34911649915626346}, "paper");
  EXPECT_FALSE(r.opt->SupportsRule(DeltaRule::kCode).ok());
}

TEST(Rmsprop, CenteredWithMomentum) {
  OptimizerConfig c = Config(OptimizerKind::kRmsprop);
  c.alpha = 0.9;
  c.eps = 0.01;
  c.momentum = 0.5;
  c.centered = true;
  Trace r = Steps(c, 2);
  // t=1: sa = (0.025, 0.1); ga = 0.1·g1 = (0.05, −0.1)
  //      avg = √(sa − ga²) + ε = (√0.0225, √0.09) + 0.01 = (0.16, 0.31)
  //      buf = g1/avg = (3.125, −3.225806); θ1 = (1 − 0.3125, −2 + 0.322581)
  ExpectClose(r.after[0], {0.6875, -1.6774193548387095}, "θ1");
  // t=2: sa = (0.02875, 0.115); ga = 0.9·ga + 0.1·g2 = (0.07, −0.04)
  //      avg = (√(0.02875 − 0.0049), √(0.115 − 0.0016)) + 0.01 = (0.164434, 0.346749)
  //      buf = 0.5·buf + g2/avg = (1.5625 + 1.520365, −1.612903 + 1.441965)
  //      θ2 = θ1 − 0.1·buf
  ExpectClose(r.after[1], {0.3792137346159947, -1.6603254862782122}, "θ2");
}

TEST(Lion, SignUpdateWithDecoupledDecay) {
  OptimizerConfig c = Config(OptimizerKind::kLion);
  c.beta1 = 0.9;
  c.beta2 = 0.99;
  c.weight_decay = 0.5;
  std::unique_ptr<Optimizer> opt = Make(c);
  std::vector<float> p = {1.0f, -2.0f};
  // t=1: θ·(1 − 0.1·0.5) = (0.95, −1.9); c = 0.9·0 + 0.1·g1 → sign (+1, −1)
  //      θ1 = (0.95 − 0.1, −1.9 + 0.1) = (0.85, −1.8); m = 0.01·g1 = (0.005, −0.01)
  opt->Step(p, std::vector<float>{0.5f, -1.0f}, kLr);
  ExpectClose(p, {0.85, -1.8}, "θ1");
  const std::vector<float> theta1 = p;
  // t=2: g2 = (0.25, 0.5): c = (0.0045 + 0.025, −0.009 + 0.05) → sign (+1, +1)
  //      θ2 = θ1·0.95 − 0.1 = (0.8075 − 0.1, −1.71 − 0.1) = (0.7075, −1.81)
  //      m = 0.99·m + 0.01·g2 = (0.00495 + 0.0025, −0.0099 + 0.005) = (0.00745, −0.0049)
  opt->Step(p, std::vector<float>{0.25f, 0.5f}, kLr);
  ExpectClose(p, {0.7075, -1.81}, "θ2");
  // Paper: sign(c2) = (1, 1). Exact adds λ·θ1 = (0.425, −0.9).
  ExpectClose(Delta(*opt, DeltaRule::kPaper), {1.0, 1.0}, "paper");
  ExpectClose(Delta(*opt, DeltaRule::kExact), {1.0 + 0.5 * theta1[0], 1.0 + 0.5 * theta1[1]},
              "exact");
  // t=3: g3 = (−0.05, −0.01): c = 0.9·m + 0.1·g3 = (0.006705 − 0.005, −0.00441 − 0.001)
  //      = (0.001705, −0.00541) → sign (+1, −1): the first coordinate moves against g3[0]'s
  //      sign because the momentum wins. θ3 = θ2·0.95 − 0.1·sign = (0.672125 − 0.1, −1.7195 + 0.1)
  opt->Step(p, std::vector<float>{-0.05f, -0.01f}, kLr);
  ExpectClose(p, {0.572125, -1.6195}, "θ3");
}

// ------------------------------------------------------------------------------------------
// Rules common to all optimizers

std::vector<OptimizerConfig> AllConfigs() {
  std::vector<OptimizerConfig> configs;
  for (OptimizerKind kind : {OptimizerKind::kSgd, OptimizerKind::kAdam, OptimizerKind::kAdamW,
                             OptimizerKind::kRmsprop, OptimizerKind::kLion}) {
    OptimizerConfig c = Config(kind);
    if (kind == OptimizerKind::kSgd || kind == OptimizerKind::kRmsprop) c.momentum = 0.9;
    if (kind != OptimizerKind::kSgd) c.weight_decay = 0.01;
    if (kind == OptimizerKind::kRmsprop) c.centered = true;
    if (kind == OptimizerKind::kAdamW) c.amsgrad = true;
    configs.push_back(c);
  }
  return configs;
}

const DeltaRule kAllRules[] = {DeltaRule::kPaper, DeltaRule::kExact, DeltaRule::kCode,
                               DeltaRule::kSpecTrain, DeltaRule::kXPipe};

TEST(DeltaW, ZeroBeforeTheFirstStep) {
  for (const OptimizerConfig& c : AllConfigs()) {
    std::unique_ptr<Optimizer> opt = Make(c);
    for (DeltaRule rule : kAllRules) {
      if (!opt->SupportsRule(rule).ok()) continue;
      EXPECT_EQ(Delta(*opt, rule), std::vector<float>(2, 0.0f))
          << OptimizerKindName(c.kind) << " " << DeltaRuleName(rule);
    }
  }
}

TEST(DeltaW, WhichRulesAreDefined) {
  auto supported = [](OptimizerKind kind, DeltaRule rule) {
    OptimizerConfig c = Config(kind);
    return Make(c)->SupportsRule(rule).ok();
  };
  for (OptimizerKind kind : {OptimizerKind::kSgd, OptimizerKind::kAdam, OptimizerKind::kAdamW,
                             OptimizerKind::kRmsprop, OptimizerKind::kLion}) {
    EXPECT_TRUE(supported(kind, DeltaRule::kPaper));
    EXPECT_TRUE(supported(kind, DeltaRule::kExact));
  }
  EXPECT_TRUE(supported(OptimizerKind::kSgd, DeltaRule::kCode));
  EXPECT_TRUE(supported(OptimizerKind::kSgd, DeltaRule::kSpecTrain));
  EXPECT_FALSE(supported(OptimizerKind::kSgd, DeltaRule::kXPipe));
  EXPECT_TRUE(supported(OptimizerKind::kAdamW, DeltaRule::kXPipe));
  EXPECT_FALSE(supported(OptimizerKind::kAdam, DeltaRule::kSpecTrain));
  EXPECT_FALSE(supported(OptimizerKind::kLion, DeltaRule::kCode));
  Status s = Make(Config(OptimizerKind::kRmsprop))->SupportsRule(DeltaRule::kXPipe);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("xpipe"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("rmsprop"), std::string::npos) << s.message();
}

TEST(DeltaW, ExactReproducesTheLastStepForEveryOptimizer) {
  for (const OptimizerConfig& c : AllConfigs()) {
    std::unique_ptr<Optimizer> opt = Make(c);
    std::vector<float> p = {1.0f, -2.0f}, before;
    for (const std::vector<float>& g : kGrads) {
      before = p;
      opt->Step(p, g, kLr);
    }
    const std::vector<float> exact = Delta(*opt, DeltaRule::kExact);
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_NEAR(before[i] - kLr * exact[i], p[i], 1e-6) << OptimizerKindName(c.kind) << i;
    }
  }
}

TEST(OptimizerPredict, IdentityAtZeroRateOrZeroHorizon) {
  for (const OptimizerConfig& c : AllConfigs()) {
    Trace r = Steps(c, 2);
    const std::vector<float> params = r.after[1];
    std::vector<float> out(2);
    r.opt->Predict(params, 0.0, 3, DeltaRule::kPaper, out);
    EXPECT_EQ(out, params) << OptimizerKindName(c.kind);
    r.opt->Predict(params, kLr, 0, DeltaRule::kExact, out);
    EXPECT_EQ(out, params) << OptimizerKindName(c.kind);
  }
}

TEST(OptimizerPredict, SubtractsScaledDelta) {
  OptimizerConfig c = Config(OptimizerKind::kSgd);
  c.momentum = 0.9;
  c.dampening = 0.5;
  Trace r = Steps(c, 2);  // θ2 = (0.8925, −1.835), b2 = (0.575, −0.65)
  std::vector<float> out(2);
  r.opt->Predict(r.after[1], 0.1, 3, DeltaRule::kPaper, out);
  // Ŵ = θ2 − 0.1·3·b2 = (0.8925 − 0.1725, −1.835 + 0.195)
  ExpectClose(out, {0.72, -1.64}, "Ŵ");
  // A negative horizon extrapolates backwards.
  r.opt->Predict(r.after[1], 0.1, -1, DeltaRule::kPaper, out);
  ExpectClose(out, {0.95, -1.9}, "Ŵ(s=−1)");
}

TEST(OptimizerState, RoundTripContinuesIdentically) {
  for (const OptimizerConfig& c : AllConfigs()) {
    Trace a = Steps(c, 2);
    std::unique_ptr<Optimizer> b = Make(c);
    ASSERT_TRUE(b->LoadState(a.opt->steps(), a.opt->StateTensors()).ok());
    EXPECT_EQ(b->steps(), 2);
    std::vector<float> pa = a.after[1], pb = a.after[1];
    a.opt->Step(pa, kGrads[2], kLr);
    b->Step(pb, kGrads[2], kLr);
    EXPECT_EQ(pa, pb) << OptimizerKindName(c.kind);
    for (DeltaRule rule : kAllRules) {
      if (a.opt->SupportsRule(rule).ok()) {
        EXPECT_EQ(Delta(*a.opt, rule), Delta(*b, rule));
      }
    }
  }
}

TEST(OptimizerState, NamesAndErrors) {
  OptimizerConfig c = Config(OptimizerKind::kAdam);
  c.amsgrad = true;
  std::unique_ptr<Optimizer> opt = Make(c, 3);
  std::vector<StateTensor> state = opt->StateTensors();
  std::vector<std::string> names;
  for (const StateTensor& t : state) names.push_back(t.first);
  EXPECT_EQ(names,
            (std::vector<std::string>{"exp_avg", "exp_avg_sq", "max_exp_avg_sq", "last_step"}));
  EXPECT_FALSE(opt->LoadState(-1, state).ok());
  std::vector<StateTensor> wrong_size = state;
  wrong_size[1].second.resize(2);
  Status s = opt->LoadState(1, wrong_size);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("exp_avg_sq"), std::string::npos) << s.message();
  std::vector<StateTensor> wrong_name = state;
  wrong_name[0].first = "momentum_buffer";
  EXPECT_FALSE(opt->LoadState(1, wrong_name).ok());
  std::vector<StateTensor> missing(state.begin(), state.end() - 1);
  EXPECT_FALSE(opt->LoadState(1, missing).ok());
  EXPECT_EQ(opt->steps(), 0);  // failed loads change nothing
}

TEST(OptimizerConfig, ValidationAndNames) {
  OptimizerConfig c = Config(OptimizerKind::kAdam);
  c.lr = -1;
  EXPECT_FALSE(Optimizer::Create(c, 2).ok());
  c = Config(OptimizerKind::kAdam);
  c.beta1 = 1.0;
  EXPECT_FALSE(Optimizer::Create(c, 2).ok());
  c = Config(OptimizerKind::kAdam);
  c.momentum = 0.9;
  EXPECT_FALSE(Optimizer::Create(c, 2).ok());
  c = Config(OptimizerKind::kSgd);
  c.amsgrad = true;
  EXPECT_FALSE(Optimizer::Create(c, 2).ok());
  c = Config(OptimizerKind::kAdam);
  c.centered = true;
  EXPECT_FALSE(Optimizer::Create(c, 2).ok());
  EXPECT_EQ(DefaultOptimizerConfig(OptimizerKind::kAdamW).weight_decay, 0.01);
  EXPECT_EQ(DefaultOptimizerConfig(OptimizerKind::kLion).beta2, 0.99);
  for (OptimizerKind kind : {OptimizerKind::kSgd, OptimizerKind::kAdam, OptimizerKind::kAdamW,
                             OptimizerKind::kRmsprop, OptimizerKind::kLion}) {
    EXPECT_TRUE(Optimizer::Create(DefaultOptimizerConfig(kind), 4).ok());
    Result<OptimizerKind> parsed = ParseOptimizerKind(OptimizerKindName(kind));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, kind);
  }
  for (DeltaRule rule : kAllRules) {
    Result<DeltaRule> parsed = ParseDeltaRule(DeltaRuleName(rule));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, rule);
  }
  EXPECT_FALSE(ParseOptimizerKind("adagrad").ok());
  EXPECT_FALSE(ParseDeltaRule("table1").ok());
}

// ------------------------------------------------------------------------------------------
// Learning-rate schedules

TEST(LrSchedule, Constant) {
  LrSchedule s = LrSchedule::Constant(0.05);
  EXPECT_EQ(s.LrAt(0), 0.05);
  EXPECT_EQ(s.LrAt(1'000'000), 0.05);
}

TEST(LrSchedule, MultiStepIsCumulative) {
  // PipeOptim's SGDM runs: 0.01, divided by 10 at epochs 40 and 60.
  Result<LrSchedule> s = LrSchedule::MultiStep(0.01, {60, 40}, 0.1);
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ(s->LrAt(0), 0.01);
  EXPECT_DOUBLE_EQ(s->LrAt(39), 0.01);
  EXPECT_DOUBLE_EQ(s->LrAt(40), 0.001);
  EXPECT_DOUBLE_EQ(s->LrAt(59), 0.001);
  EXPECT_DOUBLE_EQ(s->LrAt(60), 0.0001);
  EXPECT_DOUBLE_EQ(s->LrAt(69), 0.0001);
  // A repeated milestone counts twice, as in torch.
  Result<LrSchedule> twice = LrSchedule::MultiStep(1.0, {5, 5}, 0.5);
  ASSERT_TRUE(twice.ok());
  EXPECT_DOUBLE_EQ(twice->LrAt(4), 1.0);
  EXPECT_DOUBLE_EQ(twice->LrAt(5), 0.25);
  EXPECT_FALSE(LrSchedule::MultiStep(0.1, {-1}, 0.1).ok());
}

TEST(LrSchedule, WarmupCosine) {
  Result<LrSchedule> s = LrSchedule::WarmupCosine(1.0, 110, 10, 0.1);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_DOUBLE_EQ(s->LrAt(0), 0.1);      // 1·(0+1)/10
  EXPECT_DOUBLE_EQ(s->LrAt(4), 0.5);      // 1·5/10
  EXPECT_DOUBLE_EQ(s->LrAt(9), 1.0);      // peak at the last warm-up step
  EXPECT_DOUBLE_EQ(s->LrAt(10), 1.0);     // cos(0): still the peak
  EXPECT_NEAR(s->LrAt(60), 0.55, 1e-15);  // halfway: 0.1 + 0.9·½(1 + cos(π/2))
  EXPECT_NEAR(s->LrAt(109), 0.1 + 0.9 * 0.5 * (1 + std::cos(std::numbers::pi * 0.99)), 1e-15);
  EXPECT_DOUBLE_EQ(s->LrAt(110), 0.1);
  EXPECT_DOUBLE_EQ(s->LrAt(5000), 0.1);
  EXPECT_FALSE(LrSchedule::WarmupCosine(1.0, 10, 10, 0.1).ok());
  EXPECT_FALSE(LrSchedule::WarmupCosine(1.0, 0, 0, 0.1).ok());
  EXPECT_FALSE(LrSchedule::WarmupCosine(-1.0, 10, 1, 0.1).ok());
}

TEST(LrSchedule, Paci) {
  // 1% of 1000 steps = 10 warm-up steps, cosine to 0.1·peak.
  Result<LrSchedule> s = LrSchedule::Paci(3e-4, 1000);
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ(s->LrAt(0), 3e-5);
  EXPECT_DOUBLE_EQ(s->LrAt(9), 3e-4);
  EXPECT_NEAR(s->LrAt(505), 3e-5 + 2.7e-4 * 0.5, 1e-18);  // halfway through the 990 cosine steps
  EXPECT_DOUBLE_EQ(s->LrAt(1000), 3e-5);
  Result<LrSchedule> tiny = LrSchedule::Paci(1.0, 50);  // still one warm-up step
  ASSERT_TRUE(tiny.ok());
  EXPECT_DOUBLE_EQ(tiny->LrAt(0), 1.0);
}

TEST(LrSchedule, PipeMareStageRescheduling) {
  // lr·τ^{−p}, p = max(0, 1 − t/K), τ = 4, K = 100
  EXPECT_DOUBLE_EQ(PipeMareStageLr(0.1, 4.0, 0, 100), 0.025);  // p = 1: lr/τ
  EXPECT_DOUBLE_EQ(PipeMareStageLr(0.1, 4.0, 50, 100), 0.05);  // p = ½: lr/√τ
  EXPECT_DOUBLE_EQ(PipeMareStageLr(0.1, 4.0, 100, 100), 0.1);  // p = 0
  EXPECT_DOUBLE_EQ(PipeMareStageLr(0.1, 4.0, 500, 100), 0.1);
  EXPECT_DOUBLE_EQ(PipeMareStageLr(0.1, 0.0, 0, 100), 0.1);  // no delay: no scaling
  EXPECT_DOUBLE_EQ(PipeMareStageLr(0.1, 4.0, 0, 0), 0.1);    // disabled
}

}  // namespace
}  // namespace pipecast::models
