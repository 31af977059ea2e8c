// Op table entries: conv2d (stride, padding, dilation, groups incl. depthwise, 1x1, non-square
// kernels, bias / no bias, unbatched input) against a direct 7-loop f64 convolution. Extra cases:
// a larger float32 convolution, the raw backward kernels' shape checks, and the error messages.
#include "tests/op_table.hpp"
#include "tests/support.hpp"

namespace loupe::test {
namespace {

// Direct convolution: for every output element, sum over input channels of its group and over
// the kernel window, skipping taps that fall into the zero padding.
Tensor ref_conv2d(const Tensor& x_in, const Tensor& w, const Tensor* bias, const Conv2dParams& p) {
  const bool batched = x_in.dim() == 4;
  const Shape xs = batched ? x_in.shape() : Shape{1, x_in.shape()[0], x_in.shape()[1], x_in.shape()[2]};
  const int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3];
  const int64_t O = w.shape()[0], Cg = w.shape()[1], KH = w.shape()[2], KW = w.shape()[3];
  const int64_t Og = O / p.groups;
  const int64_t HO = (H + 2 * p.padding[0] - p.dilation[0] * (KH - 1) - 1) / p.stride[0] + 1;
  const int64_t WO = (W + 2 * p.padding[1] - p.dilation[1] * (KW - 1) - 1) / p.stride[1] + 1;
  const auto vx = values(x_in), vw = values(w);
  const std::vector<double> vb = bias ? values(*bias) : std::vector<double>(size_t(O), 0.0);
  std::vector<double> out(size_t(N * O * HO * WO));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oh = 0; oh < HO; ++oh)
        for (int64_t ow = 0; ow < WO; ++ow) {
          double acc = vb[size_t(o)];
          const int64_t group = o / Og;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t i = 0; i < KH; ++i)
              for (int64_t j = 0; j < KW; ++j) {
                const int64_t ih = oh * p.stride[0] - p.padding[0] + i * p.dilation[0];
                const int64_t iw = ow * p.stride[1] - p.padding[1] + j * p.dilation[1];
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const int64_t ci = group * Cg + c;
                acc += vx[size_t(((n * C + ci) * H + ih) * W + iw)] * vw[size_t(((o * Cg + c) * KH + i) * KW + j)];
              }
          out[size_t(((n * O + o) * HO + oh) * WO + ow)] = acc;
        }
  return ref::make(out, batched ? Shape{N, O, HO, WO} : Shape{O, HO, WO});
}

Conv2dParams params(std::array<int64_t, 2> stride, std::array<int64_t, 2> padding, std::array<int64_t, 2> dilation,
                    int64_t groups) {
  Conv2dParams p;
  p.stride = stride;
  p.padding = padding;
  p.dilation = dilation;
  p.groups = groups;
  return p;
}

OpCase conv_case(const std::string& name, const Shape& x, const Shape& w, bool with_bias, const Conv2dParams& p,
                 bool with_empty = false) {
  OpCase c;
  c.name = "conv2d/" + name;
  c.make_inputs = [x, w, with_bias](DType dtype) {
    Inputs inputs{random_tensor(x, dtype, -1, 1, 71), random_tensor(w, dtype, -1, 1, 72)};
    if (with_bias) inputs.push_back(random_tensor({w[0]}, dtype, -1, 1, 73));
    return inputs;
  };
  if (with_empty) {
    c.make_empty_inputs = [x, w, with_bias](DType dtype) {
      Shape empty = x;
      empty[0] = 0;
      Inputs inputs{zeros(empty, dtype), random_tensor(w, dtype, -1, 1, 74)};
      if (with_bias) inputs.push_back(random_tensor({w[0]}, dtype, -1, 1, 75));
      return inputs;
    };
  }
  c.op = [p](const Inputs& in) { return conv2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), p); };
  c.reference = [p](const Inputs& in) { return ref_conv2d(in[0], in[1], in.size() > 2 ? &in[2] : nullptr, p); };
  return c;
}

const bool registered = register_ops({
    conv_case("basic", {2, 3, 5, 5}, {4, 3, 3, 3}, true, {}, /*with_empty=*/true),
    conv_case("no_bias", {1, 2, 5, 4}, {3, 2, 3, 3}, false, {}),
    conv_case("stride2_pad1", {1, 2, 6, 6}, {3, 2, 3, 3}, true, params({2, 2}, {1, 1}, {1, 1}, 1)),
    conv_case("dilation2", {1, 2, 7, 7}, {2, 2, 3, 3}, true, params({1, 1}, {2, 2}, {2, 2}, 1)),
    conv_case("groups2", {1, 4, 5, 5}, {6, 2, 3, 3}, true, params({1, 1}, {1, 1}, {1, 1}, 2)),
    conv_case("depthwise", {2, 3, 5, 5}, {3, 1, 3, 3}, false, params({1, 1}, {1, 1}, {1, 1}, 3)),
    conv_case("depthwise_multiplier", {1, 2, 4, 4}, {4, 1, 3, 3}, true, params({1, 1}, {1, 1}, {1, 1}, 2)),
    // The direct depthwise kernel's strided, dilated and 5x5 paths (f64 gradcheck through them).
    conv_case("depthwise_stride2_dilation2", {2, 3, 9, 8}, {3, 1, 3, 3}, true, params({2, 2}, {2, 1}, {2, 2}, 3)),
    conv_case("depthwise_5x5", {1, 2, 6, 7}, {2, 1, 5, 5}, false, params({1, 1}, {2, 2}, {1, 1}, 2)),
    conv_case("1x1", {2, 4, 3, 3}, {5, 4, 1, 1}, true, {}, /*with_empty=*/true),
    conv_case("1x1_stride2", {1, 3, 5, 5}, {2, 3, 1, 1}, true, params({2, 2}, {0, 0}, {1, 1}, 1)),
    conv_case("1x1_padded", {1, 2, 3, 3}, {2, 2, 1, 1}, false, params({1, 1}, {1, 1}, {1, 1}, 1)),
    conv_case("1x3", {1, 2, 4, 5}, {3, 2, 1, 3}, false, params({1, 1}, {0, 1}, {1, 1}, 1)),
    conv_case("3x1_stride21", {1, 2, 6, 4}, {2, 2, 3, 1}, true, params({2, 1}, {1, 0}, {1, 1}, 1)),
    conv_case("mixed", {1, 4, 6, 7}, {4, 2, 2, 3}, true, params({1, 2}, {2, 1}, {2, 1}, 2)),
    conv_case("stride3_uneven", {1, 1, 8, 7}, {2, 1, 3, 2}, true, params({3, 2}, {1, 0}, {1, 2}, 1)),
    conv_case("unbatched", {3, 5, 5}, {2, 3, 3, 3}, true, params({1, 1}, {1, 1}, {1, 1}, 1)),
});

TEST_CASE("conv2d: a larger float32 convolution matches the direct reference") {
  const Tensor x = random_tensor({2, 16, 17, 19}, DType::f32, -1, 1, 81);
  const Tensor w = random_tensor({24, 8, 3, 3}, DType::f32, -1, 1, 82);
  const Tensor b = random_tensor({24}, DType::f32, -1, 1, 83);
  const Conv2dParams p = params({1, 2}, {1, 1}, {1, 1}, 2);
  const Tensor xd = ops::to_dtype(x, DType::f64), wd = ops::to_dtype(w, DType::f64), bd = ops::to_dtype(b, DType::f64);
  check_close(ops::conv2d(x, w, b, p), ref_conv2d(xd, wd, &bd, p), 1e-4, 1e-4, "conv2d (2, 16, 17, 19) f32");
}

TEST_CASE("conv2d: backward of a larger convolution matches the gradient of the reference") {
  // The backward kernels against sums of the reference: <g, conv(x, w)> is linear in x and in w,
  // so its gradients are checked through directional derivatives computed with the reference.
  const Conv2dParams p = params({2, 1}, {1, 2}, {1, 2}, 2);
  const Tensor x = random_tensor({3, 6, 11, 10}, DType::f64, -1, 1, 84);
  const Tensor w = random_tensor({8, 3, 3, 3}, DType::f64, -1, 1, 85);
  const Tensor y = ref_conv2d(x, w, nullptr, p);
  const Tensor g = random_tensor(y.shape(), DType::f64, -1, 1, 86);
  const Tensor dx = random_tensor(x.shape(), DType::f64, -1, 1, 87);
  const Tensor dw = random_tensor(w.shape(), DType::f64, -1, 1, 88);
  const auto dot = [](const Tensor& a, const Tensor& b) { return ops::sum(ops::mul(a, b)).item(); };
  const Tensor gx = ops::conv2d_backward_input(g, w, x.shape(), p);
  const Tensor gw = ops::conv2d_backward_weight(g, x, w.shape(), p);
  CHECK(dot(gx, dx) == doctest::Approx(dot(g, ref_conv2d(dx, w, nullptr, p))).epsilon(1e-10));
  CHECK(dot(gw, dw) == doctest::Approx(dot(g, ref_conv2d(x, dw, nullptr, p))).epsilon(1e-10));
}

TEST_CASE("conv2d records OpKind::conv2d and gives the bias gradient as a sum over N, H, W") {
  const Tensor x = random_tensor({2, 3, 4, 4}, DType::f64, -1, 1, 89);
  const Tensor w = random_tensor({2, 3, 3, 3}, DType::f64, -1, 1, 90).set_requires_grad();
  const Tensor b = zeros({2}, DType::f64).set_requires_grad();
  const Tensor y = conv2d(x, w, b);
  CHECK(y.grad_fn()->kind() == autograd::OpKind::conv2d);
  backward(sum(y));
  // y is (2, 2, 2, 2): each bias element feeds 2 * 2 * 2 outputs.
  CHECK(values(b.grad()) == std::vector<double>{8.0, 8.0});
}

TEST_CASE("conv2d: bad shapes and parameters raise loupe::Error") {
  const Tensor x = zeros({1, 4, 5, 5});
  CHECK_THROWS_WITH_AS(ops::conv2d(x, zeros({6, 3, 3, 3})), doctest::Contains("conv2d: weight (6, 3, 3, 3)"), Error);
  CHECK_THROWS_AS(ops::conv2d(x, zeros({6, 2, 3, 3}), Tensor(), params({1, 1}, {0, 0}, {1, 1}, 3)), Error);
  CHECK_THROWS_AS(ops::conv2d(x, zeros({5, 2, 3, 3}), Tensor(), params({1, 1}, {0, 0}, {1, 1}, 2)), Error);
  CHECK_THROWS_WITH_AS(ops::conv2d(x, zeros({2, 4, 7, 3})),
                       doctest::Contains(
                           "conv2d: padded input size (5 x 5) is smaller than the dilated kernel (7 x 3)"),
                       Error);
  CHECK_THROWS_AS(ops::conv2d(x, zeros({2, 4, 3, 3}), Tensor(), params({1, 1}, {0, 0}, {3, 3}, 1)), Error);
  CHECK_THROWS_AS(ops::conv2d(x, zeros({2, 4, 3, 3}), zeros({3})), Error);
  CHECK_THROWS_AS(ops::conv2d(zeros({4, 5}), zeros({2, 4, 3, 3})), Error);
  CHECK_THROWS_AS(ops::conv2d(x, zeros({2, 4, 3})), Error);
  CHECK_THROWS_AS(ops::conv2d(x, zeros({2, 4, 3, 3}), Tensor(), params({0, 1}, {0, 0}, {1, 1}, 1)), Error);
  CHECK_THROWS_AS(ops::conv2d(x, zeros({2, 4, 3, 3}), Tensor(), params({1, 1}, {-1, 0}, {1, 1}, 1)), Error);
  CHECK_THROWS_AS(ops::conv2d(x, zeros({2, 4, 3, 3}, DType::f64)), Error);
  CHECK_THROWS_AS(ops::conv2d(zeros({1, 4, 5, 5}, DType::i64), zeros({2, 4, 3, 3}, DType::i64)), Error);
  CHECK_THROWS_AS(conv2d(x, zeros({2, 4, 3, 3}).set_requires_grad(), Tensor(), params({1, 1}, {0, 0}, {1, 1}, 0)),
                  Error);
  CHECK_THROWS_WITH_AS(ops::conv2d_backward_input(zeros({1, 2, 4, 4}), zeros({2, 4, 3, 3}), {1, 4, 5, 5}, {}),
                       doctest::Contains("conv2d_backward_input: grad_out has shape (1, 2, 4, 4)"), Error);
  CHECK_THROWS_AS(ops::conv2d_backward_weight(zeros({1, 2, 3, 3}), x, {2, 3, 3, 3}, {}), Error);
}

}  // namespace
}  // namespace loupe::test
