// Fast kernels (tensor/cpu/fast_elementwise.*, tensor/cpu/fast_conv.*) against their reference
// kernels: the same op is run with the fast kernels on and with the reference kernels forced
// (cpu::fast::use_reference_kernels, what LOUPE_REFERENCE_KERNELS=1 does), at odd sizes with
// vector tails, with strided and broadcast inputs (which must fall back and still agree), NaN and
// inf where meaningful, in float32 and float64, and with 1 and 2 threads (results must not change).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "tensor/cpu/depthwise_conv.hpp"
#include "tensor/cpu/fast_conv.hpp"
#include "tensor/cpu/fast_elementwise.hpp"
#include "tensor/cpu/gemm.hpp"
#include "tensor/cpu/winograd_conv.hpp"
#include "tensor/ops.hpp"
#include "tensor/parallel.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Runs the reference kernels while alive.
struct ReferenceKernels {
  ReferenceKernels() { cpu::fast::use_reference_kernels(true); }
  ~ReferenceKernels() { cpu::fast::use_reference_kernels(false); }
};

// Sets the thread count while alive.
struct Threads {
  explicit Threads(int n) : previous(num_threads()) { set_num_threads(n); }
  ~Threads() { set_num_threads(previous); }
  int previous;
};

template <typename F>
Tensor with_reference(F&& f) {
  ReferenceKernels guard;
  return f();
}

// Bitwise equality (NaN == NaN), for the thread-count checks.
bool identical(const Tensor& a, const Tensor& b) {
  const auto va = values(a), vb = values(b);
  if (a.shape() != b.shape()) return false;
  for (size_t i = 0; i < va.size(); ++i) {
    if (!(va[i] == vb[i] || (std::isnan(va[i]) && std::isnan(vb[i])))) return false;
  }
  return true;
}

// Runs f with 1 and with 2 threads and checks the results are the same bits; returns one.
template <typename F>
Tensor same_for_1_and_2_threads(F&& f, const std::string& context) {
  Tensor one, two;
  {
    Threads t(1);
    one = f();
  }
  {
    Threads t(2);
    two = f();
  }
  CHECK_MESSAGE(identical(one, two), context << ": 1 and 2 threads differ");
  return two;
}

// Runs body once with the 8-lane AVX2 kernels forced and, where the CPU has AVX-512, once with
// the 16-lane kernels (fast_elementwise_avx512.hpp), naming the set in a doctest context.
template <typename Body>
void for_each_vector_width(Body&& body) {
  const bool has_avx512 = cpu::fast::use_avx2_kernels(true);
  {
    INFO("AVX2 kernels");
    CHECK_FALSE(cpu::fast::avx512_active());
    body();
  }
  cpu::fast::use_avx2_kernels(false);
  if (has_avx512) {
    INFO("AVX-512 kernels");
    CHECK(cpu::fast::avx512_active());
    body();
  } else {
    MESSAGE("no AVX-512 on this CPU: only the AVX2 kernels were checked");
  }
}

const std::vector<int64_t> kSizes = {1, 3, 17, 33, 1007};

// Evenly spaced values in [lo, hi] plus the special values.
Tensor sweep(int64_t n, double lo, double hi, DType dtype, bool specials) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = lo + (hi - lo) * static_cast<double>(i) / std::max<int64_t>(n - 1, 1);
  if (specials) {
    const std::vector<double> s = {kNaN, kInf, -kInf, 0.0, -0.0, 88.7, 89.5, -87.5, -103.9, -110.0, 0.62, 0.63, 1e-30};
    for (size_t i = 0; i < s.size() && i < v.size(); ++i) v[(i * 7919) % v.size()] = s[i];
  }
  return from_values(v, {n}, dtype);
}

}  // namespace

TEST_CASE("fast kernels: LOUPE_REFERENCE_KERNELS switch") {
  const bool before = cpu::fast::enabled();
  cpu::fast::use_reference_kernels(true);
  CHECK_FALSE(cpu::fast::enabled());
  cpu::fast::use_reference_kernels(false);
  CHECK(cpu::fast::enabled());
  cpu::fast::use_reference_kernels(!before);
}

// --- unary ---

TEST_CASE("fast kernels: float32 exp, sigmoid, tanh, silu, gelu match float64 within a few ulp (AVX2 and AVX-512)") {
  for_each_vector_width([&] {
    struct Case {
      ops::UnaryOp op;
      double lo, hi, rtol;
    };
    // rtol: 1 ulp of float32 is at most 1.2e-7 relative. The gelus' arguments are themselves rounded
    // in float32 (x / sqrt(2) as in the reference; condition numbers ~ x^2 and 2|u|), hence the
    // narrower ranges and wider tolerances.
    const std::vector<Case> cases = {
        {ops::UnaryOp::exp, -87.0, 88.0, 2.4e-7},      {ops::UnaryOp::sigmoid, -80.0, 80.0, 3.6e-7},
        {ops::UnaryOp::tanh, -12.0, 12.0, 2.4e-7},     {ops::UnaryOp::silu, -80.0, 80.0, 3.6e-7},
        {ops::UnaryOp::gelu_tanh, -4.0, 4.0, 1.5e-6},  {ops::UnaryOp::gelu_erf, -5.0, 5.0, 3e-6},
    };
    for (const Case& c : cases) {
      for (int64_t n : {int64_t{1}, int64_t{17}, int64_t{100003}}) {
        const Tensor x = sweep(n, c.lo, c.hi, DType::f32, false);
        const Tensor fast = ops::unary(c.op, x);
        const Tensor truth = with_reference([&] { return ops::unary(c.op, ops::to_dtype(x, DType::f64)); });
        check_close(fast, ops::to_dtype(truth, DType::f32), 1e-37, c.rtol,
                    std::string("fast ") + ops::unary_name(c.op) + " n=" + std::to_string(n));
      }
    }
  });
}

TEST_CASE("fast kernels: exp into the denormal range and gelu's negative tail, in ulp of float64 (AVX2 and AVX-512)") {
  // exp on [-103.9, -87.4]: denormal results, rounded once (<= 1 ulp of the denormal spacing
  // 2^-149, plus 1 ulp where the result is still normal). gelu on [-13, -4]: x Phi(x) is tiny and
  // must keep its relative accuracy; the float32 rounding of x / sqrt(2) alone moves it by up to
  // x^2 2^-24 relative (d ln Phi / dz ~ 2z), so the error is measured in units of (x^2 + 8) 2^-24
  // (at most 1.5 of them).
  for_each_vector_width([&] {
    const Tensor xe = sweep(20001, -103.9, -87.4, DType::f32, false);
    const std::vector<double> e = values(ops::exp(xe)), ve = values(xe);
    double worst_exp = 0;
    for (size_t i = 0; i < e.size(); ++i) {
      const double truth = std::exp(ve[i]);
      const double spacing = std::max(std::ldexp(1.0, -149), std::ldexp(1.0, std::ilogb(truth) - 23));
      worst_exp = std::max(worst_exp, std::abs(e[i] - truth) / spacing);
    }
    const Tensor xg = sweep(20001, -13.0, -4.0, DType::f32, false);
    const std::vector<double> g = values(ops::gelu(xg)), vg = values(xg);
    double worst_gelu = 0;
    for (size_t i = 0; i < g.size(); ++i) {
      const double truth = vg[i] * 0.5 * std::erfc(-vg[i] / std::sqrt(2.0));
      worst_gelu = std::max(worst_gelu, std::abs(g[i] - truth) / (std::abs(truth) * (vg[i] * vg[i] + 8) * 0x1p-24));
    }
    MESSAGE("exp denormal range: " << worst_exp << " ulp; gelu tail: " << worst_gelu << " units");
    CHECK(worst_exp <= 1.0);
    CHECK(worst_gelu <= 1.5);  // measured 1.22 with both kernels
  });
}

TEST_CASE("fast kernels: float32 unary ops agree with the reference kernel, specials and tails included (AVX2 and AVX-512)") {
  for_each_vector_width([&] {
    const std::vector<ops::UnaryOp> unary_ops = {ops::UnaryOp::exp,      ops::UnaryOp::sigmoid,   ops::UnaryOp::tanh,
                                                 ops::UnaryOp::gelu_erf, ops::UnaryOp::gelu_tanh, ops::UnaryOp::silu};
    for (ops::UnaryOp op : unary_ops) {
      for (int64_t n : kSizes) {
        const Tensor x = sweep(n, -9.0, 9.0, DType::f32, /*specials=*/n > 1);
        const Tensor fast = same_for_1_and_2_threads([&] { return ops::unary(op, x); }, ops::unary_name(op));
        const Tensor ref = with_reference([&] { return ops::unary(op, x); });
        // The gelus' references compute 0.5 x (1 + erf or tanh), which cancels for x < 0 (down to 0
        // where the true value is tiny): an absolute tolerance there.
        const bool gelu = op == ops::UnaryOp::gelu_tanh || op == ops::UnaryOp::gelu_erf;
        const double atol = gelu ? 2e-6 : 1e-37;
        check_close(fast, ref, atol, 2e-6, std::string("fast vs reference ") + ops::unary_name(op) + " n=" + std::to_string(n));
      }
    }
  });
}

TEST_CASE("fast kernels: unary ops on strided or float64 inputs fall back to the reference") {
  const Tensor base = random_tensor({33, 17}, DType::f32, -5.0, 5.0);
  const Tensor strided = ops::transpose(base, 0, 1);  // non-contiguous: the reference kernel
  const Tensor d = random_tensor({1007}, DType::f64, -5.0, 5.0);
  for (ops::UnaryOp op : {ops::UnaryOp::exp, ops::UnaryOp::gelu_erf, ops::UnaryOp::tanh}) {
    const Tensor ref = with_reference([&] { return ops::unary(op, strided); });
    check_close(ops::unary(op, strided), ref, 0.0, 0.0, std::string("strided ") + ops::unary_name(op));
    const Tensor ref64 = with_reference([&] { return ops::unary(op, d); });
    check_close(ops::unary(op, d), ref64, 0.0, 0.0, std::string("f64 ") + ops::unary_name(op));
  }
}

TEST_CASE("fast kernels: contiguous unary backward equals the reference backward") {
  // (float32 gelu has a vectorised derivative of its own: the next test.)
  for (DType dtype : {DType::f32, DType::f64}) {
    for (ops::UnaryOp op : {ops::UnaryOp::relu, ops::UnaryOp::gelu_erf, ops::UnaryOp::sigmoid, ops::UnaryOp::tanh}) {
      if (dtype == DType::f32 && op == ops::UnaryOp::gelu_erf) continue;
      const Tensor x = random_tensor({1007}, dtype, -4.0, 4.0, 3);
      const Tensor g = random_tensor({1007}, dtype, -1.0, 1.0, 4);
      const Tensor y = with_reference([&] { return ops::unary(op, x); });
      const Tensor fast = same_for_1_and_2_threads([&] { return ops::unary_backward(op, x, y, g); }, "backward");
      const Tensor ref = with_reference([&] { return ops::unary_backward(op, x, y, g); });
      check_close(fast, ref, 0.0, 0.0, std::string("backward ") + ops::unary_name(op));
    }
  }
}

TEST_CASE("fast kernels: float32 silu backward stays within a few ulp of float64, tails and specials included") {
  // g s (1 + x (1 - s)), s = sigmoid(x), against float64; the error unit is 2^-24 of
  // g s (1 + |x (1 - s)|), the size of the two terms (they cancel near x = -1.28).
  for (int64_t n : {int64_t{1}, int64_t{17}, int64_t{100003}}) {
    const Tensor x = sweep(n, -30.0, 30.0, DType::f32, false);
    const Tensor g = random_tensor({n}, DType::f32, 0.5, 2.0, 8);
    const Tensor fast = same_for_1_and_2_threads(
        [&] { return ops::unary_backward(ops::UnaryOp::silu, x, ops::silu(x), g); }, "silu backward");
    const std::vector<double> got = values(fast), vx = values(x), vg = values(g);
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      const double s = 1.0 / (1.0 + std::exp(-vx[i]));
      const double truth = vg[i] * s * (1.0 + vx[i] * (1.0 - s));
      const double scale = vg[i] * s * (1.0 + std::abs(vx[i] * (1.0 - s)));
      if (scale < 1e-37) continue;  // underflowed in float32
      worst = std::max(worst, std::abs(got[i] - truth) / (scale * 0x1p-24));
    }
    MESSAGE("silu backward n=" << n << ": " << worst << " units");
    CHECK(worst <= 6.0);  // measured 4.37
  }
  const Tensor specials = from_values(std::vector<double>{NAN, INFINITY, -INFINITY, 0.0}, {4}, DType::f32);
  auto backward = [&] { return ops::unary_backward(ops::UnaryOp::silu, specials, ops::silu(specials), ones_like(specials)); };
  const std::vector<double> d = values(backward()), r = values(with_reference(backward));
  for (size_t i = 0; i < d.size(); ++i) {
    CHECK(std::isnan(d[i]) == std::isnan(r[i]));
    if (!std::isnan(r[i])) CHECK(d[i] == r[i]);
  }
}

TEST_CASE("fast kernels: float32 gelu backward stays within a few ulp of float64, tails and specials included") {
  // g * (Phi(x) + x phi(x)) against the float64 formula (with the float32 x / sqrt(2) the kernel
  // also uses, whose rounding moves the result by up to ~x^2 2^-24 relative: the error unit is
  // (x^2 + 8) 2^-24 of g (Phi + |x phi|), as for the forward's tail). x over [-13, 13] reaches both tails;
  // 1, 17 and 100003 elements take the padded-tail and vector paths, with 1 and 2 threads.
  for_each_vector_width([&] {
    for (int64_t n : {int64_t{1}, int64_t{17}, int64_t{100003}}) {
      const Tensor x = sweep(n, -13.0, 13.0, DType::f32, false);
      const Tensor g = random_tensor({n}, DType::f32, 0.5, 2.0, 7);
      const Tensor y = ops::gelu(x);
      const Tensor fast = same_for_1_and_2_threads([&] { return ops::unary_backward(ops::UnaryOp::gelu_erf, x, y, g); },
                                                   "gelu backward");
      const std::vector<double> got = values(fast), vx = values(x), vg = values(g);
      double worst = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        const double z = static_cast<double>(static_cast<float>(vx[i] * 0.70710678118654752));
        const double cdf = 0.5 * std::erfc(-z), x_pdf = vx[i] * std::exp(-z * z) / std::sqrt(2 * M_PI);
        const double truth = vg[i] * (cdf + x_pdf);
        // The scale is that of the two terms, not of their sum: near x = -0.75 they cancel.
        const double scale = vg[i] * (cdf + std::abs(x_pdf));
        if (scale < 1e-37) continue;  // underflowed in float32
        worst = std::max(worst, std::abs(got[i] - truth) / (scale * (vx[i] * vx[i] + 8) * 0x1p-24));
      }
      MESSAGE("gelu backward n=" << n << ": " << worst << " units");
      CHECK(worst <= 2.5);  // measured 1.87
    }
  });
  // NaN stays NaN; +-inf give NaN as in the reference (inf * phi = inf * 0).
  const Tensor specials = from_values(std::vector<double>{NAN, INFINITY, -INFINITY, 0.0}, {4}, DType::f32);
  const std::vector<double> d = values(
      ops::unary_backward(ops::UnaryOp::gelu_erf, specials, ops::gelu(specials), ones_like(specials)));
  const std::vector<double> r = values(with_reference([&] {
    return ops::unary_backward(ops::UnaryOp::gelu_erf, specials, ops::gelu(specials), ones_like(specials));
  }));
  for (size_t i = 0; i < d.size(); ++i) {
    CHECK(std::isnan(d[i]) == std::isnan(r[i]));
    if (!std::isnan(r[i])) CHECK(d[i] == r[i]);
  }
}

// --- binary ---

TEST_CASE("fast kernels: binary ops, same shape, scalar and row broadcast, with fallbacks") {
  const std::vector<ops::BinaryOp> binary_ops = {ops::BinaryOp::add, ops::BinaryOp::sub, ops::BinaryOp::mul,
                                                 ops::BinaryOp::div, ops::BinaryOp::maximum, ops::BinaryOp::minimum};
  for (DType dtype : {DType::f32, DType::f64}) {
    for (int64_t n : kSizes) {
      Tensor a = sweep(3 * n, -3.0, 3.0, dtype, /*specials=*/true);
      a = ops::reshape(a, {3, n});
      const Tensor b = random_tensor({3, n}, dtype, -2.0, 2.0, 5);
      const Tensor row = random_tensor({n}, dtype, -2.0, 2.0, 6);
      const Tensor row_kept = random_tensor({1, 1, n}, dtype, -2.0, 2.0, 6);
      const Tensor scalar = scalar_tensor(1.5, dtype);
      const Tensor column = random_tensor({3, 1}, dtype, -2.0, 2.0, 8);  // (3, 1) op (3, n): reference
      const Tensor strided = ops::transpose(random_tensor({n, 3}, dtype, -2.0, 2.0, 9), 0, 1);
      const std::vector<std::pair<Tensor, Tensor>> pairs = {
          {a, b}, {a, scalar}, {scalar, a}, {a, row}, {row, a}, {a, row_kept}, {a, column}, {a, strided}, {strided, row}};
      for (ops::BinaryOp op : binary_ops) {
        for (size_t p = 0; p < pairs.size(); ++p) {
          const Tensor& x = pairs[p].first;  // not a structured binding: lambdas capture x and y
          const Tensor& y = pairs[p].second;
          const std::string ctx = std::string(ops::binary_name(op)) + " pair " + std::to_string(p) + " n=" +
                                  std::to_string(n) + " " + dtype_name(dtype);
          const Tensor fast = same_for_1_and_2_threads([&] { return ops::binary(op, x, y); }, ctx);
          const Tensor ref = with_reference([&] { return ops::binary(op, x, y); });
          check_close(fast, ref, 0.0, 0.0, ctx);
        }
      }
    }
  }
}

// --- sums ---

TEST_CASE("fast kernels: sum and mean over all elements and trailing dims") {
  for (DType dtype : {DType::f32, DType::f64}) {
    const double rtol = dtype == DType::f32 ? 2e-7 : 1e-13;
    for (int64_t n : {int64_t{1}, int64_t{3}, int64_t{17}, int64_t{33}, int64_t{1007}, int64_t{(1 << 16) + 7}}) {
      const Tensor x = random_tensor({n}, dtype, -1.0, 1.0, 21);
      const Tensor fast = same_for_1_and_2_threads([&] { return ops::sum(x, {}, false); }, "sum all");
      check_close(fast, with_reference([&] { return ops::sum(x, {}, false); }), 1e-6, rtol, "sum all n=" + std::to_string(n));
      const Tensor m = ops::mean(x, {}, false);
      check_close(m, with_reference([&] { return ops::mean(x, {}, false); }), 1e-9, rtol, "mean all");
    }
    for (int64_t k : kSizes) {
      const Tensor x = random_tensor({3, 5, k}, dtype, -1.0, 1.0, 22);
      for (const ops::Dims& dims : {ops::Dims{2}, ops::Dims{-1}, ops::Dims{1, 2}, ops::Dims{0, 1, 2}, ops::Dims{0},
                                    ops::Dims{1}}) {
        for (bool keepdim : {false, true}) {
          const std::string ctx = "sum dims " + shape_str(dims) + " k=" + std::to_string(k);
          const Tensor fast = same_for_1_and_2_threads([&] { return ops::sum(x, dims, keepdim); }, ctx);
          check_close(fast, with_reference([&] { return ops::sum(x, dims, keepdim); }), 1e-6, rtol, ctx);
        }
      }
      const Tensor strided = ops::transpose(x, 0, 2);  // falls back
      check_close(ops::sum(strided, {-1}, false), with_reference([&] { return ops::sum(strided, {-1}, false); }), 1e-6,
                  rtol, "sum strided");
    }
    // NaN and inf propagate like the reference.
    const Tensor special = from_values(std::vector<double>{1.0, kNaN, 2.0, kInf, -kInf, 3.0, kInf, 1.0}, {4, 2}, dtype);
    check_close(ops::sum(special, {-1}, false), with_reference([&] { return ops::sum(special, {-1}, false); }), 0.0,
                0.0, "sum specials");
    check_close(ops::sum(special, {}, false), with_reference([&] { return ops::sum(special, {}, false); }), 0.0, 0.0,
                "sum all specials");
  }
}

// --- softmax ---

TEST_CASE("fast kernels: softmax and log_softmax over the last dim (AVX2 and AVX-512)") {
  for_each_vector_width([&] {
    for (int64_t k : kSizes) {
      for (int64_t rows : {int64_t{1}, int64_t{5}}) {
        const Tensor x = random_tensor({rows, k}, DType::f32, -30.0, 30.0, 31);
        for (bool log : {false, true}) {
          auto run = [&] { return log ? ops::log_softmax(x, -1) : ops::softmax(x, -1); };
          const std::string ctx = std::string(log ? "log_softmax" : "softmax") + " k=" + std::to_string(k);
          const Tensor fast = same_for_1_and_2_threads(run, ctx);
          check_close(fast, with_reference(run), log ? 4e-6 : 1e-9, 1e-6, ctx);
          // Another dim (the reference kernel unless the other dims have size 1).
          check_close(ops::softmax(x, 0), with_reference([&] { return ops::softmax(x, 0); }), 1e-9, 1e-6, ctx + " dim 0");
        }
      }
    }
    // Rows longer than the L2-resident size take the streaming (online max) kernel; the max grows
    // along the row and the first lanes start at -inf.
    {
      const int64_t k = (1 << 16) + 9;
      std::vector<double> v(static_cast<size_t>(2 * k));
      for (int64_t i = 0; i < 2 * k; ++i) v[static_cast<size_t>(i)] = 0.001 * static_cast<double>(i % k) - 20.0;
      for (size_t i = 0; i < 5; ++i) v[i] = -kInf;
      v[static_cast<size_t>(k + 77)] = kNaN;  // second row: NaN everywhere
      const Tensor x = from_values(v, {2, k}, DType::f32);
      for (bool log : {false, true}) {
        auto run = [&] { return log ? ops::log_softmax(x, -1) : ops::softmax(x, -1); };
        const std::string ctx = log ? "log_softmax long rows" : "softmax long rows";
        check_close(same_for_1_and_2_threads(run, ctx), with_reference(run), log ? 4e-6 : 1e-12, 1e-5, ctx);
      }
    }
    // Large values, -inf entries, a row of -inf, a NaN row, a +inf row: as the reference.
    const std::vector<double> v = {1e4,  1e4 - 1, -1e4, 0.0,  -kInf, 2.0,   -kInf, 1.0,  3.0,  -kInf, -kInf, -kInf,
                                   -kInf, -kInf,  -kInf, -kInf, -kInf, -kInf, 1.0,   kNaN, 2.0,  0.0,   kInf,  1.0};
    // 2 rows of 12 (the 8-lane loop and the tail both see the specials)
    const Tensor s = from_values(v, {2, 12}, DType::f32);
    const Tensor s2 = ops::reshape(from_values(v, {24}, DType::f32), {3, 8});
    for (const Tensor& t : {s, s2}) {
      for (bool log : {false, true}) {
        auto run = [&] { return log ? ops::log_softmax(t, -1) : ops::softmax(t, -1); };
        check_close(run(), with_reference(run), 1e-6, 1e-6, log ? "log_softmax specials" : "softmax specials");
      }
    }
  });
}

// --- normalisation ---

TEST_CASE("fast kernels: layer_norm and rms_norm rows") {
  for (DType dtype : {DType::f32, DType::f64}) {
    const double tol = dtype == DType::f32 ? 2e-6 : 1e-12;
    for (int64_t k : kSizes) {
      const Tensor x = random_tensor({4, k}, dtype, -3.0, 5.0, 41);
      const Tensor w = random_tensor({k}, dtype, 0.5, 1.5, 42);
      const Tensor b = random_tensor({k}, dtype, -1.0, 1.0, 43);
      auto ln = [&] { return ops::layer_norm(x, {k}, w, b); };
      auto ln_plain = [&] { return ops::layer_norm(x, {k}); };
      auto rms = [&] { return ops::rms_norm(x, {k}, w); };
      const std::string ctx = std::string(" k=") + std::to_string(k) + " " + dtype_name(dtype);
      check_close(same_for_1_and_2_threads(ln, "layer_norm"), with_reference(ln), tol, tol, "layer_norm" + ctx);
      check_close(ln_plain(), with_reference(ln_plain), tol, tol, "layer_norm no affine" + ctx);
      check_close(rms(), with_reference(rms), tol, tol, "rms_norm" + ctx);
    }
  }
}

TEST_CASE("fast kernels: batch_norm forward, fused relu, and backward") {
  for (DType dtype : {DType::f32, DType::f64}) {
    const double tol = dtype == DType::f32 ? 2e-6 : 1e-12;
    for (const Shape& shape : {Shape{6, 3}, Shape{3, 4, 17}, Shape{2, 5, 7, 9}, Shape{1, 2, 33, 33}}) {
      const int64_t c = shape[1];
      const Tensor x = random_tensor(shape, dtype, -2.0, 3.0, 51);
      const Tensor w = random_tensor({c}, dtype, 0.5, 1.5, 52);
      const Tensor b = random_tensor({c}, dtype, -1.0, 1.0, 53);
      const std::string ctx = std::string(1, ' ') + shape_str(shape) + " " + dtype_name(dtype);  // not " " + ...: GCC 12 -Wrestrict false positive
      for (bool training : {true, false}) {
        // Fresh running statistics per run: training updates them in place.
        auto stats = [&] {
          return std::make_pair(random_tensor({c}, dtype, -0.5, 0.5, 54), random_tensor({c}, dtype, 0.5, 2.0, 55));
        };
        auto bn = [&](bool relu) {
          auto [rm, rv] = stats();
          return relu ? ops::batch_norm_relu(x, rm, rv, w, b, training) : ops::batch_norm(x, rm, rv, w, b, training);
        };
        const Tensor fast = same_for_1_and_2_threads([&] { return bn(false); }, "batch_norm" + ctx);
        check_close(fast, with_reference([&] { return bn(false); }), tol, tol, "batch_norm" + ctx);
        const Tensor fused = bn(true);
        check_close(fused, ops::relu(fast), 0.0, 0.0, "batch_norm_relu == relu(batch_norm)" + ctx);
        check_close(fused, with_reference([&] { return bn(true); }), tol, tol, "batch_norm_relu" + ctx);
        // Running statistics: updated identically.
        auto [rm1, rv1] = stats();
        ops::batch_norm(x, rm1, rv1, w, b, training);
        const auto stats2 = stats();  // not a structured binding: the lambda below captures them
        Tensor rm2 = stats2.first, rv2 = stats2.second;
        with_reference([&] { return ops::batch_norm(x, rm2, rv2, w, b, training); });
        check_close(rm1, rm2, 1e-12, 1e-12, "running_mean" + ctx);
        check_close(rv1, rv2, 1e-12, 1e-12, "running_var" + ctx);
        // Backward.
        auto [rm, rv] = stats();
        const ops::NormForward f = ops::batch_norm_forward(x, rm, rv, w, b, training, 0.1, 1e-5);
        const Tensor g = random_tensor(shape, dtype, -1.0, 1.0, 56);
        auto back = [&] { return ops::batch_norm_backward(g, x, f.mean, f.rstd, w, training, {true, true, true}); };
        const ops::NormGrads fg = back();
        const ops::NormGrads rg = [&] {
          ReferenceKernels guard;
          return back();
        }();
        check_close(fg.x, rg.x, tol, tol, "batch_norm_backward dx" + ctx);
        check_close(fg.weight, rg.weight, tol, tol, "batch_norm_backward dweight" + ctx);
        check_close(fg.bias, rg.bias, tol, tol, "batch_norm_backward dbias" + ctx);
        if (!training) {
          // dx alone (what explanations ask for) skips the parameter sums: the same bits as
          // with them, with both kernels, and w rstd g whatever x holds (a NaN in x stays out).
          auto dx_only = [&](const Tensor& input) {
            return ops::batch_norm_backward(g, input, f.mean, f.rstd, w, false, {true, false, false}).x;
          };
          check_close(dx_only(x), fg.x, 0.0, 0.0, "batch_norm_backward dx only, fast" + ctx);
          check_close(with_reference([&] { return dx_only(x); }), rg.x, 0.0, 0.0,
                      "batch_norm_backward dx only, reference" + ctx);
          Tensor x_nan = ops::clone(x);
          ops::fill_(ops::narrow(ops::flatten(x_nan), 0, 0, 1), std::numeric_limits<double>::quiet_NaN());
          check_close(dx_only(x_nan), fg.x, 0.0, 0.0, "batch_norm_backward dx only ignores x" + ctx);
        }
      }
    }
  }
}

TEST_CASE("fast kernels: differentiable batch_norm_relu records batch_norm then relu") {
  Tensor x = random_tensor({2, 3, 4, 5}, DType::f64, -2.0, 2.0, 61);
  Tensor w = random_tensor({3}, DType::f64, 0.5, 1.5, 62);
  Tensor b = random_tensor({3}, DType::f64, -0.5, 0.5, 63);
  x.set_requires_grad();
  w.set_requires_grad();
  b.set_requires_grad();
  const Tensor fused = batch_norm_relu(x, Tensor(), Tensor(), w, b, true);
  const Tensor plain = relu(batch_norm(x, Tensor(), Tensor(), w, b, true));
  check_close(fused, plain, 0.0, 0.0, "batch_norm_relu forward");
  const auto g1 = grad({sum(fused)}, {x, w, b});
  const auto g2 = grad({sum(plain)}, {x, w, b});
  for (size_t i = 0; i < g1.size(); ++i) check_close(g1[i], g2[i], 0.0, 0.0, "batch_norm_relu grad");
  {
    NoGradGuard no_grad;
    check_close(batch_norm_relu(x, Tensor(), Tensor(), w, b, true), plain, 1e-12, 1e-12, "batch_norm_relu no_grad");
  }
}

// --- pooling ---

TEST_CASE("fast kernels: max_pool2d values and indices equal the reference, NaN and ties included") {
  struct PoolCase {
    Shape x;
    std::array<int64_t, 2> kernel, stride, padding;
    bool ceil_mode;
  };
  const std::vector<PoolCase> cases = {
      {{2, 3, 17, 33}, {2, 2}, {2, 2}, {0, 0}, false}, {{2, 3, 17, 33}, {3, 3}, {2, 2}, {1, 1}, false},
      {{1, 2, 33, 40}, {3, 3}, {1, 1}, {1, 1}, false}, {{1, 2, 33, 40}, {3, 3}, {2, 2}, {1, 1}, true},
      {{3, 1, 7}, {2, 3}, {1, 2}, {1, 1}, true},       {{1, 1, 9, 1007}, {5, 4}, {3, 3}, {2, 2}, false},
      {{1, 1, 1, 1}, {1, 1}, {1, 1}, {0, 0}, false},
  };
  for (DType dtype : {DType::f32, DType::f64}) {
    for (const PoolCase& c : cases) {
      // Values from a small set (ties), with NaN and -inf sprinkled in.
      std::vector<double> v(static_cast<size_t>(shape_numel(c.x)));
      for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>((i * 37) % 11) - 5.0;
      for (size_t i = 0; i < v.size(); i += 97) v[i] = kNaN;
      for (size_t i = 13; i < v.size(); i += 71) v[i] = -kInf;
      const Tensor x = from_values(v, c.x, dtype);
      Pool2dParams p;
      p.kernel = c.kernel;
      p.stride = c.stride;
      p.padding = c.padding;
      p.ceil_mode = c.ceil_mode;
      const std::string ctx = "max_pool2d " + shape_str(c.x) + " kernel " + std::to_string(c.kernel[0]) + "x" +
                              std::to_string(c.kernel[1]) + " " + dtype_name(dtype);
      const ops::ValuesIndices fast = ops::max_pool2d_with_indices(x, p);
      const ops::ValuesIndices ref = [&] {
        ReferenceKernels guard;
        return ops::max_pool2d_with_indices(x, p);
      }();
      check_close(fast.values, ref.values, 0.0, 0.0, ctx + " values");
      check_close(fast.indices, ref.indices, 0.0, 0.0, ctx + " indices");
      // A strided input is made contiguous first: same answer.
      const Tensor strided = noncontiguous_copy(x);
      check_close(ops::max_pool2d_with_indices(strided, p).indices, ref.indices, 0.0, 0.0, ctx + " strided");
    }
  }
}

// --- convolution ---

namespace {

struct ConvCase {
  Shape x, w;
  Conv2dParams p;
  bool bias;
};

}  // namespace

TEST_CASE("fast kernels: conv2d forward, backward-data and backward-weight match the reference") {
  auto params = [](std::array<int64_t, 2> stride, std::array<int64_t, 2> pad, int64_t groups = 1,
                   std::array<int64_t, 2> dilation = {1, 1}) {
    Conv2dParams p;
    p.stride = stride;
    p.padding = pad;
    p.groups = groups;
    p.dilation = dilation;
    return p;
  };
  const std::vector<ConvCase> cases = {
      {{3, 5, 7, 9}, {4, 5, 1, 1}, params({1, 1}, {0, 0}), true},     // 1x1 stride 1, images batched
      {{1, 6, 17, 33}, {5, 6, 1, 1}, params({1, 1}, {0, 0}), false},  // 1x1 stride 1, one image in place
      {{2, 4, 9, 11}, {6, 4, 1, 1}, params({2, 2}, {0, 0}), false},   // 1x1 stride 2 (downsample)
      {{3, 3, 9, 10}, {4, 3, 3, 3}, params({1, 1}, {1, 1}), true},    // 3x3
      {{2, 3, 17, 15}, {5, 3, 7, 7}, params({2, 2}, {3, 3}), true},   // 7x7 stride 2 (stem)
      {{2, 3, 9, 41}, {4, 3, 3, 3}, params({2, 2}, {1, 0}), false},   // stride 2, rows of 20: vector deinterleave
      {{2, 4, 9, 12}, {3, 4, 1, 7}, params({1, 1}, {0, 3}), false},   // 1x7
      {{2, 4, 12, 9}, {3, 4, 7, 1}, params({1, 1}, {3, 0}), false},   // 7x1
      {{2, 6, 8, 8}, {4, 3, 3, 3}, params({1, 1}, {1, 1}, 2), true},  // grouped
      {{2, 4, 9, 9}, {8, 1, 3, 3}, params({2, 2}, {1, 1}, 4), false}, // depthwise, multiplier 2
      {{2, 3, 11, 11}, {2, 3, 3, 3}, params({1, 2}, {2, 1}, 1, {2, 2}), false},  // dilation
      {{3, 2, 32, 32}, {3, 2, 3, 3}, params({1, 1}, {1, 1}), true},   // blocks of 2 images + a remainder of 1
      {{5, 2, 32, 32}, {3, 2, 3, 3}, params({1, 1}, {1, 1}), false},  // 3 weight-gradient partial sums
      {{4, 2, 32, 33}, {2, 1, 3, 3}, params({1, 1}, {1, 1}, 2), false},  // grouped, in blocks
      {{0, 3, 5, 5}, {2, 3, 3, 3}, params({1, 1}, {1, 1}), false},    // empty batch
      // >= 128 input channels per group: stride-1 backward-data runs as a forward convolution
      // with flipped weights (also grouped and dilated, and with padding below the kernel's reach).
      {{2, 128, 6, 7}, {5, 128, 3, 3}, params({1, 1}, {1, 1}), false},
      {{1, 256, 7, 6}, {4, 128, 3, 3}, params({1, 1}, {2, 1}, 2, {2, 1}), true},
      {{1, 128, 6, 9}, {3, 128, 3, 5}, params({1, 1}, {0, 1}), false},
  };
  for (DType dtype : {DType::f32, DType::f64}) {
    const double tol = dtype == DType::f32 ? 2e-5 : 1e-12;
    for (size_t i = 0; i < cases.size(); ++i) {
      const ConvCase& c = cases[i];
      const std::string ctx = "conv case " + std::to_string(i) + " x " + shape_str(c.x) + " w " + shape_str(c.w) + " " +
                              dtype_name(dtype);
      const Tensor x = random_tensor(c.x, dtype, -1.0, 1.0, 71);
      const Tensor w = random_tensor(c.w, dtype, -1.0, 1.0, 72);
      const Tensor b = c.bias ? random_tensor({c.w[0]}, dtype, -1.0, 1.0, 73) : Tensor();
      auto fwd = [&] { return ops::conv2d(x, w, b, c.p); };
      const Tensor y = same_for_1_and_2_threads(fwd, ctx + " forward");
      check_close(y, with_reference(fwd), tol, tol, ctx + " forward");
      const Tensor g = random_tensor(y.shape(), dtype, -1.0, 1.0, 74);
      auto bwd_x = [&] { return ops::conv2d_backward_input(g, w, x.shape(), c.p); };
      auto bwd_w = [&] { return ops::conv2d_backward_weight(g, x, w.shape(), c.p); };
      check_close(same_for_1_and_2_threads(bwd_x, ctx), with_reference(bwd_x), tol, tol, ctx + " backward-data");
      check_close(same_for_1_and_2_threads(bwd_w, ctx), with_reference(bwd_w), tol, tol, ctx + " backward-weight");
    }
  }
  // The block size depends on the shape only; a 32x32 output with a small kernel takes 2 images.
  cpu::ConvGeometry g{};
  g.batch = 3, g.in_channels = 2, g.height = g.width = 32, g.out_channels = 3, g.kernel_h = g.kernel_w = 3;
  g.stride_h = g.stride_w = 1, g.pad_h = g.pad_w = 1, g.dilation_h = g.dilation_w = 1, g.groups = 1;
  g.out_h = g.out_w = 32;
  CHECK(cpu::fast::conv_images_per_block(g, 4) == 2);
}

TEST_CASE("fast kernels: Winograd F(2x2, 3x3) convolution matches the reference") {
  // Float 3x3 stride-1 convolutions with >= 32 channels run by Winograd: forward directly, and
  // backward-data as the flipped forward convolution. Odd output sizes (a last tile half outside),
  // paddings 0 to 2, a bias, and shapes that take several blocks of tile rows.
  struct Case {
    Shape x;
    int64_t out_channels, pad_h, pad_w;
    bool bias;
    bool forward;  // whether forward (and backward-data) run by Winograd too, not only the weight gradient
  };
  const std::vector<Case> cases = {
      {{2, 32, 17, 17}, 32, 1, 1, true, true},   // odd output: the last tiles half outside
      {{1, 48, 18, 19}, 40, 0, 0, false, true},  // no padding: 16x17 output
      {{3, 32, 15, 16}, 36, 2, 1, true, true},   // padding beyond the kernel's reach: 17x16 output
      {{1, 33, 18, 18}, 32, 0, 0, false, true},  // the smallest output it takes at any batch: 16x16
      {{2, 64, 56, 56}, 64, 1, 1, false, true},  // ResNet's layer1: 56 tile rows in several blocks (and partial sums)
      {{5, 32, 14, 15}, 32, 0, 1, false, false}, // 12x15 with 32 channels: only the weight gradient takes it
      {{8, 64, 14, 13}, 64, 1, 1, true, true},   // 14x13, 392 tiles, 64 channels: forward too
      {{1, 64, 14, 13}, 64, 1, 1, true, false},  // the same for one image (49 tiles): weight gradient only
  };
  for (const Case& c : cases) {
    Conv2dParams p;
    p.padding = {c.pad_h, c.pad_w};
    const Shape w_shape = {c.out_channels, c.x[1], 3, 3};
    const std::string ctx = "winograd x " + shape_str(c.x) + " w " + shape_str(w_shape);
    const Tensor x = random_tensor(c.x, DType::f32, -1.0, 1.0, 81);
    const Tensor w = random_tensor(w_shape, DType::f32, -1.0, 1.0, 82);
    const Tensor b = c.bias ? random_tensor({c.out_channels}, DType::f32, -1.0, 1.0, 83) : Tensor();

    cpu::ConvGeometry g{};
    g.batch = c.x[0], g.in_channels = c.x[1], g.height = c.x[2], g.width = c.x[3];
    g.out_channels = c.out_channels, g.kernel_h = g.kernel_w = 3, g.stride_h = g.stride_w = 1;
    g.pad_h = c.pad_h, g.pad_w = c.pad_w, g.dilation_h = g.dilation_w = 1, g.groups = 1;
    g.out_h = g.height + 2 * c.pad_h - 2, g.out_w = g.width + 2 * c.pad_w - 2;
    REQUIRE_MESSAGE(cpu::winograd::applies_to_weight_gradient(g), ctx);
    CHECK_MESSAGE(cpu::winograd::applies(g) == c.forward, ctx);

    // Outputs are sums of 9 C products of values in [-1, 1]: a tolerance relative to their scale,
    // 1e-6 of sqrt(9 C) (a float sum of that many terms rounds at a few 1e-7 of it).
    const double scale = std::sqrt(9.0 * static_cast<double>(c.x[1]));
    auto fwd = [&] { return ops::conv2d(x, w, b, p); };
    const Tensor y = same_for_1_and_2_threads(fwd, ctx + " forward");
    check_close(y, with_reference(fwd), 1e-6 * scale, 0.0, ctx + " forward");
    const Tensor grad = random_tensor(y.shape(), DType::f32, -1.0, 1.0, 84);
    auto bwd_x = [&] { return ops::conv2d_backward_input(grad, w, x.shape(), p); };
    const double scale_x = std::sqrt(9.0 * static_cast<double>(c.out_channels));
    check_close(same_for_1_and_2_threads(bwd_x, ctx), with_reference(bwd_x), 1e-6 * scale_x, 0.0, ctx + " backward-data");
    // The weight gradient sums over every output position of every image.
    auto bwd_w = [&] { return ops::conv2d_backward_weight(grad, x, w_shape, p); };
    const double scale_w = std::sqrt(static_cast<double>(y.numel() / c.out_channels));
    check_close(same_for_1_and_2_threads(bwd_w, ctx), with_reference(bwd_w), 1e-6 * scale_w, 0.0, ctx + " backward-weight");
  }
  // Not for what it cannot do: strides, dilation, groups, other kernels, few channels, double.
  cpu::ConvGeometry g{};
  g.batch = 1, g.in_channels = g.out_channels = 64, g.height = g.width = g.out_h = g.out_w = 16;
  g.kernel_h = g.kernel_w = 3, g.stride_h = g.stride_w = 1, g.pad_h = g.pad_w = 1;
  g.dilation_h = g.dilation_w = 1, g.groups = 1;
  CHECK(cpu::winograd::applies(g));
  cpu::ConvGeometry other = g;
  other.stride_w = 2;
  CHECK_FALSE(cpu::winograd::applies(other));
  other = g, other.dilation_h = 2;
  CHECK_FALSE(cpu::winograd::applies(other));
  other = g, other.groups = 2;
  CHECK_FALSE(cpu::winograd::applies(other));
  other = g, other.kernel_w = 5;
  CHECK_FALSE(cpu::winograd::applies(other));
  other = g, other.in_channels = 16;
  CHECK_FALSE(cpu::winograd::applies(other));
  other = g, other.height = other.width = other.out_h = other.out_w = 15;
  CHECK_FALSE(cpu::winograd::applies(other));
}

namespace {

// rms(got - exact) / rms(exact).
double relative_rms_error(const std::vector<double>& got, const std::vector<double>& exact) {
  double error = 0, norm = 0;
  for (size_t i = 0; i < exact.size(); ++i) {
    error += (got[i] - exact[i]) * (got[i] - exact[i]);
    norm += exact[i] * exact[i];
  }
  return std::sqrt(error / norm);
}

}  // namespace

TEST_CASE("fast kernels: Winograd's rounding error stays within twice the direct sum's, both against float64") {
  // The transforms add and subtract before and after the products; with F(2x2, 3x3)'s coefficients
  // (0, +-1, +-1/2) that costs at most a small factor of accuracy. Measured as the rms error over
  // the rms value against a float64 convolution, on ResNet18's layer1 and layer2 shapes.
  for (const std::pair<int64_t, int64_t>& shape : std::vector<std::pair<int64_t, int64_t>>{{64, 56}, {128, 28}}) {
    const int64_t channels = shape.first, side = shape.second;  // plain variables: clang 14's INFO cannot capture bindings
    const Tensor x = random_tensor({1, channels, side, side}, DType::f32, -1.0, 1.0, 85);
    const Tensor w = random_tensor({channels, channels, 3, 3}, DType::f32, -0.1, 0.1, 86);
    Conv2dParams p;
    p.padding = {1, 1};
    const auto exact = values(ops::conv2d(ops::to_dtype(x, DType::f64), ops::to_dtype(w, DType::f64), Tensor(), p));
    const auto winograd = values(ops::conv2d(x, w, Tensor(), p));
    const auto direct = values(with_reference([&] { return ops::conv2d(x, w, Tensor(), p); }));
    const double winograd_error = relative_rms_error(winograd, exact), direct_error = relative_rms_error(direct, exact);
    INFO(channels, " channels ", side, "x", side, ": winograd ", winograd_error, ", direct ", direct_error);
    // With LOUPE_GEMM_KERNEL=reference the direct convolution's GEMM sums in double (gemm.hpp):
    // no float sum to compare with, only the absolute bound.
    const bool float_direct = cpu::gemm_selected_kernel() != cpu::GemmKernel::reference;
    if (float_direct) CHECK(winograd_error < 2.0 * direct_error);
    CHECK(winograd_error < 1e-6);

    // The weight gradient (F(3x3, 2x2)): a sum over all side^2 outputs per weight.
    const Tensor grad = random_tensor({1, channels, side, side}, DType::f32, -1.0, 1.0, 87);
    const Shape w_shape = w.shape();
    const auto exact_w = values(ops::conv2d_backward_weight(ops::to_dtype(grad, DType::f64), ops::to_dtype(x, DType::f64),
                                                            w_shape, p));
    const auto winograd_w = values(ops::conv2d_backward_weight(grad, x, w_shape, p));
    const auto direct_w = values(with_reference([&] { return ops::conv2d_backward_weight(grad, x, w_shape, p); }));
    const double winograd_w_error = relative_rms_error(winograd_w, exact_w);
    const double direct_w_error = relative_rms_error(direct_w, exact_w);
    INFO("weight gradient: winograd ", winograd_w_error, ", direct ", direct_w_error);
    if (float_direct) CHECK(winograd_w_error < 2.0 * direct_w_error);
    CHECK(winograd_w_error < 1e-6);
  }
}

TEST_CASE("fast kernels: direct depthwise convolution matches the im2col + GEMM reference") {
  // groups == in_channels goes to tensor/cpu/depthwise_conv.cpp; the reference kernels run one
  // im2col + GEMM per image and group. Shapes cover multipliers 1-3, strides, dilation, padding
  // wider than the kernel's reach, 5x5 and non-square kernels, rows longer than 16 (the dot
  // product's vector part) and a batch that splits unevenly over threads.
  auto params = [](std::array<int64_t, 2> stride, std::array<int64_t, 2> pad, int64_t groups,
                   std::array<int64_t, 2> dilation = {1, 1}) {
    Conv2dParams p;
    p.stride = stride;
    p.padding = pad;
    p.groups = groups;
    p.dilation = dilation;
    return p;
  };
  const std::vector<ConvCase> cases = {
      {{3, 8, 19, 37}, {8, 1, 3, 3}, params({1, 1}, {1, 1}, 8), true},           // MobileNet 3x3
      {{2, 6, 20, 21}, {6, 1, 3, 3}, params({2, 2}, {1, 1}, 6), false},          // stride 2
      {{2, 4, 17, 40}, {8, 1, 5, 5}, params({1, 1}, {2, 2}, 4), true},           // 5x5, multiplier 2
      {{1, 3, 9, 23}, {9, 1, 3, 2}, params({1, 3}, {3, 2}, 3, {2, 1}), false},   // mixed, multiplier 3
      {{2, 5, 6, 7}, {5, 1, 7, 7}, params({1, 1}, {3, 3}, 5), true},             // kernel wider than rows
      {{2, 2, 5, 5}, {2, 1, 3, 3}, params({1, 1}, {4, 4}, 2, {3, 3}), false},    // padding past the reach
      {{0, 4, 5, 5}, {4, 1, 3, 3}, params({1, 1}, {1, 1}, 4), false},            // empty batch
  };
  for (DType dtype : {DType::f32, DType::f64}) {
    const double tol = dtype == DType::f32 ? 2e-5 : 1e-12;
    for (size_t i = 0; i < cases.size(); ++i) {
      const ConvCase& c = cases[i];
      const std::string ctx = "depthwise case " + std::to_string(i) + " x " + shape_str(c.x) + " w " +
                              shape_str(c.w) + " " + dtype_name(dtype);
      const Tensor x = random_tensor(c.x, dtype, -1.0, 1.0, 81);
      const Tensor w = random_tensor(c.w, dtype, -1.0, 1.0, 82);
      const Tensor b = c.bias ? random_tensor({c.w[0]}, dtype, -1.0, 1.0, 83) : Tensor();
      auto fwd = [&] { return ops::conv2d(x, w, b, c.p); };
      const Tensor y = same_for_1_and_2_threads(fwd, ctx + " forward");
      check_close(y, with_reference(fwd), tol, tol, ctx + " forward");
      const Tensor g = random_tensor(y.shape(), dtype, -1.0, 1.0, 84);
      auto bwd_x = [&] { return ops::conv2d_backward_input(g, w, x.shape(), c.p); };
      auto bwd_w = [&] { return ops::conv2d_backward_weight(g, x, w.shape(), c.p); };
      check_close(same_for_1_and_2_threads(bwd_x, ctx), with_reference(bwd_x), tol, tol, ctx + " backward-data");
      check_close(same_for_1_and_2_threads(bwd_w, ctx), with_reference(bwd_w), tol, tol, ctx + " backward-weight");
    }
  }
  // Which geometries take the direct path: one input channel per group, more than one group.
  cpu::ConvGeometry g{};
  g.in_channels = 8, g.out_channels = 16, g.groups = 8;
  CHECK(cpu::depthwise::applies(g));
  g.groups = 4;  // two input channels per group: im2col + GEMM
  CHECK_FALSE(cpu::depthwise::applies(g));
  g.in_channels = 1, g.out_channels = 4, g.groups = 1;  // a single-channel input, not grouped
  CHECK_FALSE(cpu::depthwise::applies(g));
}

}  // namespace loupe::test
