#include "cli/run_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sim/report.h"

namespace pipecast::cli {
namespace {

std::string Fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

// Mean and sample standard deviation of f over the seeds.
template <typename Fn>
std::pair<double, double> MeanStd(const MethodRuns& runs, Fn f) {
  double sum = 0;
  for (const auto& r : runs) sum += f(r);
  const double mean = sum / static_cast<double>(runs.size());
  double sq = 0;
  for (const auto& r : runs) sq += (f(r) - mean) * (f(r) - mean);
  const double sd = runs.size() > 1 ? std::sqrt(sq / static_cast<double>(runs.size() - 1)) : 0;
  return {mean, sd};
}

// "86.27" or "86.27±0.31" (percent, or plain with `scale` 1).
std::string WithSpread(std::pair<double, double> ms, size_t seeds, int digits, double scale) {
  std::string s = Fixed(ms.first * scale, digits);
  if (seeds > 1) s += "±" + Fixed(ms.second * scale, digits);
  return s;
}

std::string PerStage(const runtime::MethodTraining& t, bool delay) {
  std::string s;
  for (const auto& v : t.versions) {
    if (!s.empty()) s += ",";
    s += std::to_string(delay ? v.delay_max : v.gap_max);
  }
  return s;
}

// The mean over stages of the stages' mean prediction error (stages that predicted).
double MeanPredictionError(const runtime::MethodTraining& t) {
  double sum = 0;
  int n = 0;
  for (const auto& p : t.predictions) {
    if (p.count == 0) continue;
    sum += p.error_mean;
    ++n;
  }
  return n ? sum / n : 0;
}

double MeanSamplesPerS(const runtime::MethodTraining& t) {
  double samples = 0;
  for (const auto& e : t.evaluations) samples += e.samples_per_s;
  return t.evaluations.empty() ? 0 : samples / static_cast<double>(t.evaluations.size());
}

nlohmann::ordered_json StageJson(const runtime::MethodTraining& t, size_t k) {
  const ir::DeviceVersionStats& v = t.versions[k];
  nlohmann::ordered_json s = {{"stage", k},
                              {"version_gap_max", v.gap_max},
                              {"version_gap_mean", v.gap_mean},
                              {"gradient_delay_max", v.delay_max},
                              {"gradient_delay_mean", v.delay_mean},
                              {"prediction_horizon_forward_max", v.horizon_forward_max},
                              {"prediction_horizon_backward_max", v.horizon_backward_max},
                              {"crossing_fraction", v.crossing_fraction},
                              {"live_weight_versions_max", v.live_versions_max}};
  // Per virtual stage of the device (one per device except interleaved).
  nlohmann::ordered_json pred = nlohmann::ordered_json::array();
  for (size_t st = 0; st < t.predictions.size(); ++st) {
    if (t.last_program.num_stages > 0 &&
        t.last_program.device_of(static_cast<int32_t>(st)) != static_cast<int32_t>(k))
      continue;
    const runtime::StagePrediction& p = t.predictions[st];
    if (p.count == 0) continue;
    s["prediction_error_mean"] = p.error_mean;
    s["prediction_cosine_mean"] = p.cosine_mean;
    s["predictions_measured"] = p.count;
  }
  return s;
}

nlohmann::ordered_json ResultJson(const runtime::MethodTraining& t) {
  nlohmann::ordered_json r;
  r["method"] = t.method;
  r["label"] = Label(t);
  r["params"] = t.params;
  r["seed"] = t.seed;
  r["optimizer"] = t.optimizer;
  if (t.predicts) {
    r["delta_rule"] = t.delta_rule;
    r["delta_rule_fallback"] = t.delta_fallback;
  }
  r["best_accuracy"] = t.best_accuracy;
  r["final_accuracy"] = t.final_accuracy;
  r["wall_s"] = t.wall_s;
  r["evaluations"] = nlohmann::ordered_json::array();
  for (const auto& e : t.evaluations) {
    nlohmann::ordered_json ev = {{"epoch", e.epoch},
                                 {"minibatches", e.minibatches},
                                 {"train_loss", e.train_loss},
                                 {"test_loss", e.test_loss},
                                 {"test_accuracy", e.test_accuracy},
                                 {"test_perplexity", e.test_perplexity},
                                 {"wall_s", e.wall_s},
                                 {"samples_per_s", e.samples_per_s}};
    if (!e.predictions.empty()) {
      nlohmann::ordered_json pe = nlohmann::ordered_json::array();
      nlohmann::ordered_json pc = nlohmann::ordered_json::array();
      for (const auto& p : e.predictions) {
        pe.push_back(p.count ? nlohmann::ordered_json(p.error_mean) : nullptr);
        pc.push_back(p.count ? nlohmann::ordered_json(p.cosine_mean) : nullptr);
      }
      ev["prediction_error_mean"] = pe;
      ev["prediction_cosine_mean"] = pc;
    }
    r["evaluations"].push_back(ev);
  }
  r["stages"] = nlohmann::ordered_json::array();
  for (size_t k = 0; k < t.versions.size(); ++k) r["stages"].push_back(StageJson(t, k));
  return r;
}

}  // namespace

std::string Label(const runtime::MethodTraining& t) {
  sim::MethodRun run;
  run.method = t.method;
  run.params = t.params;
  std::string label = sim::MethodLabel(run);
  if (t.predicts) label += "[" + t.optimizer + "]";
  return label;
}

std::string RunTable(const ir::Job& job, const std::vector<MethodRuns>& results) {
  std::ostringstream s;
  const size_t seeds = results.empty() ? 1 : results.front().size();
  s << "job: " << job.name << " (" << job.source << "), " << job.pipeline.stages << " stages, ";
  if (job.pipeline.data_parallel > 1) {
    s << job.pipeline.data_parallel << " data-parallel copies of " << job.pipeline.microbatches
      << " x " << job.pipeline.microbatch_size << " per minibatch, ";
  } else {
    s << job.pipeline.microbatches << " x " << job.pipeline.microbatch_size << " per minibatch, ";
  }
  s << job.epochs << " epochs";
  if (seeds > 1) s << ", " << seeds << " seeds (mean±sd)";
  s << "\n";
  int width = 26;  // the method column fits the longest label
  for (const auto& runs : results) width = std::max(width, static_cast<int>(Label(runs[0]).size()));
  const int acc_w = seeds > 1 ? 13 : 9;
  char line[768];
  std::snprintf(line, sizeof(line), "%-*s %*s %*s %*s %9s %9s %11s  %-14s %-14s %s\n", width,
                "method", acc_w, "best acc", acc_w, "final acc", acc_w + 1, "final loss",
                "test ppl", "time", "samples/s", "gap/stage", "delay/stage", "pred err");
  s << line;
  std::vector<std::string> fallbacks;
  for (const auto& runs : results) {
    const runtime::MethodTraining& t = runs[0];
    const auto best = MeanStd(runs, [](const auto& r) { return r.best_accuracy; });
    const auto fin = MeanStd(runs, [](const auto& r) { return r.final_accuracy; });
    const auto loss = MeanStd(runs, [](const auto& r) { return r.evaluations.back().test_loss; });
    const auto ppl =
        MeanStd(runs, [](const auto& r) { return r.evaluations.back().test_perplexity; });
    const auto wall = MeanStd(runs, [](const auto& r) { return r.wall_s; });
    const auto sps = MeanStd(runs, [](const auto& r) { return MeanSamplesPerS(r); });
    const auto err = MeanStd(runs, [](const auto& r) { return MeanPredictionError(r); });
    const std::string pred = t.predicts ? WithSpread(err, seeds, 3, 1) : "-";
    std::snprintf(line, sizeof(line), "%-*s %*s%% %*s%% %*s %9s %8.1fs %11.0f  %-14s %-14s %s\n",
                  width, Label(t).c_str(), acc_w - 1, WithSpread(best, seeds, 2, 100).c_str(),
                  acc_w - 1, WithSpread(fin, seeds, 2, 100).c_str(), acc_w + 1,
                  WithSpread(loss, seeds, 4, 1).c_str(),
                  ppl.first > 0 ? Fixed(ppl.first, 3).c_str() : "-", wall.first, sps.first,
                  PerStage(t, false).c_str(), PerStage(t, true).c_str(), pred.c_str());
    s << line;
    if (t.predicts && t.delta_fallback)
      fallbacks.push_back(t.method + " under " + t.optimizer + " reads ΔW with the " +
                          t.delta_rule + " rule (its own rule needs another optimizer)");
  }
  s << "acc = test accuracy (next-token accuracy for language models); gap = most optimizer "
       "steps between a\nmicrobatch's F and B; delay = most steps between the weights F used "
       "and the step applying the gradient;\npred err = mean ||W_pred - W_reached|| / "
       "||W_reached - W_now|| of the weight predictions (docs/metrics.md).\n";
  for (const std::string& f : fallbacks) s << "note: " << f << "\n";
  return s.str();
}

std::string RunJson(const ir::Job& job, const std::vector<MethodRuns>& results) {
  nlohmann::ordered_json j;
  j["schema"] = "pipecast-run";
  j["schema_version"] = 2;
  j["job"] = {{"name", job.name},
              {"source", job.source},
              {"epochs", job.epochs},
              {"stages", job.pipeline.stages},
              {"microbatches", job.pipeline.microbatches},
              {"microbatch_size", job.pipeline.microbatch_size},
              {"seed", job.seed},
              {"optimizer", job.optimizer.name},
              {"device", ir::JobDeviceName(job.device)},
              {"precision", job.bf16 ? "bf16" : "fp32"}};
  j["results"] = nlohmann::ordered_json::array();
  j["summary"] = nlohmann::ordered_json::array();
  for (const auto& runs : results) {
    for (const auto& t : runs) j["results"].push_back(ResultJson(t));
    nlohmann::ordered_json sum;
    sum["label"] = Label(runs[0]);
    sum["seeds"] = runs.size();
    auto add = [&](const char* name, auto f) {
      const auto [mean, sd] = MeanStd(runs, f);
      sum[std::string(name) + "_mean"] = mean;
      sum[std::string(name) + "_std"] = sd;
    };
    add("best_accuracy", [](const auto& r) { return r.best_accuracy; });
    add("final_accuracy", [](const auto& r) { return r.final_accuracy; });
    add("final_test_loss", [](const auto& r) { return r.evaluations.back().test_loss; });
    add("wall_s", [](const auto& r) { return r.wall_s; });
    if (runs[0].predicts)
      add("prediction_error", [](const auto& r) { return MeanPredictionError(r); });
    j["summary"].push_back(sum);
  }
  return j.dump(2) + "\n";
}

std::string RunCsv(const ir::Job& job, const std::vector<MethodRuns>& results) {
  std::ostringstream s;
  s << "job,method,seed,epoch,minibatches,train_loss,test_loss,test_accuracy,test_perplexity,"
       "wall_s,samples_per_s\r\n";
  for (const auto& runs : results) {
    for (const auto& t : runs) {
      for (const auto& e : t.evaluations) {
        s << sim::CsvField(job.name) << "," << sim::CsvField(Label(t)) << "," << t.seed << ","
          << e.epoch << "," << e.minibatches << "," << e.train_loss << "," << e.test_loss << ","
          << e.test_accuracy << "," << e.test_perplexity << "," << e.wall_s << ","
          << e.samples_per_s << "\r\n";
      }
    }
  }
  return s.str();
}

}  // namespace pipecast::cli
