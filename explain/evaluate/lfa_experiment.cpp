// The LFA experiments on one tabular model. See lfa_experiment.hpp.
#include "explain/evaluate/lfa_experiment.hpp"

#include <chrono>
#include <cmath>

#include "explain/explain.hpp"

namespace loupe::explain::lfa {

namespace {

Stat stat_of(const std::vector<double>& values) {
  Stat s;
  mean_and_standard_error(values, s.mean, s.se);
  return s;
}

// Row p of a (P, d) tensor as a (d) float64 CPU tensor.
Tensor row_of(const Tensor& t, int64_t p) {
  return ops::to_device(ops::contiguous(ops::to_dtype(ops::select(t, 0, p), DType::f64)), Device::cpu());
}

// Mean over rows of |a_p - b_p|_1 divided by the mean of |b_p|_1 (a per-row ratio would explode
// where the reference is ~0: a saturated sigmoid gives gradients of 1e-40).
Stat relative_l1(const Tensor& a, const Tensor& b) {
  std::vector<double> dist;
  double scale = 0.0;
  for (int64_t p = 0; p < a.size(0); ++p) {
    const Tensor bp = row_of(b, p);
    dist.push_back(l1_distance(row_of(a, p), bp));
    scale += l1_distance(bp, zeros_like(bp)) / static_cast<double>(a.size(0));
  }
  Stat s = stat_of(dist);
  if (scale > 0.0) s.mean /= scale, s.se /= scale;
  return s;
}

Attribution smoothgrad(const Query& q, int64_t n, double stdev, Generator& gen) {
  NoiseTunnelOptions o;
  o.n_samples = n;
  o.stdevs = {stdev};
  o.generator = &gen;
  return noise_tunnel(
      q, [](const Query& qq) { return saliency(qq, {.absolute = false}); }, o);
}

}  // namespace

uint64_t method_seed(uint64_t seed, Method method) { return seed * 64 + 16 + static_cast<uint64_t>(method); }

std::vector<Tensor> method_attributions(const Query& query, const ExperimentOptions& options) {
  std::vector<Tensor> out;
  for (Method m : all_methods()) {
    Generator generator(method_seed(options.seed, m));
    Attribution a;
    switch (m) {
      case Method::lime: {
        LimeOptions o;
        o.n_samples = options.perturbations;
        o.distance = LimeDistance::euclidean;
        o.kernel_width = options.kernel_width / std::sqrt(2.0);  // exp(-d^2 / (2 w'^2)) = exp(-d^2 / w^2)
        o.fit = SurrogateFit::least_squares;
        o.generator = &generator;
        a = lime(query, o);
        break;
      }
      case Method::kernel_shap: {
        KernelShapOptions o;
        o.n_samples = options.perturbations;
        o.generator = &generator;
        a = kernel_shap(query, o);
        break;
      }
      case Method::occlusion: a = occlusion(query, {.windows = {Shape{1}}}); break;
      case Method::clime: {
        CLimeOptions o;
        o.n_samples = options.perturbations;
        o.stdev = options.stdev;
        o.generator = &generator;
        a = clime(query, o);
        break;
      }
      case Method::smoothgrad: a = smoothgrad(query, options.perturbations, options.stdev, generator); break;
      case Method::vanilla_gradient: a = saliency(query, {.absolute = false}); break;
      case Method::integrated_gradients: a = integrated_gradients(query, {.n_steps = options.ig_steps}); break;
      case Method::gradient_x_input: a = input_x_gradient(query); break;
    }
    out.push_back(a.attributions[0]);
  }
  return out;
}

ExperimentResult run_experiment(const tabular::Dataset& data, const tabular::Trained& trained, const Tensor& points,
                                const ExperimentOptions& options,
                                const std::function<void(int64_t, int64_t)>& progress) {
  LOUPE_CHECK(points.defined() && points.dim() == 2 && points.size(0) >= 1 && points.size(1) == data.x.size(1),
              "lfa experiment: points must be (P, ", data.x.size(1), "), got ",
              points.defined() ? shape_str(points.shape()) : "undefined");
  LOUPE_CHECK(options.perturbations >= 2, "lfa experiment: perturbations must be >= 2, got ", options.perturbations);
  const auto start = std::chrono::steady_clock::now();
  const tabular::Model& model = trained.model;
  const ForwardFn f = model.forward();
  const Output output = model.output();
  const int64_t n_points = points.size(0), d = points.size(1);
  const std::vector<Method>& methods = all_methods();
  const size_t n_methods = methods.size();
  const int64_t stages = 6;
  int64_t stage = 0;
  auto step = [&]() {
    if (progress) progress(++stage, stages);
  };

  ExperimentResult r;
  r.dataset = data.name;
  r.model = model.name();
  r.test_metric = trained.test_metric;
  r.points = n_points;
  r.features = d;
  r.methods = methods;

  // Independent streams: the LFA fits' draws, the loss evaluation's draws, the convergence
  // runs and the gaps (the methods' own streams: method_seed).
  Generator gen_fit(options.seed * 64 + 1), gen_eval(options.seed * 64 + 2), gen_conv(options.seed * 64 + 3),
      gen_gaps(options.seed * 64 + 4);
  const Query query{f, {points}, Target::none(), output};
  const std::vector<Tensor> attrs = method_attributions(query, options);
  step();

  // The identities on the same draws: each method's generator replayed row by row through its
  // LFA instance (IG: the fit at its Gauss-Legendre nodes, weighted by the rule's weights).
  const Quadrature rule = quadrature(IntegrationRule::gauss_legendre, options.ig_steps);
  for (size_t m = 0; m < n_methods; ++m) {
    const Spec spec = method_spec(methods[m], options.stdev, options.kernel_width);
    Generator replay(method_seed(options.seed, methods[m]));
    std::vector<double> dl1, dcos;
    for (int64_t p = 0; p < n_points; ++p) {
      const Tensor x0 = ops::narrow(points, 0, p, 1);
      Sample s;
      if (methods[m] == Method::integrated_gradients) {
        const auto steps = static_cast<int64_t>(rule.alphas.size());
        s = at(spec, x0, ops::contiguous(ops::expand(from_values(rule.alphas, {steps, 1}, DType::f64), {steps, d})));
        s.weights = from_values(rule.weights, {steps}, DType::f64);
      } else {
        s = draw(spec, x0, options.perturbations, replay);
      }
      const Fit fitted = fit(spec, s, targets(spec, f, output, -1, x0, s));
      const Tensor a = row_of(attrs[m], p);
      dl1.push_back(l1_distance(a, fitted.coef));
      dcos.push_back(cosine_distance(a, fitted.coef));
    }
    r.identity_l1.push_back(stat_of(dl1));
    r.identity_cosine.push_back(stat_of(dcos));
  }

  // Agreement and no free lunch, point by point.
  std::vector<std::vector<std::vector<double>>> l1(n_methods, std::vector<std::vector<double>>(n_methods)),
      cosine = l1, loss_values = l1;
  for (int64_t p = 0; p < n_points; ++p) {
    const Tensor x0 = ops::narrow(points, 0, p, 1);
    for (size_t i = 0; i < n_methods; ++i) {
      const Spec spec = method_spec(methods[i], options.stdev, options.kernel_width);
      const Fit fitted = explain(spec, f, output, -1, x0, options.perturbations, gen_fit);
      const Sample eval = draw(spec, x0, options.perturbations, gen_eval);
      const Tensor eval_targets = targets(spec, f, output, -1, x0, eval);
      for (size_t m = 0; m < n_methods; ++m) {
        const Tensor a = row_of(attrs[m], p);
        l1[m][i].push_back(l1_distance(a, fitted.coef));
        cosine[m][i].push_back(cosine_distance(a, fitted.coef));
        loss_values[m][i].push_back(loss(spec, eval, eval_targets, a));
      }
    }
  }
  for (size_t m = 0; m < n_methods; ++m) {
    r.agreement_l1.emplace_back();
    r.agreement_cosine.emplace_back();
    r.lfa_loss.emplace_back();
    r.lfa_loss_minus_own.emplace_back();
    for (size_t i = 0; i < n_methods; ++i) {
      r.agreement_l1.back().push_back(stat_of(l1[m][i]));
      r.agreement_cosine.back().push_back(stat_of(cosine[m][i]));
      r.lfa_loss.back().push_back(stat_of(loss_values[m][i]));
      std::vector<double> diff;
      for (int64_t p = 0; p < n_points; ++p)
        diff.push_back(loss_values[m][i][static_cast<size_t>(p)] - loss_values[i][i][static_cast<size_t>(p)]);
      r.lfa_loss_minus_own.back().push_back(stat_of(diff));
    }
  }
  step();

  // Model recovery (one Linear layer: w is its weight row).
  if (model.kind == tabular::ModelKind::linear) {
    r.has_recovery = true;
    const Tensor w = ops::reshape(ops::to_dtype(model.weights[0], DType::f64), {d});
    auto recover = [&](const std::vector<Tensor>& a, std::vector<Stat>& to_w, std::vector<Stat>& to_wx) {
      for (size_t m = 0; m < n_methods; ++m) {
        std::vector<double> dw, dwx;
        for (int64_t p = 0; p < n_points; ++p) {
          const Tensor x = row_of(points, p), am = row_of(a[m], p);
          dw.push_back(cosine_distance(am, w));
          dwx.push_back(cosine_distance(am, ops::mul(w, x)));
        }
        to_w.push_back(stat_of(dw));
        to_wx.push_back(stat_of(dwx));
      }
    };
    recover(attrs, r.recovery_w, r.recovery_wx);
    if (output == Output::logit) {
      r.recovery_w_logit = r.recovery_w;
      r.recovery_wx_logit = r.recovery_wx;
    } else {
      const Query logit{f, {points}, Target::none(), Output::logit};
      recover(method_attributions(logit, options), r.recovery_w_logit, r.recovery_wx_logit);
    }
  }
  step();

  // Convergence: SmoothGrad -> VG, IG over [c, 1] -> GxI.
  const Tensor& vg = attrs[static_cast<size_t>(Method::vanilla_gradient)];  // all_methods() is in enum order
  const Tensor& gxi = attrs[static_cast<size_t>(Method::gradient_x_input)];
  for (double s : options.convergence_stdevs) {
    r.smoothgrad_to_vg.push_back(
        relative_l1(smoothgrad(query, options.perturbations, s, gen_conv).attributions[0], vg));
  }
  step();
  for (double c : options.convergence_lows) {
    LOUPE_CHECK(c >= 0.0 && c < 1.0, "lfa experiment: convergence lower bounds must be in [0, 1), got ", c);
    Query q = query;
    q.baselines = {Baseline(ops::mul(points, c))};
    const Tensor ig = ops::div(integrated_gradients(q, {.n_steps = options.ig_steps}).attributions[0], 1.0 - c);
    r.ig_to_gxi.push_back(relative_l1(ig, gxi));
  }
  step();

  // PGI / PGU.
  PerturbationGapOptions zero, gaussian;
  zero.max_k = std::min(options.max_k, d);
  gaussian = zero;
  gaussian.perturbation = GapPerturbation::gaussian;
  gaussian.n_samples = options.gap_samples;
  gaussian.stdev = options.gap_stdev;
  gaussian.generator = &gen_gaps;
  for (size_t m = 0; m < n_methods; ++m) {
    Attribution a;
    a.attributions = {attrs[m]};
    for (int64_t p = 0; p < n_points; ++p) {
      a.rows.push_back(p);
      a.targets.push_back(-1);
    }
    r.pgi_zero.push_back(pgi(query, a, zero));
    r.pgu_zero.push_back(pgu(query, a, zero));
    r.pgi_gaussian.push_back(pgi(query, a, gaussian));
    r.pgu_gaussian.push_back(pgu(query, a, gaussian));
  }
  step();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace loupe::explain::lfa
