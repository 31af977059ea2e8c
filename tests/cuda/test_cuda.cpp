// The CUDA suite: every op-table entry implemented on the GPU, forward and backward, against the
// CPU; device moves; the caching allocator on a real device; Philox equality with the CPU;
// cuBLAS and cuDNN cases. Without a GPU every GPU case is skipped and one case says so (CI stays
// green); the allocator's bookkeeping is tested everywhere in tests/cuda/test_allocator.cpp.
//
// Tolerances, GPU vs CPU (the two may sum in different orders and use different libm's):
//   forward   float32: atol max(10 * entry atol, 1e-5), rtol max(10 * entry rtol, 1e-4)
//             float64: atol max(10 * entry atol, 1e-9), rtol max(10 * entry rtol, 1e-8)
//   backward  float32: atol 1e-4, rtol 1e-3;  float64: atol 1e-9, rtol 1e-8
// Every entry must run on the GPU: one that raises a device error (an op without a CUDA kernel,
// or inputs an entry builds on the CPU) is listed and fails the case.
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>

#include "autograd/functions/device.hpp"
#include "tensor/cuda/backend.hpp"
#include "tensor/cuda/runtime.hpp"
#include "tensor/ops/device.hpp"
#include "tests/cuda/cuda_test_util.hpp"
#include "tests/op_table.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {

Inputs on(const Inputs& inputs, Device device) {
  Inputs out;
  for (const Tensor& t : inputs) out.push_back(t.defined() ? ops::to_device(t, device) : t);
  return out;
}

// The same values on the GPU in a non-contiguous layout (reversed dims, a gap in the last one),
// like tests/support.hpp's noncontiguous_copy but with the storage on the device.
Tensor gpu_noncontiguous(const Tensor& t) {
  if (t.dim() == 0 || t.numel() == 0) return gpu(t);
  Shape big = t.shape();
  std::reverse(big.begin(), big.end());
  big.back() *= 2;
  Tensor storage = zeros(big, t.dtype(), kGpu);
  std::vector<int64_t> reverse_dims(static_cast<size_t>(t.dim()));
  for (size_t i = 0; i < reverse_dims.size(); ++i) reverse_dims[i] = t.dim() - 1 - static_cast<int64_t>(i);
  Tensor view = ops::slice(ops::permute(storage, reverse_dims), 0, 0, 2 * t.shape()[0], 2);
  ops::copy_(view, gpu(t));
  return view;
}

// Why a GPU run of an entry did not happen, or "" when it did.
std::string skip_reason(const Error& e) {
  const std::string m = e.what();
  for (const char* reason : {"not implemented on cuda", "on different devices", "expected every tensor on",
                             "copy it to the CPU first"}) {
    if (m.find(reason) != std::string::npos) return m;
  }
  return "";
}

struct Tolerance {
  double atol, rtol;
};

Tolerance forward_tolerance(const OpCase& c, DType dtype) {
  if (dtype == DType::f32) return {std::max(10 * c.atol_f32, 1e-5), std::max(10 * c.rtol_f32, 1e-4)};
  return {std::max(10 * c.atol_f64, 1e-9), std::max(10 * c.rtol_f64, 1e-8)};
}

Tolerance backward_tolerance(DType dtype) { return dtype == DType::f32 ? Tolerance{1e-4, 1e-3} : Tolerance{1e-9, 1e-8}; }

// Gradients of <op(inputs), cotangent> with respect to every floating input, on `device`.
std::vector<Tensor> gradients(const OpCase& c, const Inputs& inputs, const Tensor& cotangent, Device device) {
  Inputs leaves;
  std::vector<Tensor> wrt;
  for (const Tensor& t : inputs) {
    if (t.defined() && is_floating(t.dtype())) {
      Tensor leaf = ops::to_device(t, device).detach();
      leaf.set_requires_grad();
      leaves.push_back(leaf);
      wrt.push_back(leaf);
    } else {
      leaves.push_back(t.defined() ? ops::to_device(t, device) : t);
    }
  }
  const Tensor out = c.op(leaves);
  if (!out.requires_grad()) return {};
  return grad({out}, wrt, {ops::to_device(cotangent, device)});
}

}  // namespace

TEST_CASE("cuda: the suite runs only with a GPU") {
  if (kNoGpu) {
    MESSAGE("CUDA suite skipped: no GPU (the CUDA backend is built, but no device is visible)");
    return;
  }
  MESSAGE("CUDA suite on " << cuda::device_name(0) << ", " << cuda::device_count() << " device(s)");
  CHECK(cuda::device_count() > 0);
}

TEST_CASE("cuda: without a GPU, CUDA tensors raise a clear error" * doctest::skip(!kNoGpu)) {
  CHECK_THROWS_WITH_AS(Tensor::empty({2}, DType::f32, kGpu), doctest::Contains("cuda:0"), Error);
  CHECK_THROWS_AS(ops::to_device(ones({2}), kGpu), Error);
}

TEST_CASE("cuda: device helpers on the CPU need no GPU") {
  const Tensor x = random_tensor({3, 2}, DType::f32, -1, 1, 4);
  CHECK(ops::to_device(x, Device::cpu()).is_same(x));
  CHECK(loupe::to_device(x, Device::cpu()).device() == Device::cpu());
  CHECK_NOTHROW(ops::check_same_device("op", {x, Tensor(), ones({1})}));
  check_close(zeros({2}, DType::f64, Device::cpu()), zeros({2}, DType::f64), 0, 0, "zeros on the CPU");
  Generator a(9), b(9);
  check_close(uniform({5}, 0, 1, DType::f32, &a, Device::cpu()), uniform({5}, 0, 1, DType::f32, &b), 0, 0,
              "uniform with a CPU device");
  CHECK(Device::parse("cuda:1") == Device::cuda(1));
}

// --- device moves ---

TEST_CASE("cuda: to_device round trips every dtype, layout and size" * doctest::skip(kNoGpu)) {
  for (DType dtype : {DType::f32, DType::f64, DType::i64, DType::b8}) {
    const Tensor x = ops::to_dtype(random_tensor({7, 5}, DType::f64, -3, 3, 1), dtype);
    const Tensor back = cpu(gpu(x));
    CHECK(back.device() == Device::cpu());
    CHECK(back.dtype() == dtype);
    check_close(back, x, 0, 0, std::string("round trip ") + dtype_name(dtype));
    // A non-contiguous source, on either side.
    check_close(cpu(gpu(ops::transpose(x, 0, 1))), ops::transpose(x, 0, 1), 0, 0, "transposed source");
    check_close(cpu(gpu_noncontiguous(x)), x, 0, 0, "non-contiguous device source");
  }
  // Larger than one pinned staging buffer (8 MiB), so the double buffering is exercised.
  const Tensor big = random_tensor({5'000'000}, DType::f32, -1, 1, 2);
  check_close(cpu(gpu(big)), big, 0, 0, "20 MB round trip");
  // Zero-size and 0-d tensors.
  CHECK(cpu(gpu(zeros({0, 3}))).shape() == Shape{0, 3});
  CHECK(cpu(gpu(scalar_tensor(2.5))).item() == 2.5);
  // Already there: the same tensor.
  const Tensor g = gpu(ones({3}));
  CHECK(ops::to_device(g, kGpu).is_same(g));
}

TEST_CASE("cuda: copy_ converts dtypes and broadcasts across devices" * doctest::skip(kNoGpu)) {
  const Tensor row = from_values(std::vector<double>{1, 2, 3}, {3}, DType::f64);
  Tensor d = zeros({2, 3}, DType::f32, kGpu);
  ops::copy_(d, row);  // cpu f64 -> cuda f32, broadcast over rows
  check_close(cpu(d), ops::to_dtype(ops::expand(row, {2, 3}), DType::f32), 0, 0, "cpu -> cuda copy_");
  Tensor h = zeros({2, 3}, DType::i64);
  ops::copy_(h, d);  // cuda f32 -> cpu i64
  check_close(h, ops::to_dtype(ops::expand(row, {2, 3}), DType::i64), 0, 0, "cuda -> cpu copy_");
  Tensor t = zeros({3, 2}, DType::f64, kGpu);
  ops::copy_(ops::transpose(t, 0, 1), d);  // strided destination on the device
  check_close(cpu(t), ops::to_dtype(ops::transpose(ops::expand(row, {2, 3}), 0, 1), DType::f64), 0, 0,
              "strided destination");
  // *_like keeps the device.
  CHECK(zeros_like(d).device() == kGpu);
  CHECK(full_like(d, 3.0).device() == kGpu);
  CHECK(values(cpu(full_like(d, 3.0))) == std::vector<double>(6, 3.0));
}

TEST_CASE("cuda: differentiable to_device sends the gradient back" * doctest::skip(kNoGpu)) {
  Tensor x = random_tensor({4, 3}, DType::f64, -1, 1, 3);
  x.set_requires_grad();
  const Tensor y = loupe::to_device(x, kGpu);
  CHECK(y.device() == kGpu);
  const Tensor loss = sum(mul(y, y));
  const Tensor g = grad({loss}, {x}, {ones({}, DType::f64, kGpu)})[0];
  CHECK(g.device() == Device::cpu());
  check_close(g, ops::mul(x, 2.0), 1e-12, 1e-12, "d sum(x^2) / dx through the GPU");
}

// --- errors ---

TEST_CASE("cuda: errors name the op, the device and the call" * doctest::skip(kNoGpu)) {
  const Tensor a = gpu(ones({3}));
  CHECK_THROWS_WITH_AS(ops::add(a, ones({3})), doctest::Contains("different devices"), Error);
  CHECK_THROWS_WITH_AS(ops::gather(a, 0, gpu(full({3}, 3, DType::i64))),
                       doctest::Contains("gather: index 3 is out of bounds for dimension 0 with size 3"), Error);
  CHECK_THROWS_WITH_AS(Tensor::empty({1}, DType::f32, Device::cuda(cuda::device_count())),
                       doctest::Contains("does not exist"), Error);
  CHECK_THROWS_WITH_AS(a.item(), doctest::Contains("cuda:0"), Error);
  CHECK_THROWS_WITH_AS(ops::cat({a, ones({3})}), doctest::Contains("cat: expected every tensor on one device"), Error);
  // A failing runtime call becomes an Error with the call, the file and line, and CUDA's message.
  const auto failing = [] { LOUPE_CUDA_CHECK(cudaSetDevice(-1)); };
  CHECK_THROWS_WITH_AS(failing(), doctest::Contains("CUDA error at tests/cuda/test_cuda.cpp:"), Error);
  CHECK_THROWS_WITH_AS(failing(), doctest::Contains("cudaSetDevice(-1) failed: "), Error);
  const auto failing_blas = [] { LOUPE_CUBLAS_CHECK(CUBLAS_STATUS_INVALID_VALUE); };
  CHECK_THROWS_WITH_AS(failing_blas(), doctest::Contains("CUBLAS_STATUS_INVALID_VALUE"), Error);
}

// --- the caching allocator on the device ---

TEST_CASE("cuda: the caching allocator reuses freed blocks and reports statistics" * doctest::skip(kNoGpu)) {
  cuda::synchronize(0);
  const cuda::MemoryStats before = cuda::memory_stats(0);
  void* first = nullptr;
  {
    const Tensor t = Tensor::empty({1 << 20}, DType::f32, kGpu);  // 4 MiB
    first = t.raw_data();
    CHECK(cuda::memory_stats(0).allocated >= before.allocated + (size_t{4} << 20));
  }
  const Tensor again = Tensor::empty({1 << 20}, DType::f32, kGpu);
  CHECK(again.raw_data() == first);  // the same block, straight from the cache
  const cuda::MemoryStats after = cuda::memory_stats(0);
  CHECK(after.cache_hits > before.cache_hits);
  CHECK(after.reserved >= after.allocated);
  CHECK(after.peak_allocated >= after.allocated);
}

TEST_CASE("cuda: out of memory raises an Error with the allocator's statistics" * doctest::skip(kNoGpu)) {
  const int64_t huge = int64_t{1} << 48;  // 1 PiB of float32
  try {
    (void)Tensor::empty({huge}, DType::f32, kGpu);
    FAIL("allocating 1 PiB succeeded");
  } catch (const Error& e) {
    const std::string m = e.what();
    INFO(m);
    CHECK(m.find("cuda:0: out of memory allocating") != std::string::npos);
    CHECK(m.find("reserved") != std::string::npos);
    CHECK(m.find("peak allocated") != std::string::npos);
    CHECK(m.find("device free") != std::string::npos);
  }
  // The device is still usable.
  CHECK(values(cpu(ops::add(gpu(ones({4})), gpu(ones({4}))))) == std::vector<double>(4, 2.0));
}

// --- the op table ---

TEST_CASE("cuda: every op-table entry implemented on the GPU matches the CPU, forward and backward" *
          doctest::skip(kNoGpu)) {
  int forward_checked = 0, backward_checked = 0;
  std::map<std::string, std::string> skipped;  // entry -> reason
  for (const OpCase& c : op_table()) {
    for (DType dtype : {DType::f32, DType::f64}) {
      const std::string where = c.name + " " + dtype_name(dtype);
      const Inputs inputs = c.make_inputs(dtype);
      const Tensor expected = c.op(inputs);
      Tensor actual;
      try {
        actual = c.op(on(inputs, kGpu));
      } catch (const Error& e) {
        const std::string reason = skip_reason(e);
        if (reason.empty()) {
          FAIL_CHECK(where << " forward raised: " << e.what());
        } else {
          skipped[c.name] = reason;
        }
        continue;
      }
      CHECK_MESSAGE(actual.device() == kGpu, where << ": result on " << actual.device().str());
      const Tolerance tol = forward_tolerance(c, dtype);
      check_close(cpu(actual), expected, tol.atol, tol.rtol, where + " GPU forward vs CPU");
      ++forward_checked;

      if (c.check_noncontiguous && dtype == DType::f64) {
        Inputs strided;
        for (const Tensor& t : inputs) strided.push_back(t.defined() ? gpu_noncontiguous(t) : t);
        check_close(cpu(c.op(strided)), cpu(actual), 1e-10, 1e-10, where + " GPU non-contiguous inputs");
      }

      if (!c.differentiable || !is_floating(expected.dtype())) continue;
      const Tensor cotangent = random_tensor(expected.shape(), expected.dtype(), -1, 1, 77);
      const std::vector<Tensor> cpu_grads = gradients(c, inputs, cotangent, Device::cpu());
      std::vector<Tensor> gpu_grads;
      try {
        gpu_grads = gradients(c, inputs, cotangent, kGpu);
      } catch (const Error& e) {
        const std::string reason = skip_reason(e);
        if (reason.empty()) {
          FAIL_CHECK(where << " backward raised: " << e.what());
        } else {
          skipped[c.name + " (backward)"] = reason;
        }
        continue;
      }
      REQUIRE(cpu_grads.size() == gpu_grads.size());
      const Tolerance btol = backward_tolerance(dtype);
      for (size_t i = 0; i < cpu_grads.size(); ++i) {
        CHECK(cpu_grads[i].defined() == gpu_grads[i].defined());
        if (!cpu_grads[i].defined() || !gpu_grads[i].defined()) continue;
        CHECK_MESSAGE(gpu_grads[i].device() == kGpu, where << ": gradient " << i << " on " << gpu_grads[i].device().str());
        check_close(cpu(gpu_grads[i]), cpu_grads[i], btol.atol, btol.rtol,
                    where + " GPU backward vs CPU, input " + std::to_string(i));
      }
      ++backward_checked;
    }
  }
  std::string list;
  for (const auto& [name, reason] : skipped) list += "\n  " + name + ": " + reason.substr(0, 120);
  MESSAGE(forward_checked << " forward and " << backward_checked << " backward checks on the GPU; "
                          << skipped.size() << " entries not on the GPU:" << list);
  CHECK(forward_checked > 0);
  CHECK_MESSAGE(skipped.empty(), skipped.size() << " op-table entries did not run on the GPU:" << list);
}

// --- Philox ---

TEST_CASE("cuda: Philox gives the CPU's numbers on the GPU" * doctest::skip(kNoGpu)) {
  for (DType dtype : {DType::f32, DType::f64}) {
    const std::string name = dtype_name(dtype);
    Generator a(1234), b(1234);
    a.reserve(5);  // a non-zero offset
    b.reserve(5);
    const Tensor u_cpu = uniform({1001}, -2.0, 3.0, dtype, &a);
    const Tensor u_gpu = uniform({1001}, -2.0, 3.0, dtype, &b, kGpu);
    check_close(cpu(u_gpu), u_cpu, 0, 0, "uniform " + name);
    CHECK(a.offset() == b.offset());

    const Tensor n_cpu = normal({999}, 0.5, 2.0, dtype, &a);
    const Tensor n_gpu = normal({999}, 0.5, 2.0, dtype, &b, kGpu);
    // log/cos may differ in the last bit between CUDA's and the host's math library.
    check_close(cpu(n_gpu), n_cpu, dtype == DType::f32 ? 1e-6 : 1e-14, dtype == DType::f32 ? 1e-6 : 1e-14,
                "normal " + name);
    CHECK(a.offset() == b.offset());

    const Tensor m_cpu = bernoulli({1003}, 0.3, dtype, &a);
    const Tensor m_gpu = bernoulli({1003}, 0.3, dtype, &b, kGpu);
    check_close(cpu(m_gpu), m_cpu, 0, 0, "bernoulli(p = 0.3) " + name);

    const Tensor p = random_tensor({17, 9}, dtype, 0, 1, 5);
    const Tensor t_cpu = bernoulli(p, &a);
    const Tensor t_gpu = bernoulli(gpu(p), &b);
    CHECK(t_gpu.device() == kGpu);
    check_close(cpu(t_gpu), t_cpu, 0, 0, "bernoulli(p tensor) " + name);
    CHECK(a.offset() == b.offset());
  }
  CHECK_THROWS_WITH_AS(bernoulli(gpu(full({3}, 1.5, DType::f32))), doctest::Contains("[0, 1]"), Error);
}

// --- cuBLAS ---

TEST_CASE("cuda: cuBLAS matmul and linear match the CPU, including transposed and batched operands" *
          doctest::skip(kNoGpu)) {
  for (DType dtype : {DType::f32, DType::f64}) {
    const double tol = dtype == DType::f32 ? 1e-4 : 1e-11;
    const Tensor a = random_tensor({257, 511}, dtype, -1, 1, 6);
    const Tensor b = random_tensor({511, 129}, dtype, -1, 1, 7);
    check_close(cpu(ops::matmul(gpu(a), gpu(b))), ops::matmul(a, b), tol, tol, "matmul 257x511x129");
    const Tensor at = ops::transpose(a, 0, 1), bt = ops::transpose(b, 0, 1);
    check_close(cpu(ops::matmul(ops::transpose(gpu(at), 0, 1), ops::transpose(gpu(bt), 0, 1))), ops::matmul(a, b), tol,
                tol, "matmul of transposed views");
    const Tensor x = random_tensor({3, 1, 20, 30}, dtype, -1, 1, 8);
    const Tensor y = random_tensor({4, 30, 10}, dtype, -1, 1, 9);
    check_close(cpu(ops::matmul(gpu(x), gpu(y))), ops::matmul(x, y), tol, tol, "broadcast batched matmul");
    const Tensor v = random_tensor({30}, dtype, -1, 1, 10);
    check_close(cpu(ops::matmul(gpu(x), gpu(v))), ops::matmul(x, v), tol, tol, "matrix @ vector");
    check_close(cpu(ops::matmul(gpu(v), gpu(v))), ops::matmul(v, v), tol, tol, "vector @ vector");
    const Tensor w = random_tensor({17, 30}, dtype, -1, 1, 11), bias = random_tensor({17}, dtype, -1, 1, 12);
    check_close(cpu(ops::linear(gpu(x), gpu(w), gpu(bias))), ops::linear(x, w, bias), tol, tol, "linear");
    check_close(cpu(ops::linear(gpu(x), gpu(w))), ops::linear(x, w), tol, tol, "linear without bias");
    check_close(cpu(ops::matmul(gpu(zeros({3, 0}, dtype)), gpu(zeros({0, 4}, dtype)))), zeros({3, 4}, dtype), 0, 0,
                "empty inner dimension");
  }
  CHECK_THROWS_WITH_AS(ops::matmul(gpu(ones({2, 3})), gpu(ones({4, 2}))), doctest::Contains("inner dimensions"),
                       Error);
}

TEST_CASE("cuda: TF32 and bf16 matmul are opt-in and close to fp32" * doctest::skip(kNoGpu)) {
  const Tensor a = random_tensor({256, 256}, DType::f32, -1, 1, 13), b = random_tensor({256, 256}, DType::f32, -1, 1, 14);
  const Tensor exact = ops::matmul(a, b);
  CHECK(cuda::matmul_precision() == cuda::MatmulPrecision::highest);
  check_close(cpu(ops::matmul(gpu(a), gpu(b))), exact, 1e-4, 1e-4, "fp32 by default");
  cuda::set_matmul_precision(cuda::MatmulPrecision::tf32);
  check_close(cpu(ops::matmul(gpu(a), gpu(b))), exact, 5e-2, 1e-2, "tf32");
  cuda::set_matmul_precision(cuda::MatmulPrecision::bf16);
  check_close(cpu(ops::matmul(gpu(a), gpu(b))), exact, 2e-1, 5e-2, "bf16");
  cuda::set_matmul_precision(cuda::MatmulPrecision::highest);
}

// --- convolution: cuDNN and our own kernels ---

TEST_CASE("cuda: conv2d forward and backward match the CPU with cuDNN and with the im2col fallback" *
          doctest::skip(kNoGpu)) {
  struct Case {
    Shape x, w;
    Conv2dParams p;
  };
  Conv2dParams strided;
  strided.stride = {2, 1};
  strided.padding = {1, 2};
  strided.dilation = {1, 2};
  Conv2dParams grouped;
  grouped.groups = 2;
  grouped.padding = {1, 1};
  const std::vector<Case> cases = {{{2, 3, 9, 8}, {4, 3, 3, 3}, {}},
                                   {{2, 4, 11, 10}, {6, 4, 3, 2}, strided},
                                   {{3, 4, 7, 7}, {6, 2, 3, 3}, grouped},
                                   {{4, 8, 8}, {5, 4, 1, 1}, {}}};  // unbatched, 1x1
  // cuDNN with its heuristics, cuDNN in benchmark mode (every algorithm timed), our fallback.
  struct Backend {
    bool cudnn, benchmark;
  };
  const std::vector<Backend> backends = cuda::use_cudnn()
                                            ? std::vector<Backend>{{true, false}, {true, true}, {false, false}}
                                            : std::vector<Backend>{{false, false}};
  for (const auto [with_cudnn, benchmark] : backends) {
    cuda::set_use_cudnn(with_cudnn);
    cuda::set_cudnn_benchmark(benchmark);
    for (DType dtype : {DType::f32, DType::f64}) {
      const double tol = dtype == DType::f32 ? 1e-4 : 1e-10;
      for (const Case& k : cases) {
        const std::string where = std::string(with_cudnn ? (benchmark ? "cuDNN benchmark " : "cuDNN ") : "fallback ") +
                                  dtype_name(dtype) + " x " +
                                  shape_str(k.x) + " w " + shape_str(k.w);
        const Tensor x = random_tensor(k.x, dtype, -1, 1, 15), w = random_tensor(k.w, dtype, -1, 1, 16);
        const Tensor b = random_tensor({k.w[0]}, dtype, -1, 1, 17);
        const Tensor y = ops::conv2d(x, w, b, k.p);
        check_close(cpu(ops::conv2d(gpu(x), gpu(w), gpu(b), k.p)), y, tol, tol, where + " forward");
        const Tensor g = random_tensor(y.shape(), dtype, -1, 1, 18);
        check_close(cpu(ops::conv2d_backward_input(gpu(g), gpu(w), x.shape(), k.p)),
                    ops::conv2d_backward_input(g, w, x.shape(), k.p), tol, tol, where + " backward input");
        check_close(cpu(ops::conv2d_backward_weight(gpu(g), gpu(x), w.shape(), k.p)),
                    ops::conv2d_backward_weight(g, x, w.shape(), k.p), tol, tol, where + " backward weight");
      }
    }
  }
  cuda::set_use_cudnn(true);
  cuda::set_cudnn_benchmark(false);
}

// --- reductions and softmax on shapes that take the other kernel paths ---

TEST_CASE("cuda: large and strided reductions take the multi-pass and column paths correctly" *
          doctest::skip(kNoGpu)) {
  const Tensor big = random_tensor({3'000'000}, DType::f32, -1, 1, 19);  // few outputs, long rows: multi-pass
  check_close(cpu(ops::sum(gpu(big))), ops::sum(big), 1e-3, 1e-6, "sum of 3M elements");
  const Tensor tall = random_tensor({4096, 300}, DType::f64, -1, 1, 20);  // reduce dim 0: column path
  check_close(cpu(ops::sum(gpu(tall), {0})), ops::sum(tall, {0}), 1e-10, 1e-10, "column sum");
  check_close(cpu(ops::amax(gpu(tall), {0})), ops::amax(tall, {0}), 0, 0, "column amax");
  const Tensor deep = random_tensor({20000, 300}, DType::f64, -1, 1, 21);  // long columns: chunked column path
  check_close(cpu(ops::sum(gpu(deep), {0})), ops::sum(deep, {0}), 1e-9, 1e-10, "chunked column sum");
  // max with ties and NaN: the first index, NaN wins, as on the CPU.
  const Tensor ties = from_values(std::vector<double>{1, 3, 3, 2, NAN, 5, NAN, 0}, {2, 4}, DType::f32);
  const ops::ValuesIndices mc = ops::max(ties, 1), mg = ops::max(gpu(ties), 1);
  check_close(cpu(mg.values), mc.values, 0, 0, "max values");
  check_close(cpu(mg.indices), mc.indices, 0, 0, "max indices");
  const Tensor long_rows = random_tensor({6, 200'000}, DType::f32, -1, 1, 22);  // chunked rows with indices
  check_close(cpu(ops::argmax(gpu(long_rows), 1)), ops::argmax(long_rows, 1), 0, 0, "argmax of long rows");
  check_close(cpu(ops::sum(gpu(ops::ge(tall, scalar_tensor(0.0, DType::f64))))),
              ops::sum(ops::ge(tall, scalar_tensor(0.0, DType::f64))), 0, 0, "bool sum is int64");
}

TEST_CASE("cuda: softmax on long rows and along an inner dim" * doctest::skip(kNoGpu)) {
  for (const auto& [shape, dim] : std::vector<std::pair<Shape, int64_t>>{{{3, 5000}, 1}, {{4, 7, 6}, 1}, {{64, 33}, -1}}) {
    const Tensor x = random_tensor(shape, DType::f32, -5, 5, 23);
    check_close(cpu(ops::softmax(gpu(x), dim)), ops::softmax(x, dim), 1e-6, 1e-4, "softmax " + shape_str(shape));
    check_close(cpu(ops::log_softmax(gpu(x), dim)), ops::log_softmax(x, dim), 1e-5, 1e-5, "log_softmax " + shape_str(shape));
    const Tensor y = ops::softmax(x, dim), g = random_tensor(shape, DType::f32, -1, 1, 24);
    check_close(cpu(ops::softmax_backward(gpu(y), gpu(g), dim)), ops::softmax_backward(y, g, dim), 1e-6, 1e-4,
                "softmax_backward " + shape_str(shape));
  }
}

}  // namespace loupe::test
