// GPU cases of tensor/cuda/norm.cu, optim.cu and softmax.cu that the op table cannot express: row
// lengths that take each softmax kernel (warp, block, online; float4 and unaligned), large batch
// norm with its running statistics, wide layer / RMS norm rows, and optimiser steps on CUDA
// parameters equal to the same steps on the CPU. Skipped without a GPU.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <map>
#include <string>

#include "nn/optim/optimizer.hpp"
#include "nn/optim/schedule.hpp"
#include "tensor/cuda/backend.hpp"
#include "tensor/ops/device.hpp"
#include "tensor/ops/norm.hpp"
#include "tensor/ops/softmax.hpp"
#include "tests/cuda/cuda_test_util.hpp"
#include "tests/support.hpp"

namespace loupe::test {

// --- softmax ---

TEST_CASE("cuda norm: float32 softmax rows of every length match the CPU" * doctest::skip(kNoGpu)) {
  for (int64_t size : {1, 7, 33, 1000, 1024, 1025, 5000, 70000}) {
    const int64_t rows = size >= 5000 ? 3 : 37;
    const Tensor x = random_tensor({rows, size}, DType::f32, -8, 8, static_cast<uint64_t>(size));
    const Tensor g = random_tensor({rows, size}, DType::f32, -1, 1, static_cast<uint64_t>(size) + 1);
    // Aligned (float4 when size % 4 == 0) and one element off alignment (scalar loads): a
    // contiguous view at offset 1 of a GPU buffer.
    const Tensor storage = random_tensor({rows * size + 1}, DType::f32, -8, 8, static_cast<uint64_t>(size) + 2);
    const auto shifted = [&](const Tensor& t) { return ops::view(ops::narrow(t, 0, 1, rows * size), {rows, size}); };
    for (bool unaligned : {false, true}) {
      const std::string where = "rows of " + std::to_string(size) + (unaligned ? " (unaligned)" : "");
      const Tensor input = unaligned ? shifted(storage) : x;
      const Tensor gx = unaligned ? shifted(gpu(storage)) : gpu(x);
      const Tensor y = ops::softmax(input, -1), ly = ops::log_softmax(input, -1);
      check_close(cpu(ops::softmax(gx, -1)), y, 1e-6, 1e-4, "softmax " + where);
      check_close(cpu(ops::log_softmax(gx, -1)), ly, 1e-5, 1e-5, "log_softmax " + where);
      check_close(cpu(ops::softmax_backward(gpu(y), gpu(g), -1)), ops::softmax_backward(y, g, -1), 1e-6, 1e-4,
                  "softmax_backward " + where);
      check_close(cpu(ops::log_softmax_backward(gpu(ly), gpu(g), -1)), ops::log_softmax_backward(ly, g, -1), 1e-5,
                  1e-4, "log_softmax_backward " + where);
    }
  }
}

TEST_CASE("cuda norm: softmax edge values (-inf, NaN) behave as on the CPU" * doctest::skip(kNoGpu)) {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
  for (int64_t size : {8, 3000, 20000}) {
    Tensor x = random_tensor({4, size}, DType::f64, -3, 3, 40);
    std::vector<double> v = to_vector<double>(x);
    for (int64_t j = 0; j < size; j += 3) v[static_cast<size_t>(j)] = -inf;       // row 0: some -inf
    for (int64_t j = 0; j < size; ++j) v[static_cast<size_t>(size + j)] = -inf;  // row 1: all -inf
    v[static_cast<size_t>(2 * size + size / 2)] = nan;                             // row 2: a NaN
    x = from_values(v, {4, size}, DType::f32);
    check_close(cpu(ops::softmax(gpu(x), 1)), ops::softmax(x, 1), 1e-6, 1e-4, "softmax edges " + std::to_string(size));
    check_close(cpu(ops::log_softmax(gpu(x), 1)), ops::log_softmax(x, 1), 1e-5, 1e-5,
                "log_softmax edges " + std::to_string(size));
  }
}

// --- batch norm ---

TEST_CASE("cuda norm: large batch norm, training and eval, with running statistics" * doctest::skip(kNoGpu)) {
  const Shape shape{8, 64, 56, 56};
  const Tensor x = random_tensor(shape, DType::f32, -2, 3, 50);
  const Tensor w = random_tensor({64}, DType::f32, 0.5, 1.5, 51), b = random_tensor({64}, DType::f32, -1, 1, 52);
  const Tensor g = random_tensor(shape, DType::f32, -1, 1, 53);
  for (bool affine : {true, false}) {
    const Tensor wc = affine ? w : Tensor(), bc = affine ? b : Tensor();
    const std::string where = affine ? " (affine)" : " (no weight, bias)";
    Tensor rm = random_tensor({64}, DType::f32, -1, 1, 54), rv = random_tensor({64}, DType::f32, 0.5, 2, 55);
    Tensor rm_g = gpu(rm), rv_g = gpu(rv);
    for (int step = 0; step < 2; ++step) {  // twice: the running statistics keep moving
      const ops::NormForward f = ops::batch_norm_forward(x, rm, rv, wc, bc, true, 0.1, 1e-5);
      const ops::NormForward fg = ops::batch_norm_forward(gpu(x), rm_g, rv_g, gpu(wc), gpu(bc), true, 0.1, 1e-5);
      check_close(cpu(fg.out), f.out, 1e-4, 1e-4, "batch_norm train" + where);
      check_close(cpu(fg.mean), f.mean, 1e-9, 1e-9, "batch mean" + where);
      check_close(cpu(fg.rstd), f.rstd, 1e-9, 1e-7, "batch rstd" + where);
      check_close(cpu(rm_g), rm, 1e-6, 1e-6, "running_mean" + where);
      check_close(cpu(rv_g), rv, 1e-6, 1e-6, "running_var" + where);
      const ops::NormGrads gr = ops::batch_norm_backward(g, x, f.mean, f.rstd, wc, true, {true, true, true});
      const ops::NormGrads gg =
          ops::batch_norm_backward(gpu(g), gpu(x), fg.mean, fg.rstd, gpu(wc), true, {true, true, true});
      check_close(cpu(gg.x), gr.x, 1e-4, 1e-3, "batch_norm_backward train dx" + where);
      check_close(cpu(gg.weight), gr.weight, 1e-2, 1e-4, "batch_norm_backward train dweight" + where);
      check_close(cpu(gg.bias), gr.bias, 1e-2, 1e-4, "batch_norm_backward train dbias" + where);
    }
    const Tensor eval = ops::batch_norm(x, rm, rv, wc, bc, false);
    check_close(cpu(ops::batch_norm(gpu(x), rm_g, rv_g, gpu(wc), gpu(bc), false)), eval, 1e-4, 1e-4,
                "batch_norm eval" + where);
    check_close(cpu(ops::batch_norm_relu(gpu(x), rm_g, rv_g, gpu(wc), gpu(bc), false)),
                ops::batch_norm_relu(x, rm, rv, wc, bc, false), 1e-4, 1e-4, "batch_norm_relu eval" + where);
    const ops::NormForward fe = ops::batch_norm_forward(x, rm, rv, wc, bc, false, 0.1, 1e-5);
    const ops::NormForward fge = ops::batch_norm_forward(gpu(x), rm_g, rv_g, gpu(wc), gpu(bc), false, 0.1, 1e-5);
    const ops::NormGrads ge = ops::batch_norm_backward(g, x, fe.mean, fe.rstd, wc, false, {true, true, false});
    const ops::NormGrads gge =
        ops::batch_norm_backward(gpu(g), gpu(x), fge.mean, fge.rstd, gpu(wc), false, {true, true, false});
    check_close(cpu(gge.x), ge.x, 1e-4, 1e-4, "batch_norm_backward eval dx" + where);
    check_close(cpu(gge.weight), ge.weight, 1e-2, 1e-4, "batch_norm_backward eval dweight" + where);
    CHECK(!gge.bias.defined());
    // The running statistics were read, not changed, in eval.
    check_close(cpu(rm_g), rm, 1e-6, 1e-6, "running_mean after eval" + where);
  }
}

TEST_CASE("cuda norm: batch norm in float64, fused relu, float64 running stats of a float32 input" *
          doctest::skip(kNoGpu)) {
  const Tensor x = random_tensor({5, 3, 7, 9}, DType::f64, -1, 2, 60);
  Tensor rm = zeros({3}, DType::f64), rv = ones({3}, DType::f64);
  Tensor rm_g = gpu(rm), rv_g = gpu(rv);
  check_close(cpu(ops::batch_norm_relu(gpu(x), rm_g, rv_g, Tensor(), Tensor(), true)),
              ops::batch_norm_relu(x, rm, rv, Tensor(), Tensor(), true), 1e-12, 1e-10, "f64 batch_norm_relu");
  check_close(cpu(rv_g), rv, 1e-12, 1e-12, "f64 running_var");
  const Tensor xf = ops::to_dtype(x, DType::f32);
  check_close(cpu(ops::batch_norm(gpu(xf), rm_g, rv_g, Tensor(), Tensor(), true)),
              ops::batch_norm(xf, rm, rv, Tensor(), Tensor(), true), 1e-5, 1e-5, "f32 input, f64 stats");
  check_close(cpu(rm_g), rm, 1e-7, 1e-7, "f64 running_mean from f32 input");
  // One value per channel cannot be normalised in training: the CPU's error, not a launch.
  CHECK_THROWS_WITH_AS(ops::batch_norm(gpu(ones({1, 3})), Tensor(), Tensor(), Tensor(), Tensor(), true),
                       doctest::Contains("more than 1 value per channel"), Error);
  CHECK_THROWS_WITH_AS(ops::batch_norm(gpu(x), rm, rv, Tensor(), Tensor(), true),
                       doctest::Contains("expected every tensor on one device"), Error);
}

// --- layer / rms norm ---

TEST_CASE("cuda norm: layer norm and RMS norm on narrow and wide rows" * doctest::skip(kNoGpu)) {
  for (DType dtype : {DType::f32, DType::f64}) {
    const double tol = dtype == DType::f32 ? 1e-4 : 1e-10;
    for (const Shape& shape : {Shape{300, 33}, Shape{6, 5000}, Shape{2, 3, 40, 50}}) {
      const Shape normalized = shape.size() == 4 ? Shape{40, 50} : Shape{shape.back()};
      const std::string where = std::string(dtype_name(dtype)) + " " + shape_str(shape);
      const Tensor x = random_tensor(shape, dtype, -2, 3, 70);
      const Tensor w = random_tensor(normalized, dtype, 0.5, 1.5, 71), b = random_tensor(normalized, dtype, -1, 1, 72);
      const Tensor g = random_tensor(shape, dtype, -1, 1, 73);
      const ops::NormForward f = ops::layer_norm_forward(x, normalized, w, b, 1e-5);
      const ops::NormForward fg = ops::layer_norm_forward(gpu(x), normalized, gpu(w), gpu(b), 1e-5);
      check_close(cpu(fg.out), f.out, tol, tol, "layer_norm " + where);
      check_close(cpu(fg.rstd), f.rstd, 1e-9, 1e-9, "layer_norm rstd " + where);
      const ops::NormGrads gr = ops::layer_norm_backward(g, x, normalized, f.mean, f.rstd, w, {true, true, true});
      const ops::NormGrads gg =
          ops::layer_norm_backward(gpu(g), gpu(x), normalized, fg.mean, fg.rstd, gpu(w), {true, true, true});
      check_close(cpu(gg.x), gr.x, tol, 1e-3, "layer_norm_backward dx " + where);
      check_close(cpu(gg.weight), gr.weight, 10 * tol, 1e-4, "layer_norm_backward dweight " + where);
      check_close(cpu(gg.bias), gr.bias, 10 * tol, 1e-4, "layer_norm_backward dbias " + where);

      check_close(cpu(ops::rms_norm(gpu(x), normalized, gpu(w))), ops::rms_norm(x, normalized, w), tol, tol,
                  "rms_norm " + where);
      check_close(cpu(ops::layer_norm(gpu(x), normalized)), ops::layer_norm(x, normalized), tol, tol,
                  "layer_norm without parameters " + where);
      const ops::NormForward r = ops::rms_norm_forward(x, normalized, Tensor(), -1.0);
      const ops::NormForward rg = ops::rms_norm_forward(gpu(x), normalized, Tensor(), -1.0);
      check_close(cpu(rg.out), r.out, tol, tol, "rms_norm without weight " + where);
      const ops::NormGrads rr =
          ops::layer_norm_backward(g, x, normalized, Tensor(), r.rstd, Tensor(), {true, false, false});
      const ops::NormGrads rgg =
          ops::layer_norm_backward(gpu(g), gpu(x), normalized, Tensor(), rg.rstd, Tensor(), {true, false, false});
      check_close(cpu(rgg.x), rr.x, tol, 1e-3, "rms_norm_backward dx " + where);
    }
  }
}

// --- optimisers ---

namespace {

struct ParamSet {
  std::vector<Tensor> cpu_params, gpu_params;
};

// Parameters of several sizes (one spanning many chunks) and both floating dtypes.
ParamSet make_params() {
  ParamSet s;
  const std::vector<std::pair<Shape, DType>> specs = {
      {{20000}, DType::f32}, {{64, 3, 3, 3}, DType::f32}, {{7}, DType::f32}, {{33, 5}, DType::f64}};
  uint64_t seed = 80;
  for (const auto& [shape, dtype] : specs) {
    Tensor p = random_tensor(shape, dtype, -1, 1, seed++);
    Tensor q = gpu(p);
    p.set_requires_grad(true);
    q.set_requires_grad(true);
    s.cpu_params.push_back(p);
    s.gpu_params.push_back(q);
  }
  return s;
}

// Gives both sets the same gradients (new ones each step; the third parameter gets none on step 1).
void set_grads(ParamSet& s, int step) {
  for (size_t i = 0; i < s.cpu_params.size(); ++i) {
    if (step == 1 && i == 2) {
      s.cpu_params[i].set_grad(Tensor());
      s.gpu_params[i].set_grad(Tensor());
      continue;
    }
    const Tensor g = random_tensor(s.cpu_params[i].shape(), s.cpu_params[i].dtype(), -1, 1,
                                   static_cast<uint64_t>(100 + 10 * step + static_cast<int>(i)));
    s.cpu_params[i].set_grad(g);
    s.gpu_params[i].set_grad(gpu(g));
  }
}

void check_same(const ParamSet& s, const std::string& where) {
  for (size_t i = 0; i < s.cpu_params.size(); ++i) {
    CHECK(s.gpu_params[i].device() == kGpu);
    check_close(cpu(s.gpu_params[i]), s.cpu_params[i], 1e-6, 1e-6, where + " parameter " + std::to_string(i));
  }
}

}  // namespace

TEST_CASE("cuda norm: SGD steps on CUDA parameters equal the same steps on the CPU" * doctest::skip(kNoGpu)) {
  std::vector<nn::SgdOptions> options(4);
  options[0].lr = 0.1;  // plain
  options[1].lr = 0.05;
  options[1].momentum = 0.9;
  options[1].dampening = 0.1;
  options[1].weight_decay = 1e-2;
  options[2].lr = 0.05;
  options[2].momentum = 0.9;
  options[2].nesterov = true;
  options[2].weight_decay = 5e-4;
  options[3].lr = 0.02;
  options[3].weight_decay = 0.1;
  for (size_t k = 0; k < options.size(); ++k) {
    ParamSet s = make_params();
    nn::SGD on_cpu(s.cpu_params, options[k]), on_gpu(s.gpu_params, options[k]);
    for (int step = 0; step < 4; ++step) {
      set_grads(s, step);
      on_cpu.step();
      on_gpu.step();
      check_same(s, "SGD options " + std::to_string(k) + " step " + std::to_string(step));
    }
    // The state saved on the CPU resumes on the GPU.
    std::map<std::string, Tensor> state = on_cpu.state_dict();
    for (auto& [name, t] : state) t = cpu(t);
    nn::SGD resumed(s.gpu_params, options[k]);
    resumed.load_state_dict(state);
    set_grads(s, 5);
    on_cpu.step();
    resumed.step();
    check_same(s, "SGD resumed from a CPU state, options " + std::to_string(k));
  }
}

TEST_CASE("cuda norm: Adam and AdamW steps on CUDA parameters equal the same steps on the CPU" *
          doctest::skip(kNoGpu)) {
  std::vector<nn::AdamOptions> options(3);
  options[0].lr = 1e-2;
  options[1].lr = 1e-2;
  options[1].weight_decay = 1e-2;  // L2 in the gradient
  options[2] = nn::adamw_options(1e-2, 0.05);
  for (size_t k = 0; k < options.size(); ++k) {
    ParamSet s = make_params();
    nn::Adam on_cpu(s.cpu_params, options[k]), on_gpu(s.gpu_params, options[k]);
    for (int step = 0; step < 5; ++step) {
      set_grads(s, step);
      on_cpu.step();
      on_gpu.step();
      check_same(s, "Adam options " + std::to_string(k) + " step " + std::to_string(step));
    }
    nn::Adam resumed(s.gpu_params, options[k]);
    resumed.load_state_dict(on_cpu.state_dict());
    set_grads(s, 6);
    on_cpu.step();
    resumed.step();
    check_same(s, "Adam resumed from a CPU state, options " + std::to_string(k));
  }
}

TEST_CASE("cuda norm: gradient clipping reads CUDA gradients" * doctest::skip(kNoGpu)) {
  ParamSet s = make_params();
  set_grads(s, 0);
  const double expected = nn::clip_grad_norm(s.cpu_params, 1.0);
  CHECK(nn::clip_grad_norm(s.gpu_params, 1.0) == doctest::Approx(expected).epsilon(1e-6));
  for (size_t i = 0; i < s.cpu_params.size(); ++i) {
    check_close(cpu(s.gpu_params[i].grad()), s.cpu_params[i].grad(), 1e-6, 1e-6, "clipped gradient");
  }
}

}  // namespace loupe::test
