// Op table entries: sort and topk (values are differentiable, indices are checked as a separate
// non-differentiable entry). The reference sorts each line with std::stable_sort on (value,
// position) pairs. Extra test cases: stability, NaN order, gradients and errors.
#include <algorithm>
#include <cmath>
#include <limits>

#include "tests/op_table.hpp"
#include "tests/support.hpp"

namespace loupe::test {
namespace {

// The first k entries of every line of x along d after a stable sort (descending or not); the
// values, or the original positions when `want_indices`.
Tensor sort_ref(const Tensor& x, int64_t d, int64_t k, bool descending, bool want_indices) {
  const Shape& shape = x.shape();
  if (d < 0) d += static_cast<int64_t>(shape.size());
  const auto v = values(x);
  const int64_t n = shape[static_cast<size_t>(d)];
  Shape out_shape = shape;
  out_shape[static_cast<size_t>(d)] = k;
  std::vector<double> out(static_cast<size_t>(shape_numel(out_shape)));
  for (int64_t i = 0; i < shape_numel(out_shape); ++i) {
    auto idx = ref::unravel(i, out_shape);
    std::vector<std::pair<double, int64_t>> line;
    for (int64_t j = 0; j < n; ++j) {
      idx[static_cast<size_t>(d)] = j;
      line.emplace_back(v[static_cast<size_t>(ref::ravel(idx, shape))], j);
    }
    std::stable_sort(line.begin(), line.end(), [descending](const auto& a, const auto& b) {
      return descending ? a.first > b.first : a.first < b.first;
    });
    const auto& picked = line[static_cast<size_t>(ref::unravel(i, out_shape)[static_cast<size_t>(d)])];
    out[static_cast<size_t>(i)] = want_indices ? static_cast<double>(picked.second) : picked.first;
  }
  return ref::make(out, out_shape);
}

// k = -1 means sort (all elements); otherwise topk with `descending` = largest.
OpCase sort_case(const std::string& name, int64_t k, int64_t dim, bool descending, bool want_indices,
                 Shape shape = {3, 4, 5}) {
  OpCase c;
  c.name = name;
  c.make_inputs = [shape](DType dtype) { return Inputs{random_tensor(shape, dtype, -2, 2, 61)}; };
  c.op = [=](const Inputs& in) {
    const ops::ValuesIndices r = k < 0 ? sort(in[0], dim, descending) : topk(in[0], k, dim, descending);
    return want_indices ? r.indices : r.values;
  };
  c.reference = [=](const Inputs& in) {
    const int64_t d = dim < 0 ? dim + in[0].dim() : dim;
    return sort_ref(in[0], d, k < 0 ? in[0].shape()[static_cast<size_t>(d)] : k, descending, want_indices);
  };
  c.differentiable = !want_indices;
  c.make_empty_inputs = [](DType dtype) { return Inputs{zeros({0, 4, 5}, dtype)}; };
  return c;
}

const bool registered = register_ops({
    sort_case("sort/last_dim", -1, -1, false, false),
    sort_case("sort/descending_dim1", -1, 1, true, false),
    sort_case("sort/dim0", -1, 0, false, false, {5, 3}),
    sort_case("sort/indices", -1, -1, false, true),
    sort_case("sort/indices_descending_dim1", -1, 1, true, true),
    sort_case("topk/largest", 2, -1, true, false),
    sort_case("topk/smallest_dim1", 3, 1, false, false),
    sort_case("topk/k_equals_size", 4, 1, true, false),
    sort_case("topk/indices", 2, 2, true, true),
    sort_case("topk/indices_smallest", 1, 1, false, true),
});

Tensor vec(const std::vector<double>& v) { return from_values(v, {static_cast<int64_t>(v.size())}, DType::f64); }

TEST_CASE("sort: equal values keep their order; NaN sorts last") {
  const Tensor x = vec({2, 1, 2, 1});
  CHECK(values(ops::sort(x).indices) == std::vector<double>{1, 3, 0, 2});
  CHECK(values(ops::sort(x, 0, /*descending=*/true).indices) == std::vector<double>{0, 2, 1, 3});
  CHECK(values(ops::topk(x, 3).indices) == std::vector<double>{0, 2, 1});
  CHECK(values(ops::topk(x, 3, -1, /*largest=*/false).indices) == std::vector<double>{1, 3, 0});
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const auto s = ops::sort(vec({nan, 1, 0}));
  CHECK(values(s.indices) == std::vector<double>{2, 1, 0});
  CHECK(std::isnan(values(s.values)[2]));
  CHECK(values(ops::topk(vec({1, nan, 3}), 1).indices) == std::vector<double>{1});  // NaN counts as largest
}

TEST_CASE("sort: dtypes, shapes and 0-d inputs") {
  const Tensor i = from_values(std::vector<int64_t>{3, -1, 2, 0, 5, 4}, {2, 3});
  const auto s = ops::sort(i, 1);
  CHECK(s.values.dtype() == DType::i64);
  CHECK(s.indices.dtype() == DType::i64);
  CHECK(values(s.values) == std::vector<double>{-1, 2, 3, 0, 4, 5});
  const auto t = ops::topk(i, 1, 0);
  CHECK(t.values.shape() == Shape{1, 3});
  CHECK(values(t.values) == std::vector<double>{3, 5, 4});
  CHECK(ops::topk(i, 0, 1).values.shape() == Shape{2, 0});
  const auto z = ops::sort(scalar_tensor(7.0, DType::f64));
  CHECK(z.values.shape() == Shape{});
  CHECK(z.indices.item() == 0);
}

TEST_CASE("sort: the gradient goes back to the source positions") {
  Tensor x = from_values(std::vector<double>{0.5, -1, 2, 0.1, 3, -2}, {2, 3}, DType::f64);
  x.set_requires_grad(true);
  const auto t = topk(x, 2, 1);  // rows: [2, 0.5] from (2, 0); [3, 0.1] from (1, 0)
  CHECK(t.values.requires_grad());
  CHECK(!t.indices.requires_grad());
  const Tensor g = from_values(std::vector<double>{10, 20, 30, 40}, {2, 2}, DType::f64);
  CHECK(values(grad({t.values}, {x}, {g})[0]) == std::vector<double>{20, 0, 10, 40, 30, 0});
  const auto s = sort(x, 0, true);
  CHECK(values(grad({s.values}, {x}, {ones({2, 3}, DType::f64)})[0]) == std::vector<double>(6, 1.0));
}

TEST_CASE("sort: results do not depend on the thread count") {
  const Tensor x = random_tensor({64, 1024}, DType::f32, -3, 3, 62);
  const auto run = [&] {
    const auto s = ops::sort(x, 1);
    const auto t = ops::topk(x, 5, 0);
    return std::vector<Tensor>{s.values, s.indices, t.values, t.indices,
                               ops::sort_backward(s.values, s.indices, 1, x.shape())};
  };
  const int threads = num_threads();
  set_num_threads(1);
  const auto serial = run();
  set_num_threads(threads);
  const auto parallel = run();
  for (size_t i = 0; i < serial.size(); ++i) {
    CHECK(check_close(parallel[i], serial[i], 0, 0, "sort " + std::to_string(i)));
  }
  // Scattering the sorted values back to their indices restores x.
  CHECK(check_close(serial[4], x, 0, 0, "sort_backward of sort"));
}

TEST_CASE("sort: bad arguments raise loupe::Error") {
  const Tensor x = zeros({3, 4});
  CHECK_THROWS_WITH_AS(ops::topk(x, 5), doctest::Contains("topk: k = 5 out of range"), Error);
  CHECK_THROWS_WITH_AS(ops::topk(x, 4, 0), doctest::Contains("(3, 4)"), Error);
  CHECK_THROWS_AS(ops::topk(x, -1), Error);
  CHECK_THROWS_AS(ops::topk(x, 1, 2), Error);
  CHECK_THROWS_AS(ops::sort(x, -3), Error);
  CHECK_THROWS_AS(sort(x, 2), Error);
  CHECK_THROWS_AS(ops::topk(scalar_tensor(1.0), 2), Error);
  // The backward scatter checks what it is given.
  const Tensor g = zeros({3, 2});
  CHECK_THROWS_AS(ops::sort_backward(g, zeros({3, 2}, DType::i64), 1, {4, 4}), Error);      // shape mismatch
  CHECK_THROWS_AS(ops::sort_backward(g, full({3, 2}, 9, DType::i64), 1, {3, 4}), Error);    // index out of range
  CHECK_THROWS_AS(ops::sort_backward(g, zeros({3, 2}), 1, {3, 4}), Error);                  // float indices
}

}  // namespace
}  // namespace loupe::test
