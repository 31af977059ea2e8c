// GPU cases of the indexing, class-loss and sorting kernels (tensor/cuda/index.cu, loss.cu,
// sort.cu) that the op table cannot express: large sizes and the other kernel paths (rows longer
// than the shared-memory sort, (N, C, d) class layouts), repeated indices for the atomic scatters,
// ties and NaN in sorts, every cross-entropy option, and out-of-range indices raising loupe::Error
// with the GPU still usable afterwards. Every case compares with the CPU op; skipped without a GPU.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "tensor/cuda/backend.hpp"
#include "tensor/ops/device.hpp"
#include "tensor/ops/index.hpp"
#include "tensor/ops/loss.hpp"
#include "tensor/ops/loss_backward.hpp"
#include "tensor/ops/sort.hpp"
#include "tests/cuda/cuda_test_util.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {

// Exact comparison of a GPU result with the CPU's (NaN matches NaN).
void check_same(const Tensor& gpu_result, const Tensor& expected, const std::string& what) {
  CHECK_MESSAGE(gpu_result.device() == kGpu, what << ": result on " << gpu_result.device().str());
  CHECK(gpu_result.dtype() == expected.dtype());
  check_close(cpu(gpu_result), expected, 0, 0, what);
}

void check_near(const Tensor& gpu_result, const Tensor& expected, double atol, double rtol, const std::string& what) {
  CHECK_MESSAGE(gpu_result.device() == kGpu, what << ": result on " << gpu_result.device().str());
  CHECK(gpu_result.dtype() == expected.dtype());
  check_close(cpu(gpu_result), expected, atol, rtol, what);
}

// Targets in [0, classes) with every `every`-th one set to `ignore`.
Tensor targets_with_ignored(const Shape& shape, int64_t classes, int64_t ignore, int every, uint64_t seed) {
  std::vector<int64_t> t = to_vector<int64_t>(random_indices(shape, 0, classes, seed));
  for (size_t i = 0; i < t.size(); i += static_cast<size_t>(every)) t[i] = ignore;
  return from_values(t, shape, DType::i64);
}

const char* reduction_name(Reduction r) {
  return r == Reduction::none ? "none" : r == Reduction::mean ? "mean" : "sum";
}

// Values with many ties (multiples of 0.25 in [-2.5, 2.5)) and, for floating dtypes, a NaN every
// 37 elements.
Tensor ties_and_nan(const Shape& shape, DType dtype, uint64_t seed) {
  std::vector<double> v = values(random_tensor(shape, DType::f64, -10, 10, seed));
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] = std::floor(v[i]) / 4;
    if (is_floating(dtype) && i % 37 == 5) v[i] = std::numeric_limits<double>::quiet_NaN();
  }
  if (dtype == DType::i64) {
    for (double& x : v) x *= 4;
  }
  return ops::to_dtype(from_values(v, shape, DType::f64), dtype);
}

}  // namespace

// --- class losses ---

TEST_CASE("cuda index: cross_entropy on (256, 1000) with every option matches the CPU" * doctest::skip(kNoGpu)) {
  const Tensor logits = random_tensor({256, 1000}, DType::f32, -3, 3, 1);
  const Tensor weight = random_tensor({1000}, DType::f32, 0.5, 1.5, 2);
  for (int64_t ignore : {int64_t{-100}, int64_t{5}}) {
    const Tensor target = targets_with_ignored({256}, 1000, ignore, 7, 3);
    for (Reduction reduction : {Reduction::none, Reduction::mean, Reduction::sum}) {
      for (double smoothing : {0.0, 0.1}) {
        for (bool weighted : {false, true}) {
          CrossEntropyOptions o;
          o.reduction = reduction;
          o.ignore_index = ignore;
          o.label_smoothing = smoothing;
          o.weight = weighted ? weight : Tensor();
          CrossEntropyOptions og = o;
          og.weight = gpu(o.weight);
          const std::string what = std::string("cross_entropy ") + reduction_name(reduction) + " ignore " +
                                   std::to_string(ignore) + " eps " + std::to_string(smoothing) +
                                   (weighted ? " weighted" : "");
          check_near(ops::cross_entropy(gpu(logits), gpu(target), og), ops::cross_entropy(logits, target, o), 1e-5,
                     1e-4, what);
          const Tensor grad = reduction == Reduction::none ? random_tensor({256}, DType::f32, -1, 1, 4)
                                                           : scalar_tensor(0.7, DType::f32);
          check_near(ops::cross_entropy_backward(gpu(grad), gpu(logits), gpu(target), og),
                     ops::cross_entropy_backward(grad, logits, target, o), 1e-6, 1e-3, what + " backward");
        }
      }
    }
  }
  // float64, through autograd.
  const Tensor x64 = ops::to_dtype(logits, DType::f64);
  const Tensor target = targets_with_ignored({256}, 1000, -100, 5, 6);
  CrossEntropyOptions o;
  o.label_smoothing = 0.05;
  const auto loss_and_grad = [&](Device device) {
    Tensor x = ops::to_device(x64, device).detach();
    x.set_requires_grad();
    const Tensor loss = loupe::cross_entropy(x, ops::to_device(target, device), o);
    return std::vector<Tensor>{loss, grad({loss}, {x})[0]};
  };
  const std::vector<Tensor> on_cpu = loss_and_grad(Device::cpu()), on_gpu = loss_and_grad(kGpu);
  check_near(on_gpu[0], on_cpu[0], 1e-12, 1e-10, "cross_entropy float64");
  check_near(on_gpu[1], on_cpu[1], 1e-12, 1e-9, "cross_entropy float64 gradient");
}

TEST_CASE("cuda index: class losses over (N, C, d1, d2) and nll_loss match the CPU" * doctest::skip(kNoGpu)) {
  for (DType dtype : {DType::f32, DType::f64}) {
    const double atol = dtype == DType::f32 ? 1e-5 : 1e-12, rtol = dtype == DType::f32 ? 1e-4 : 1e-10;
    const Tensor logits = random_tensor({4, 6, 3, 5}, dtype, -2, 2, 7);
    const Tensor target = targets_with_ignored({4, 3, 5}, 6, -1, 4, 8);
    const Tensor log_probs = ops::log_softmax(logits, 1);
    for (Reduction reduction : {Reduction::none, Reduction::mean, Reduction::sum}) {
      CrossEntropyOptions o;
      o.reduction = reduction;
      o.ignore_index = -1;
      o.weight = random_tensor({6}, DType::f64, 0.5, 2, 9);
      CrossEntropyOptions og = o;
      og.weight = gpu(o.weight);
      const std::string what = std::string(dtype_name(dtype)) + " " + reduction_name(reduction);
      const Tensor grad = reduction == Reduction::none ? random_tensor({4, 3, 5}, dtype, -1, 1, 10)
                                                       : scalar_tensor(-1.5, dtype);
      check_near(ops::nll_loss(gpu(log_probs), gpu(target), og), ops::nll_loss(log_probs, target, o), atol, rtol,
                 "nll_loss " + what);
      check_near(ops::nll_loss_backward(gpu(grad), gpu(log_probs), gpu(target), og),
                 ops::nll_loss_backward(grad, log_probs, target, o), atol, rtol, "nll_loss backward " + what);
      o.label_smoothing = og.label_smoothing = 0.2;
      check_near(ops::cross_entropy(gpu(logits), gpu(target), og), ops::cross_entropy(logits, target, o), atol, rtol,
                 "cross_entropy " + what);
      check_near(ops::cross_entropy_backward(gpu(grad), gpu(logits), gpu(target), og),
                 ops::cross_entropy_backward(grad, logits, target, o), atol, rtol, "cross_entropy backward " + what);
    }
  }
  // Every target ignored: the mean is 0 / 0 = NaN on both, the gradient zero.
  const Tensor logits = random_tensor({3, 4}, DType::f32, -1, 1, 11);
  const Tensor target = full({3}, -100, DType::i64);
  check_same(ops::cross_entropy(gpu(logits), gpu(target)), ops::cross_entropy(logits, target), "all ignored");
  check_same(ops::cross_entropy_backward(gpu(scalar_tensor(1.0)), gpu(logits), gpu(target), {}),
             ops::cross_entropy_backward(scalar_tensor(1.0), logits, target, {}), "all ignored backward");
}

TEST_CASE("cuda index: binary_cross_entropy_with_logits on (64, 14) with pos_weight matches the CPU" *
          doctest::skip(kNoGpu)) {
  const Tensor logits = random_tensor({64, 14}, DType::f32, -6, 6, 12);
  const Tensor target = random_tensor({64, 14}, DType::f32, 0, 1, 13);
  const Tensor pos_weight = random_tensor({14}, DType::f32, 0.5, 3, 14);
  for (bool weighted : {false, true}) {
    const Tensor pw = weighted ? pos_weight : Tensor();
    for (Reduction reduction : {Reduction::none, Reduction::mean, Reduction::sum}) {
      const std::string what = std::string("bce ") + reduction_name(reduction) + (weighted ? " pos_weight" : "");
      check_near(ops::binary_cross_entropy_with_logits(gpu(logits), gpu(target), gpu(pw), reduction),
                 ops::binary_cross_entropy_with_logits(logits, target, pw, reduction), 1e-5, 1e-4, what);
      const Tensor grad = reduction == Reduction::none ? random_tensor({64, 14}, DType::f32, -1, 1, 15)
                                                       : scalar_tensor(0.3, DType::f32);
      const ops::BceGrads expected =
          ops::binary_cross_entropy_with_logits_backward(grad, logits, target, pw, reduction, true, true);
      const ops::BceGrads actual = ops::binary_cross_entropy_with_logits_backward(gpu(grad), gpu(logits), gpu(target),
                                                                                  gpu(pw), reduction, true, true);
      check_near(actual.logits, expected.logits, 1e-6, 1e-4, what + " d/dlogits");
      check_near(actual.target, expected.target, 1e-6, 1e-4, what + " d/dtarget");
      const ops::BceGrads only_logits = ops::binary_cross_entropy_with_logits_backward(
          gpu(grad), gpu(logits), gpu(target), gpu(pw), reduction, true, false);
      CHECK_FALSE(only_logits.target.defined());
      check_near(only_logits.logits, expected.logits, 1e-6, 1e-4, what + " d/dlogits alone");
    }
  }
}

// --- indexing ---

TEST_CASE("cuda index: embedding and its backward with repeated indices and padding_idx" * doctest::skip(kNoGpu)) {
  for (DType dtype : {DType::f32, DType::f64}) {
    const Tensor weight = random_tensor({50, 16}, dtype, -1, 1, 16);
    const Tensor indices = random_indices({8, 30}, 0, 10, 17);  // 240 lookups of 10 rows
    check_same(ops::embedding(gpu(weight), gpu(indices), 3), ops::embedding(weight, indices, 3), "embedding");
    const Tensor g = random_tensor({8, 30, 16}, dtype, -1, 1, 18);
    for (int64_t padding : {int64_t{-1}, int64_t{3}}) {
      const Tensor expected = ops::embedding_backward(g, indices, 50, padding);
      const Tensor actual = ops::embedding_backward(gpu(g), gpu(indices), 50, padding);
      check_near(actual, expected, dtype == DType::f32 ? 1e-5 : 1e-12, 1e-5,
                 std::string("embedding_backward ") + dtype_name(dtype) + " padding " + std::to_string(padding));
    }
  }
}

TEST_CASE("cuda index: index_add, scatter_add, gather and index_select with repeats and strides" *
          doctest::skip(kNoGpu)) {
  for (DType dtype : {DType::f32, DType::f64, DType::i64}) {
    const double tol = dtype == DType::f32 ? 1e-5 : 1e-12;
    const std::string name = dtype_name(dtype);
    const Tensor x = ops::to_dtype(random_tensor({20, 7, 5}, DType::f64, -9, 9, 19), dtype);
    const Tensor idx0 = random_indices({40}, 0, 20, 20);
    const Tensor src0 = ops::to_dtype(random_tensor({40, 7, 5}, DType::f64, -9, 9, 21), dtype);
    const double alpha = dtype == DType::i64 ? 2.0 : 0.5;
    check_near(ops::index_add(gpu(x), 0, gpu(idx0), gpu(src0), alpha), ops::index_add(x, 0, idx0, src0, alpha), tol,
               tol, "index_add dim 0 " + name);
    const Tensor idx1 = random_indices({25}, 0, 7, 22);
    const Tensor src1 = ops::to_dtype(random_tensor({20, 25, 5}, DType::f64, -9, 9, 23), dtype);
    check_near(ops::index_add(gpu(x), 1, gpu(idx1), gpu(src1)), ops::index_add(x, 1, idx1, src1), tol, tol,
               "index_add dim 1 " + name);
    check_same(ops::index_select(gpu(ops::transpose(x, 0, 2)), 1, gpu(idx1)),
               ops::index_select(ops::transpose(x, 0, 2), 1, idx1), "index_select transposed " + name);
    // scatter_add along dim 1 with an index smaller than src and a transposed src.
    const Tensor sidx = random_indices({20, 30, 4}, 0, 7, 24);
    const Tensor src = ops::transpose(ops::to_dtype(random_tensor({5, 31, 20}, DType::f64, -9, 9, 25), dtype), 0, 2);
    check_near(ops::scatter_add(gpu(x), 1, gpu(sidx), gpu(src)), ops::scatter_add(x, 1, sidx, src), tol, tol,
               "scatter_add " + name);
    check_same(ops::gather(gpu(ops::transpose(x, 0, 1)), 1, gpu(random_indices({7, 12, 5}, 0, 20, 26))),
               ops::gather(ops::transpose(x, 0, 1), 1, random_indices({7, 12, 5}, 0, 20, 26)),
               "gather transposed " + name);
  }
  // masked_fill broadcasting x against the mask; one_hot.
  const Tensor x = random_tensor({5, 1, 4}, DType::f32, -1, 1, 27);
  const Tensor mask = ops::gt(random_tensor({3, 4}, DType::f32, -1, 1, 28), scalar_tensor(0.0));
  check_same(ops::masked_fill(gpu(x), gpu(mask), -7.5), ops::masked_fill(x, mask, -7.5), "masked_fill");
  const Tensor classes = random_indices({6, 9}, 0, 11, 29);
  check_same(ops::one_hot(gpu(classes)), ops::one_hot(classes), "one_hot inferred");
  check_same(ops::one_hot(gpu(classes), 13), ops::one_hot(classes, 13), "one_hot 13");
}

// --- sorting ---

TEST_CASE("cuda index: sort rows of 1 to 5000 elements with ties and NaN matches the CPU" * doctest::skip(kNoGpu)) {
  for (int64_t len : {1, 5, 1000, 4096, 5000}) {
    for (DType dtype : {DType::f32, DType::f64, DType::i64}) {
      const Tensor x = ties_and_nan({3, len}, dtype, static_cast<uint64_t>(len));
      for (bool descending : {false, true}) {
        const std::string what = std::string("sort ") + std::to_string(len) + " " + dtype_name(dtype) +
                                 (descending ? " descending" : " ascending");
        const ops::ValuesIndices expected = ops::sort(x, 1, descending);
        const ops::ValuesIndices actual = ops::sort(gpu(x), 1, descending);
        check_same(actual.values, expected.values, what + " values");
        check_same(actual.indices, expected.indices, what + " indices");
      }
    }
    // Along dim 0 of a column layout (the dim is moved last and back).
    const Tensor col = ops::transpose(ties_and_nan({2, len}, DType::f32, 99), 0, 1);
    const ops::ValuesIndices expected = ops::sort(col, 0, true);
    const ops::ValuesIndices actual = ops::sort(gpu(col), 0, true);
    check_same(actual.values, expected.values, "sort dim 0 values " + std::to_string(len));
    check_same(actual.indices, expected.indices, "sort dim 0 indices " + std::to_string(len));
  }
  // 0-d and empty.
  check_same(ops::sort(gpu(scalar_tensor(2.0))).values, scalar_tensor(2.0), "sort 0-d");
  CHECK(ops::sort(gpu(zeros({0, 4}))).values.shape() == Shape{0, 4});
}

TEST_CASE("cuda index: topk k = 5 on (128, 1000) and the sort backward match the CPU" * doctest::skip(kNoGpu)) {
  const Tensor x = ties_and_nan({128, 1000}, DType::f32, 30);
  for (bool largest : {true, false}) {
    const ops::ValuesIndices expected = ops::topk(x, 5, 1, largest);
    const ops::ValuesIndices actual = ops::topk(gpu(x), 5, 1, largest);
    check_same(actual.values, expected.values, largest ? "topk largest values" : "topk smallest values");
    check_same(actual.indices, expected.indices, largest ? "topk largest indices" : "topk smallest indices");
  }
  // Gradients through topk (a scatter into zeros) and sort (a permutation), float64.
  const Tensor x64 = random_tensor({16, 300}, DType::f64, -1, 1, 31);
  const auto grads = [&](Device device) {
    Tensor leaf = ops::to_device(x64, device).detach();
    leaf.set_requires_grad();
    const Tensor top = loupe::topk(leaf, 7, 1).values;
    const Tensor sorted = loupe::sort(leaf, 0, true).values;
    const Tensor loss = add(sum(mul(top, ops::to_device(random_tensor({16, 7}, DType::f64, -1, 1, 32), device))),
                            sum(mul(sorted, ops::to_device(random_tensor({16, 300}, DType::f64, -1, 1, 33), device))));
    return grad({loss}, {leaf})[0];
  };
  check_near(grads(kGpu), grads(Device::cpu()), 1e-12, 1e-10, "topk and sort gradients");
}

// --- errors ---

TEST_CASE("cuda index: out-of-range indices raise loupe::Error and the GPU stays usable" * doctest::skip(kNoGpu)) {
  const Tensor x = gpu(random_tensor({4, 5}, DType::f32, -1, 1, 34));
  const Tensor bad = gpu(from_values(std::vector<int64_t>{0, 1, 9, 2}, {4, 1}, DType::i64));
  CHECK_THROWS_WITH_AS(ops::gather(x, 1, bad), doctest::Contains("gather: index 9 is out of bounds for dimension 1"),
                       Error);
  CHECK_THROWS_AS(ops::scatter_add(x, 1, bad, x), Error);
  CHECK_THROWS_WITH_AS(ops::index_select(x, 0, gpu(from_values(std::vector<int64_t>{1, -1}, {2}, DType::i64))),
                       doctest::Contains("index -1 is out of bounds"), Error);
  CHECK_THROWS_AS(ops::index_add(x, 0, gpu(full({4}, 4, DType::i64)), x), Error);
  CHECK_THROWS_AS(ops::embedding(x, gpu(full({3}, 4, DType::i64))), Error);
  CHECK_THROWS_WITH_AS(ops::cross_entropy(x, gpu(from_values(std::vector<int64_t>{0, -100, 5, 1}, {4}, DType::i64))),
                       doctest::Contains("cross_entropy: target 5 is out of bounds for 5 classes"), Error);
  CHECK_THROWS_AS(ops::one_hot(gpu(full({3}, -2, DType::i64))), Error);
  CHECK_THROWS_AS(ops::one_hot(gpu(full({3}, 4, DType::i64)), 3), Error);
  CHECK_THROWS_WITH_AS(ops::sort_backward(x, gpu(full({4, 5}, 5, DType::i64)), 1, {4, 5}),
                       doctest::Contains("sort_backward: index 5 out of range"), Error);
  // Tensors on two devices.
  CHECK_THROWS_WITH_AS(ops::gather(x, 1, cpu(bad)), doctest::Contains("expected every tensor on one device"), Error);
  // Nothing was launched with a bad index: the device still works.
  cuda::synchronize(0);
  const Tensor good = from_values(std::vector<int64_t>{4, 0, 2, 3}, {4, 1}, DType::i64);
  check_same(ops::gather(x, 1, gpu(good)), ops::gather(cpu(x), 1, good), "gather after the errors");
  check_same(ops::add(x, x), ops::add(cpu(x), cpu(x)), "add after the errors");
}

}  // namespace loupe::test
