// The local function approximation (LFA) framework of Han, Srinivas and Lakkaraju 2022 ("Which
// explanation should I choose?", REFERENCE.md section 3): an explanation of f at x0 is the weight
// vector of the linear g that best approximates f on a neighbourhood of x0,
//
//   g* = argmin_g  E_{xi ~ Z} [ pi(xi) * loss(f, g, x0, xi) ],   g(xi) = e . xi (+ b),
//
// and eight popular methods are instances of it that differ only in Z, the loss and pi:
//
//   method      x~(xi)                       xi drawn as                  loss            pi                  g
//   LIME        x0 * xi                      Bernoulli(0.5)^d             squared         exp(-|x0-x~|^2/w^2) + b
//   KernelSHAP  x0 * xi                      Shapley kernel (kernel_shap) squared         1 (anchors 1e6)     + b
//   occlusion   x0 * (1 - xi) (*)            one-hot e_1 .. e_d           squared         1                   no b
//   C-LIME      x0 + xi                      N(0, s^2 I)                  squared         1                   + b
//   SmoothGrad  x0 + xi                      N(0, s^2 I)                  gradient        1
//   VG          x0 (s -> 0: xi = 0)                                       gradient        1
//   IG          x0 * a                       a ~ U(c, 1), c = 0, xi = a 1 mult. gradient  1
//   GxI         x0 (c -> 1: a = 1)                                        mult. gradient  1
//   (*) occlusion's target is y = f(x0) - f(x~), what the score loses.
//
// Losses, for a sample (xi_i, pi_i), i = 1..n, and an explanation e (d):
//   squared                           sum_i pi_i (y_i - b - e . xi_i)^2 / sum_i pi_i, b fitted (or 0)
//   gradient matching                 sum_i pi_i |grad f(x~_i) - e|^2 / sum_i pi_i
//   multiplicative gradient matching  sum_i pi_i |x0 * grad f(x~_i) - e|^2 / sum_i pi_i
// (the gradient of g(xi) = e . xi is e; grad_xi f(x0 * xi) = x0 * grad f(x~) by the chain rule:
// that is where IG's "times the input" comes from). The fit: squared -> weighted least squares
// (linear_fit.hpp); both gradient losses -> the weighted mean of the gradient targets (their
// normal equations), so a bias has nothing to fit there.
//
// Sampling uses the engine's Philox generator with the same calls as the methods (LIME's
// bernoulli, C-LIME's normal, KernelSHAP's kernel_shap_coalitions), so a generator with the same
// seed gives the method's own samples: on one row lfa::fit equals lime (euclidean, least squares,
// width w / sqrt(2)), clime and kernel_shap to rounding (tests/explain/test_evaluate_lfa.cpp).
//
// Shapes: x0 (1, d) (one row; any real dtype and device), xi (n, d) float64 on the CPU, the
// model's inputs (n, d) in x0's dtype and device, an explanation (d) or (1, d).
// Tests: tests/explain/test_evaluate_lfa.cpp
#pragma once

#include <string>
#include <vector>

#include "explain/attribution.hpp"
#include "tensor/random.hpp"

namespace loupe::explain::lfa {

enum class Neighbourhood {
  bernoulli,  // x~ = x0 * xi, xi ~ Bernoulli(0.5)^d
  shapley,    // x~ = x0 * xi, xi drawn from the Shapley kernel (first all ones and all zeros)
  one_hot,    // x~ = x0 * (1 - e_i), i = 1..d (n is ignored: d samples)
  gaussian,   // x~ = x0 + xi, xi ~ N(0, stdev^2 I); stdev 0: the single point xi = 0
  ig_path,    // x~ = x0 * a, xi = a (1, .., 1), a ~ U(alpha_low, 1); alpha_low 1: the single point a = 1
};

enum class Loss { squared, gradient_matching, multiplicative_gradient_matching };

enum class Weighting {
  constant,     // pi = 1 (KernelSHAP's anchors get 1e6: the kernel's infinite weight)
  lime_kernel,  // pi = exp(-|x0 - x~|^2 / kernel_width^2) (euclidean, REFERENCE section 3)
};

// One LFA instance: a neighbourhood, a loss, sample weights and whether g has a bias.
struct Spec {
  Neighbourhood neighbourhood = Neighbourhood::gaussian;
  Loss loss = Loss::squared;
  Weighting weighting = Weighting::constant;
  bool bias = true;
  double stdev = 0.1;         // gaussian
  double alpha_low = 0.0;     // ig_path
  double kernel_width = 1.0;  // lime_kernel
};

// The eight methods of the paper and their LFA instances (REFERENCE.md section 3).
enum class Method {
  lime,
  kernel_shap,
  occlusion,
  clime,
  smoothgrad,
  vanilla_gradient,
  integrated_gradients,
  gradient_x_input
};
const std::vector<Method>& all_methods();
std::string method_name(Method method);  // "LIME", "KernelSHAP", "Occlusion", "C-LIME", "SmoothGrad", "VG", "IG", "GxI"
std::string method_key(Method method);   // "lime", "kernel_shap", ... (file and JSON names)
// stdev: C-LIME's and SmoothGrad's noise; kernel_width: LIME's w.
Spec method_spec(Method method, double stdev = 0.1, double kernel_width = 1.0);

// A drawn neighbourhood of one point.
struct Sample {
  Tensor xi;       // (n, d) float64, CPU: the variable g is linear in
  Tensor inputs;   // (n, d) x~(xi): the model's inputs, x0's dtype and device
  Tensor weights;  // (n) float64, CPU (any non-negative weights may be set here before fit / loss)
};

// Draws n samples of spec's neighbourhood around x0 (1, d).
Sample draw(const Spec& spec, const Tensor& x0, int64_t n, Generator& generator);
// The neighbourhood at given xi (n, d) (e.g. a quadrature's nodes, or another method's masks).
// shapley_anchors: give all-ones and all-zeros rows weight 1e6 (KernelSHAP).
Sample at(const Spec& spec, const Tensor& x0, const Tensor& xi, bool shapley_anchors = false);

// What g is fitted to, on the CPU in float64: the scores y (n) for the squared loss (occlusion:
// f(x0) - f(x~)), the gradient targets (n, d) for the gradient losses.
Tensor targets(const Spec& spec, const ForwardFn& model, Output output, int64_t target_class, const Tensor& x0,
               const Sample& sample);

struct Fit {
  Tensor coef;        // (d) float64: the explanation
  double bias = 0.0;  // squared loss with a bias; else 0
};
Fit fit(const Spec& spec, const Sample& sample, const Tensor& targets);

// The LFA loss of explanation e (d or (1, d)) on the sample (the bias, where g has one, fitted to
// the residuals: the loss of the best g with slope e).
double loss(const Spec& spec, const Sample& sample, const Tensor& targets, const Tensor& explanation);

// draw + targets + fit in one call, for one row x0 (1, d).
Fit explain(const Spec& spec, const ForwardFn& model, Output output, int64_t target_class, const Tensor& x0, int64_t n,
            Generator& generator);

// Distances between explanations (d): L1 sum |a - b|, and cosine distance 1 - a.b / (|a| |b|)
// (1 when either is all zeros and the other is not; 0 when both are; computed on the vectors scaled
// by their largest |value|, so tiny gradients do not underflow; clamped at 0).
double l1_distance(const Tensor& a, const Tensor& b);
double cosine_distance(const Tensor& a, const Tensor& b);

}  // namespace loupe::explain::lfa
