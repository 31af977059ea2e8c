// The experiments of Han, Srinivas and Lakkaraju 2022 on one trained tabular model and a set of
// test points: the eight methods (loupe's own implementations, each with its own random draws)
// against the LFA framework (explain/evaluate/lfa.hpp, independent draws).
//
//   identity     per method: L1 and cosine distance between the method's attribution and the LFA
//                fit of its own instance on the same random draws (the method's generator replayed;
//                IG: the LFA fit at its quadrature nodes with the rule's weights): rounding only
//   agreement    methods x LFA instances: L1 and cosine distance between the method's attribution
//                and the LFA fit of each instance (the paper's first experiment; the diagonal
//                should be near 0: each method is its own instance)
//   lfa_loss     methods x neighbourhoods: the LFA loss of each method's attribution on a fresh
//                draw of each instance's neighbourhood (no free lunch: each method should win its own)
//   recovery     linear models only: cosine distance of each attribution to w and to w * x, on the
//                explained output (the probability for logistic regression) and on the logit
//   convergence  SmoothGrad (noise stdev s) -> VG as s -> 0; IG over [c, 1] (baseline c x, divided
//                by 1 - c) -> GxI as c -> 1: mean L1 distance over the points divided by the
//                mean |b|_1 (b = VG or GxI)
//   gaps         PGI / PGU curves (perturbation_gap.hpp), zero and Gaussian perturbations
// Every number is a mean over the test points with its standard error.
//
// Method settings (REFERENCE.md sections 2-3): LIME Bernoulli(0.5) masks, euclidean kernel
// exp(-d^2 / w^2) with w = kernel_width, least squares; KernelSHAP sampled coalitions; occlusion
// one feature at a time; C-LIME and SmoothGrad absolute noise stdev; IG 50 Gauss-Legendre steps;
// all with the zero baseline and `perturbations` samples per point.
// Tests: tests/explain/test_evaluate_tabular_cli.cpp (through `loupe evaluate-explanations tabular`)
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "explain/evaluate/lfa.hpp"
#include "explain/evaluate/perturbation_gap.hpp"
#include "explain/evaluate/tabular.hpp"

namespace loupe::explain::lfa {

struct ExperimentOptions {
  int64_t perturbations = 1000;  // per point, for every sampled method and LFA fit
  double stdev = 0.1;            // C-LIME and SmoothGrad noise
  double kernel_width = 1.0;     // LIME
  int64_t ig_steps = 50;
  int64_t gap_samples = 100;  // Gaussian PGI/PGU draws
  double gap_stdev = 0.1;
  int64_t max_k = 11;  // PGI/PGU k = 1..min(max_k, d)
  std::vector<double> convergence_stdevs = {0.3, 0.1, 0.03, 0.01, 0.003, 0.001, 1e-4, 1e-5};
  std::vector<double> convergence_lows = {0.0, 0.5, 0.9, 0.99, 0.999, 0.9999, 0.99999};
  uint64_t seed = 0;
};

struct Stat {
  double mean = 0.0;
  double se = 0.0;  // standard error of the mean over points
};

struct ExperimentResult {
  std::string dataset, model;
  double test_metric = 0.0;  // accuracy or R^2
  int64_t points = 0, features = 0;
  std::vector<Method> methods;                     // rows of every table, all_methods()
  std::vector<Stat> identity_l1, identity_cosine;  // [method]: same draws
  std::vector<std::vector<Stat>> agreement_l1;     // [method][instance]: independent draws
  std::vector<std::vector<Stat>> agreement_cosine;
  std::vector<std::vector<Stat>> lfa_loss;  // [method][neighbourhood]
  // [method][neighbourhood]: paired per point, loss of the method minus loss of the neighbourhood's
  // own method (negative: the method beats the neighbourhood's own; se tells whether it is noise)
  std::vector<std::vector<Stat>> lfa_loss_minus_own;
  bool has_recovery = false;
  std::vector<Stat> recovery_w, recovery_wx;              // [method], on the explained output
  std::vector<Stat> recovery_w_logit, recovery_wx_logit;  // [method], on the logit
  std::vector<Stat> smoothgrad_to_vg;                     // [convergence_stdevs]
  std::vector<Stat> ig_to_gxi;                            // [convergence_lows]
  // [method]: PGI and PGU with zero and with Gaussian perturbation
  std::vector<PerturbationGap> pgi_zero, pgu_zero, pgi_gaussian, pgu_gaussian;
  double seconds = 0.0;
};

// Runs every experiment on points (P, d) of `model`; progress(done, total) after each stage.
ExperimentResult run_experiment(const tabular::Dataset& data, const tabular::Trained& model, const Tensor& points,
                                const ExperimentOptions& options,
                                const std::function<void(int64_t, int64_t)>& progress = nullptr);

// The eight methods' attributions (P, d) of the query's explained output, in all_methods() order;
// method m draws from Generator(method_seed(options.seed, m)).
std::vector<Tensor> method_attributions(const Query& query, const ExperimentOptions& options);
uint64_t method_seed(uint64_t seed, Method method);

}  // namespace loupe::explain::lfa
