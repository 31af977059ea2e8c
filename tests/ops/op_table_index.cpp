// Op table entries: indexing ops (gather, scatter_add, index_select, index_add, masked_fill,
// embedding, one_hot), plus test cases for their error messages, padding_idx, one_hot values,
// 0-d inputs and thread-count independence. References are plain loops over row-major indices.
#include <cmath>

#include "tests/op_table.hpp"
#include "tests/support.hpp"

namespace loupe::test {
namespace {

using Dims = std::vector<int64_t>;

int64_t wrap(int64_t dim, size_t ndim) { return dim < 0 ? dim + static_cast<int64_t>(ndim) : dim; }
size_t at(int64_t i) { return static_cast<size_t>(i); }

// ---- references ----

// out[c] = x[c with c[dim] = index[c]], out.shape = index.shape.
Tensor gather_ref(const Tensor& x, int64_t dim, const Tensor& index) {
  const auto xv = values(x);
  const auto iv = values(index);
  dim = wrap(dim, x.shape().size());
  std::vector<double> out(iv.size());
  for (size_t i = 0; i < iv.size(); ++i) {
    auto c = ref::unravel(static_cast<int64_t>(i), index.shape());
    c[at(dim)] = static_cast<int64_t>(iv[i]);
    out[i] = xv[at(ref::ravel(c, x.shape()))];
  }
  return ref::make(out, index.shape());
}

// out = x; out[c with c[dim] = index[c]] += src[c] for every position c of index.
Tensor scatter_add_ref(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  auto out = values(x);
  const auto iv = values(index);
  const auto sv = values(src);
  dim = wrap(dim, x.shape().size());
  for (size_t i = 0; i < iv.size(); ++i) {
    auto c = ref::unravel(static_cast<int64_t>(i), index.shape());
    const double s = sv[at(ref::ravel(c, src.shape()))];
    c[at(dim)] = static_cast<int64_t>(iv[i]);
    out[at(ref::ravel(c, x.shape()))] += s;
  }
  return ref::make(out, x.shape());
}

Tensor index_select_ref(const Tensor& x, int64_t dim, const Tensor& index) {
  const auto xv = values(x);
  const auto iv = values(index);
  dim = wrap(dim, x.shape().size());
  Shape shape = x.shape();
  shape[at(dim)] = static_cast<int64_t>(iv.size());
  std::vector<double> out(at(shape_numel(shape)));
  for (size_t i = 0; i < out.size(); ++i) {
    auto c = ref::unravel(static_cast<int64_t>(i), shape);
    c[at(dim)] = static_cast<int64_t>(iv[at(c[at(dim)])]);
    out[i] = xv[at(ref::ravel(c, x.shape()))];
  }
  return ref::make(out, shape);
}

Tensor index_add_ref(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src, double alpha) {
  auto out = values(x);
  const auto iv = values(index);
  const auto sv = values(src);
  dim = wrap(dim, x.shape().size());
  for (size_t i = 0; i < sv.size(); ++i) {
    auto c = ref::unravel(static_cast<int64_t>(i), src.shape());
    c[at(dim)] = static_cast<int64_t>(iv[at(c[at(dim)])]);
    out[at(ref::ravel(c, x.shape()))] += alpha * sv[i];
  }
  return ref::make(out, x.shape());
}

Tensor masked_fill_ref(const Tensor& x, const Tensor& mask, double value) {
  return ref::map2(x, mask, [value](double a, double m) { return m != 0 ? value : a; });
}

Tensor embedding_ref(const Tensor& weight, const Tensor& indices) {
  const auto wv = values(weight);
  const auto iv = values(indices);
  const int64_t d = weight.shape()[1];
  Shape shape = indices.shape();
  shape.push_back(d);
  std::vector<double> out;
  for (double i : iv) {
    for (int64_t k = 0; k < d; ++k) out.push_back(wv[at(static_cast<int64_t>(i) * d + k)]);
  }
  return ref::make(out, shape);
}

Tensor one_hot_ref(const Tensor& indices, int64_t classes) {
  const auto iv = values(indices);
  Shape shape = indices.shape();
  shape.push_back(classes);
  std::vector<double> out(iv.size() * at(classes), 0.0);
  for (size_t i = 0; i < iv.size(); ++i) out[i * at(classes) + at(static_cast<int64_t>(iv[i]))] = 1.0;
  return ref::make(out, shape);
}

Tensor bool_mask(const Shape& shape, uint64_t seed) {
  return ops::gt(random_tensor(shape, DType::f64, -1, 1, seed), scalar_tensor(0.0, DType::f64));
}

// ---- entries ----

OpCase gather_case(const std::string& name, Shape x_shape, int64_t dim, Shape index_shape) {
  OpCase c;
  c.name = name;
  c.make_inputs = [=](DType dtype) {
    const int64_t size = x_shape[at(wrap(dim, x_shape.size()))];
    return Inputs{random_tensor(x_shape, dtype, -1, 1, 41), random_indices(index_shape, 0, size, 42)};
  };
  c.op = [dim](const Inputs& in) { return gather(in[0], dim, in[1]); };
  c.reference = [dim](const Inputs& in) { return gather_ref(in[0], dim, in[1]); };
  return c;
}

OpCase scatter_add_case(const std::string& name, Shape x_shape, int64_t dim, Shape index_shape, Shape src_shape) {
  OpCase c;
  c.name = name;
  c.make_inputs = [=](DType dtype) {
    const int64_t size = x_shape[at(wrap(dim, x_shape.size()))];
    return Inputs{random_tensor(x_shape, dtype, -1, 1, 43), random_indices(index_shape, 0, size, 44),
                  random_tensor(src_shape, dtype, -1, 1, 45)};
  };
  c.op = [dim](const Inputs& in) { return scatter_add(in[0], dim, in[1], in[2]); };
  c.reference = [dim](const Inputs& in) { return scatter_add_ref(in[0], dim, in[1], in[2]); };
  return c;
}

OpCase index_select_case(const std::string& name, Shape x_shape, int64_t dim, std::vector<int64_t> index,
                         Shape index_shape) {
  OpCase c;
  c.name = name;
  c.make_inputs = [=](DType dtype) {
    return Inputs{random_tensor(x_shape, dtype, -1, 1, 46), from_values(index, index_shape)};
  };
  c.op = [dim](const Inputs& in) { return index_select(in[0], dim, in[1]); };
  c.reference = [dim](const Inputs& in) { return index_select_ref(in[0], dim, in[1]); };
  return c;
}

OpCase index_add_case(const std::string& name, Shape x_shape, int64_t dim, std::vector<int64_t> index, double alpha) {
  OpCase c;
  c.name = name;
  c.make_inputs = [=](DType dtype) {
    Shape src_shape = x_shape;
    src_shape[at(wrap(dim, x_shape.size()))] = static_cast<int64_t>(index.size());
    return Inputs{random_tensor(x_shape, dtype, -1, 1, 47), from_values(index, {static_cast<int64_t>(index.size())}),
                  random_tensor(src_shape, dtype, -1, 1, 48)};
  };
  c.op = [dim, alpha](const Inputs& in) { return index_add(in[0], dim, in[1], in[2], alpha); };
  c.reference = [dim, alpha](const Inputs& in) { return index_add_ref(in[0], dim, in[1], in[2], alpha); };
  return c;
}

OpCase masked_fill_case(const std::string& name, Shape x_shape, Shape mask_shape, double value) {
  OpCase c;
  c.name = name;
  c.make_inputs = [=](DType dtype) {
    return Inputs{random_tensor(x_shape, dtype, -1, 1, 49), bool_mask(mask_shape, 50)};
  };
  c.op = [value](const Inputs& in) { return masked_fill(in[0], in[1], value); };
  c.reference = [value](const Inputs& in) { return masked_fill_ref(in[0], in[1], value); };
  return c;
}

// padding_idx only changes the backward (checked in its own test case below): the forward still
// reads that row, so a finite-difference gradcheck would disagree with the zero gradient on purpose.
OpCase embedding_case(const std::string& name, int64_t num, int64_t dim, Shape index_shape, int64_t padding_idx = -1) {
  OpCase c;
  c.name = name;
  c.make_inputs = [=](DType dtype) {
    return Inputs{random_tensor({num, dim}, dtype, -1, 1, 51), random_indices(index_shape, 0, num, 52)};
  };
  c.op = [padding_idx](const Inputs& in) { return embedding(in[0], in[1], padding_idx); };
  c.reference = [](const Inputs& in) { return embedding_ref(in[0], in[1]); };
  c.differentiable = padding_idx < 0;
  return c;
}

OpCase one_hot_case(const std::string& name, Shape shape, int64_t classes, int64_t num_classes_arg) {
  OpCase c;
  c.name = name;
  c.make_inputs = [=](DType) {
    // The largest class appears, so num_classes = -1 infers `classes`.
    Tensor idx = random_indices(shape, 0, classes, 53);
    idx.data<int64_t>()[0] = classes - 1;
    return Inputs{idx};
  };
  c.make_empty_inputs = [](DType) { return Inputs{zeros({0, 2}, DType::i64)}; };
  c.op = [num_classes_arg, classes](const Inputs& in) {
    return one_hot(in[0], in[0].numel() == 0 ? classes : num_classes_arg);
  };
  c.reference = [classes](const Inputs& in) { return one_hot_ref(in[0], classes); };
  c.differentiable = false;
  return c;
}

OpCase with_empty(OpCase c, std::function<Inputs(DType)> empty) {
  c.make_empty_inputs = std::move(empty);
  return c;
}

const bool registered = register_ops({
    with_empty(gather_case("gather/dim1", {3, 4, 2}, 1, {3, 3, 2}),
               [](DType dtype) { return Inputs{zeros({3, 4}, dtype), zeros({3, 0}, DType::i64)}; }),
    gather_case("gather/dim0_longer_index", {4, 3}, -2, {6, 3}),
    gather_case("gather/smaller_index", {3, 5}, -1, {2, 2}),
    scatter_add_case("scatter_add/dim0_repeats", {4, 3}, 0, {6, 3}, {6, 3}),
    scatter_add_case("scatter_add/partial_src", {3, 5}, -1, {2, 3}, {3, 4}),
    scatter_add_case("scatter_add/3d_dim1", {2, 3, 4}, 1, {2, 5, 4}, {2, 5, 4}),
    with_empty(index_select_case("index_select/dim0", {4, 3}, 0, {2, 0, 2, 3, 1}, {5}),
               [](DType dtype) { return Inputs{zeros({4, 3}, dtype), zeros({0}, DType::i64)}; }),
    index_select_case("index_select/last_dim", {2, 3, 5}, -1, {4, 4, 0, 1}, {4}),
    index_select_case("index_select/scalar_index", {3, 4}, 1, {2}, {}),
    with_empty(index_add_case("index_add/dim1_alpha", {3, 4, 2}, 1, {3, 0, 3}, 2.5),
               [](DType dtype) {
                 return Inputs{ones({3, 2}, dtype), zeros({0}, DType::i64), zeros({3, 0}, dtype)};
               }),
    index_add_case("index_add/dim0_repeats", {5, 3}, -2, {1, 4, 1, 1, 0, 2}, 1.0),
    masked_fill_case("masked_fill/same_shape", {3, 4}, {3, 4}, -1.5),
    masked_fill_case("masked_fill/broadcast_mask", {2, 3, 4}, {3, 1}, 2.0),
    masked_fill_case("masked_fill/mask_wider_than_x", {4}, {3, 4}, -1e4),
    embedding_case("embedding/2d_indices", 6, 4, {2, 3}),
    embedding_case("embedding/scalar_index", 5, 3, {}),
    embedding_case("embedding/padding_idx_forward", 6, 4, {3, 4}, 2),
    one_hot_case("one_hot/given_classes", {2, 3}, 5, 5),
    one_hot_case("one_hot/inferred_classes", {7}, 4, -1),
});

// ---- behaviour the table cannot express ----

TEST_CASE("embedding: the padding_idx row gets no gradient, the others one per occurrence") {
  Tensor weight = random_tensor({5, 3}, DType::f64, -1, 1, 60);
  weight.set_requires_grad(true);
  const Tensor indices = from_values(std::vector<int64_t>{2, 0, 2, 4, 0, 0}, {2, 3});
  backward(sum(embedding(weight, indices, 2)));
  const auto g = values(weight.grad());
  const std::vector<double> count{3, 0, 0, 0, 1};  // row 2 is padding despite two uses
  for (size_t r = 0; r < 5; ++r) {
    for (size_t k = 0; k < 3; ++k) CHECK(g[r * 3 + k] == count[r]);
  }
  // Without padding_idx row 2 collects its two uses.
  weight.set_grad(Tensor());
  backward(sum(embedding(weight, indices)));
  CHECK(values(weight.grad())[6] == 2.0);
}

TEST_CASE("one_hot: values, inferred class count and empty inputs") {
  const Tensor idx = from_values(std::vector<int64_t>{0, 2, 1, 0}, {2, 2});
  const Tensor out = one_hot(idx, -1);
  CHECK(out.dtype() == DType::i64);
  CHECK(out.shape() == Shape{2, 2, 3});
  CHECK(to_vector<int64_t>(out) == std::vector<int64_t>{1, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 0});
  CHECK(one_hot(idx, 5).shape() == Shape{2, 2, 5});
  CHECK(one_hot(zeros({0}, DType::i64), 4).shape() == Shape{0, 4});
  CHECK(one_hot(from_values(std::vector<int64_t>{1}, {}), 2).shape() == Shape{2});
}

TEST_CASE("indexing ops on 0-d tensors follow PyTorch") {
  const Tensor x = scalar_tensor(3.5, DType::f64);
  const Tensor i0 = from_values(std::vector<int64_t>{0}, {});
  CHECK(ops::gather(x, 0, i0).shape() == Shape{});
  CHECK(ops::gather(x, -1, i0).item() == 3.5);
  CHECK(ops::scatter_add(x, 0, i0, scalar_tensor(1.0, DType::f64)).item() == 4.5);
  CHECK(ops::index_select(x, 0, i0).shape() == Shape{});
  CHECK(ops::index_add(x, 0, i0, scalar_tensor(2.0, DType::f64), 0.5).item() == 4.5);
  CHECK_THROWS_AS(ops::index_select(x, 0, from_values(std::vector<int64_t>{0, 0}, {2})), Error);
  CHECK_THROWS_AS(ops::gather(x, 0, from_values(std::vector<int64_t>{1}, {})), Error);
}

TEST_CASE("indexing ops: integer and bool inputs") {
  const Tensor x = from_values(std::vector<int64_t>{1, 2, 3, 4}, {2, 2});
  const Tensor idx = from_values(std::vector<int64_t>{1, 1}, {2});
  CHECK(to_vector<int64_t>(ops::index_select(x, 1, idx)) == std::vector<int64_t>{2, 2, 4, 4});
  CHECK(to_vector<int64_t>(ops::index_add(x, 0, idx, x, 2)) == std::vector<int64_t>{1, 2, 11, 16});
  const Tensor mask = from_values(std::vector<double>{1, 0}, {2}, DType::b8);
  CHECK(to_vector<int64_t>(ops::masked_fill(x, mask, 7)) == std::vector<int64_t>{7, 2, 7, 4});
  CHECK(ops::gather(mask, 0, idx).dtype() == DType::b8);
  // The usual attention mask: -inf where masked.
  const Tensor scores = masked_fill(zeros({2, 2}, DType::f32), ops::gt(x, scalar_tensor(2.0, DType::i64)), -INFINITY);
  CHECK(values(scores) == std::vector<double>{0, 0, -INFINITY, -INFINITY});
  CHECK_THROWS_AS(ops::index_add(x, 0, idx, x, 0.5), Error);  // a fractional alpha for int64
}

TEST_CASE("index_add and scatter_add give the same sums whatever the thread count") {
  const Tensor grad = random_tensor({300, 512}, DType::f32, -1, 1, 61);
  const Tensor idx = random_indices({300}, 0, 40, 62);
  const Tensor src = random_tensor({40, 512}, DType::f32, -1, 1, 63);
  const Tensor index2d = random_indices({300, 512}, 0, 40, 64);
  const int threads = num_threads();
  set_num_threads(1);
  const Tensor one = ops::embedding_backward(grad, idx, 40, -1);
  const Tensor one_scatter = ops::scatter_add(src, 0, index2d, grad);
  set_num_threads(4);
  const Tensor four = ops::embedding_backward(grad, idx, 40, -1);
  const Tensor four_scatter = ops::scatter_add(src, 0, index2d, grad);
  set_num_threads(threads);
  check_close(four, one, 0, 0, "embedding_backward threads");
  check_close(four_scatter, one_scatter, 0, 0, "scatter_add threads");
}

TEST_CASE("indexing ops: out-of-range and negative indices raise loupe::Error naming op, index and size") {
  const Tensor x = random_tensor({3, 4}, DType::f32);
  const Tensor bad = from_values(std::vector<int64_t>{0, 4, 1}, {3, 1});
  CHECK_THROWS_WITH_AS(ops::gather(x, 1, bad),
                       doctest::Contains("gather: index 4 is out of bounds for dimension 1 with size 4"), Error);
  CHECK_THROWS_WITH_AS(ops::gather(x, 0, from_values(std::vector<int64_t>{-1}, {1, 1})),
                       doctest::Contains("gather: index -1"), Error);
  CHECK_THROWS_AS(ops::scatter_add(x, 1, bad, random_tensor({3, 1})), Error);
  CHECK_THROWS_WITH_AS(ops::index_select(x, 0, from_values(std::vector<int64_t>{3}, {1})),
                       doctest::Contains("index_select: index 3 is out of bounds for dimension 0 with size 3"), Error);
  CHECK_THROWS_AS(ops::index_select(x, 1, from_values(std::vector<int64_t>{-1}, {1})), Error);
  CHECK_THROWS_AS(ops::index_add(x, 0, from_values(std::vector<int64_t>{5}, {1}), random_tensor({1, 4})), Error);
  CHECK_THROWS_AS(ops::index_add(x, 0, from_values(std::vector<int64_t>{-3}, {1}), random_tensor({1, 4})), Error);
  const Tensor weight = random_tensor({6, 2});
  CHECK_THROWS_WITH_AS(embedding(weight, from_values(std::vector<int64_t>{1, 6}, {2})),
                       doctest::Contains("embedding: index 6 is out of bounds for dimension 0 with size 6"), Error);
  CHECK_THROWS_AS(embedding(weight, from_values(std::vector<int64_t>{-1}, {1})), Error);
  CHECK_THROWS_AS(one_hot(from_values(std::vector<int64_t>{-1, 0}, {2})), Error);
  CHECK_THROWS_WITH_AS(one_hot(from_values(std::vector<int64_t>{3}, {1}), 3), doctest::Contains("one_hot"), Error);
}

TEST_CASE("indexing ops: bad shapes, dtypes and arguments raise loupe::Error") {
  const Tensor x = random_tensor({3, 4}, DType::f32);
  const Tensor idx2 = from_values(std::vector<int64_t>{0, 1}, {2, 1});
  // gather / scatter_add shapes
  CHECK_THROWS_WITH_AS(ops::gather(x, 1, from_values(std::vector<int64_t>{0, 1}, {2})), doctest::Contains("gather"),
                       Error);  // wrong number of dims
  CHECK_THROWS_AS(ops::gather(x, 1, zeros({4, 1}, DType::i64)), Error);  // larger than x in dim 0
  CHECK_THROWS_AS(ops::gather(x, 2, idx2), Error);                       // dim out of range
  CHECK_THROWS_WITH_AS(ops::gather(x, 1, zeros({2, 1}, DType::f32)), doctest::Contains("int64"), Error);
  CHECK_THROWS_AS(ops::scatter_add(x, 1, idx2, random_tensor({1, 1})), Error);                // src smaller than index
  CHECK_THROWS_AS(ops::scatter_add(x, 1, idx2, random_tensor({2, 1}, DType::f64)), Error);  // dtype mismatch
  // index_select / index_add
  CHECK_THROWS_AS(ops::index_select(x, 0, idx2), Error);  // 2-d index
  CHECK_THROWS_AS(ops::index_add(x, 0, from_values(std::vector<int64_t>{0, 1}, {2}), random_tensor({3, 4})),
                  Error);  // 2 indices, 3 source rows
  CHECK_THROWS_AS(ops::index_add(x, 0, from_values(std::vector<int64_t>{0}, {1}), random_tensor({1, 5})), Error);
  CHECK_THROWS_AS(ops::index_add(x, 0, from_values(std::vector<int64_t>{0}, {1}), random_tensor({1, 4}, DType::f64)),
                  Error);
  // masked_fill
  CHECK_THROWS_WITH_AS(ops::masked_fill(x, zeros({3, 4}, DType::f32), 1.0), doctest::Contains("masked_fill"), Error);
  CHECK_THROWS_AS(ops::masked_fill(x, zeros({2, 4}, DType::b8), 1.0), Error);
  CHECK_THROWS_AS(ops::masked_fill(zeros({2}, DType::i64), ones({2}, DType::b8), NAN), Error);
  // embedding / one_hot
  CHECK_THROWS_WITH_AS(embedding(random_tensor({6}), zeros({2}, DType::i64)),
                       doctest::Contains("embedding: weight must be 2-d"), Error);
  CHECK_THROWS_AS(embedding(random_tensor({6, 2}), zeros({2}, DType::f32)), Error);
  CHECK_THROWS_AS(embedding(random_tensor({6, 2}), zeros({2}, DType::i64), 6), Error);  // padding_idx >= V
  CHECK_THROWS_AS(one_hot(zeros({0}, DType::i64)), Error);                              // cannot infer classes
  CHECK_THROWS_AS(one_hot(zeros({2}, DType::f32), 3), Error);
}

}  // namespace
}  // namespace loupe::test
