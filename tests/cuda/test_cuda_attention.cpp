// The CUDA attention kernels (tensor/cuda/attention.cu) against the CPU's fused kernel and the
// reference path on the GPU: forward (out, lse) and backward (dq, dk, dv), float32 and float64,
// grouped KV heads, bool and additive masks with dead rows, both causal alignments, rows longer
// than one tile, strided inputs, and a head dim above the kernels' limit (the reference path
// takes it). Tolerances: float64 1e-10 abs + 1e-8 rel; float32 2e-5 + 1e-4 (the sums run in a
// different order). Skipped without a GPU.
#include <doctest/doctest.h>

#include <limits>
#include <sstream>

#include "tests/cuda/cuda_test_util.hpp"
#include "tests/support.hpp"

namespace loupe::test {
namespace {

struct GpuCase {
  int64_t B, H, Hkv, Tq, Tk, D, Dv;
  CausalMode causal;
  int mask;  // 0 none, 1 bool with a dead row, 2 additive with -inf entries
  bool strided;
};

Tensor make_mask(const GpuCase& c, DType dtype) {
  auto u = values(random_tensor({c.B, 1, c.Tq, c.Tk}, DType::f64, 0, 1, 301));
  if (c.mask == 1) {
    std::vector<int64_t> bits(u.size());
    for (size_t i = 0; i < u.size(); ++i) bits[i] = (static_cast<int64_t>(i) / c.Tk) % c.Tq == 1 ? 0 : u[i] < 0.8;
    return ops::to_dtype(from_values(bits, {c.B, 1, c.Tq, c.Tk}), DType::b8);
  }
  for (double& x : u) x = x > 0.8 ? -std::numeric_limits<double>::infinity() : x - 0.5;
  return ops::to_dtype(from_values(u, {c.B, 1, c.Tq, c.Tk}, DType::f64), dtype);
}

void check_case(const GpuCase& c, DType dtype) {
  std::ostringstream label;
  label << "B" << c.B << " H" << c.H << "/" << c.Hkv << " Tq" << c.Tq << " Tk" << c.Tk << " D" << c.D << "/" << c.Dv
        << " causal " << static_cast<int>(c.causal) << " mask " << c.mask << " " << dtype_name(dtype);
  const std::string where = label.str();
  const Tensor q = random_tensor({c.B, c.H, c.Tq, c.D}, dtype, -1.5, 1.5, 302);
  const Tensor k = random_tensor({c.B, c.Hkv, c.Tk, c.D}, dtype, -1.5, 1.5, 303);
  const Tensor v = random_tensor({c.B, c.Hkv, c.Tk, c.Dv}, dtype, -1, 1, 304);
  const Tensor g = random_tensor({c.B, c.H, c.Tq, c.Dv}, dtype, -1, 1, 305);
  AttentionOptions o;
  o.causal = c.causal;
  if (c.mask != 0) o.mask = make_mask(c, dtype);
  const ops::AttentionForward f = ops::attention_forward(q, k, v, o);
  const ops::AttentionGrads d = ops::attention_backward(g, q, k, v, f.out, f.lse, o);

  const auto on_gpu = [&](const Tensor& t) { return c.strided ? gpu(noncontiguous_copy(t)) : gpu(t); };
  AttentionOptions og = o;
  og.mask = gpu(o.mask);
  const Tensor gq = on_gpu(q), gk = on_gpu(k), gv = on_gpu(v), gg = on_gpu(g);
  const ops::AttentionForward gf = ops::attention_forward(gq, gk, gv, og);
  const ops::AttentionGrads gd = ops::attention_backward(gg, gq, gk, gv, gf.out, gf.lse, og);
  const double atol = dtype == DType::f64 ? 1e-10 : 2e-5, rtol = dtype == DType::f64 ? 1e-8 : 1e-4;
  check_close(cpu(gf.out), f.out, atol, rtol, where + " out");
  check_close(cpu(gf.lse), f.lse, atol, rtol, where + " lse");
  check_close(cpu(gd.dq), d.dq, atol, rtol, where + " dq");
  check_close(cpu(gd.dk), d.dk, atol, rtol, where + " dk");
  check_close(cpu(gd.dv), d.dv, atol, rtol, where + " dv");
  // The reference path on the GPU agrees too.
  const ops::AttentionForward rf = ops::attention_forward_reference(gq, gk, gv, og);
  check_close(cpu(rf.out), f.out, atol, rtol, where + " GPU reference out");
}

TEST_CASE("cuda attention: fused kernels match the CPU, forward and backward" * doctest::skip(kNoGpu)) {
  const std::vector<GpuCase> cases = {
      {2, 4, 2, 130, 130, 64, 64, CausalMode::top_left, 0, false},
      {1, 2, 1, 70, 300, 32, 16, CausalMode::bottom_right, 0, true},
      {2, 2, 2, 65, 40, 16, 16, CausalMode::none, 1, false},
      {1, 4, 1, 33, 97, 8, 8, CausalMode::top_left, 2, true},
      {1, 3, 3, 1, 700, 128, 128, CausalMode::bottom_right, 0, false},  // one decoding step, D at the limit
      {1, 2, 2, 6, 4, 8, 8, CausalMode::bottom_right, 0, false},       // dead rows before the first key
      {1, 2, 1, 20, 30, 160, 8, CausalMode::top_left, 1, false},       // D above the limit: reference path
  };
  for (const GpuCase& c : cases) {
    check_case(c, DType::f64);
    check_case(c, DType::f32);
  }
}

}  // namespace
}  // namespace loupe::test
