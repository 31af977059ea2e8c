// Op table entries: reductions and scans (sum, mean, max/min, amax/amin, argmax/argmin, var/std,
// norm, logsumexp, all/any, cumsum). The reference groups the elements of every output with plain
// index arithmetic and applies a scalar formula to each group. Extra test cases below cover the
// returned indices, tie handling, NaN, empty reductions, dtypes and errors.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "tests/op_table.hpp"
#include "tests/support.hpp"

namespace loupe::test {
namespace {

using Group = std::vector<double>;
using GroupFn = std::function<double(const Group&)>;

// Reference reduction: the elements of x that land in each output, in row-major order, go
// through f. dims may be negative; empty dims = all dims.
Tensor reduce_ref(const Tensor& x, Dims dims, bool keepdim, const GroupFn& f) {
  const Shape& shape = x.shape();
  const auto ndim = static_cast<int64_t>(shape.size());
  std::vector<bool> reduced(shape.size(), dims.empty());
  for (int64_t d : dims) reduced[static_cast<size_t>(d < 0 ? d + ndim : d)] = true;
  Shape kept, out_shape;
  for (size_t d = 0; d < shape.size(); ++d) {
    kept.push_back(reduced[d] ? 1 : shape[d]);
    if (!reduced[d] || keepdim) out_shape.push_back(kept.back());
  }
  std::vector<Group> groups(static_cast<size_t>(shape_numel(kept)));
  const auto v = values(x);
  for (int64_t i = 0; i < x.numel(); ++i) {
    auto idx = ref::unravel(i, shape);
    for (size_t d = 0; d < shape.size(); ++d) {
      if (reduced[d]) idx[d] = 0;
    }
    groups[static_cast<size_t>(ref::ravel(idx, kept))].push_back(v[static_cast<size_t>(i)]);
  }
  std::vector<double> out;
  for (const Group& g : groups) out.push_back(f(g));
  return ref::make(out, out_shape);
}

double group_sum(const Group& g) { return std::accumulate(g.begin(), g.end(), 0.0); }
double group_max(const Group& g) { return *std::max_element(g.begin(), g.end()); }
double group_min(const Group& g) { return *std::min_element(g.begin(), g.end()); }
double group_argmax(const Group& g) { return static_cast<double>(std::max_element(g.begin(), g.end()) - g.begin()); }
double group_argmin(const Group& g) { return static_cast<double>(std::min_element(g.begin(), g.end()) - g.begin()); }

GroupFn group_var(int64_t correction, bool take_sqrt) {
  return [=](const Group& g) {
    const double mean = group_sum(g) / static_cast<double>(g.size());
    double s = 0.0;
    for (double e : g) s += (e - mean) * (e - mean);
    const double v = s / (static_cast<double>(g.size()) - static_cast<double>(correction));
    return take_sqrt ? std::sqrt(v) : v;
  };
}

GroupFn group_norm(double p) {
  return [=](const Group& g) {
    if (std::isinf(p)) {
      double best = std::abs(g[0]);
      for (double e : g) best = p > 0 ? std::max(best, std::abs(e)) : std::min(best, std::abs(e));
      return best;
    }
    double s = 0.0;
    for (double e : g) s += p == 0 ? (e != 0 ? 1.0 : 0.0) : std::pow(std::abs(e), p);
    return p == 0 ? s : std::pow(s, 1.0 / p);
  };
}

double group_logsumexp(const Group& g) {
  const double m = group_max(g);
  double s = 0.0;
  for (double e : g) s += std::exp(e - m);
  return m + std::log(s);
}

// One reduction entry over a random (3, 4, 5) input (distinct values, away from kinks).
OpCase reduce_case(const std::string& name, std::function<Tensor(const Tensor&)> op, Dims dims, bool keepdim,
                   GroupFn f, bool differentiable = true, Shape shape = {3, 4, 5}, double lo = -2.0, double hi = 2.0) {
  OpCase c;
  c.name = name;
  c.make_inputs = [shape, lo, hi](DType dtype) { return Inputs{random_tensor(shape, dtype, lo, hi, 41)}; };
  c.op = [op](const Inputs& in) { return op(in[0]); };
  c.reference = [dims, keepdim, f](const Inputs& in) { return reduce_ref(in[0], dims, keepdim, f); };
  c.differentiable = differentiable;
  return c;
}

// A zero-size input: no outputs, or outputs over empty groups (sum, norm: their identity).
OpCase with_empty(OpCase c, Shape shape = {0, 4}) {
  c.make_empty_inputs = [shape](DType dtype) { return Inputs{zeros(shape, dtype)}; };
  return c;
}

// Inputs with exact zeros (about half the elements), for all/any and the 0-norm.
OpCase zeros_case(const std::string& name, std::function<Tensor(const Tensor&)> op, Dims dims, bool keepdim,
                  GroupFn f) {
  OpCase c = reduce_case(name, op, dims, keepdim, f, false);
  c.make_inputs = [](DType dtype) {
    auto v = values(random_tensor({3, 4, 5}, DType::f64, -1.0, 1.0, 42));
    for (double& e : v) e = e < 0.3 ? 0.0 : e;
    return Inputs{from_values(v, {3, 4, 5}, dtype)};
  };
  return c;
}

// cumsum reference: running sums along dim d.
Tensor cumsum_ref(const Tensor& x, int64_t d) {
  const Shape& shape = x.shape();
  if (d < 0) d += static_cast<int64_t>(shape.size());
  const auto v = values(x);
  std::vector<double> out(v.size());
  for (int64_t i = 0; i < x.numel(); ++i) {
    auto idx = ref::unravel(i, shape);
    const int64_t upto = idx[static_cast<size_t>(d)];
    double s = 0.0;
    for (int64_t k = 0; k <= upto; ++k) {
      idx[static_cast<size_t>(d)] = k;
      s += v[static_cast<size_t>(ref::ravel(idx, shape))];
    }
    out[static_cast<size_t>(i)] = s;
  }
  return ref::make(out, shape);
}

OpCase cumsum_case(const std::string& name, int64_t dim) {
  OpCase c;
  c.name = name;
  c.make_inputs = [](DType dtype) { return Inputs{random_tensor({3, 4, 5}, dtype, -2, 2, 43)}; };
  c.make_empty_inputs = [](DType dtype) { return Inputs{zeros({0, 4, 5}, dtype)}; };
  c.op = [dim](const Inputs& in) { return cumsum(in[0], dim); };
  c.reference = [dim](const Inputs& in) { return cumsum_ref(in[0], dim); };
  return c;
}

Tensor as_f64(const Tensor& t) { return ops::to_dtype(t, DType::f64); }

const double kInf = std::numeric_limits<double>::infinity();

const bool registered = register_ops({
    with_empty(reduce_case("sum/dims", [](const Tensor& x) { return sum(x, {0, 2}); }, {0, 2}, false, group_sum),
               {0, 4, 5}),
    reduce_case("sum/all", [](const Tensor& x) { return sum(x); }, {}, false, group_sum),
    reduce_case("mean/keepdim", [](const Tensor& x) { return mean(x, {-1}, true); }, {-1}, true,
                [](const Group& g) { return group_sum(g) / static_cast<double>(g.size()); }),
    with_empty(reduce_case("max/dim1", [](const Tensor& x) { return loupe::max(x, 1).values; }, {1}, false, group_max),
               {0, 4, 2}),
    reduce_case("max/keepdim_negative_dim", [](const Tensor& x) { return loupe::max(x, -1, true).values; }, {-1},
                true, group_max),
    reduce_case("min/dim0", [](const Tensor& x) { return loupe::min(x, 0).values; }, {0}, false, group_min),
    reduce_case("max/indices", [](const Tensor& x) { return loupe::max(x, 2).indices; }, {2}, false, group_argmax,
                false),
    reduce_case("min/indices_keepdim", [](const Tensor& x) { return loupe::min(x, 1, true).indices; }, {1}, true,
                group_argmin, false),
    reduce_case("max/0-d", [](const Tensor& x) { return loupe::max(x, 0).values; }, {}, false, group_max, true, {}),
    reduce_case("amax/dims_keepdim", [](const Tensor& x) { return amax(x, {0, 2}, true); }, {0, 2}, true, group_max),
    reduce_case("amax/all", [](const Tensor& x) { return amax(x); }, {}, false, group_max),
    reduce_case("amin/negative_dims", [](const Tensor& x) { return amin(x, {-1, -2}); }, {-1, -2}, false, group_min),
    reduce_case("argmax", [](const Tensor& x) { return argmax(x, 1); }, {1}, false, group_argmax, false),
    reduce_case("argmin/keepdim", [](const Tensor& x) { return argmin(x, -1, true); }, {-1}, true, group_argmin,
                false),
    with_empty(reduce_case("var/dim1", [](const Tensor& x) { return var(x, {1}); }, {1}, false, group_var(1, false))),
    reduce_case("var/correction0_keepdim", [](const Tensor& x) { return var(x, {0, 2}, 0, true); }, {0, 2}, true,
                group_var(0, false)),
    reduce_case("var/all", [](const Tensor& x) { return var(x); }, {}, false, group_var(1, false)),
    reduce_case("std/dims", [](const Tensor& x) { return loupe::std(x, {0, 2}); }, {0, 2}, false, group_var(1, true)),
    reduce_case("std/correction0_all", [](const Tensor& x) { return loupe::std(x, {}, 0); }, {}, false,
                group_var(0, true)),
    with_empty(reduce_case("norm/p2_all", [](const Tensor& x) { return norm(x); }, {}, false, group_norm(2))),
    reduce_case("norm/p1_dim", [](const Tensor& x) { return norm(x, 1.0, {1}); }, {1}, false, group_norm(1)),
    reduce_case("norm/inf_keepdim", [](const Tensor& x) { return norm(x, kInf, {-1}, true); }, {-1}, true,
                group_norm(kInf)),
    reduce_case("norm/neg_inf", [](const Tensor& x) { return norm(x, -kInf, {0}); }, {0}, false, group_norm(-kInf)),
    reduce_case("norm/p3_dims", [](const Tensor& x) { return norm(x, 3.0, {0, 2}); }, {0, 2}, false, group_norm(3)),
    reduce_case("norm/p0.5", [](const Tensor& x) { return norm(x, 0.5, {1}); }, {1}, false, group_norm(0.5)),
    zeros_case("norm/p0", [](const Tensor& x) { return norm(x, 0.0, {2}); }, {2}, false, group_norm(0)),
    with_empty(reduce_case("logsumexp/dim", [](const Tensor& x) { return logsumexp(x, {1}); }, {1}, false,
                           group_logsumexp)),
    reduce_case("logsumexp/dims_keepdim", [](const Tensor& x) { return logsumexp(x, {0, -1}, true); }, {0, -1}, true,
                group_logsumexp),
    // exp(x) overflows float64 beyond ~709: only the max-subtracted form survives these inputs.
    reduce_case("logsumexp/large_values", [](const Tensor& x) { return logsumexp(x, {2}); }, {2}, false,
                group_logsumexp, true, {3, 4, 5}, 700.0, 900.0),
    zeros_case("all/dim", [](const Tensor& x) { return as_f64(all(x, {1})); }, {1}, false,
               [](const Group& g) { return double(std::all_of(g.begin(), g.end(), [](double e) { return e != 0; })); }),
    zeros_case("any/keepdim", [](const Tensor& x) { return as_f64(any(x, {0, 2}, true)); }, {0, 2}, true,
               [](const Group& g) { return double(std::any_of(g.begin(), g.end(), [](double e) { return e != 0; })); }),
    zeros_case("all/all", [](const Tensor& x) { return as_f64(all(x)); }, {}, false,
               [](const Group& g) { return double(std::all_of(g.begin(), g.end(), [](double e) { return e != 0; })); }),
    cumsum_case("cumsum/dim1", 1),
    cumsum_case("cumsum/dim0", 0),
    cumsum_case("cumsum/negative_dim", -1),
});

Tensor vec(const std::vector<double>& v, DType dtype = DType::f64) {
  return from_values(v, {static_cast<int64_t>(v.size())}, dtype);
}

TEST_CASE("reduce: max/min return the first occurrence of a tie") {
  const Tensor x = from_values(std::vector<double>{1, 3, 3, 2, 2, 0}, {2, 3}, DType::f32);
  const auto mx = ops::max(x, 1);
  CHECK(values(mx.values) == std::vector<double>{3, 2});
  CHECK(values(mx.indices) == std::vector<double>{1, 0});
  CHECK(mx.indices.dtype() == DType::i64);
  const auto mn = ops::min(x, 1, true);
  CHECK(mn.values.shape() == Shape{2, 1});
  CHECK(values(mn.indices) == std::vector<double>{0, 2});
  CHECK(values(ops::argmax(x, 0)) == std::vector<double>{1, 0, 0});
}

TEST_CASE("reduce: max/min/amax propagate NaN") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Tensor x = vec({1, nan, 3, nan});
  const auto mx = ops::max(x, 0);
  CHECK(std::isnan(mx.values.item()));
  CHECK(mx.indices.item() == 1);
  CHECK(std::isnan(ops::amin(x).item()));
  CHECK(ops::argmin(x, 0).item() == 1);
}

TEST_CASE("reduce: integer and bool dtypes") {
  const Tensor i = from_values(std::vector<int64_t>{4, -2, 7, 7}, {2, 2});
  CHECK(ops::amax(i).dtype() == DType::i64);
  CHECK(ops::amax(i).item() == 7);
  CHECK(values(ops::max(i, 1).indices) == std::vector<double>{0, 0});
  const Tensor c = ops::cumsum(i, 0);
  CHECK(c.dtype() == DType::i64);
  CHECK(values(c) == std::vector<double>{4, -2, 11, 5});
  const Tensor b = ops::gt(i, scalar_tensor(0, DType::i64));
  CHECK(ops::cumsum(b, 1).dtype() == DType::i64);
  CHECK(values(ops::all(b, {1})) == std::vector<double>{0, 1});
  CHECK(values(ops::any(b, {0})) == std::vector<double>{1, 1});
  CHECK(ops::any(b).dtype() == DType::b8);
  CHECK(ops::logsumexp(i, {}).dtype() == DType::f32);  // integers compute in float32, as in PyTorch
}

TEST_CASE("reduce: empty reductions give each op's identity or NaN") {
  const Tensor e = zeros({0, 3}, DType::f64);
  CHECK(values(ops::all(e, {0})) == std::vector<double>{1, 1, 1});
  CHECK(values(ops::any(e, {0})) == std::vector<double>{0, 0, 0});
  CHECK(values(ops::sum(e, {0})) == std::vector<double>{0, 0, 0});
  CHECK(std::isnan(values(ops::var(e, {0}))[0]));
  CHECK(values(ops::norm(e, 2.0, {0})) == std::vector<double>{0, 0, 0});
  CHECK(std::isinf(values(ops::logsumexp(e, {0}))[0]));
  CHECK(ops::max(e, 1).values.shape() == Shape{0});  // the reduced dim itself is not empty
}

TEST_CASE("reduce: var with too few elements is NaN or inf, like PyTorch") {
  CHECK(std::isnan(ops::var(vec({2.0})).item()));                  // 0 / 0
  CHECK(std::isinf(ops::var(vec({1.0, 3.0}), {}, 2).item()));      // 2 / 0
  CHECK(ops::var(vec({1.0, 3.0}), {}, 0).item() == doctest::Approx(1.0));
}

TEST_CASE("reduce: logsumexp handles infinities without inf - inf") {
  const double inf = std::numeric_limits<double>::infinity();
  CHECK(ops::logsumexp(vec({-inf, -inf}), {0}).item() == -inf);
  CHECK(ops::logsumexp(vec({1.0, inf}), {0}).item() == inf);
  CHECK(ops::logsumexp(vec({1000.0, 1000.0}, DType::f32), {0}).item() == doctest::Approx(1000.0 + std::log(2.0)));
}

// The gradient of one differentiable reduction of a leaf x, for an upstream gradient of ones.
Tensor grad_of(const Tensor& x_values, const std::function<Tensor(const Tensor&)>& f) {
  Tensor x = ops::clone(x_values);
  x.set_requires_grad(true);
  const Tensor y = f(x);
  return grad({y}, {x}, {ones_like(y)})[0];
}

TEST_CASE("reduce: gradients at ties") {
  const Tensor x = vec({1, 3, 3, 2});
  // amax/amin and the inf-norm split the gradient evenly among ties (PyTorch's rule) ...
  CHECK(values(grad_of(x, [](const Tensor& t) { return amax(t); })) == std::vector<double>{0, 0.5, 0.5, 0});
  CHECK(values(grad_of(vec({2, 1, 1}), [](const Tensor& t) { return amin(t, {0}); })) ==
        std::vector<double>{0, 0.5, 0.5});
  CHECK(values(grad_of(vec({-3, 1, 3}), [](const Tensor& t) { return norm(t, INFINITY); })) ==
        std::vector<double>{-0.5, 0, 0.5});
  // ... while max/min over one dim send it to the returned index only.
  CHECK(values(grad_of(x, [](const Tensor& t) { return loupe::max(t, 0).values; })) == std::vector<double>{0, 1, 0, 0});
  const Tensor m = from_values(std::vector<double>{5, 1, 5, 0, 0, 2}, {2, 3}, DType::f64);
  CHECK(values(grad_of(m, [](const Tensor& t) { return loupe::min(t, 1, true).values; })) ==
        std::vector<double>{0, 1, 0, 1, 0, 0});
}

TEST_CASE("reduce: zero norm and zero std have zero gradient, not NaN") {
  CHECK(values(grad_of(vec({0, 0, 0}), [](const Tensor& t) { return norm(t); })) == std::vector<double>{0, 0, 0});
  CHECK(values(grad_of(vec({0, 0}), [](const Tensor& t) { return norm(t, 3.0); })) == std::vector<double>{0, 0});
  CHECK(values(grad_of(vec({2, 2, 2}), [](const Tensor& t) { return loupe::std(t); })) ==
        std::vector<double>{0, 0, 0});
}

TEST_CASE("reduce: results do not depend on the thread count") {
  const Tensor x = random_tensor({64, 2048}, DType::f32, -3, 3, 44);  // big enough to run in parallel
  const auto run = [&] {
    return std::vector<Tensor>{ops::amax(x, {1}), ops::max(x, 0).indices, ops::var(x, {1}), ops::norm(x, 3.0, {0}),
                               ops::logsumexp(x, {1}), ops::cumsum(x, 1), ops::any(x, {1})};
  };
  const int threads = num_threads();
  set_num_threads(1);
  const auto serial = run();
  set_num_threads(threads);
  const auto parallel = run();
  for (size_t i = 0; i < serial.size(); ++i) {
    CHECK(check_close(parallel[i], serial[i], 0, 0, "reduction " + std::to_string(i)));
  }
}

TEST_CASE("reduce: bad arguments raise loupe::Error") {
  const Tensor x = zeros({3, 4});
  CHECK_THROWS_WITH_AS(ops::max(x, 2), doctest::Contains("max: dim 2 out of range"), Error);
  CHECK_THROWS_AS(ops::argmin(x, -3), Error);
  CHECK_THROWS_AS(ops::amax(x, {0, -2}), Error);  // the same dim twice
  CHECK_THROWS_AS(ops::var(x, {5}), Error);
  CHECK_THROWS_AS(ops::cumsum(x, 2), Error);
  CHECK_THROWS_AS(ops::logsumexp(x, {1, 1}), Error);
  CHECK_THROWS_AS(ops::all(x, {-3}), Error);
  // Max/min have no identity: reducing a zero-size dim is an error.
  const Tensor e = zeros({0, 4});
  CHECK_THROWS_WITH_AS(ops::max(e, 0), doctest::Contains("(0, 4)"), Error);
  CHECK_THROWS_AS(ops::amin(e), Error);
  CHECK_THROWS_AS(ops::argmax(e, 0), Error);
  CHECK_THROWS_AS(ops::norm(e, INFINITY, {0}), Error);
  // Floating-only reductions.
  const Tensor i = zeros({3}, DType::i64);
  CHECK_THROWS_WITH_AS(ops::var(i), doctest::Contains("var"), Error);
  CHECK_THROWS_AS(ops::std(i), Error);
  CHECK_THROWS_AS(ops::norm(i), Error);
  CHECK_THROWS_AS(ops::var(zeros({3}), {}, -1), Error);
}

}  // namespace
}  // namespace loupe::test
