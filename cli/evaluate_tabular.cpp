// `loupe evaluate-explanations tabular`: the experiments of Han, Srinivas and Lakkaraju 2022
// ("Which explanation should I choose?") on scikit-learn's tabular data sets.
//
//   loupe evaluate-explanations tabular [--quick] --out DIR [--datasets breast_cancer,wine,diabetes]
//         [--models linear,mlp3,mlp5,mlp8] [--points 100] [--perturbations 1000] [--seed 0] [--json]
//
// For each data set (tabular.hpp: min-max normalised, 70/30 split) and model (logistic or linear
// regression, MLPs of width 8 with 3, 5 and 8 layers, trained here with Adam), it explains the
// first --points test points with the eight methods and runs lfa_experiment.hpp: method-vs-LFA
// agreement, no-free-lunch LFA losses, model recovery, SmoothGrad -> VG and IG -> GxI
// convergence, PGI/PGU curves. Writes into DIR (atomically, file by file):
//   results.json            everything below, plus the settings
//   models.csv              test accuracy / R^2 and timings per model
//   identity.csv            method vs the LFA fit of its own instance on the same draws
//   agreement.csv           method x LFA instance (independent draws): L1 and cosine distance (mean, standard error)
//   lfa_loss.csv            method x neighbourhood: LFA loss (mean, standard error), and paired
//                           minus the neighbourhood's own method
//   recovery.csv            linear models: cosine distance to w and to w * x
//   convergence.csv         relative L1 distance of SmoothGrad to VG and of IG to GxI
//   perturbation_gap.csv    PGI / PGU per k; perturbation_gap_auc.csv their AUC
//   report.html             the tables and SVG plots
// Prints a short summary (or, with --json, results.json); progress goes to stderr on a terminal.
// Tests: tests/explain/test_evaluate_tabular_cli.cpp (runs this program with --quick).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "cli/progress.hpp"
#include "explain/evaluate/lfa_experiment.hpp"
#include "report/html.hpp"
#include "report/svg_plot.hpp"
#include "tensor/error.hpp"
#include "tensor/io/json.hpp"

namespace loupe::cli {

namespace {

namespace lfa = explain::lfa;
namespace tab = explain::tabular;

const std::vector<OptionSpec> kOptions = {
    {"quick", "", "",
     "a small run (~10-30 s): 10 points, 200 perturbations, 20 Gaussian gap draws, 500 training steps"},
    {"datasets", "LIST", "breast_cancer,wine,diabetes", "comma-separated data sets"},
    {"models", "LIST", "linear,mlp3,mlp5,mlp8", "comma-separated models (linear: logistic or linear regression)"},
    {"points", "N", "", "test points explained per model (default 100, --quick 10; at most the test split)"},
    {"perturbations", "N", "", "samples per point for every sampled method and LFA fit (default 1000, --quick 200)"},
    {"gap-samples", "N", "", "Gaussian PGI/PGU draws per point and k (default 100, --quick 20)"},
    {"ig-steps", "N", "50", "integrated gradients: Gauss-Legendre steps"},
    {"steps", "N", "", "full-batch Adam training steps (default 2000, --quick 500)"},
    {"seed", "K", "0", "split, initialisation and all random draws"},
    {"data", "DIR", "", "folder of sklearn's CSV files (default: $LOUPE_SKLEARN_DATA or the copy ./run extracts)"},
    {"out", "DIR", "runs/evaluate-tabular", "output folder (created if missing)"},
    {"json", "", "", "print results.json instead of the summary"},
};

const char* kSummary =
    "LFA framework experiments (Han et al. 2022) on sklearn's breast cancer, wine and diabetes data:\n"
    "method-vs-LFA agreement, no-free-lunch LFA losses, model recovery, SmoothGrad -> VG and IG -> GxI\n"
    "convergence, PGI/PGU curves. Writes CSV and JSON tables and report.html into DIR.";

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream s(text);
  std::string item;
  while (std::getline(s, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

std::string num(double v) {
  if (!std::isfinite(v)) return "null";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.9g", v);
  return buffer;
}

std::string stat_json(const lfa::Stat& s) { return "{\"mean\": " + num(s.mean) + ", \"se\": " + num(s.se) + "}"; }

std::string stat_text(const lfa::Stat& s) { return report::format_mean_std(s.mean, s.se, 3); }

// A (methods x columns) JSON object of objects.
std::string matrix_json(const std::vector<lfa::Method>& methods, const std::vector<std::vector<lfa::Stat>>& m) {
  std::string out = "{";
  for (size_t i = 0; i < methods.size(); ++i) {
    out += (i ? ", " : "") + json::quote(lfa::method_key(methods[i])) + ": {";
    for (size_t j = 0; j < methods.size(); ++j)
      out += (j ? ", " : "") + json::quote(lfa::method_key(methods[j])) + ": " + stat_json(m[i][j]);
    out += "}";
  }
  return out + "}";
}

std::string gap_json(const explain::PerturbationGap& g) {
  std::string out = "{\"k\": [";
  for (size_t i = 0; i < g.k.size(); ++i) out += (i ? ", " : "") + std::to_string(g.k[i]);
  out += "], \"mean\": [";
  for (size_t i = 0; i < g.mean.size(); ++i) out += (i ? ", " : "") + num(g.mean[i]);
  out += "], \"se\": [";
  for (size_t i = 0; i < g.standard_error.size(); ++i) out += (i ? ", " : "") + num(g.standard_error[i]);
  return out + "], \"auc\": " + num(g.auc) + "}";
}

struct Run {
  lfa::ExperimentResult result;
  std::string task;
  double train_seconds = 0.0, train_loss = 0.0;
};

// The methods with the lowest mean LFA loss on neighbourhood i: ties (within 1e-9 of the column's
// largest loss: on a linear model several methods are exact) are all winners.
std::vector<size_t> winners(const lfa::ExperimentResult& r, size_t i) {
  double lo = r.lfa_loss[0][i].mean, hi = lo;
  for (size_t m = 1; m < r.methods.size(); ++m) {
    lo = std::min(lo, r.lfa_loss[m][i].mean);
    hi = std::max(hi, r.lfa_loss[m][i].mean);
  }
  std::vector<size_t> out;
  for (size_t m = 0; m < r.methods.size(); ++m)
    if (r.lfa_loss[m][i].mean <= lo + 1e-9 * std::abs(hi)) out.push_back(m);
  return out;
}

bool wins_own(const lfa::ExperimentResult& r, size_t i) {
  for (size_t m : winners(r, i))
    if (m == i) return true;
  return false;
}

std::string winner_names(const lfa::ExperimentResult& r, size_t i) {
  std::string out;
  for (size_t m : winners(r, i)) out += (out.empty() ? "" : " = ") + lfa::method_name(r.methods[m]);
  return out;
}

void add_gap_plot(report::HtmlPage& page, const lfa::ExperimentResult& r, const std::string& title,
                  const std::vector<explain::PerturbationGap>& gaps) {
  report::LinePlot plot;
  plot.title = title;
  plot.x_label = "k (features perturbed)";
  plot.y_label = "mean |f(x) - f(x')|";
  for (size_t m = 0; m < r.methods.size(); ++m) {
    report::Series s;
    s.label = lfa::method_name(r.methods[m]);
    for (int64_t k : gaps[m].k) s.x.push_back(static_cast<double>(k));
    s.y = gaps[m].mean;
    s.err = gaps[m].standard_error;
    plot.series.push_back(s);
  }
  page.raw(report::svg_line_plot(plot));
}

}  // namespace

int run_evaluate_tabular(int argc, char** argv) {
  const Args args(kOptions, argc, argv, 3);
  if (args.help()) {
    std::cout << usage("evaluate-explanations tabular", kSummary, kOptions);
    return 0;
  }
  const bool quick = args.flag("quick");
  const auto positive = [&](const std::string& name, int64_t fallback) {
    if (args.get(name).empty()) return fallback;
    const int64_t value = args.get_int(name);
    LOUPE_CHECK(value >= 1, "evaluate-explanations tabular: option --", name, " must be positive, got ", value);
    return value;
  };
  const int64_t points = positive("points", quick ? 10 : 100);
  lfa::ExperimentOptions options;
  options.perturbations = positive("perturbations", quick ? 200 : 1000);
  LOUPE_CHECK(options.perturbations >= 2, "evaluate-explanations tabular: --perturbations must be >= 2");
  options.gap_samples = positive("gap-samples", quick ? 20 : 100);
  const int64_t steps = positive("steps", quick ? 500 : 2000);
  options.ig_steps = positive("ig-steps", 50);
  const int64_t seed = args.get_int("seed");
  LOUPE_CHECK(seed >= 0, "evaluate-explanations tabular: --seed must be >= 0, got ", seed);
  options.seed = static_cast<uint64_t>(seed);
  const std::vector<std::string> datasets = split_list(args.get("datasets"));
  LOUPE_CHECK(!datasets.empty(), "evaluate-explanations tabular: --datasets is empty");
  for (const std::string& name : datasets) tab::dataset_files(name);  // unknown names fail before any work
  std::vector<tab::ModelKind> kinds;
  for (const std::string& name : split_list(args.get("models"))) {
    bool found = false;
    for (tab::ModelKind k : tab::model_kinds())
      if (tab::model_name(k) == name) kinds.push_back(k), found = true;
    LOUPE_CHECK(found, "evaluate-explanations tabular: unknown model '", name, "' (known: linear, mlp3, mlp5, mlp8)");
  }
  LOUPE_CHECK(!kinds.empty(), "evaluate-explanations tabular: --models is empty");
  const std::string out_dir = args.get("out");
  std::filesystem::create_directories(out_dir);

  std::vector<Run> runs;
  const auto total = static_cast<int64_t>(datasets.size() * kinds.size());
  ProgressBar bar("evaluate tabular", total * 6);
  int64_t done_models = 0;
  for (const std::string& name : datasets) {
    const tab::Dataset data = tab::load(name, args.get("data"));
    const tab::Split split = tab::split(data, 0.3, options.seed);
    const Tensor test_points = ops::narrow(split.x_test, 0, 0, std::min(points, split.x_test.size(0)));
    for (tab::ModelKind kind : kinds) {
      tab::TrainOptions train_options;
      train_options.steps = steps;
      train_options.seed = options.seed * 16 + static_cast<uint64_t>(kind);
      const tab::Trained trained = tab::train(kind, data, split, train_options);
      Run run;
      run.task = data.task;
      run.train_seconds = trained.train_seconds;
      run.train_loss = trained.train_loss;
      run.result = lfa::run_experiment(data, trained, test_points, options, [&](int64_t done, int64_t) {
        bar.update(done_models * 6 + done, name + " " + trained.model.name());
      });
      ++done_models;
      runs.push_back(std::move(run));
    }
  }
  bar.finish();

  const std::vector<lfa::Method>& methods = lfa::all_methods();
  const std::filesystem::path dir(out_dir);
  // --- CSV tables ---
  std::ostringstream identity_csv, models_csv, agreement_csv, loss_csv, recovery_csv, convergence_csv, gap_csv, auc_csv;
  models_csv << "dataset,model,task,test_metric,train_loss,train_seconds,points,features,experiment_seconds\n";
  identity_csv << "dataset,model,method,l1_mean,l1_se,cosine_mean,cosine_se\n";
  agreement_csv << "dataset,model,method,lfa_instance,l1_mean,l1_se,cosine_mean,cosine_se\n";
  loss_csv << "dataset,model,method,neighbourhood,loss_mean,loss_se,minus_own_mean,minus_own_se\n";
  recovery_csv << "dataset,model,method,output,cosine_to_w_mean,cosine_to_w_se,cosine_to_wx_mean,cosine_to_wx_se\n";
  convergence_csv << "dataset,model,series,parameter,relative_l1_mean,relative_l1_se\n";
  gap_csv << "dataset,model,method,metric,perturbation,k,mean,se\n";
  auc_csv << "dataset,model,method,metric,perturbation,auc\n";
  for (const Run& run : runs) {
    const lfa::ExperimentResult& r = run.result;
    const std::string key = r.dataset + "," + r.model + ",";
    models_csv << key << json::quote(run.task) << "," << num(r.test_metric) << "," << num(run.train_loss) << ","
               << num(run.train_seconds) << "," << r.points << "," << r.features << "," << num(r.seconds) << "\n";
    for (size_t m = 0; m < methods.size(); ++m) {
      const std::string mk = key + lfa::method_key(methods[m]) + ",";
      identity_csv << mk << num(r.identity_l1[m].mean) << "," << num(r.identity_l1[m].se) << ","
                   << num(r.identity_cosine[m].mean) << "," << num(r.identity_cosine[m].se) << "\n";
      for (size_t i = 0; i < methods.size(); ++i) {
        agreement_csv << mk << lfa::method_key(methods[i]) << "," << num(r.agreement_l1[m][i].mean) << ","
                      << num(r.agreement_l1[m][i].se) << "," << num(r.agreement_cosine[m][i].mean) << ","
                      << num(r.agreement_cosine[m][i].se) << "\n";
        loss_csv << mk << lfa::method_key(methods[i]) << "," << num(r.lfa_loss[m][i].mean) << ","
                 << num(r.lfa_loss[m][i].se) << "," << num(r.lfa_loss_minus_own[m][i].mean) << ","
                 << num(r.lfa_loss_minus_own[m][i].se) << "\n";
      }
      if (r.has_recovery) {
        recovery_csv << mk << "explained," << num(r.recovery_w[m].mean) << "," << num(r.recovery_w[m].se) << ","
                     << num(r.recovery_wx[m].mean) << "," << num(r.recovery_wx[m].se) << "\n";
        recovery_csv << mk << "logit," << num(r.recovery_w_logit[m].mean) << "," << num(r.recovery_w_logit[m].se) << ","
                     << num(r.recovery_wx_logit[m].mean) << "," << num(r.recovery_wx_logit[m].se) << "\n";
      }
      const std::pair<const char*, const std::vector<explain::PerturbationGap>*> gaps[] = {
          {"pgi,zero", &r.pgi_zero},
          {"pgu,zero", &r.pgu_zero},
          {"pgi,gaussian", &r.pgi_gaussian},
          {"pgu,gaussian", &r.pgu_gaussian}};
      for (const auto& [label, list] : gaps) {
        const explain::PerturbationGap& g = (*list)[m];
        for (size_t k = 0; k < g.k.size(); ++k)
          gap_csv << mk << label << "," << g.k[k] << "," << num(g.mean[k]) << "," << num(g.standard_error[k]) << "\n";
        auc_csv << mk << label << "," << num(g.auc) << "\n";
      }
    }
    for (size_t i = 0; i < options.convergence_stdevs.size(); ++i)
      convergence_csv << key << "smoothgrad_to_vg," << num(options.convergence_stdevs[i]) << ","
                      << num(r.smoothgrad_to_vg[i].mean) << "," << num(r.smoothgrad_to_vg[i].se) << "\n";
    for (size_t i = 0; i < options.convergence_lows.size(); ++i)
      convergence_csv << key << "ig_to_gxi," << num(options.convergence_lows[i]) << "," << num(r.ig_to_gxi[i].mean)
                      << "," << num(r.ig_to_gxi[i].se) << "\n";
  }
  write_text_atomic((dir / "models.csv").string(), models_csv.str());
  write_text_atomic((dir / "identity.csv").string(), identity_csv.str());
  write_text_atomic((dir / "agreement.csv").string(), agreement_csv.str());
  write_text_atomic((dir / "lfa_loss.csv").string(), loss_csv.str());
  write_text_atomic((dir / "recovery.csv").string(), recovery_csv.str());
  write_text_atomic((dir / "convergence.csv").string(), convergence_csv.str());
  write_text_atomic((dir / "perturbation_gap.csv").string(), gap_csv.str());
  write_text_atomic((dir / "perturbation_gap_auc.csv").string(), auc_csv.str());

  // --- JSON ---
  std::ostringstream json;
  json << "{\n  \"command\": \"evaluate-explanations tabular\",\n  \"quick\": " << (quick ? "true" : "false")
       << ",\n  \"settings\": {\"points\": " << points << ", \"perturbations\": " << options.perturbations
       << ", \"gap_samples\": " << options.gap_samples << ", \"gap_stdev\": " << num(options.gap_stdev)
       << ", \"stdev\": " << num(options.stdev) << ", \"kernel_width\": " << num(options.kernel_width)
       << ", \"ig_steps\": " << options.ig_steps << ", \"training_steps\": " << steps << ", \"seed\": " << seed
       << "},\n  \"methods\": [";
  for (size_t m = 0; m < methods.size(); ++m) json << (m ? ", " : "") << json::quote(lfa::method_key(methods[m]));
  json << "],\n  \"runs\": [";
  for (size_t ri = 0; ri < runs.size(); ++ri) {
    const lfa::ExperimentResult& r = runs[ri].result;
    json << (ri ? ",\n" : "\n") << "    {\"dataset\": " << json::quote(r.dataset) << ", \"model\": " << json::quote(r.model)
         << ", \"task\": " << json::quote(runs[ri].task) << ", \"test_metric\": " << num(r.test_metric)
         << ", \"points\": " << r.points << ", \"features\": " << r.features << ", \"seconds\": " << num(r.seconds)
         << ",\n     \"identity\": {";
    for (size_t m = 0; m < methods.size(); ++m)
      json << (m ? ", " : "") << json::quote(lfa::method_key(methods[m])) << ": {\"l1\": " << stat_json(r.identity_l1[m])
           << ", \"cosine\": " << stat_json(r.identity_cosine[m]) << "}";
    json << "}"
         << ",\n     \"agreement_l1\": " << matrix_json(methods, r.agreement_l1)
         << ",\n     \"agreement_cosine\": " << matrix_json(methods, r.agreement_cosine)
         << ",\n     \"lfa_loss\": " << matrix_json(methods, r.lfa_loss)
         << ",\n     \"lfa_loss_minus_own\": " << matrix_json(methods, r.lfa_loss_minus_own);
    if (r.has_recovery) {
      json << ",\n     \"recovery\": {";
      for (size_t m = 0; m < methods.size(); ++m)
        json << (m ? ", " : "") << json::quote(lfa::method_key(methods[m])) << ": {\"to_w\": " << stat_json(r.recovery_w[m])
             << ", \"to_wx\": " << stat_json(r.recovery_wx[m])
             << ", \"to_w_logit\": " << stat_json(r.recovery_w_logit[m])
             << ", \"to_wx_logit\": " << stat_json(r.recovery_wx_logit[m]) << "}";
      json << "}";
    }
    json << ",\n     \"smoothgrad_to_vg\": [";
    for (size_t i = 0; i < r.smoothgrad_to_vg.size(); ++i)
      json << (i ? ", " : "") << "{\"stdev\": " << num(options.convergence_stdevs[i])
           << ", \"relative_l1\": " << stat_json(r.smoothgrad_to_vg[i]) << "}";
    json << "],\n     \"ig_to_gxi\": [";
    for (size_t i = 0; i < r.ig_to_gxi.size(); ++i)
      json << (i ? ", " : "") << "{\"lower_bound\": " << num(options.convergence_lows[i])
           << ", \"relative_l1\": " << stat_json(r.ig_to_gxi[i]) << "}";
    json << "],\n     \"perturbation_gap\": {";
    for (size_t m = 0; m < methods.size(); ++m)
      json << (m ? ",\n       " : "\n       ") << json::quote(lfa::method_key(methods[m]))
           << ": {\"pgi_zero\": " << gap_json(r.pgi_zero[m]) << ", \"pgu_zero\": " << gap_json(r.pgu_zero[m])
           << ", \"pgi_gaussian\": " << gap_json(r.pgi_gaussian[m])
           << ", \"pgu_gaussian\": " << gap_json(r.pgu_gaussian[m]) << "}";
    json << "}}";
  }
  json << "\n  ]\n}\n";
  write_text_atomic((dir / "results.json").string(), json.str());

  // --- HTML report ---
  report::HtmlPage page("Which explanation should I choose? LFA experiments on tabular data");
  page.paragraph(
      "Han, Srinivas and Lakkaraju 2022: every method is a local linear approximation of the model on "
      "its own neighbourhood with its own loss. " +
      std::to_string(points) + " test points per model, " + std::to_string(options.perturbations) +
      " perturbations per point, seed " + std::to_string(seed) +
      ". Every cell: mean ± standard error over the points.");
  std::vector<std::string> header = {"dataset", "model", "test metric"};
  for (lfa::Method m : methods) header.push_back("wins " + lfa::method_name(m) + " nbhd");
  std::vector<std::vector<std::string>> summary_rows;
  for (const Run& run : runs) {
    const lfa::ExperimentResult& r = run.result;
    std::vector<std::string> row = {r.dataset, r.model, report::format_number(r.test_metric, 3)};
    for (size_t i = 0; i < methods.size(); ++i) row.push_back(winner_names(r, i));
    summary_rows.push_back(row);
  }
  page.heading("No free lunch: lowest LFA loss per neighbourhood");
  page.table(header, summary_rows);
  std::vector<std::string> method_header = {"method"};
  for (lfa::Method m : methods) method_header.push_back(lfa::method_name(m));
  for (const Run& run : runs) {
    const lfa::ExperimentResult& r = run.result;
    page.heading(r.dataset + " / " + r.model + " (" + report::format_number(r.test_metric, 3) + ")");
    page.paragraph(run.task);
    auto matrix_rows = [&](const std::vector<std::vector<lfa::Stat>>& mat) {
      std::vector<std::vector<std::string>> rows;
      for (size_t m = 0; m < methods.size(); ++m) {
        std::vector<std::string> row = {lfa::method_name(methods[m])};
        for (size_t i = 0; i < methods.size(); ++i) row.push_back(stat_text(mat[m][i]));
        rows.push_back(row);
      }
      return rows;
    };
    page.heading("Identity on the same draws: method vs the LFA fit of its own instance", 3);
    std::vector<std::vector<std::string>> identity_rows;
    for (size_t m = 0; m < methods.size(); ++m)
      identity_rows.push_back(
          {lfa::method_name(methods[m]), stat_text(r.identity_l1[m]), stat_text(r.identity_cosine[m])});
    page.table({"method", "L1 distance", "cosine distance"}, identity_rows);
    page.heading("Agreement (independent draws): L1 distance, method (row) vs LFA fit of each instance (column)", 3);
    page.table(method_header, matrix_rows(r.agreement_l1));
    page.heading("Agreement: cosine distance", 3);
    page.table(method_header, matrix_rows(r.agreement_cosine));
    page.heading("LFA loss of each method (row) on each neighbourhood (column)", 3);
    page.table(method_header, matrix_rows(r.lfa_loss));
    page.heading("LFA loss minus the loss of the neighbourhood's own method (paired per point)", 3);
    page.table(method_header, matrix_rows(r.lfa_loss_minus_own));
    if (r.has_recovery) {
      page.heading("Model recovery: cosine distance to w and to w * x", 3);
      std::vector<std::vector<std::string>> rows;
      for (size_t m = 0; m < methods.size(); ++m)
        rows.push_back({lfa::method_name(methods[m]), stat_text(r.recovery_w[m]), stat_text(r.recovery_wx[m]),
                        stat_text(r.recovery_w_logit[m]), stat_text(r.recovery_wx_logit[m])});
      page.table({"method", "to w (explained output)", "to w*x (explained output)", "to w (logit)", "to w*x (logit)"},
                 rows);
    }
    report::LinePlot sg;
    sg.title = "SmoothGrad -> VG as the noise s -> 0";
    sg.x_label = "s";
    sg.y_label = "mean |SG - VG|_1 / mean |VG|_1";
    sg.log_x = true;
    report::Series sgs{.label = "SmoothGrad", .x = options.convergence_stdevs, .y = {}, .err = {}};
    for (const lfa::Stat& s : r.smoothgrad_to_vg) sgs.y.push_back(s.mean), sgs.err.push_back(s.se);
    sg.series.push_back(sgs);
    page.raw(report::svg_line_plot(sg));
    report::LinePlot ig;
    ig.title = "IG over a ~ U(c, 1) -> GxI as c -> 1";
    ig.x_label = "1 - c";
    ig.y_label = "mean |IG_c - GxI|_1 / mean |GxI|_1";
    ig.log_x = true;
    report::Series igs{.label = "IG", .x = {}, .y = {}, .err = {}};
    for (size_t i = 0; i < r.ig_to_gxi.size(); ++i) {
      igs.x.push_back(1.0 - options.convergence_lows[i]);
      igs.y.push_back(r.ig_to_gxi[i].mean);
      igs.err.push_back(r.ig_to_gxi[i].se);
    }
    ig.series.push_back(igs);
    page.raw(report::svg_line_plot(ig));
    add_gap_plot(page, r, "PGI, features set to 0 (higher is better)", r.pgi_zero);
    add_gap_plot(page, r, "PGU, features set to 0 (lower is better)", r.pgu_zero);
    add_gap_plot(page, r, "PGI, Gaussian noise (higher is better)", r.pgi_gaussian);
    add_gap_plot(page, r, "PGU, Gaussian noise (lower is better)", r.pgu_gaussian);
  }
  write_text_atomic((dir / "report.html").string(), page.str());

  if (args.flag("json")) {
    std::cout << json.str();
    return 0;
  }
  std::cout << "dataset        model              metric  identity L1 (max)  agreement L1 (diag mean)  "
               "own-neighbourhood wins\n";
  for (const Run& run : runs) {
    const lfa::ExperimentResult& r = run.result;
    double diag = 0.0, identity = 0.0;
    int wins = 0;
    for (size_t m = 0; m < methods.size(); ++m) {
      identity = std::max(identity, r.identity_l1[m].mean);
      diag += r.agreement_l1[m][m].mean / static_cast<double>(methods.size());
      wins += wins_own(r, m) ? 1 : 0;
    }
    char line[256];
    std::snprintf(line, sizeof line, "%-14s %-18s %6.3f  %-17s  %-24s  %d / %zu\n", r.dataset.c_str(), r.model.c_str(),
                  r.test_metric, report::format_number(identity, 3).c_str(), report::format_number(diag, 3).c_str(),
                  wins, methods.size());
    std::cout << line;
  }
  std::cout << "tables and report: " << (dir / "report.html").string() << "\n";
  return 0;
}

}  // namespace loupe::cli
