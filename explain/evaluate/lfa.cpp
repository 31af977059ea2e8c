// The LFA framework: neighbourhoods, targets, fits and losses. See lfa.hpp.
#include "explain/evaluate/lfa.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "explain/kernel_shap.hpp"
#include "explain/linear_fit.hpp"
#include "tensor/ops/random_ops.hpp"

namespace loupe::explain::lfa {

namespace {

constexpr double kAnchorWeight = 1e6;  // KernelSHAP's (Captum's inf_weight)

Tensor host_f64(const Tensor& t) {
  return ops::to_device(ops::contiguous(ops::to_dtype(t, DType::f64)), Device::cpu());
}

void check_row(const Tensor& x0, const char* what) {
  LOUPE_CHECK(x0.defined() && x0.dim() == 2 && x0.size(0) == 1 && x0.size(1) >= 1, "lfa::", what,
              ": x0 must be one row (1, d), got ", x0.defined() ? shape_str(x0.shape()) : "undefined");
}

bool is_gradient(Loss loss) { return loss != Loss::squared; }

// The explanation as a (d) float64 host vector of the expected length.
std::vector<double> explanation_values(const Tensor& e, int64_t d, const char* what) {
  LOUPE_CHECK(e.defined() && e.numel() == d, "lfa::", what, ": the explanation must have d = ", d, " values, got ",
              e.defined() ? shape_str(e.shape()) : "undefined");
  return to_vector<double>(host_f64(ops::reshape(e, {d})));
}

}  // namespace

const std::vector<Method>& all_methods() {
  static const std::vector<Method> methods = {Method::lime,
                                              Method::kernel_shap,
                                              Method::occlusion,
                                              Method::clime,
                                              Method::smoothgrad,
                                              Method::vanilla_gradient,
                                              Method::integrated_gradients,
                                              Method::gradient_x_input};
  return methods;
}

std::string method_name(Method method) {
  switch (method) {
    case Method::lime: return "LIME";
    case Method::kernel_shap: return "KernelSHAP";
    case Method::occlusion: return "Occlusion";
    case Method::clime: return "C-LIME";
    case Method::smoothgrad: return "SmoothGrad";
    case Method::vanilla_gradient: return "VG";
    case Method::integrated_gradients: return "IG";
    case Method::gradient_x_input: return "GxI";
  }
  return "?";
}

std::string method_key(Method method) {
  switch (method) {
    case Method::lime: return "lime";
    case Method::kernel_shap: return "kernel_shap";
    case Method::occlusion: return "occlusion";
    case Method::clime: return "clime";
    case Method::smoothgrad: return "smoothgrad";
    case Method::vanilla_gradient: return "vanilla_gradient";
    case Method::integrated_gradients: return "integrated_gradients";
    case Method::gradient_x_input: return "gradient_x_input";
  }
  return "?";
}

Spec method_spec(Method method, double stdev, double kernel_width) {
  Spec s;
  s.stdev = stdev;
  s.kernel_width = kernel_width;
  switch (method) {
    case Method::lime:
      s.neighbourhood = Neighbourhood::bernoulli;
      s.weighting = Weighting::lime_kernel;
      break;
    case Method::kernel_shap: s.neighbourhood = Neighbourhood::shapley; break;
    case Method::occlusion:
      s.neighbourhood = Neighbourhood::one_hot;
      s.bias = false;
      break;
    case Method::clime: s.neighbourhood = Neighbourhood::gaussian; break;
    case Method::smoothgrad:
      s.neighbourhood = Neighbourhood::gaussian;
      s.loss = Loss::gradient_matching;
      break;
    case Method::vanilla_gradient:
      s.neighbourhood = Neighbourhood::gaussian;
      s.loss = Loss::gradient_matching;
      s.stdev = 0.0;
      s.bias = false;
      break;
    case Method::integrated_gradients:
      s.neighbourhood = Neighbourhood::ig_path;
      s.loss = Loss::multiplicative_gradient_matching;
      break;
    case Method::gradient_x_input:
      s.neighbourhood = Neighbourhood::ig_path;
      s.loss = Loss::multiplicative_gradient_matching;
      s.alpha_low = 1.0;
      s.bias = false;
      break;
  }
  return s;
}

Sample draw(const Spec& spec, const Tensor& x0, int64_t n, Generator& generator) {
  check_row(x0, "draw");
  const int64_t d = x0.size(1);
  LOUPE_CHECK(n >= 1, "lfa::draw: need n >= 1 samples, got ", n);
  const DType dtype = x0.dtype();
  const Device device = x0.device();
  switch (spec.neighbourhood) {
    case Neighbourhood::bernoulli:  // the same call as lime's masks
      return at(spec, x0, host_f64(bernoulli({n, d}, 0.5, dtype, &generator, device)));
    case Neighbourhood::shapley: {
      LOUPE_CHECK(n >= 2, "lfa::draw: the Shapley neighbourhood needs n >= 2 (its two anchors), got ", n);
      const std::vector<double> z = kernel_shap_coalitions(n, d, generator);
      return at(spec, x0, from_values(z, {static_cast<int64_t>(z.size()) / d, d}, DType::f64), true);
    }
    case Neighbourhood::one_hot: return at(spec, x0, eye(d, d, DType::f64));
    case Neighbourhood::gaussian:
      LOUPE_CHECK(std::isfinite(spec.stdev) && spec.stdev >= 0.0, "lfa::draw: stdev must be >= 0, got ", spec.stdev);
      if (spec.stdev == 0.0) return at(spec, x0, zeros({1, d}, DType::f64));
      // The same call as clime's noise, so one seed gives C-LIME's own samples.
      return at(spec, x0, host_f64(normal({n, d}, 0.0, spec.stdev, dtype, &generator, device)));
    case Neighbourhood::ig_path: {
      LOUPE_CHECK(spec.alpha_low >= 0.0 && spec.alpha_low <= 1.0, "lfa::draw: alpha_low must be in [0, 1], got ",
                  spec.alpha_low);
      if (spec.alpha_low == 1.0) return at(spec, x0, ones({1, d}, DType::f64));
      const Tensor a = uniform({n, 1}, spec.alpha_low, 1.0, DType::f64, &generator);  // (n, 1)
      return at(spec, x0, ops::contiguous(ops::expand(a, {n, d})));
    }
  }
  throw Error("lfa::draw: unknown neighbourhood");
}

Sample at(const Spec& spec, const Tensor& x0, const Tensor& xi, bool shapley_anchors) {
  check_row(x0, "at");
  const int64_t d = x0.size(1);
  LOUPE_CHECK(xi.defined() && xi.dim() == 2 && xi.size(1) == d && xi.size(0) >= 1, "lfa::at: xi must be (n, ", d,
              "), got ", xi.defined() ? shape_str(xi.shape()) : "undefined");
  Sample s;
  s.xi = host_f64(xi);
  const int64_t n = s.xi.size(0);
  const Tensor xi_dev = ops::to_device(ops::to_dtype(s.xi, x0.dtype()), x0.device());  // (n, d)
  switch (spec.neighbourhood) {
    case Neighbourhood::bernoulli:
    case Neighbourhood::shapley:
    case Neighbourhood::ig_path: s.inputs = ops::mul(x0, xi_dev); break;
    case Neighbourhood::one_hot: s.inputs = ops::mul(x0, ops::sub(ones_like(xi_dev), xi_dev)); break;
    case Neighbourhood::gaussian: s.inputs = ops::add(x0, xi_dev); break;
  }
  std::vector<double> w(static_cast<size_t>(n), 1.0);
  const std::vector<double> z = to_vector<double>(s.xi);
  if (spec.weighting == Weighting::lime_kernel) {
    LOUPE_CHECK(spec.kernel_width > 0.0, "lfa: kernel_width must be > 0, got ", spec.kernel_width);
    // |x0 - x~|^2 from the model's inputs, so the kernel sees exactly the points evaluated.
    const std::vector<double> dist2 = to_vector<double>(host_f64(
        ops::sum(ops::square(ops::sub(ops::to_dtype(x0, DType::f64), ops::to_dtype(s.inputs, DType::f64))), {1})));
    for (int64_t i = 0; i < n; ++i)
      w[static_cast<size_t>(i)] = std::exp(-dist2[static_cast<size_t>(i)] / (spec.kernel_width * spec.kernel_width));
  }
  if (shapley_anchors) {
    for (int64_t i = 0; i < n; ++i) {
      const double k = std::accumulate(z.begin() + i * d, z.begin() + (i + 1) * d, 0.0);
      if (k == 0.0 || k == static_cast<double>(d)) w[static_cast<size_t>(i)] *= kAnchorWeight;
    }
  }
  s.weights = from_values(w, {n}, DType::f64);
  return s;
}

Tensor targets(const Spec& spec, const ForwardFn& model, Output output, int64_t target_class, const Tensor& x0,
               const Sample& sample) {
  check_row(x0, "targets");
  const int64_t n = sample.inputs.size(0);
  const std::vector<int64_t> classes(static_cast<size_t>(n), target_class);
  if (!is_gradient(spec.loss)) {
    Tensor y = host_f64(detail::score_rows(model, {sample.inputs}, classes, output));  // (n)
    if (spec.neighbourhood == Neighbourhood::one_hot) {
      // Occlusion's target is what the score loses: f(x0) - f(x0 * (1 - e_i)).
      const double f0 = host_f64(detail::score_rows(model, {x0}, {target_class}, output)).item();
      y = ops::sub(full({n}, f0, DType::f64), y);
    }
    return y;
  }
  Tensor g = host_f64(detail::target_gradients(model, {sample.inputs}, classes, output)[0]);  // (n, d)
  if (spec.loss == Loss::multiplicative_gradient_matching) g = ops::mul(g, host_f64(x0));     // d/dxi f(x0 * xi)
  return g;
}

Fit fit(const Spec& spec, const Sample& sample, const Tensor& targets) {
  const int64_t n = sample.xi.size(0), d = sample.xi.size(1);
  Fit out;
  if (!is_gradient(spec.loss)) {
    LOUPE_CHECK(targets.dim() == 1 && targets.size(0) == n, "lfa::fit: the squared loss needs targets (", n, "), got ",
                shape_str(targets.shape()));
    const LinearFit f = weighted_least_squares(sample.xi, targets, sample.weights, spec.bias);
    out.coef = ops::reshape(f.coef, {d});
    out.bias = f.intercept.item();
    return out;
  }
  LOUPE_CHECK(targets.dim() == 2 && targets.size(0) == n && targets.size(1) == d,
              "lfa::fit: a gradient loss needs targets (", n, ", ", d, "), got ", shape_str(targets.shape()));
  // argmin_e sum_i w_i |G_i - e|^2 is the weighted mean of the G_i.
  const Tensor w = ops::reshape(sample.weights, {n, 1});
  out.coef = ops::div(ops::sum(ops::mul(w, targets), {0}), ops::sum(sample.weights).item());
  return out;
}

double loss(const Spec& spec, const Sample& sample, const Tensor& targets, const Tensor& explanation) {
  const int64_t n = sample.xi.size(0), d = sample.xi.size(1);
  const Tensor e = from_values(explanation_values(explanation, d, "loss"), {d}, DType::f64);
  const std::vector<double> w = to_vector<double>(sample.weights);
  const double w_sum = std::accumulate(w.begin(), w.end(), 0.0);
  std::vector<double> r;  // per-sample loss terms before weighting
  if (!is_gradient(spec.loss)) {
    LOUPE_CHECK(targets.dim() == 1 && targets.size(0) == n, "lfa::loss: the squared loss needs targets (", n, "), got ",
                shape_str(targets.shape()));
    std::vector<double> res = to_vector<double>(ops::sub(targets, ops::matmul(sample.xi, e)));  // (n)
    if (spec.bias) {
      double b = 0.0;
      for (int64_t i = 0; i < n; ++i) b += w[static_cast<size_t>(i)] * res[static_cast<size_t>(i)];
      b /= w_sum;
      for (double& v : res) v -= b;
    }
    for (double v : res) r.push_back(v * v);
  } else {
    LOUPE_CHECK(targets.dim() == 2 && targets.size(0) == n && targets.size(1) == d,
                "lfa::loss: a gradient loss needs targets (", n, ", ", d, "), got ", shape_str(targets.shape()));
    r = to_vector<double>(ops::sum(ops::square(ops::sub(targets, ops::reshape(e, {1, d}))), {1}));
  }
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) total += w[static_cast<size_t>(i)] * r[static_cast<size_t>(i)];
  return total / w_sum;
}

Fit explain(const Spec& spec, const ForwardFn& model, Output output, int64_t target_class, const Tensor& x0, int64_t n,
            Generator& generator) {
  const Sample s = draw(spec, x0, n, generator);
  return fit(spec, s, targets(spec, model, output, target_class, x0, s));
}

double l1_distance(const Tensor& a, const Tensor& b) {
  const std::vector<double> va = to_vector<double>(host_f64(a)), vb = to_vector<double>(host_f64(b));
  LOUPE_CHECK(va.size() == vb.size(), "lfa::l1_distance: sizes differ (", va.size(), " and ", vb.size(), ")");
  double s = 0.0;
  for (size_t i = 0; i < va.size(); ++i) s += std::abs(va[i] - vb[i]);
  return s;
}

double cosine_distance(const Tensor& a, const Tensor& b) {
  std::vector<double> va = to_vector<double>(host_f64(a)), vb = to_vector<double>(host_f64(b));
  LOUPE_CHECK(va.size() == vb.size(), "lfa::cosine_distance: sizes differ (", va.size(), " and ", vb.size(), ")");
  // Scale each vector by its largest |value| first: the gradients of a saturated sigmoid are
  // 1e-200 and smaller, whose squares underflow to 0 (and 0 / 0 is NaN).
  for (std::vector<double>* v : {&va, &vb}) {
    double top = 0.0;
    for (double x : *v) top = std::max(top, std::abs(x));
    if (top > 0.0)
      for (double& x : *v) x /= top;
  }
  double dot = 0.0, na = 0.0, nb = 0.0;
  for (size_t i = 0; i < va.size(); ++i) {
    dot += va[i] * vb[i];
    na += va[i] * va[i];
    nb += vb[i] * vb[i];
  }
  if (na == 0.0 && nb == 0.0) return 0.0;
  if (na == 0.0 || nb == 0.0) return 1.0;
  return std::max(0.0, 1.0 - dot / std::sqrt(na * nb));  // rounding can take 1 - cos below 0
}

}  // namespace loupe::explain::lfa
