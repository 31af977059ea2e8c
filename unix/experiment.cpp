// The three-arm Uni-X experiment. See experiment.hpp.
#include "unix/experiment.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "report/html.hpp"
#include "report/svg_plot.hpp"
#include "tensor/io/json.hpp"
#include "tensor/parallel.hpp"
#include "unix/report.hpp"

namespace loupe::unix {

ParameterCount count_run_parameters(const RunConfig& run, int64_t vocab_size) {
  Generator generator(0);  // a local generator: counting must not move the default one
  const UnixLM lm(model_config(run, vocab_size), &generator);
  return count_parameters(lm);
}

RunConfig matched_control(const RunConfig& shared, int64_t target_total, int64_t vocab_size, double tolerance) {
  LOUPE_CHECK(shared.arm == "shared" && target_total > 0, "unix matched_control: needs a shared run and a target");
  const auto gap = [&](const RunConfig& r) {
    return std::abs(static_cast<double>(count_run_parameters(r, vocab_size).total) / static_cast<double>(target_total) -
                    1.0);
  };
  // More layers first (what the paper's extra separated layers amount to), at most 4x deeper.
  RunConfig best = shared;
  double best_gap = gap(shared);
  for (int64_t layers = shared.layers + 1; layers <= 4 * shared.layers; ++layers) {
    RunConfig r = shared;
    r.layers = layers;
    const double g = gap(r);
    if (g < best_gap) best = r, best_gap = g;
  }
  if (best_gap > tolerance) {
    // Wider instead: a wider SwiGLU at L layers. The total is linear in its width (3 hidden
    // parameters per unit and layer), so two counts give the width that hits the target.
    RunConfig r = shared;
    r.intermediate = default_intermediate(shared.hidden);
    const int64_t t0 = count_run_parameters(r, vocab_size).total;
    RunConfig r1 = r;
    r1.intermediate += 1;
    const int64_t slope = count_run_parameters(r1, vocab_size).total - t0;
    const int64_t width =
        r.intermediate +
        static_cast<int64_t>(std::llround(static_cast<double>(target_total - t0) / static_cast<double>(slope)));
    if (slope > 0 && width >= 1) {
      r.intermediate = width;
      const double g = gap(r);
      if (g < best_gap) best = r, best_gap = g;
    }
  }
  LOUPE_CHECK(best_gap <= tolerance, "unix matched_control: no shared model within ", tolerance * 100, "% of ",
              target_total, " parameters (closest: ", count_run_parameters(best, vocab_size).total, ")");
  return best;
}

std::vector<ExperimentArm> experiment_arms(const ExperimentConfig& config, int64_t vocab_size) {
  LOUPE_CHECK(config.separated >= 1 && 2 * config.separated < config.base.layers,
              "unix experiment: --separated N must leave a shared middle: 1 <= N and 2 N < L = ", config.base.layers,
              ", got N = ", config.separated);
  RunConfig shared = config.base;
  shared.arm = "shared";
  shared.front = shared.back = 0;
  RunConfig unix_run = config.base;
  unix_run.arm = "unix";
  unix_run.front = unix_run.back = config.separated;
  const ParameterCount unix_params = count_run_parameters(unix_run, vocab_size);
  const RunConfig matched = matched_control(shared, unix_params.total, vocab_size, config.match_tolerance);
  const std::string l = std::to_string(config.base.layers), n = std::to_string(config.separated);
  std::string matched_shape = "L" + std::to_string(matched.layers);
  if (matched.intermediate != shared.intermediate) matched_shape += ", MLP " + std::to_string(matched.intermediate);
  std::vector<ExperimentArm> arms = {
      {"shared", "Shared-L" + l, shared, count_run_parameters(shared, vocab_size), "Shared-L" + l},
      {"unix", "Uni-X-L" + l + " (N=" + n + ", M=" + n + ")", unix_run, unix_params, "Uni-X-L" + l + " (N=M=" + n + ")"},
      {"matched", "Shared-" + matched_shape + " (total-parameter-matched)", matched,
       count_run_parameters(matched, vocab_size), "Shared-" + matched_shape + " (matched)"},
  };
  if (config.with_mot) {
    RunConfig mot = shared;
    mot.arm = "mot";
    arms.push_back({"mot", "MoT-L" + l + " (Mixture-of-Transformers)", mot, count_run_parameters(mot, vocab_size),
                    "MoT-L" + l});
  }
  return arms;
}

std::string machine_description() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, model = "unknown CPU";
  int64_t cpus = 0;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos && model == "unknown CPU") model = line.substr(colon + 2);
      ++cpus;
    }
  }
  return model + ", " + std::to_string(cpus) + " logical CPUs, " + std::to_string(num_threads()) + " engine threads";
}

ExperimentResult run_experiment(const ExperimentConfig& config, const DataConfig& data_config,
                                const ExperimentCallbacks& callbacks, const std::string& model_dir, Device device) {
  LOUPE_CHECK(!config.seeds.empty(), "unix experiment: needs at least one seed");
  const auto start = std::chrono::steady_clock::now();
  const auto say = [&](const std::string& s) {
    if (callbacks.progress) callbacks.progress(s);
  };
  ExperimentResult result;
  result.config = config;
  result.machine = machine_description() + (device.is_cuda() ? ", trained on " + device.str() : "");
  for (uint64_t seed : config.seeds) {
    DataConfig dc = data_config;
    dc.seed = seed;
    dc.source = config.base.dataset;
    const UnixData data = load_unix_data(dc);
    if (result.arms.empty()) {
      result.vocab_size = data.vocab.size();
      result.seq_len = data.seq_len();
      result.arms = experiment_arms(config, result.vocab_size);
      for (const ExperimentArm& a : result.arms) {
        say(a.description + ": " + std::to_string(a.params.total) + " parameters, " + std::to_string(a.params.active) +
            " active per token");
      }
    }
    LOUPE_CHECK(data.vocab.size() == result.vocab_size, "unix experiment: seed ", seed, " gives a vocabulary of ",
                data.vocab.size(), " tokens, seed ", config.seeds.front(), " gave ", result.vocab_size);
    const HeldoutSet heldout = heldout_set(data, config.base.eval_sequences);
    // The same conflict batches for every arm of this seed.
    const ConflictBatches batches = conflict_batches(data, config.conflict_batches, config.conflict_batch_size, seed);
    for (const ExperimentArm& arm : result.arms) {
      RunConfig run = arm.run;
      run.seed = seed;
      Generator generator(seed);
      UnixLM lm(model_config(run, data.vocab.size()), &generator);
      lm.to(device);
      ArmSeedResult r;
      r.arm = arm.name;
      r.seed = seed;
      const bool has_shared = run.arm != "mot";
      if (has_shared) r.conflict_initial = run_conflict(lm, data.vocab, batches, 0, seed);
      r.train = train_run(lm, data, run);
      r.tokens_per_second = r.train.tokens / std::max(r.train.seconds, 1e-9);
      lm.eval();
      r.heldout = heldout_losses(lm, data.vocab, heldout.all(), data.seq_len());
      if (has_shared) r.conflict_final = run_conflict(lm, data.vocab, batches, run.steps, seed);
      if (!model_dir.empty()) {
        save_run_model(lm, run, model_dir + "/" + arm.name + "_seed" + std::to_string(seed) + ".safetensors");
      }
      char line[256];
      std::snprintf(
          line, sizeof line, "%s seed %llu: held-out image %.4f caption %.4f text %.4f, %.0f tokens/s, %.1f s",
          arm.description.c_str(), static_cast<unsigned long long>(seed), r.heldout[Modality::image].loss,
          r.heldout[Modality::caption].loss, r.heldout[Modality::text].loss, r.tokens_per_second, r.train.seconds);
      say(line);
      result.runs.push_back(std::move(r));
      result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (callbacks.run_done) callbacks.run_done(result);
    }
  }
  return result;
}

MeanStd mean_std(const std::vector<double>& values) {
  MeanStd m;
  m.n = static_cast<int64_t>(values.size());
  if (values.empty()) {
    m.mean = std::nan("");
    return m;
  }
  for (double v : values) m.mean += v;
  m.mean /= static_cast<double>(values.size());
  if (values.size() > 1) {
    double var = 0.0;
    for (double v : values) var += (v - m.mean) * (v - m.mean);
    m.std = std::sqrt(var / static_cast<double>(values.size() - 1));
  }
  return m;
}

MeanStd arm_heldout(const ExperimentResult& result, const std::string& arm, Modality m) {
  std::vector<double> v;
  for (const ArmSeedResult& r : result.runs) {
    if (r.arm == arm) v.push_back(r.heldout.at(m).loss);
  }
  return mean_std(v);
}

MeanStd arm_tokens_per_second(const ExperimentResult& result, const std::string& arm) {
  std::vector<double> v;
  for (const ArmSeedResult& r : result.runs) {
    if (r.arm == arm) v.push_back(r.tokens_per_second);
  }
  return mean_std(v);
}

std::vector<Contrast> experiment_contrasts(const ExperimentResult& result) {
  std::vector<Contrast> out;
  const int64_t n = result.config.separated;
  for (const ExperimentArm& arm : result.arms) {
    if (arm.run.arm == "mot") continue;  // no conflict measured
    Contrast middle{arm.name + ": mean conflict of the middle layers [" + std::to_string(n) + ", " +
                        std::to_string(arm.run.layers - n) + ")",
                    {},
                    {}};
    Contrast u{arm.name + ": ends - middle (layers 0 and " + std::to_string(arm.run.layers - 1) + " minus [" +
                   std::to_string(n) + ", " + std::to_string(arm.run.layers - n) + "))",
               {},
               {}};
    for (const ArmSeedResult& r : result.runs) {
      if (r.arm != arm.name) continue;
      std::map<int64_t, double> conflict;
      for (const ConflictRow& row : r.conflict_final) {
        if (row.kind == "all") conflict[row.layer] = row.conflict;
      }
      double sum = 0.0;
      int64_t count = 0;
      for (int64_t l = n; l < arm.run.layers - n; ++l) {
        if (conflict.count(l)) sum += conflict[l], ++count;
      }
      const double mid = count > 0 ? sum / static_cast<double>(count) : std::nan("");
      middle.per_seed.push_back(mid);
      if (conflict.count(0) && conflict.count(arm.run.layers - 1)) {
        u.per_seed.push_back((conflict[0] + conflict[arm.run.layers - 1]) / 2.0 - mid);
      }
    }
    middle.summary = mean_std(middle.per_seed);
    u.summary = mean_std(u.per_seed);
    if (!middle.per_seed.empty()) out.push_back(middle);
    if (!u.per_seed.empty()) out.push_back(u);
  }
  return out;
}

namespace {

const std::vector<Modality> kModalities = {Modality::image, Modality::caption, Modality::text};

std::string num(double v) {
  if (!std::isfinite(v)) return "null";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.9g", v);
  return buffer;
}

std::string mean_std_json(const MeanStd& m) {
  return "{\"mean\": " + num(m.mean) + ", \"std\": " + num(m.std) + ", \"n\": " + std::to_string(m.n) + "}";
}

// One profile per arm: its rows at the initialisation or after training, over the seeds run so far.
std::vector<ConflictProfile> profiles(const ExperimentResult& result, bool final) {
  std::vector<ConflictProfile> out;
  for (const ExperimentArm& arm : result.arms) {
    if (arm.run.arm == "mot") continue;  // nothing shared to measure
    ConflictProfile p;
    p.label = arm.label;  // the section heading says trained or initial
    for (const ArmSeedResult& r : result.runs) {
      if (r.arm == arm.name) p.seeds.push_back(final ? r.conflict_final : r.conflict_initial);
    }
    if (!p.seeds.empty()) out.push_back(std::move(p));
  }
  return out;
}

}  // namespace

std::string experiment_json(const ExperimentResult& result, const std::string& command) {
  const ExperimentConfig& c = result.config;
  std::ostringstream j;
  j << "{\n  \"command\": " << json::quote(command) << ",\n  \"machine\": " << json::quote(result.machine)
    << ",\n  \"seconds\": " << num(result.seconds) << ",\n  \"config\": {\"layers\": " << c.base.layers
    << ", \"hidden\": " << c.base.hidden << ", \"heads\": " << c.base.heads << ", \"steps\": " << c.base.steps
    << ", \"batch_size\": " << c.base.batch_size << ", \"lr\": " << num(c.base.lr)
    << ", \"eval_sequences\": " << c.base.eval_sequences << ", \"dataset\": " << json::quote(c.base.dataset)
    << ", \"separated\": " << c.separated << ", \"seeds\": [";
  for (size_t i = 0; i < c.seeds.size(); ++i) j << (i ? ", " : "") << c.seeds[i];
  j << "], \"conflict_batches\": " << c.conflict_batches << ", \"conflict_batch_size\": " << c.conflict_batch_size
    << ", \"match_tolerance\": " << num(c.match_tolerance) << "},\n  \"vocab_size\": " << result.vocab_size
    << ",\n  \"seq_len\": " << result.seq_len << ",\n  \"arms\": [";
  for (size_t i = 0; i < result.arms.size(); ++i) {
    const ExperimentArm& a = result.arms[i];
    j << (i ? "," : "") << "\n    {\"name\": " << json::quote(a.name)
      << ", \"description\": " << json::quote(a.description) << ", \"layers\": " << a.run.layers
      << ", \"hidden\": " << a.run.hidden
      << ", \"intermediate\": " << model_config(a.run, result.vocab_size).intermediate
      << ", \"separated_front\": " << a.run.front << ", \"separated_back\": " << a.run.back
      << ", \"parameters_total\": " << a.params.total << ", \"parameters_active\": " << a.params.active << "}";
  }
  j << "\n  ],\n  \"summary\": [";
  for (size_t i = 0; i < result.arms.size(); ++i) {
    const std::string& arm = result.arms[i].name;
    j << (i ? "," : "") << "\n    {\"arm\": " << json::quote(arm) << ", \"heldout_loss\": {";
    for (size_t k = 0; k < kModalities.size(); ++k) {
      j << (k ? ", " : "") << "\"" << modality_name(kModalities[k])
        << "\": " << mean_std_json(arm_heldout(result, arm, kModalities[k]));
    }
    j << "}, \"tokens_per_second\": " << mean_std_json(arm_tokens_per_second(result, arm)) << "}";
  }
  j << "\n  ],\n  \"runs\": [";
  for (size_t i = 0; i < result.runs.size(); ++i) {
    const ArmSeedResult& r = result.runs[i];
    j << (i ? "," : "") << "\n    {\"arm\": " << json::quote(r.arm) << ", \"seed\": " << r.seed
      << ", \"heldout_loss\": {";
    for (size_t k = 0; k < kModalities.size(); ++k) {
      j << (k ? ", " : "") << "\"" << modality_name(kModalities[k]) << "\": " << num(r.heldout.at(kModalities[k]).loss);
    }
    j << "}, \"tokens_per_second\": " << num(r.tokens_per_second) << ", \"train_seconds\": " << num(r.train.seconds)
      << ", \"train_loss_first\": " << num(r.train.first_loss) << ", \"train_loss_last\": " << num(r.train.last_loss)
      << "}";
  }
  j << "\n  ],\n  \"contrasts\": [";
  const std::vector<Contrast> contrasts = experiment_contrasts(result);
  for (size_t i = 0; i < contrasts.size(); ++i) {
    j << (i ? "," : "") << "\n    {\"name\": " << json::quote(contrasts[i].name) << ", \"per_seed\": [";
    for (size_t k = 0; k < contrasts[i].per_seed.size(); ++k) j << (k ? ", " : "") << num(contrasts[i].per_seed[k]);
    j << "], \"summary\": " << mean_std_json(contrasts[i].summary) << "}";
  }
  j << "\n  ],\n  \"conflict_by_depth\": [";
  const char* sep = "";
  for (bool final : {false, true}) {
    for (const ConflictProfile& p : profiles(result, final)) {
      const DepthCurve conflict = depth_curve(p, ConflictField::conflict);
      const DepthCurve raw = depth_curve(p, ConflictField::cos_text_mm);
      const DepthCurve base = depth_curve(p, ConflictField::cos_a_b);
      const DepthCurve within = depth_curve(p, ConflictField::within_batch);
      j << sep << "\n    {\"profile\": " << json::quote(p.label) << ", \"seeds\": " << p.seeds.size()
        << ", \"layers\": [";
      sep = ",";
      for (size_t i = 0; i < raw.layer.size(); ++i) {
        const auto at = [&](const DepthCurve& d) {
          for (size_t k = 0; k < d.layer.size(); ++k) {
            if (d.layer[k] == raw.layer[i]) return "{\"mean\": " + num(d.mean[k]) + ", \"std\": " + num(d.std[k]) + "}";
          }
          return std::string("null");
        };
        j << (i ? ", " : "") << "\n      {\"layer\": " << raw.layer[i] << ", \"conflict\": " << at(conflict)
          << ", \"cos_text_mm\": " << at(raw) << ", \"cos_a_b\": " << at(base)
          << ", \"within_batch_cos_not_paper_metric\": " << at(within) << "}";
      }
      j << "]}";
    }
  }
  j << "\n  ]\n}\n";
  return j.str();
}

std::string experiment_html(const ExperimentResult& result, const std::string& command) {
  const ExperimentConfig& c = result.config;
  report::HtmlPage page("Uni-X experiment: shared vs two-end-separated vs parameter-matched shared");
  std::ostringstream setup;
  setup << "Command: " << command << ". Machine: " << result.machine << ". " << result.runs.size() << " runs in "
        << report::format_number(result.seconds, 4) << " s. Each arm: " << c.base.steps << " Adam steps of "
        << c.base.batch_size << " sequences (half image-caption, half text-only), lr "
        << report::format_number(c.base.lr, 3) << ", hidden " << c.base.hidden << ", " << c.base.heads
        << " heads; same seeds, data split and data order for every arm.";
  page.paragraph(setup.str());
  page.heading("Arms");
  std::vector<std::vector<std::string>> arm_rows;
  for (const ExperimentArm& a : result.arms) {
    arm_rows.push_back({a.description, std::to_string(a.run.layers), std::to_string(a.run.front),
                        std::to_string(a.run.back), std::to_string(a.run.hidden), std::to_string(a.params.total),
                        std::to_string(a.params.active)});
  }
  page.table({"arm", "L", "N", "M", "hidden", "total parameters", "active parameters"}, arm_rows);
  page.heading("Held-out masked loss per modality (nats per token, mean ± std over seeds)");
  std::vector<std::vector<std::string>> loss_rows;
  for (const ExperimentArm& a : result.arms) {
    std::vector<std::string> row = {a.description};
    for (Modality m : kModalities) {
      const MeanStd s = arm_heldout(result, a.name, m);
      row.push_back(report::format_mean_std(s.mean, s.std, 4));
    }
    const MeanStd t = arm_tokens_per_second(result, a.name);
    row.push_back(report::format_mean_std(t.mean, t.std, 3));
    row.push_back(std::to_string(a.params.total));
    row.push_back(std::to_string(a.params.active));
    row.push_back(std::to_string(arm_tokens_per_second(result, a.name).n));
    loss_rows.push_back(row);
  }
  page.table({"arm", "image tokens", "captions", "text-only", "tokens/s", "total params", "active params", "seeds"},
             loss_rows);

  // Training loss (mean over seeds, smoothed over 10 steps).
  report::LinePlot curve;
  curve.title = "Training loss (mean over seeds, running mean of 10 steps)";
  curve.x_label = "step";
  curve.y_label = "masked loss";
  for (const ExperimentArm& a : result.arms) {
    std::vector<double> sum;
    int64_t n = 0;
    for (const ArmSeedResult& r : result.runs) {
      if (r.arm != a.name) continue;
      if (sum.empty()) sum.assign(r.train.losses.size(), 0.0);
      for (size_t i = 0; i < sum.size() && i < r.train.losses.size(); ++i) sum[i] += r.train.losses[i];
      ++n;
    }
    if (n == 0) continue;
    report::Series s;
    s.label = a.label;
    const size_t stride = std::max<size_t>(1, sum.size() / 100);
    for (size_t i = 0; i < sum.size(); i += stride) {
      double acc = 0.0;
      size_t count = 0;
      for (size_t k = i >= 9 ? i - 9 : 0; k <= i; ++k) acc += sum[k], ++count;
      s.x.push_back(static_cast<double>(i + 1));
      s.y.push_back(acc / static_cast<double>(count * static_cast<size_t>(n)));
    }
    curve.series.push_back(std::move(s));
  }
  if (!curve.series.empty()) page.raw("<figure>" + report::svg_line_plot(curve) + "</figure>");

  page.heading("Gradient conflict by depth after training (shared layers only; mean ± std over seeds)");
  page.paragraph(
      "conflict = -(cos(g_t, g_m) - cos(g_A, g_B)) per layer, over all its weight matrices; g_t, g_m: "
      "mean gradients of " +
      std::to_string(c.conflict_batches) + " text-only and " + std::to_string(c.conflict_batches) +
      " image-text batches of " + std::to_string(c.conflict_batch_size) +
      " training sequences; g_A, g_B: two random halves of "
      "those batches. The raw and the baseline cosine are shown beside the conflict. Uni-X has no point "
      "at its separated first and last layers. The within-batch cosine is NOT the paper's metric.");
  const std::vector<ConflictProfile> trained = profiles(result, true);
  page.raw(conflict_depth_svgs(trained));
  page.table(conflict_depth_table_header(), conflict_depth_table(trained));
  page.heading("Pre-registered contrasts (trained models; conflict of the per-layer \"all\" rows)");
  std::vector<std::vector<std::string>> contrast_rows;
  for (const Contrast& k : experiment_contrasts(result)) {
    std::string seeds;
    for (double v : k.per_seed) seeds += (seeds.empty() ? "" : ", ") + report::format_number(v, 3);
    contrast_rows.push_back({k.name, report::format_mean_std(k.summary.mean, k.summary.std, 3), seeds});
  }
  page.table({"contrast", "mean ± std over seeds", "per seed"}, contrast_rows);
  page.heading("Gradient conflict by depth at initialisation");
  const std::vector<ConflictProfile> initial = profiles(result, false);
  page.raw(conflict_depth_svgs(initial));
  page.table(conflict_depth_table_header(), conflict_depth_table(initial));
  return page.str();
}

}  // namespace loupe::unix
