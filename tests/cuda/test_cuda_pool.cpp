// GPU cases for pooling, interpolation and padding that the op table cannot express: ResNet-sized
// inputs, max-pool indices (ties, NaN, dilation, ceil_mode) equal to the CPU's, overlapping
// windows in the backward passes, both align_corners settings, reflect / replicate / negative pads,
// non-contiguous inputs, unbatched (C, H, W) inputs, and gradients through the differentiable ops
// landing on the GPU. The gathering backward kernels (average pools, interpolate, pad) add in the
// CPU's order, so they are compared with tight tolerances; max pooling's backward uses atomics.
// Skipped without a GPU.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tensor/cuda/backend.hpp"
#include "tensor/ops/device.hpp"
#include "tests/cuda/cuda_test_util.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {

// The same values on the GPU in a non-contiguous layout (the dims stored in reverse order, with a
// gap in what becomes the first dim).
Tensor gpu_noncontiguous(const Tensor& t) {
  Shape big = t.shape();
  std::reverse(big.begin(), big.end());
  big.back() *= 2;
  Tensor storage = zeros(big, t.dtype(), kGpu);
  std::vector<int64_t> reverse_dims(static_cast<size_t>(t.dim()));
  for (size_t i = 0; i < reverse_dims.size(); ++i) reverse_dims[i] = t.dim() - 1 - static_cast<int64_t>(i);
  Tensor view = ops::slice(ops::permute(storage, reverse_dims), 0, 0, 2 * t.shape()[0], 2);
  ops::copy_(view, gpu(t));
  CHECK(!view.is_contiguous());
  return view;
}

Pool2dParams pool(std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride, std::array<int64_t, 2> padding,
                  std::array<int64_t, 2> dilation = {1, 1}, bool ceil_mode = false, bool count_include_pad = true) {
  Pool2dParams p;
  p.kernel = kernel;
  p.stride = stride;
  p.padding = padding;
  p.dilation = dilation;
  p.ceil_mode = ceil_mode;
  p.count_include_pad = count_include_pad;
  return p;
}

double tol(DType dtype) { return dtype == DType::f32 ? 1e-5 : 1e-12; }

// Max pooling of x on both devices: values and indices equal, backward close.
void check_max_pool(const Tensor& x, const Tensor& x_gpu, const Pool2dParams& p, const std::string& where) {
  const ops::ValuesIndices c = ops::max_pool2d_with_indices(x, p);
  const ops::ValuesIndices g = ops::max_pool2d_with_indices(x_gpu, p);
  CHECK(g.values.device() == kGpu);
  check_close(cpu(g.values), c.values, 0, 0, where + " values");
  check_close(cpu(g.indices), c.indices, 0, 0, where + " indices");
  const Tensor dy = random_tensor(c.values.shape(), x.dtype(), -1, 1, 31);
  check_close(cpu(ops::max_pool2d_backward(gpu(dy), g.indices, x.shape())), ops::max_pool2d_backward(dy, c.indices, x.shape()),
              tol(x.dtype()), tol(x.dtype()), where + " backward");
}

void check_avg_pool(const Tensor& x, const Tensor& x_gpu, const Pool2dParams& p, const std::string& where) {
  const Tensor y = ops::avg_pool2d(x, p);
  check_close(cpu(ops::avg_pool2d(x_gpu, p)), y, tol(x.dtype()), tol(x.dtype()), where + " forward");
  const Tensor dy = random_tensor(y.shape(), x.dtype(), -1, 1, 32);
  check_close(cpu(ops::avg_pool2d_backward(gpu(dy), x.shape(), p)), ops::avg_pool2d_backward(dy, x.shape(), p),
              tol(x.dtype()), tol(x.dtype()), where + " backward");
}

void check_adaptive(const Tensor& x, const Tensor& x_gpu, std::array<int64_t, 2> size, const std::string& where) {
  const Tensor y = ops::adaptive_avg_pool2d(x, size);
  check_close(cpu(ops::adaptive_avg_pool2d(x_gpu, size)), y, tol(x.dtype()), tol(x.dtype()), where + " forward");
  const Tensor dy = random_tensor(y.shape(), x.dtype(), -1, 1, 33);
  check_close(cpu(ops::adaptive_avg_pool2d_backward(gpu(dy), x.shape())), ops::adaptive_avg_pool2d_backward(dy, x.shape()),
              tol(x.dtype()), tol(x.dtype()), where + " backward");
}

}  // namespace

TEST_CASE("cuda pool: ResNet's stem max pool (3x3, stride 2, pad 1) on (8, 64, 112, 112)" * doctest::skip(kNoGpu)) {
  const Tensor x = random_tensor({8, 64, 112, 112}, DType::f32, -1, 1, 1);
  check_max_pool(x, gpu(x), pool({3, 3}, {2, 2}, {1, 1}), "resnet stem");
}

TEST_CASE("cuda pool: max pool indices with ties, NaN, dilation, ceil_mode, padding; CHW and int64 input" *
          doctest::skip(kNoGpu)) {
  // Few distinct values: many ties, where the first maximum must win; NaNs must win too.
  Tensor x = ops::to_dtype(random_tensor({2, 3, 11, 10}, DType::f64, 0, 3, 2), DType::i64);
  std::vector<double> v = values(ops::to_dtype(x, DType::f64));
  for (size_t i = 0; i < v.size(); i += 37) v[i] = NAN;
  for (DType dtype : {DType::f32, DType::f64}) {
    const Tensor xf = from_values(v, x.shape(), dtype);
    for (const Pool2dParams& p : {pool({3, 3}, {2, 2}, {1, 1}), pool({2, 3}, {1, 2}, {1, 0}, {1, 1}, true),
                                  pool({3, 2}, {2, 3}, {1, 1}, {2, 3}, true), pool({3, 3}, {1, 1}, {1, 1}, {3, 2}),
                                  pool({4, 4}, {3, 3}, {2, 2}, {1, 1}, true)}) {
      check_max_pool(xf, gpu(xf), p, std::string("max pool ") + dtype_name(dtype));
    }
  }
  // A 2x2 kernel dilated by 4 with padding 1 on a 3x3 plane: its one window has no tap inside, so
  // its value is -inf and its index points outside the plane (and the backward skips it).
  const Tensor narrow = random_tensor({2, 3, 3}, DType::f32, -1, 1, 3);
  check_max_pool(narrow, gpu(narrow), pool({2, 2}, {1, 1}, {1, 1}, {4, 4}), "max pool with an empty window");
  const Tensor chw = random_tensor({5, 9, 7}, DType::f64, -1, 1, 4);
  check_max_pool(chw, gpu(chw), pool({3, 2}, {2, 2}, {1, 1}), "max pool (C, H, W)");
  const ops::ValuesIndices ci = ops::max_pool2d_with_indices(x, pool({3, 3}, {2, 2}, {1, 1}, {1, 1}, true));
  const ops::ValuesIndices gi = ops::max_pool2d_with_indices(gpu(x), pool({3, 3}, {2, 2}, {1, 1}, {1, 1}, true));
  check_close(cpu(gi.values), ci.values, 0, 0, "int64 max pool values");
  check_close(cpu(gi.indices), ci.indices, 0, 0, "int64 max pool indices");
}

TEST_CASE("cuda pool: average pools with overlapping windows, ceil_mode and both divisors" * doctest::skip(kNoGpu)) {
  for (DType dtype : {DType::f32, DType::f64}) {
    const Tensor x = random_tensor({2, 3, 13, 11}, dtype, -1, 1, 5);
    for (bool include_pad : {true, false}) {
      for (const Pool2dParams& p : {pool({3, 3}, {2, 2}, {1, 1}, {1, 1}, false, include_pad),
                                    pool({3, 2}, {2, 1}, {1, 1}, {1, 1}, true, include_pad),
                                    pool({2, 2}, {3, 3}, {1, 0}, {1, 1}, true, include_pad),
                                    pool({5, 4}, {1, 2}, {2, 2}, {1, 1}, false, include_pad)}) {
        check_avg_pool(x, gpu(x), p, std::string("avg pool ") + dtype_name(dtype) + (include_pad ? " incl pad" : ""));
      }
    }
  }
  const Tensor chw = random_tensor({4, 8, 9}, DType::f32, -1, 1, 6);
  check_avg_pool(chw, gpu(chw), pool({3, 3}, {2, 2}, {1, 1}, {1, 1}, true), "avg pool (C, H, W)");
  const Tensor xi = ops::to_dtype(random_tensor({2, 2, 7, 7}, DType::f64, -20, 20, 7), DType::i64);
  check_close(cpu(ops::avg_pool2d(gpu(xi), pool({3, 3}, {2, 2}, {1, 1}))), ops::avg_pool2d(xi, pool({3, 3}, {2, 2}, {1, 1})),
              0, 0, "int64 avg pool truncates");
}

TEST_CASE("cuda pool: adaptive average pooling to 1x1 (8, 512, 7, 7) and 13x17 -> 7x7 and others" *
          doctest::skip(kNoGpu)) {
  const Tensor head = random_tensor({8, 512, 7, 7}, DType::f32, -1, 1, 8);
  check_adaptive(head, gpu(head), {1, 1}, "resnet head 1x1");
  for (DType dtype : {DType::f32, DType::f64}) {
    const Tensor x = random_tensor({2, 3, 13, 17}, dtype, -1, 1, 9);
    for (const std::array<int64_t, 2> size :
         {std::array<int64_t, 2>{7, 7}, {5, 3}, {13, 17}, {20, 30}, {1, 17}, {4, 1}}) {
      check_adaptive(x, gpu(x), size, std::string("adaptive ") + dtype_name(dtype) + " to " +
                                          std::to_string(size[0]) + "x" + std::to_string(size[1]));
    }
  }
  const Tensor chw = random_tensor({3, 10, 6}, DType::f64, -1, 1, 10);
  check_adaptive(chw, gpu(chw), {4, 4}, "adaptive (C, H, W)");
}

TEST_CASE("cuda pool: non-contiguous inputs pool like contiguous ones" * doctest::skip(kNoGpu)) {
  const Tensor x = random_tensor({3, 4, 9, 10}, DType::f32, -1, 1, 11);
  const Tensor xn = gpu_noncontiguous(x);
  check_max_pool(x, xn, pool({3, 3}, {2, 2}, {1, 1}), "non-contiguous max pool");
  check_avg_pool(x, xn, pool({3, 3}, {2, 2}, {1, 1}, {1, 1}, true, false), "non-contiguous avg pool");
  check_adaptive(x, xn, {4, 3}, "non-contiguous adaptive pool");
  // A non-contiguous grad and indices in the backward.
  const ops::ValuesIndices c = ops::max_pool2d_with_indices(x, pool({2, 2}, {1, 1}, {0, 0}));
  const Tensor dy = random_tensor(c.values.shape(), DType::f32, -1, 1, 12);
  check_close(cpu(ops::max_pool2d_backward(gpu_noncontiguous(dy), gpu_noncontiguous(c.indices), x.shape())),
              ops::max_pool2d_backward(dy, c.indices, x.shape()), 1e-5, 1e-5, "non-contiguous max pool backward");
  const Pool2dParams p = pool({3, 3}, {2, 2}, {1, 1});
  const Tensor dz = random_tensor(ops::avg_pool2d(x, p).shape(), DType::f32, -1, 1, 13);
  check_close(cpu(ops::avg_pool2d_backward(gpu_noncontiguous(dz), x.shape(), p)), ops::avg_pool2d_backward(dz, x.shape(), p),
              1e-5, 1e-5, "non-contiguous avg pool backward");
}

TEST_CASE("cuda pool: interpolate nearest and bilinear, both align_corners, sizes and scale factors" *
          doctest::skip(kNoGpu)) {
  for (DType dtype : {DType::f32, DType::f64}) {
    const double t = dtype == DType::f32 ? 1e-5 : 1e-12;
    const Tensor x = random_tensor({2, 3, 7, 9}, dtype, -1, 1, 14);
    for (const std::array<int64_t, 2> size :
         {std::array<int64_t, 2>{14, 18}, {5, 4}, {7, 9}, {23, 3}, {1, 1}, {16, 31}}) {
      for (int mode = 0; mode < 3; ++mode) {
        const InterpolateMode m = mode == 0 ? InterpolateMode::nearest : InterpolateMode::bilinear;
        const bool align = mode == 2;
        const std::string where = std::string("interpolate ") + dtype_name(dtype) + " " +
                                  ops::interpolate_mode_name(m) + (align ? " align_corners " : " ") +
                                  std::to_string(size[0]) + "x" + std::to_string(size[1]);
        const Tensor y = ops::interpolate(x, size, m, align);
        check_close(cpu(ops::interpolate(gpu(x), size, m, align)), y, t, t, where + " forward");
        const Tensor dy = random_tensor(y.shape(), dtype, -1, 1, 15);
        check_close(cpu(ops::interpolate_backward(gpu(dy), x.shape(), m, align)),
                    ops::interpolate_backward(dy, x.shape(), m, align), t, t, where + " backward");
      }
    }
    for (const auto& [sh, sw] : std::vector<std::pair<double, double>>{{2.0, 2.0}, {1.5, 0.7}, {0.5, 3.3}}) {
      for (const InterpolateMode m : {InterpolateMode::nearest, InterpolateMode::bilinear}) {
        const std::string where = std::string("interpolate by scale ") + ops::interpolate_mode_name(m);
        const Tensor y = ops::interpolate(x, sh, sw, m);
        check_close(cpu(ops::interpolate(gpu_noncontiguous(x), sh, sw, m)), y, t, t, where + " forward");
        const Tensor dy = random_tensor(y.shape(), dtype, -1, 1, 16);
        check_close(cpu(ops::interpolate_backward(gpu(dy), x.shape(), m, false, {sh, sw})),
                    ops::interpolate_backward(dy, x.shape(), m, false, {sh, sw}), t, t, where + " backward");
      }
    }
  }
}

TEST_CASE("cuda pool: pad constant / reflect / replicate, negative pads, and reflect backward" *
          doctest::skip(kNoGpu)) {
  struct Case {
    Shape shape;
    std::vector<int64_t> pads;
    PadMode mode;
  };
  const std::vector<Case> cases = {
      {{2, 3, 6, 7}, {2, 3, 1, 4}, PadMode::reflect},
      {{2, 3, 6, 7}, {5, 5, 5, 5}, PadMode::reflect},
      {{3, 8}, {7, 2}, PadMode::reflect},
      {{2, 2, 4, 5, 6}, {1, 2, 3, 0, 2, 1}, PadMode::reflect},
      {{2, 3, 6, 7}, {4, 1, 0, 6}, PadMode::replicate},
      {{3, 5, 4}, {-1, 3, 2, -2}, PadMode::replicate},
      {{2, 3, 6, 7}, {-2, 3, 1, -4}, PadMode::reflect},
      {{2, 3, 6, 7}, {1, 2, 3, 4, 0, 1, 1, 0}, PadMode::constant},
      {{4, 5}, {-2, -1, 3, -4}, PadMode::constant},
      {{2, 1, 3}, {0, 0, 0, 0, 2, 2}, PadMode::constant},
  };
  for (DType dtype : {DType::f32, DType::f64}) {
    for (const Case& k : cases) {
      const std::string where = std::string("pad ") + pad_mode_name(k.mode) + " " + dtype_name(dtype) + " " +
                                shape_str(k.shape);
      const Tensor x = random_tensor(k.shape, dtype, -1, 1, 17);
      const Tensor y = ops::pad(x, k.pads, k.mode, 0.25);
      check_close(cpu(ops::pad(gpu(x), k.pads, k.mode, 0.25)), y, 0, 0, where + " forward");
      check_close(cpu(ops::pad(gpu_noncontiguous(x), k.pads, k.mode, 0.25)), y, 0, 0, where + " non-contiguous");
      const Tensor dy = random_tensor(y.shape(), dtype, -1, 1, 18);
      check_close(cpu(ops::pad_backward(gpu(dy), x.shape(), k.pads, k.mode)), ops::pad_backward(dy, x.shape(), k.pads, k.mode),
                  0, 0, where + " backward");
    }
  }
  // Other dtypes: bool and int64 forward, int64 backward.
  const Tensor b = ops::gt(random_tensor({3, 4, 5}), scalar_tensor(0.0, DType::f32));
  check_close(cpu(ops::pad(gpu(b), {1, 2, 2, 1}, PadMode::reflect)), ops::pad(b, {1, 2, 2, 1}, PadMode::reflect), 0, 0,
              "pad bool reflect");
  check_close(cpu(ops::pad(gpu(b), {1, 2}, PadMode::constant, 1.0)), ops::pad(b, {1, 2}, PadMode::constant, 1.0), 0, 0,
              "pad bool constant");
  const Tensor i = random_indices({3, 2, 5}, -50, 50);
  check_close(cpu(ops::pad_backward(gpu(i), {3, 2, 3}, {1, 1}, PadMode::replicate)),
              ops::pad_backward(i, {3, 2, 3}, {1, 1}, PadMode::replicate), 0, 0, "pad_backward int64");
  // Everything cropped away: an empty output, and a zero gradient.
  const Tensor x = random_tensor({2, 3}, DType::f32, -1, 1, 19);
  CHECK(ops::pad(gpu(x), {-2, -1}).numel() == 0);
  check_close(cpu(ops::pad_backward(gpu(zeros({2, 0})), {2, 3}, {-2, -1}, PadMode::constant)), zeros({2, 3}), 0, 0,
              "pad_backward of an empty grad");
}

TEST_CASE("cuda pool: cat, stack and split run on the GPU" * doctest::skip(kNoGpu)) {
  const Tensor a = random_tensor({2, 3, 4}, DType::f32, -1, 1, 20), b = random_tensor({2, 5, 4}, DType::f64, -1, 1, 21);
  check_close(cpu(ops::cat({gpu(a), gpu_noncontiguous(b)}, 1)), ops::cat({a, b}, 1), 0, 0, "cat");
  check_close(cpu(ops::stack({gpu(a), gpu(a)}, -1)), ops::stack({a, a}, -1), 0, 0, "stack");
  const std::vector<Tensor> pieces = ops::split(gpu(b), 2, 1);
  REQUIRE(pieces.size() == 3);
  check_close(cpu(pieces[2]), ops::split(b, 2, 1)[2], 0, 0, "split");
  CHECK_THROWS_WITH_AS(ops::cat({a, gpu(a)}, 0), doctest::Contains("expected every tensor on one device"), Error);
}

TEST_CASE("cuda pool: gradients through the differentiable ops land on the GPU and match the CPU" *
          doctest::skip(kNoGpu)) {
  const Tensor x = random_tensor({2, 3, 10, 9}, DType::f64, -1, 1, 22);
  auto run = [&](Device device) {
    Tensor leaf = ops::to_device(x, device).detach();
    leaf.set_requires_grad();
    Tensor h = max_pool2d(leaf, pool({3, 3}, {2, 2}, {1, 1}));
    h = interpolate(h, {9, 8}, InterpolateMode::bilinear, false);
    h = pad(h, {1, 2, 2, 1}, PadMode::reflect);
    h = pad(h, {1, -1, 0, 2}, PadMode::constant, 0.5);
    h = avg_pool2d(h, pool({2, 2}, {1, 1}, {1, 1}, {1, 1}, true, false));
    h = adaptive_avg_pool2d(h, {3, 2});
    const Tensor w = ops::to_device(random_tensor(h.shape(), DType::f64, -1, 1, 23), device);
    return grad({sum(mul(h, w))}, {leaf})[0];
  };
  const Tensor g = run(kGpu);
  CHECK(g.device() == kGpu);
  check_close(cpu(g), run(Device::cpu()), 1e-12, 1e-12, "chained gradient");
}

TEST_CASE("cuda pool: errors match the CPU's and mixed devices are refused" * doctest::skip(kNoGpu)) {
  const Tensor x = random_tensor({1, 2, 5, 5});
  CHECK_THROWS_WITH_AS(ops::max_pool2d(gpu(x), pool({3, 3}, {1, 1}, {2, 2})), doctest::Contains("pad should be at most half"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::adaptive_avg_pool2d(gpu(ops::to_dtype(x, DType::i64)), {2, 2}),
                       doctest::Contains("expected a floating dtype"), Error);
  CHECK_THROWS_WITH_AS(ops::pad(gpu(x), {5, 0, 0, 0}, PadMode::reflect), doctest::Contains("must be smaller than the size"),
                       Error);
  const ops::ValuesIndices c = ops::max_pool2d_with_indices(x, pool({2, 2}, {2, 2}, {0, 0}));
  CHECK_THROWS_WITH_AS(ops::max_pool2d_backward(gpu(c.values), c.indices, x.shape()),
                       doctest::Contains("expected every tensor on one device"), Error);
  // Out-of-range indices send no gradient (as on the CPU) instead of writing past the plane.
  const Tensor bad = from_values(std::vector<int64_t>{-5, 3, 25, 1000}, {1, 1, 2, 2});
  const Tensor dy = ones({1, 1, 2, 2});
  check_close(cpu(ops::max_pool2d_backward(gpu(dy), gpu(bad), {1, 1, 5, 5})), ops::max_pool2d_backward(dy, bad, {1, 1, 5, 5}),
              0, 0, "bad indices");
}

}  // namespace loupe::test
