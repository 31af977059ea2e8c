// Mixed precision on the GPU: float32/float64 <-> bfloat16 conversions (round to nearest even),
// bf16 elementwise ops, sums, cuBLAS products and convolutions against float32, and a small
// conv -> relu -> linear model trained one step under AutocastGuard, whose float32 parameters must
// receive float32 gradients close to those of the float32 run. Skipped without a GPU; the CPU side
// of autocast (scope nesting, CPU tensors untouched) is in tests/autograd/test_autocast.cpp.
//
// Tolerances: bfloat16 keeps 8 significant bits (rounding error up to 2^-8 = 0.4%), so results are
// compared by the relative error of the whole tensor, ||actual - expected|| / ||expected||:
// 1e-2 for single ops, 2e-2 for gradients through the model.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "autograd/autocast.hpp"
#include "tensor/cuda/backend.hpp"
#include "tensor/cuda/runtime.hpp"
#include "tensor/ops/device.hpp"
#include "tests/cuda/cuda_test_util.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {

// The raw bit patterns of a bfloat16 tensor (on any device).
std::vector<uint16_t> bf16_bits(const Tensor& t) {
  REQUIRE(t.dtype() == DType::bf16);
  const Tensor host = cpu(ops::contiguous(t));
  std::vector<uint16_t> bits(static_cast<size_t>(host.numel()));
  if (!bits.empty()) std::memcpy(bits.data(), host.raw_data(), bits.size() * sizeof(uint16_t));
  return bits;
}

// A bfloat16 (or any) GPU tensor as float64 values on the CPU (converted on the GPU).
Tensor as_f64(const Tensor& t) { return cpu(ops::to_dtype(t, DType::f64)); }

// ||actual - expected|| / ||expected||, both read as float64.
double relative_error(const Tensor& actual, const Tensor& expected) {
  REQUIRE(actual.shape() == expected.shape());
  const auto a = values(as_f64(actual)), e = values(as_f64(expected));
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (a[i] - e[i]) * (a[i] - e[i]);
    norm += e[i] * e[i];
  }
  return std::sqrt(diff) / std::max(std::sqrt(norm), 1e-30);
}

Tensor bf16(const Tensor& t) { return ops::to_dtype(t, DType::bf16); }

}  // namespace

// --- conversions ---

TEST_CASE("cuda amp: float32 -> bfloat16 rounds to nearest even, and back exactly" * doctest::skip(kNoGpu)) {
  const std::vector<float> in = {
      1.0f,
      1.00390625f,                 // 1 + 2^-8: halfway between 0x3F80 and 0x3F81 -> even 0x3F80
      1.01171875f,                 // 1 + 3 * 2^-8: halfway between 0x3F81 and 0x3F82 -> even 0x3F82
      1.00390636920928955078125f,  // 1 + 2^-8 + 2^-23: just above halfway -> 0x3F81
      -2.5f,
      1.0f / 3.0f,                 // 0x3EAAAAAB -> 0x3EAB
      3.4028234663852886e38f,      // the largest float rounds up to infinity
      INFINITY,
      -0.0f,
  };
  const std::vector<uint16_t> expected = {0x3F80, 0x3F80, 0x3F82, 0x3F81, 0xC020, 0x3EAB, 0x7F80, 0x7F80, 0x8000};
  const Tensor x = gpu(from_values(in, {static_cast<int64_t>(in.size())}));
  const Tensor y = bf16(x);
  CHECK(y.dtype() == DType::bf16);
  CHECK(bf16_bits(y) == expected);
  // NaN stays NaN.
  const std::vector<uint16_t> nan = bf16_bits(bf16(gpu(from_values(std::vector<float>{NAN}, {1}))));
  CHECK((nan[0] & 0x7F80) == 0x7F80);
  CHECK((nan[0] & 0x007F) != 0);
  // bfloat16 -> float32/float64 is exact: the 16 bits are the top of the float's 32.
  const std::vector<double> back = values(as_f64(y));
  CHECK(back[0] == 1.0);
  CHECK(back[2] == 1.015625);
  CHECK(back[3] == 1.0078125);
  CHECK(back[4] == -2.5);
  CHECK(std::isinf(back[6]));
  const std::vector<double> back32 = values(cpu(ops::to_dtype(y, DType::f32)));
  CHECK(back32[5] == 0.333984375);
}

TEST_CASE("cuda amp: float64 -> bfloat16 rounds once, not through float32" * doctest::skip(kNoGpu)) {
  // 1 + 2^-8 + 2^-40 is just above halfway: correct rounding gives 0x3F81, while rounding to
  // float32 first (1 + 2^-8) and then to bfloat16 would tie to even 0x3F80.
  const double v = 1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -40);
  const Tensor x = gpu(from_values(std::vector<double>{v, -v, 0.5, 100.0}, {4}, DType::f64));
  CHECK(bf16_bits(bf16(x)) == std::vector<uint16_t>{0x3F81, 0xBF81, 0x3F00, 0x42C8});
  // int64 and bool convert too.
  const Tensor i = gpu(from_values(std::vector<int64_t>{0, 1, -3, 257}, {4}));
  CHECK(values(as_f64(bf16(i))) == std::vector<double>{0, 1, -3, 256});  // 257 ties to even 256
  CHECK(values(cpu(ops::to_dtype(bf16(i), DType::i64))) == std::vector<double>{0, 1, -3, 256});
}

TEST_CASE("cuda amp: copies between devices convert bfloat16 on the GPU, any layout" * doctest::skip(kNoGpu)) {
  const Tensor x = random_tensor({5, 7}, DType::f32, -4, 4, 31);
  const Tensor on_gpu = bf16(gpu(x));
  // GPU bf16 -> CPU float32 through copy_.
  Tensor host = zeros({5, 7}, DType::f32);
  ops::copy_(host, on_gpu);
  CHECK(relative_error(gpu(host), gpu(x)) < 1e-2);
  check_close(host, cpu(ops::to_dtype(on_gpu, DType::f32)), 0, 0, "copy_ to the CPU");
  // GPU float32 -> a non-contiguous CPU bf16 tensor, and back to the GPU.
  Tensor storage = Tensor::empty({7, 5}, DType::bf16, Device::cpu());
  Tensor view = ops::transpose(storage, 0, 1);  // (5, 7), strides (1, 5)
  ops::copy_(view, gpu(x));
  Tensor again = Tensor::empty({5, 7}, DType::bf16, kGpu);
  ops::copy_(again, view);
  CHECK(bf16_bits(again) == bf16_bits(on_gpu));
  // Broadcasting in a conversion, and fill_.
  Tensor filled = Tensor::empty({3, 4}, DType::bf16, kGpu);
  ops::fill_(filled, 1.0 / 3.0);
  CHECK(bf16_bits(filled) == std::vector<uint16_t>(12, 0x3EAB));
}

// --- elementwise ops and sums ---

TEST_CASE("cuda amp: bfloat16 elementwise ops compute in float and store bfloat16" * doctest::skip(kNoGpu)) {
  const Tensor a = gpu(random_tensor({1000}, DType::f32, -2, 2, 32));
  const Tensor b = gpu(random_tensor({1000}, DType::f32, 0.5, 2, 33));
  const Tensor a16 = bf16(a), b16 = bf16(b);
  // References in float32 from the same (rounded) inputs.
  const Tensor ar = ops::to_dtype(a16, DType::f32), br = ops::to_dtype(b16, DType::f32);
  for (ops::UnaryOp op : {ops::UnaryOp::relu, ops::UnaryOp::exp, ops::UnaryOp::tanh, ops::UnaryOp::sigmoid,
                          ops::UnaryOp::gelu_erf, ops::UnaryOp::neg, ops::UnaryOp::square}) {
    const Tensor y = ops::unary(op, a16, {});
    CHECK(y.dtype() == DType::bf16);
    CHECK_MESSAGE(relative_error(y, ops::unary(op, ar, {})) < 1e-2, ops::unary_name(op));
    // The derivative too.
    const Tensor g = bf16(gpu(random_tensor({1000}, DType::f32, -1, 1, 34)));
    const Tensor d = ops::unary_backward(op, a16, y, g, {});
    CHECK(d.dtype() == DType::bf16);
    const Tensor dr = ops::unary_backward(op, ar, ops::unary(op, ar, {}), ops::to_dtype(g, DType::f32), {});
    // The bf16 derivative also reads the rounded y (tanh' = 1 - y^2 near |y| = 1): a little looser.
    CHECK_MESSAGE(relative_error(d, dr) < 3e-2, ops::unary_name(op), " backward");
  }
  for (ops::BinaryOp op : {ops::BinaryOp::add, ops::BinaryOp::sub, ops::BinaryOp::mul, ops::BinaryOp::div,
                           ops::BinaryOp::maximum, ops::BinaryOp::pow}) {
    // pow takes the positive operand as its base.
    const bool is_pow = op == ops::BinaryOp::pow;
    const Tensor y = is_pow ? ops::binary(op, b16, a16) : ops::binary(op, a16, b16);
    CHECK(y.dtype() == DType::bf16);
    const Tensor yr = is_pow ? ops::binary(op, br, ar) : ops::binary(op, ar, br);
    CHECK_MESSAGE(relative_error(y, yr) < 1e-2, ops::binary_name(op));
  }
  // Broadcasting, comparisons, where, in-place add_ and the mixed bf16 + f32 promotion.
  const Tensor row = bf16(gpu(random_tensor({1, 8}, DType::f32, -1, 1, 35)));
  const Tensor col = bf16(gpu(random_tensor({6, 1}, DType::f32, -1, 1, 36)));
  CHECK(relative_error(ops::add(row, col), ops::add(ops::to_dtype(row, DType::f32), ops::to_dtype(col, DType::f32))) <
        1e-2);
  const Tensor lt = ops::lt(a16, b16);
  CHECK(lt.dtype() == DType::b8);
  CHECK(values(cpu(lt)) == values(cpu(ops::lt(ar, br))));
  CHECK(ops::add(a16, b).dtype() == DType::f32);
  CHECK(relative_error(ops::where(lt, a16, b16), ops::where(lt, ar, br)) == 0);
  Tensor acc = ops::clone(a16);
  ops::add_(acc, b16, 2.0);
  CHECK(acc.dtype() == DType::bf16);
  CHECK(relative_error(acc, ops::add(ar, ops::mul(br, 2.0))) < 1e-2);
  // Strided (transposed) bf16 operands take the strided kernel.
  const Tensor m = bf16(gpu(random_tensor({16, 24}, DType::f32, -1, 1, 37)));
  const Tensor mt = ops::transpose(m, 0, 1);
  CHECK(relative_error(ops::relu(mt), ops::relu(ops::to_dtype(mt, DType::f32))) < 1e-2);
}

TEST_CASE("cuda amp: bfloat16 sums accumulate in float on every reduction path" * doctest::skip(kNoGpu)) {
  // Few long rows (multi-pass), many short rows, and the columns layout of a bias gradient.
  struct Case {
    Shape shape;
    std::vector<int64_t> dims;
  };
  for (const Case& c : {Case{{300000}, {}}, Case{{4, 50000}, {1}}, Case{{2000, 37}, {1}}, Case{{512, 300}, {0}},
                        Case{{8, 16, 5, 5}, {0, 2, 3}}}) {
    const Tensor x = bf16(gpu(random_tensor(c.shape, DType::f32, 0, 1, 38)));
    const Tensor s = ops::sum(x, c.dims);
    CHECK(s.dtype() == DType::bf16);
    // Float accumulation: only the final rounding to bf16 (at most 2^-8) separates the results.
    CHECK_MESSAGE(relative_error(s, ops::sum(ops::to_dtype(x, DType::f64), c.dims)) < 5e-3, shape_str(c.shape));
  }
}

// --- cuBLAS and cuDNN ---

TEST_CASE("cuda amp: bfloat16 matmul and linear through cuBLAS are close to float32" * doctest::skip(kNoGpu)) {
  const Tensor a = gpu(random_tensor({64, 96}, DType::f32, -1, 1, 40));
  const Tensor b = gpu(random_tensor({96, 80}, DType::f32, -1, 1, 41));
  const Tensor y = ops::matmul(bf16(a), bf16(b));
  CHECK(y.dtype() == DType::bf16);
  CHECK(relative_error(y, ops::matmul(a, b)) < 1e-2);
  // Batched with a transposed operand, and a broadcast right operand.
  const Tensor ba = gpu(random_tensor({3, 32, 48}, DType::f32, -1, 1, 42));
  const Tensor bb = gpu(random_tensor({3, 40, 48}, DType::f32, -1, 1, 43));
  CHECK(relative_error(ops::matmul(bf16(ba), ops::transpose(bf16(bb), 1, 2)), ops::matmul(ba, ops::transpose(bb, 1, 2))) <
        1e-2);
  CHECK(relative_error(ops::matmul(bf16(ba), bf16(ops::narrow(b, 0, 0, 48))), ops::matmul(ba, ops::narrow(b, 0, 0, 48))) < 1e-2);
  // linear with a bias.
  const Tensor x = gpu(random_tensor({10, 96}, DType::f32, -1, 1, 44));
  const Tensor w = gpu(random_tensor({30, 96}, DType::f32, -1, 1, 45));
  const Tensor bias = gpu(random_tensor({30}, DType::f32, -1, 1, 46));
  const Tensor yl = ops::linear(bf16(x), bf16(w), bf16(bias));
  CHECK(yl.dtype() == DType::bf16);
  CHECK(relative_error(yl, ops::linear(x, w, bias)) < 1e-2);
  // Mixed dtypes are an error, not a silent conversion.
  CHECK_THROWS_AS(ops::matmul(bf16(a), b), Error);
}

TEST_CASE("cuda amp: bfloat16 conv2d forward and backward, cuDNN and fallback, are close to float32" *
          doctest::skip(kNoGpu)) {
  Conv2dParams p;
  p.padding = {1, 1};
  p.stride = {2, 1};
  const Tensor x = gpu(random_tensor({2, 6, 11, 9}, DType::f32, -1, 1, 50));
  const Tensor w = gpu(random_tensor({8, 6, 3, 3}, DType::f32, -1, 1, 51));
  const Tensor b = gpu(random_tensor({8}, DType::f32, -1, 1, 52));
  const Tensor y = ops::conv2d(x, w, b, p);
  const Tensor g = gpu(random_tensor(y.shape(), DType::f32, -1, 1, 53));
  const std::vector<bool> backends = cuda::use_cudnn() ? std::vector<bool>{true, false} : std::vector<bool>{false};
  for (bool with_cudnn : backends) {
    cuda::set_use_cudnn(with_cudnn);
    const std::string where = with_cudnn ? "cuDNN" : "fallback";
    const Tensor y16 = ops::conv2d(bf16(x), bf16(w), bf16(b), p);
    CHECK(y16.dtype() == DType::bf16);
    CHECK_MESSAGE(relative_error(y16, y) < 1e-2, where, " forward");
    const Tensor gx = ops::conv2d_backward_input(bf16(g), bf16(w), x.shape(), p);
    CHECK(gx.dtype() == DType::bf16);
    CHECK_MESSAGE(relative_error(gx, ops::conv2d_backward_input(g, w, x.shape(), p)) < 1e-2, where, " backward input");
    const Tensor gw = ops::conv2d_backward_weight(bf16(g), bf16(x), w.shape(), p);
    CHECK(gw.dtype() == DType::bf16);
    CHECK_MESSAGE(relative_error(gw, ops::conv2d_backward_weight(g, x, w.shape(), p)) < 1e-2, where,
                  " backward weight");
  }
  cuda::set_use_cudnn(true);
}

// --- autocast ---

namespace {

struct Model {
  Tensor conv_w, conv_b, fc_w, fc_b;
};

Model make_model() {
  Model m;
  m.conv_w = gpu(random_tensor({4, 3, 3, 3}, DType::f32, -0.5, 0.5, 60)).set_requires_grad();
  m.conv_b = gpu(random_tensor({4}, DType::f32, -0.5, 0.5, 61)).set_requires_grad();
  m.fc_w = gpu(random_tensor({5, 4 * 6 * 6}, DType::f32, -0.2, 0.2, 62)).set_requires_grad();
  m.fc_b = gpu(random_tensor({5}, DType::f32, -0.5, 0.5, 63)).set_requires_grad();
  return m;
}

// conv -> relu -> linear, and the sum of squared errors as the loss.
Tensor logits_of(const Model& m, const Tensor& x) {
  const Tensor h = relu(conv2d(x, m.conv_w, m.conv_b, Conv2dParams{}));  // (2, 4, 6, 6)
  return linear(reshape(h, {x.size(0), -1}), m.fc_w, m.fc_b);
}

Tensor loss_of(const Tensor& logits, const Tensor& target) { return sum(square(sub(logits, target))); }

}  // namespace

TEST_CASE("cuda amp: under AutocastGuard a conv/linear model runs in bf16 and its fp32 weights get fp32 gradients" *
          doctest::skip(kNoGpu)) {
  const Tensor x = gpu(random_tensor({2, 3, 8, 8}, DType::f32, -1, 1, 64));
  const Tensor target = gpu(random_tensor({2, 5}, DType::f32, -1, 1, 65));

  Model ref = make_model();
  const Tensor ref_loss = loss_of(logits_of(ref, x), target);
  backward(ref_loss);

  Model amp = make_model();
  Tensor logits, loss;
  {
    AutocastGuard guard;
    CHECK(autocast::is_enabled());
    logits = logits_of(amp, x);
    CHECK(logits.dtype() == DType::bf16);
    loss = loss_of(logits, target);  // bf16 - f32 promotes to f32; sum runs in f32
    CHECK(loss.dtype() == DType::f32);
  }
  CHECK_FALSE(autocast::is_enabled());
  backward(loss);
  CHECK(relative_error(loss, ref_loss) < 2e-2);
  const std::vector<std::pair<Tensor, Tensor>> pairs = {
      {amp.conv_w, ref.conv_w}, {amp.conv_b, ref.conv_b}, {amp.fc_w, ref.fc_w}, {amp.fc_b, ref.fc_b}};
  for (size_t i = 0; i < pairs.size(); ++i) {
    const Tensor& p = pairs[i].first;
    CHECK(p.dtype() == DType::f32);  // master weights stay fp32
    REQUIRE(p.grad().defined());
    CHECK(p.grad().dtype() == DType::f32);
    CHECK(p.grad().device() == kGpu);
    CHECK_MESSAGE(relative_error(p.grad(), pairs[i].second.grad()) < 2e-2, "parameter ", i);
  }
}

TEST_CASE("cuda amp: float32 ops cast bf16 inputs under autocast; nesting and disabling" * doctest::skip(kNoGpu)) {
  const Tensor a = gpu(random_tensor({4, 6}, DType::f32, -1, 1, 70));
  const Tensor w = gpu(random_tensor({3, 6}, DType::f32, -1, 1, 71));
  AutocastGuard outer;
  const Tensor y = linear(a, w, Tensor());
  CHECK(y.dtype() == DType::bf16);
  CHECK(matmul(a, ops::transpose(w, 0, 1)).dtype() == DType::bf16);
  // The float32 list: bf16 in, float32 out.
  CHECK(exp(y).dtype() == DType::f32);
  CHECK(sum(y).dtype() == DType::f32);
  CHECK(mean(y).dtype() == DType::f32);
  CHECK(softmax(y, 1).dtype() == DType::f32);
  CHECK(pow(y, 2.0).dtype() == DType::f32);
  // Elementwise ops keep what they get.
  CHECK(relu(y).dtype() == DType::bf16);
  CHECK(add(y, y).dtype() == DType::bf16);
  // float64 is never cast.
  CHECK(linear(ops::to_dtype(a, DType::f64), ops::to_dtype(w, DType::f64), Tensor()).dtype() == DType::f64);
  {
    AutocastGuard off(DType::bf16, /*enabled=*/false);
    CHECK_FALSE(autocast::is_enabled());
    CHECK(linear(a, w, Tensor()).dtype() == DType::f32);
    {
      AutocastGuard on_again;
      CHECK(linear(a, w, Tensor()).dtype() == DType::bf16);
    }
    CHECK(linear(a, w, Tensor()).dtype() == DType::f32);
  }
  CHECK(autocast::is_enabled());
  CHECK(linear(a, w, Tensor()).dtype() == DType::bf16);
}

}  // namespace loupe::test
