// Op table entries: cat, stack, split, chunk and pad (constant, reflect, replicate), plus test
// cases for piece shapes and gradients of split/chunk, dtype promotion in cat, and error cases.
// References are plain loops over row-major indices.
#include <algorithm>

#include "tests/op_table.hpp"
#include "tests/support.hpp"

namespace loupe::test {
namespace {

size_t at(int64_t i) { return static_cast<size_t>(i); }
int64_t wrap(int64_t dim, size_t ndim) { return dim < 0 ? dim + static_cast<int64_t>(ndim) : dim; }

// ---- references ----

// Joins along dim; 1-d empty tensors are skipped, as in torch.cat.
Tensor cat_ref(const Inputs& in, int64_t dim) {
  Inputs parts;
  for (const Tensor& t : in) {
    if (!(t.dim() == 1 && t.shape()[0] == 0)) parts.push_back(t);
  }
  dim = wrap(dim, parts[0].shape().size());
  Shape shape = parts[0].shape();
  shape[at(dim)] = 0;
  for (const Tensor& t : parts) shape[at(dim)] += t.shape()[at(dim)];
  std::vector<double> out(at(shape_numel(shape)));
  for (size_t i = 0; i < out.size(); ++i) {
    auto c = ref::unravel(static_cast<int64_t>(i), shape);
    size_t k = 0;
    while (c[at(dim)] >= parts[k].shape()[at(dim)]) c[at(dim)] -= parts[k++].shape()[at(dim)];
    out[i] = values(parts[k])[at(ref::ravel(c, parts[k].shape()))];
  }
  return ref::make(out, shape);
}

Tensor stack_ref(const Inputs& in, int64_t dim) {
  const Shape& s = in[0].shape();
  dim = wrap(dim, s.size() + 1);
  Shape shape = s;
  shape.insert(shape.begin() + dim, static_cast<int64_t>(in.size()));
  std::vector<double> out(at(shape_numel(shape)));
  for (size_t i = 0; i < out.size(); ++i) {
    auto c = ref::unravel(static_cast<int64_t>(i), shape);
    const int64_t k = c[at(dim)];
    c.erase(c.begin() + dim);
    out[i] = values(in[at(k)])[at(ref::ravel(c, s))];
  }
  return ref::make(out, shape);
}

// Every element of x times (1 + the number of the piece it falls in along dim).
Tensor scaled_pieces_ref(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  dim = wrap(dim, x.shape().size());
  auto v = values(x);
  for (size_t i = 0; i < v.size(); ++i) {
    int64_t pos = ref::unravel(static_cast<int64_t>(i), x.shape())[at(dim)];
    size_t k = 0;
    while (pos >= sizes[k]) pos -= sizes[k++];
    v[i] *= static_cast<double>(k + 1);
  }
  return ref::make(v, x.shape());
}

// The input index read by padded position o (-1: fill), written out case by case.
int64_t pad_source(int64_t o, int64_t before, int64_t size, PadMode mode) {
  int64_t j = o - before;
  if (mode == PadMode::constant) return j >= 0 && j < size ? j : -1;
  if (mode == PadMode::replicate) return j < 0 ? 0 : (j >= size ? size - 1 : j);
  while (j < 0 || j >= size) j = j < 0 ? -j : 2 * (size - 1) - j;  // reflect about the edge elements
  return j;
}

Tensor pad_ref(const Tensor& x, const std::vector<int64_t>& pads, PadMode mode, double value) {
  const Shape& s = x.shape();
  const size_t n = s.size();
  Shape shape = s;
  for (size_t p = 0; p < pads.size() / 2; ++p) shape[n - 1 - p] += pads[2 * p] + pads[2 * p + 1];
  const auto v = values(x);
  std::vector<double> out(at(shape_numel(shape)));
  for (size_t i = 0; i < out.size(); ++i) {
    auto c = ref::unravel(static_cast<int64_t>(i), shape);
    bool fill = false;
    for (size_t p = 0; p < pads.size() / 2; ++p) {
      const size_t d = n - 1 - p;
      c[d] = pad_source(c[d], pads[2 * p], s[d], mode);
      fill = fill || c[d] < 0;
    }
    out[i] = fill ? value : v[at(ref::ravel(c, s))];
  }
  return ref::make(out, shape);
}

// ---- entries ----

OpCase cat_case(const std::string& name, std::vector<Shape> shapes, int64_t dim) {
  OpCase c;
  c.name = name;
  c.make_inputs = [shapes](DType dtype) {
    Inputs in;
    for (size_t i = 0; i < shapes.size(); ++i) in.push_back(random_tensor(shapes[i], dtype, -1, 1, 70 + i));
    return in;
  };
  c.op = [dim](const Inputs& in) { return cat(in, dim); };
  c.reference = [dim](const Inputs& in) { return cat_ref(in, dim); };
  return c;
}

OpCase stack_case(const std::string& name, Shape shape, size_t count, int64_t dim) {
  OpCase c;
  c.name = name;
  c.make_inputs = [=](DType dtype) {
    Inputs in;
    for (size_t i = 0; i < count; ++i) in.push_back(random_tensor(shape, dtype, -1, 1, 80 + i));
    return in;
  };
  c.op = [dim](const Inputs& in) { return stack(in, dim); };
  c.reference = [dim](const Inputs& in) { return stack_ref(in, dim); };
  return c;
}

// Splits x, scales piece k by k + 1 and joins the pieces again: the forward checks that pieces
// tile x in order, and gradcheck checks every piece's gradient at once.
OpCase pieces_case(const std::string& name, Shape shape, int64_t dim,
                   std::function<std::vector<Tensor>(const Tensor&)> split_fn, std::vector<int64_t> sizes) {
  OpCase c;
  c.name = name;
  c.make_inputs = [shape](DType dtype) { return Inputs{random_tensor(shape, dtype, -1, 1, 90)}; };
  c.op = [dim, split_fn](const Inputs& in) {
    std::vector<Tensor> pieces = split_fn(in[0]);
    for (size_t k = 0; k < pieces.size(); ++k) pieces[k] = pieces[k] * static_cast<double>(k + 1);
    return cat(pieces, dim);
  };
  c.reference = [dim, sizes](const Inputs& in) { return scaled_pieces_ref(in[0], sizes, dim); };
  return c;
}

OpCase pad_case(const std::string& name, Shape shape, std::vector<int64_t> pads, PadMode mode, double value = 0.0) {
  OpCase c;
  c.name = name;
  c.make_inputs = [shape](DType dtype) { return Inputs{random_tensor(shape, dtype, -1, 1, 95)}; };
  c.op = [=](const Inputs& in) { return pad(in[0], pads, mode, value); };
  c.reference = [=](const Inputs& in) { return pad_ref(in[0], pads, mode, value); };
  return c;
}

OpCase with_empty(OpCase c, std::function<Inputs(DType)> empty) {
  c.make_empty_inputs = std::move(empty);
  return c;
}

const bool registered = register_ops({
    with_empty(cat_case("cat/dim0", {{2, 3}, {4, 3}, {1, 3}}, 0),
               [](DType dtype) { return Inputs{zeros({0, 3}, dtype), zeros({2, 3}, dtype)}; }),
    cat_case("cat/last_dim", {{2, 3, 1}, {2, 3, 4}}, -1),
    cat_case("cat/middle_dim_with_empty_piece", {{2, 0, 3}, {2, 2, 3}, {2, 1, 3}}, 1),
    cat_case("cat/skips_empty_1d", {{2, 3}, {0}, {1, 3}}, 0),
    [] {
      // float + int64 -> the floating dtype; only the floating input gets a gradient.
      OpCase c = cat_case("cat/promotes_int64", {{2, 2}}, 1);
      c.make_inputs = [](DType dtype) {
        return Inputs{random_tensor({2, 2}, dtype, -1, 1, 75), random_indices({2, 3}, -5, 5, 76)};
      };
      return c;
    }(),
    stack_case("stack/dim0", {2, 3}, 3, 0),
    stack_case("stack/new_last_dim", {2, 3}, 2, -1),
    stack_case("stack/dim1", {2, 3}, 4, 1),
    pieces_case("split/size2_dim0", {5, 3}, 0, [](const Tensor& x) { return split(x, 2, 0); }, {2, 2, 1}),
    pieces_case("split/sizes_dim-1", {2, 6}, -1,
                [](const Tensor& x) { return split(x, std::vector<int64_t>{1, 0, 3, 2}, -1); }, {1, 0, 3, 2}),
    pieces_case("chunk/uneven", {3, 7}, 1, [](const Tensor& x) { return chunk(x, 3, 1); }, {3, 3, 1}),
    pieces_case("chunk/fewer_pieces", {6, 2}, 0, [](const Tensor& x) { return chunk(x, 4, 0); }, {2, 2, 2}),
    with_empty(pad_case("pad/constant_last_dim", {2, 5}, {1, 2}, PadMode::constant, 0.5),
               [](DType dtype) { return Inputs{zeros({0, 5}, dtype)}; }),
    pad_case("pad/constant_crop", {2, 4, 5}, {-1, 2, 1, -2}, PadMode::constant, -1.0),
    pad_case("pad/constant_three_dims", {2, 3, 4}, {1, 0, 0, 1, 2, 1}, PadMode::constant),
    with_empty(pad_case("pad/reflect_1d", {2, 3, 5}, {2, 4}, PadMode::reflect),
               [](DType dtype) { return Inputs{zeros({0, 3, 5}, dtype)}; }),
    pad_case("pad/reflect_1d_crop", {2, 6}, {-1, 2}, PadMode::reflect),
    pad_case("pad/reflect_2d_batched", {1, 2, 4, 5}, {3, 1, 2, 3}, PadMode::reflect),
    pad_case("pad/reflect_2d_unbatched", {2, 4, 5}, {1, 1, 1, 1}, PadMode::reflect),
    pad_case("pad/reflect_3d", {1, 2, 3, 3, 4}, {1, 2, 2, 1, 1, 0}, PadMode::reflect),
    pad_case("pad/replicate_1d", {2, 4}, {3, 5}, PadMode::replicate),
    pad_case("pad/replicate_2d", {1, 2, 3, 4}, {2, 3, 4, 1}, PadMode::replicate),
    pad_case("pad/replicate_3d_unbatched", {2, 2, 3, 3}, {1, 1, 2, 0, 1, 2}, PadMode::replicate),
});

// ---- behaviour the table cannot express ----

std::vector<Shape> shapes_of(const std::vector<Tensor>& pieces) {
  std::vector<Shape> out;
  for (const Tensor& p : pieces) out.push_back(p.shape());
  return out;
}

TEST_CASE("split and chunk: piece shapes follow PyTorch") {
  const Tensor x = random_tensor({5, 4});
  CHECK(shapes_of(split(x, 2)) == std::vector<Shape>{{2, 4}, {2, 4}, {1, 4}});
  CHECK(shapes_of(split(x, 3, -1)) == std::vector<Shape>{{5, 3}, {5, 1}});
  CHECK(shapes_of(split(x, 10)) == std::vector<Shape>{{5, 4}});
  CHECK(shapes_of(split(x, std::vector<int64_t>{1, 0, 4})) == std::vector<Shape>{{1, 4}, {0, 4}, {4, 4}});
  CHECK(shapes_of(split(zeros({0, 2}), 0)) == std::vector<Shape>{{0, 2}});
  CHECK(shapes_of(split(zeros({0, 2}), 3)) == std::vector<Shape>{{0, 2}});
  CHECK(shapes_of(chunk(x, 2)) == std::vector<Shape>{{3, 4}, {2, 4}});
  CHECK(shapes_of(chunk(x, 3, 1)) == std::vector<Shape>{{5, 2}, {5, 2}});  // ceil(4/3) = 2: only 2 pieces
  CHECK(shapes_of(chunk(x, 10)).size() == 5);
  CHECK(shapes_of(chunk(zeros({0, 3}), 3)) == std::vector<Shape>{{0, 3}, {0, 3}, {0, 3}});
  CHECK(shapes_of(chunk(zeros({7}), 3)) == std::vector<Shape>{{3}, {3}, {1}});
  // The raw pieces are views of x.
  const auto pieces = ops::split(x, 2);
  CHECK(pieces[1].storage() == x.storage());
  const auto all = values(x);
  CHECK(values(pieces[1]) == std::vector<double>(all.begin() + 8, all.begin() + 16));
}

TEST_CASE("split and chunk: each piece carries its own gradient; unused pieces give zeros") {
  Tensor x = random_tensor({5, 2}, DType::f64);
  x.set_requires_grad(true);
  const auto pieces = split(x, 2);
  backward(sum(pieces[0]) + sum(pieces[2]) * 3.0);
  CHECK(values(x.grad()) == std::vector<double>{1, 1, 1, 1, 0, 0, 0, 0, 3, 3});
  x.set_grad(Tensor());
  const auto parts = chunk(x, 2, 1);
  backward(sum(parts[1] * 2.0));
  CHECK(values(x.grad()) == std::vector<double>{0, 2, 0, 2, 0, 2, 0, 2, 0, 2});
}

TEST_CASE("cat and stack: dtype promotion, gradient dtypes and empty inputs") {
  Tensor a = random_tensor({2, 2}, DType::f32);
  Tensor b = random_tensor({1, 2}, DType::f64);
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  const Tensor out = cat({a, b});
  CHECK(out.dtype() == DType::f64);
  backward(sum(out * 2.0));
  CHECK(a.grad().dtype() == DType::f32);
  CHECK(values(a.grad()) == std::vector<double>{2, 2, 2, 2});
  CHECK(b.grad().dtype() == DType::f64);
  CHECK(cat({zeros({2}, DType::i64), ones({3}, DType::b8)}).dtype() == DType::i64);
  const Tensor empty = cat({zeros({0}), zeros({0}, DType::f64)});
  CHECK(empty.shape() == Shape{0});
  CHECK(empty.dtype() == DType::f64);
  CHECK(stack({zeros({2}, DType::i64), ones({2})}).dtype() == DType::f32);
  CHECK(stack({scalar_tensor(1.0), scalar_tensor(2.0)}).shape() == Shape{2});
  CHECK(stack({zeros({0}), zeros({0})}, 1).shape() == Shape{0, 2});
}

TEST_CASE("pad: modes on a small example and the empty pad list") {
  const Tensor x = from_values(std::vector<double>{1, 2, 3}, {1, 3});
  CHECK(values(pad(x, {2, 2}, PadMode::reflect)) == std::vector<double>{3, 2, 1, 2, 3, 2, 1});
  CHECK(values(pad(x, {2, 1}, PadMode::replicate)) == std::vector<double>{1, 1, 1, 2, 3, 3});
  CHECK(values(pad(x, {1, -1}, PadMode::constant, 9)) == std::vector<double>{9, 1, 2});
  CHECK(pad(x, {}).shape() == Shape{1, 3});
  CHECK(pad(zeros({2, 3}, DType::i64), {1, 1, 1, 1}, PadMode::constant, 4).dtype() == DType::i64);
  CHECK(pad(x, {-1, -2}).shape() == Shape{1, 0});  // cropping down to nothing is allowed
}

TEST_CASE("join ops: bad arguments raise loupe::Error") {
  const Tensor x = random_tensor({2, 3});
  // cat
  CHECK_THROWS_AS(cat({}), Error);
  CHECK_THROWS_WITH_AS(cat({x, scalar_tensor(1.0)}), doctest::Contains("zero-dimensional"), Error);
  CHECK_THROWS_AS(cat({x, random_tensor({2, 3, 1})}), Error);
  CHECK_THROWS_WITH_AS(cat({x, random_tensor({3, 3})}, 1),
                       doctest::Contains("cat: sizes of tensors must match except in dimension 1"), Error);
  CHECK_THROWS_AS(cat({x, x}, 2), Error);
  // stack
  CHECK_THROWS_AS(stack({}), Error);
  CHECK_THROWS_WITH_AS(stack({x, random_tensor({3, 2})}), doctest::Contains("(3, 2)"), Error);
  CHECK_THROWS_AS(stack({x, x}, 3), Error);
  // split / chunk
  CHECK_THROWS_WITH_AS(split(x, std::vector<int64_t>{1, 1}, 1), doctest::Contains("split: sizes must sum exactly to 3"),
                       Error);
  CHECK_THROWS_AS(split(x, std::vector<int64_t>{4, -1}, 1), Error);
  CHECK_THROWS_AS(split(x, -1), Error);
  CHECK_THROWS_AS(split(x, 0), Error);
  CHECK_THROWS_AS(split(scalar_tensor(1.0), 1), Error);
  CHECK_THROWS_AS(chunk(x, 0), Error);
  CHECK_THROWS_AS(chunk(x, 2, 2), Error);
  // pad
  CHECK_THROWS_AS(pad(x, {1}), Error);
  CHECK_THROWS_WITH_AS(pad(x, {1, 1, 1, 1, 1, 1}), doctest::Contains("padding length"), Error);
  CHECK_THROWS_WITH_AS(pad(x, {3, 0}, PadMode::reflect), doctest::Contains("reflect padding (3, 0)"), Error);
  CHECK_THROWS_AS(pad(x, {0, 3}, PadMode::reflect), Error);
  CHECK_THROWS_AS(pad(random_tensor({4}), {1, 1}, PadMode::reflect), Error);  // 1-d input
  CHECK_THROWS_AS(pad(x, {1, 1, 1, 1}, PadMode::replicate), Error);          // 2 dims padded of a 2-d input
  CHECK_THROWS_AS(pad(zeros({2, 0}), {1, 1}, PadMode::replicate), Error);   // empty padded dim
  CHECK_THROWS_AS(pad(x, {-2, -2}), Error);                                   // negative output size
  CHECK_THROWS_AS(pad(x, {-2, -1}, PadMode::replicate), Error);             // empty output
  CHECK_THROWS_AS(pad(zeros({2}, DType::i64), {1, 1}, PadMode::constant, NAN), Error);
}

}  // namespace
}  // namespace loupe::test
