// Faithfulness metrics of an attribution: does the model's score move the way the attribution
// says it should when the input is changed? Each metric takes the Query that was explained and
// the Attribution a method returned for it (same rows, same targets), builds its perturbed copies
// on the input's device with tensor ops, stacks them along the batch and scores them in chunks
// (detail::score_perturbations), so it runs wherever the model runs.
//
//   deletion_curve / insertion_curve   remove (or insert) units in the order of the attribution,
//                                      most positive first; the score after each step; AUC
//   infidelity                         Yeh et al. 2019, Captum's definition:
//                                      E_I[(I . attr - (f(x) - f(x - I)))^2]
//   sensitivity_max                    Yeh et al. 2019, Captum's definition:
//                                      max_{|d|_inf <= r} |attr(x + d) - attr(x)|_2 / |attr(x)|_2
//   faithfulness_correlation           Bhatt et al. 2020: Pearson correlation over random subsets S
//                                      of sum_{i in S} attr_i and f(x) - f(x with S := baseline)
//   region_mass                        share of |attribution| in the image border and in a
//                                      central box (where a chest X-ray's lungs are)
//
// Units. Deletion, insertion and the correlation remove whole units: by default every pixel
// (all channels of (h, w) of an (R, C, H, W) input; every scalar of other inputs), or the
// features of a feature mask ((H, W) or broadcastable to a row, ids 0..M-1: superpixels). A
// unit's attribution is the sum of its elements' attributions.
// Shapes: one model input, (R, ...) after the query's target expansion, like the attribution.
// Results are float64 on the CPU, one value per result row (R).
// Formulas and their code: docs/explain.md, section "Faithfulness metrics".
// Tests: tests/explain/test_faithfulness.cpp (closed forms) and test_captum_metrics.cpp (Captum).
#pragma once

#include <cstdint>
#include <vector>

#include "explain/attribution.hpp"

namespace loupe::explain::evaluate {

// What a removed unit becomes.
enum class Fill {
  baseline,  // the query's baseline (zeros unless given)
  blur,      // a Gaussian blur of the input (explain/baselines.hpp gaussian_blur)
};

struct CurveOptions {
  // Points after the start: step k (k = 0..steps) has removed (inserted) floor(k U / steps) of
  // the U units. 0: one step per unit (U steps).
  int64_t steps = 20;
  Tensor feature_mask;           // undefined: pixels (4-d inputs) or scalars; else unit ids
  Fill fill = Fill::baseline;
  double blur_sigma = 0.0;       // Fill::blur: pixels; 0: width / 16 (at least 1)
  int64_t perturbations_per_eval = 0;  // copies per forward pass; 0: as many as fit 64 MiB
};

struct Curve {
  std::vector<double> fractions;  // (steps + 1) share of the units removed / inserted
  Tensor scores;                  // (R, steps + 1) float64: the explained score after each step
  Tensor auc;                     // (R) float64: trapezoid rule of scores over fractions
};

// Deletion (MoRF): start from x, replace the units by the fill in decreasing order of their
// attribution. A faithful attribution makes the score fall early: low AUC is good.
Curve deletion_curve(const Query& query, const Attribution& attribution, const CurveOptions& options = {});
// Insertion: start from the fill, put the units of x back in the same order. High AUC is good.
Curve insertion_curve(const Query& query, const Attribution& attribution, const CurveOptions& options = {});

// The trapezoid area under y(x) (x increasing).
double trapezoid_auc(const std::vector<double>& x, const std::vector<double>& y);

// Infidelity perturbations I (the model sees x - I).
enum class InfidelityNoise {
  gaussian,  // I ~ N(0, noise_std^2) per element (Yeh's "noisy baseline"; Captum's tutorials)
  subset,    // I = z * (x - x'), z ~ Bernoulli(0.5) per unit: x - I sets a random half of the
             // units to the baseline (Yeh's "square removal" family, matching baseline methods)
};

struct InfidelityOptions {
  InfidelityNoise noise = InfidelityNoise::gaussian;
  double noise_std = 0.1;  // gaussian, in the model's input units
  int64_t n_samples = 10;  // Captum's n_perturb_samples
  Tensor feature_mask;     // subset: the units (as for the curves)
  // Fixed perturbations (R * n_samples, ...): I for row r, sample s at r * n_samples + s
  // (Captum's repeat_interleave layout); when defined, `noise` is not used.
  Tensor perturbations;
  bool normalize = false;  // Captum's normalize: scale attr . I by the least-squares beta first
  // Captum's infidelity_perturb_func_decorator(multiply_by_inputs): for attributions that are
  // already multiplied by (x - x') (IG, DeepLIFT, input x gradient, occlusion, LIME, KernelSHAP),
  // the dot product uses I / (x - x') (1 as the denominator where x = x') instead of I. With subset
  // noise that is the 0/1 removal indicator, so w * (x - x') is exact on a linear model; without
  // it the gradient w is.
  bool multiply_by_inputs = false;
  Generator* generator = nullptr;
  int64_t perturbations_per_eval = 0;
};
// (R) float64: mean over the samples of (sum_e I_e attr_e - (f(x) - f(x - I)))^2 (with I / (x - x')
// in the sum when multiply_by_inputs).
Tensor infidelity(const Query& query, const Attribution& attribution, const InfidelityOptions& options = {});

struct SensitivityOptions {
  double radius = 0.02;    // L-inf radius, in the model's input units (Captum's perturb_radius)
  int64_t n_samples = 10;  // Captum's n_perturb_samples
  // Fixed noise (R * n_samples, ...) added to the rows (Captum's repeat_interleave layout);
  // undefined: uniform in [-radius, radius] from `generator`.
  Tensor noise;
  Generator* generator = nullptr;
};
// (R) float64: max over the samples of |A(x + d) - A(x)|_2 / |A(x)|_2 (a zero |A(x)| counts as
// 1), with A the method re-run on the perturbed rows (all samples of all rows in one call).
Tensor sensitivity_max(const Query& query, const Method& method, const SensitivityOptions& options = {});

struct CorrelationOptions {
  int64_t n_samples = 100;        // random subsets (Quantus: nr_runs 100)
  double subset_fraction = 0.1;   // share of the units in each subset (at least 1 unit)
  Tensor feature_mask;            // units, as for the curves
  Generator* generator = nullptr;
  int64_t perturbations_per_eval = 0;
};
// (R) float64: Pearson correlation over the subsets S of sum_{u in S} attr_u and
// f(x) - f(x_S), where x_S has the units of S set to the query's baseline. NaN when either
// side is constant.
Tensor faithfulness_correlation(const Query& query, const Attribution& attribution,
                                const CorrelationOptions& options = {});

// The share of attribution mass (|a| summed over channels) per region of an image attribution
// (R, C, H, W) or (R, H, W). The border is every pixel within round(border_fraction * H) rows of
// the top or bottom edge or round(border_fraction * W) columns of the left or right edge; the
// centre box spans rows [round(top H), round(bottom H)) and columns [round(left W), round(right W)).
struct RegionOptions {
  double border_fraction = 0.1;
  double top = 0.15, bottom = 0.85, left = 0.15, right = 0.85;  // the chest X-ray "lung box"
};
struct RegionShares {
  Tensor border;  // (R) float64: border mass / total mass (NaN for an all-zero map)
  Tensor centre;  // (R) float64: centre-box mass / total mass
  double border_area = 0.0;  // share of the pixels in the border (what a uniform map gives)
  double centre_area = 0.0;
};
RegionShares region_mass(const Tensor& attribution, const RegionOptions& options = {});

}  // namespace loupe::explain::evaluate
