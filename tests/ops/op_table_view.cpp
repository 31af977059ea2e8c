// Op table entries: the differentiable views and copies (view, reshape, permute, transpose,
// slice, narrow, select, expand, squeeze, unsqueeze, flatten, clone, contiguous). Each reference
// computes, for every output position, which input element it reads, with plain index arithmetic.
// Extra test cases: views share storage, and errors.
#include <cmath>

#include "tests/op_table.hpp"
#include "tests/support.hpp"

namespace loupe::test {
namespace {

// Output of `shape` whose element at multi-index idx is x at source(idx).
Tensor gather_ref(const Tensor& x, const Shape& shape,
                  const std::function<std::vector<int64_t>(const std::vector<int64_t>&)>& source) {
  const auto v = values(x);
  std::vector<double> out(static_cast<size_t>(shape_numel(shape)));
  for (int64_t i = 0; i < shape_numel(shape); ++i) {
    out[static_cast<size_t>(i)] = v[static_cast<size_t>(ref::ravel(source(ref::unravel(i, shape)), x.shape()))];
  }
  return ref::make(out, shape);
}

// Same elements in row-major order, new shape (view, reshape, flatten, squeeze, unsqueeze).
Tensor same_order_ref(const Tensor& x, const Shape& shape) { return ref::make(values(x), shape); }

OpCase view_case(const std::string& name, Shape in_shape, std::function<Tensor(const Tensor&)> op,
                 std::function<Tensor(const Tensor&)> reference) {
  OpCase c;
  c.name = name;
  c.make_inputs = [in_shape](DType dtype) { return Inputs{random_tensor(in_shape, dtype, -2, 2, 71)}; };
  c.op = [op](const Inputs& in) { return op(in[0]); };
  c.reference = [reference](const Inputs& in) { return reference(in[0]); };
  c.atol_f32 = c.rtol_f32 = 0;  // views move values without arithmetic
  c.atol_f64 = c.rtol_f64 = 0;
  return c;
}

OpCase with_empty(OpCase c, Shape shape) {
  c.make_empty_inputs = [shape](DType dtype) { return Inputs{zeros(shape, dtype)}; };
  return c;
}

// view needs strides compatible with the new shape, which the generic non-contiguous layout does
// not have (view raising there is PyTorch's behaviour, tested below).
OpCase contiguous_only(OpCase c) {
  c.check_noncontiguous = false;
  return c;
}

using Index = std::vector<int64_t>;

const bool registered = register_ops({
    contiguous_only(view_case("view", {3, 4, 2}, [](const Tensor& x) { return view(x, {4, -1}); },
                              [](const Tensor& x) { return same_order_ref(x, {4, 6}); })),
    with_empty(view_case("reshape/infer", {3, 4, 2}, [](const Tensor& x) { return reshape(x, {2, -1, 3}); },
                         [](const Tensor& x) { return same_order_ref(x, {2, x.numel() / 6, 3}); }),
               {0, 4, 2}),
    view_case("reshape/of_transpose", {3, 4}, [](const Tensor& x) { return reshape(transpose(x, 0, 1), {2, 6}); },
              [](const Tensor& x) {
                const Tensor t = gather_ref(x, {4, 3}, [](const Index& i) { return Index{i[1], i[0]}; });
                return same_order_ref(t, {2, 6});
              }),
    view_case("permute", {2, 3, 4}, [](const Tensor& x) { return permute(x, {2, 0, -2}); },
              [](const Tensor& x) {
                return gather_ref(x, {4, 2, 3}, [](const Index& i) { return Index{i[1], i[2], i[0]}; });
              }),
    view_case("transpose/negative_dims", {2, 3, 4}, [](const Tensor& x) { return transpose(x, -1, 0); },
              [](const Tensor& x) {
                return gather_ref(x, {4, 3, 2}, [](const Index& i) { return Index{i[2], i[1], i[0]}; });
              }),
    view_case("slice/step", {3, 8}, [](const Tensor& x) { return slice(x, 1, 1, 8, 3); },
              [](const Tensor& x) {
                return gather_ref(x, {3, 3}, [](const Index& i) { return Index{i[0], 1 + 3 * i[1]}; });
              }),
    // start -5 of 8 is 3; end 100 is clamped to 8: elements 3, 5, 7.
    view_case("slice/negative_start_clamped_end", {3, 8}, [](const Tensor& x) { return slice(x, -1, -5, 100, 2); },
              [](const Tensor& x) {
                return gather_ref(x, {3, 3}, [](const Index& i) { return Index{i[0], 3 + 2 * i[1]}; });
              }),
    view_case("slice/negative_end_dim0", {6, 2}, [](const Tensor& x) { return slice(x, 0, 1, -1); },
              [](const Tensor& x) {
                return gather_ref(x, {4, 2}, [](const Index& i) { return Index{1 + i[0], i[1]}; });
              }),
    view_case("narrow/negative_start", {3, 6}, [](const Tensor& x) { return narrow(x, 1, -4, 3); },
              [](const Tensor& x) {
                return gather_ref(x, {3, 3}, [](const Index& i) { return Index{i[0], 2 + i[1]}; });
              }),
    view_case("select", {3, 4, 2}, [](const Tensor& x) { return select(x, 1, 2); },
              [](const Tensor& x) {
                return gather_ref(x, {3, 2}, [](const Index& i) { return Index{i[0], 2, i[1]}; });
              }),
    view_case("select/negative_index", {3, 4}, [](const Tensor& x) { return select(x, 0, -1); },
              [](const Tensor& x) { return gather_ref(x, {4}, [](const Index& i) { return Index{2, i[0]}; }); }),
    view_case("expand", {3, 1, 4}, [](const Tensor& x) { return expand(x, {2, 3, 5, -1}); },
              [](const Tensor& x) {
                return gather_ref(x, {2, 3, 5, 4}, [](const Index& i) { return Index{i[1], 0, i[3]}; });
              }),
    view_case("broadcast_to", {4}, [](const Tensor& x) { return broadcast_to(x, {3, 4}); },
              [](const Tensor& x) { return gather_ref(x, {3, 4}, [](const Index& i) { return Index{i[1]}; }); }),
    view_case("squeeze/all", {3, 1, 4, 1}, [](const Tensor& x) { return squeeze(x); },
              [](const Tensor& x) { return same_order_ref(x, {3, 4}); }),
    view_case("squeeze/dim", {3, 1, 4, 1}, [](const Tensor& x) { return squeeze(x, -1); },
              [](const Tensor& x) { return same_order_ref(x, {3, 1, 4}); }),
    view_case("squeeze/non_unit_dim_unchanged", {3, 4}, [](const Tensor& x) { return squeeze(x, 0); },
              [](const Tensor& x) { return same_order_ref(x, {3, 4}); }),
    view_case("unsqueeze", {3, 4}, [](const Tensor& x) { return unsqueeze(x, 1); },
              [](const Tensor& x) { return same_order_ref(x, {3, 1, 4}); }),
    view_case("unsqueeze/negative_dim", {3, 4}, [](const Tensor& x) { return unsqueeze(x, -1); },
              [](const Tensor& x) { return same_order_ref(x, {3, 4, 1}); }),
    view_case("flatten/all", {2, 3, 4}, [](const Tensor& x) { return flatten(x); },
              [](const Tensor& x) { return same_order_ref(x, {24}); }),
    view_case("flatten/range", {2, 3, 4, 5}, [](const Tensor& x) { return flatten(x, 1, -2); },
              [](const Tensor& x) { return same_order_ref(x, {2, 12, 5}); }),
    with_empty(view_case("clone", {3, 4}, [](const Tensor& x) { return clone(x); },
                         [](const Tensor& x) { return same_order_ref(x, x.shape()); }),
               {0, 4}),
    view_case("contiguous/of_permute", {3, 4}, [](const Tensor& x) { return contiguous(permute(x, {1, 0})); },
              [](const Tensor& x) {
                return gather_ref(x, {4, 3}, [](const Index& i) { return Index{i[1], i[0]}; });
              }),
    // A chain of views: the gradient flows back through each one.
    view_case("chain/slice_select_expand", {4, 6}, [](const Tensor& x) {
                return expand(unsqueeze(select(slice(x, 1, 1, 6, 2), 0, 1), 0), {2, 3});
              },
              [](const Tensor& x) {
                return gather_ref(x, {2, 3}, [](const Index& i) { return Index{1, 1 + 2 * i[1]}; });
              }),
});

TEST_CASE("view: views share storage; contiguous returns its input when already contiguous") {
  const Tensor x = random_tensor({3, 4}, DType::f64, -1, 1, 72);
  const Tensor s = slice(x, 1, 1, 4, 2);
  CHECK(s.storage() == x.storage());
  CHECK(s.offset() == 1);
  CHECK(s.strides() == Strides{4, 2});
  CHECK(contiguous(x).is_same(x));
  CHECK(!contiguous(transpose(x, 0, 1)).is_same(x));
  CHECK(clone(x).storage() != x.storage());
}

TEST_CASE("view: bad arguments raise loupe::Error") {
  const Tensor x = zeros({3, 4});
  CHECK_THROWS_WITH_AS(view(transpose(x, 0, 1), {12}), doctest::Contains("view"), Error);  // needs a copy
  CHECK_THROWS_WITH_AS(reshape(x, {5, -1}), doctest::Contains("(5, -1)"), Error);
  CHECK_THROWS_AS(reshape(x, {-1, -1}), Error);
  CHECK_THROWS_AS(permute(x, {0, 0}), Error);
  CHECK_THROWS_AS(permute(x, {0}), Error);
  CHECK_THROWS_AS(transpose(x, 0, 2), Error);
  CHECK_THROWS_AS(slice(x, 1, 0, 4, 0), Error);
  CHECK_THROWS_AS(slice(x, 2, 0, 1), Error);
  CHECK_THROWS_AS(narrow(x, 1, 2, 3), Error);
  CHECK_THROWS_WITH_AS(select(x, 0, 3), doctest::Contains("select: index 3 out of range"), Error);
  CHECK_THROWS_AS(select(x, 1, -5), Error);
  CHECK_THROWS_AS(expand(x, {3, 5}), Error);
  CHECK_THROWS_AS(expand(x, {4}), Error);
  CHECK_THROWS_AS(squeeze(x, 2), Error);
  CHECK_THROWS_AS(unsqueeze(x, 3), Error);
  CHECK_THROWS_AS(flatten(x, 1, 0), Error);
}

}  // namespace
}  // namespace loupe::test
