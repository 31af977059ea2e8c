// Op table entries: matmul (numpy semantics: dot, 1-d promotion, broadcast batch dims) and
// linear, against plain-loop f64 references. Extra cases: the fast GEMM kernel against the
// reference GEMM (odd sizes, transposed/strided operands, alpha/beta, thread count), int64
// matmul, and the error messages.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "tensor/cpu/gemm.hpp"
#include "tensor/cpu/gemm_kernels.hpp"
#include "tests/op_table.hpp"
#include "tests/support.hpp"

namespace loupe::test {
namespace {

// Row-major offset of the matrix of batch index `idx` (of the broadcast batch) in an operand
// whose own batch shape is `own` (size-1 dims broadcast).
int64_t batch_index(const std::vector<int64_t>& idx, const Shape& own) {
  int64_t i = 0;
  const size_t lead = idx.size() - own.size();
  for (size_t d = 0; d < own.size(); ++d) i = i * own[d] + (own[d] == 1 ? 0 : idx[lead + d]);
  return i;
}

// numpy matmul with plain loops.
Tensor ref_matmul(const Tensor& a, const Tensor& b) {
  Shape as = a.shape(), bs = b.shape();
  const bool a_vec = as.size() == 1, b_vec = bs.size() == 1;
  if (a_vec) as.insert(as.begin(), 1);
  if (b_vec) bs.push_back(1);
  const int64_t m = as[as.size() - 2], k = as.back(), n = bs.back();
  const Shape a_batch(as.begin(), as.end() - 2), b_batch(bs.begin(), bs.end() - 2);
  const Shape batch = ref::broadcast(a_batch, b_batch);
  const auto va = values(a), vb = values(b);
  const int64_t count = shape_numel(batch);
  std::vector<double> out(static_cast<size_t>(count * m * n), 0.0);
  for (int64_t t = 0; t < count; ++t) {
    const auto idx = ref::unravel(t, batch);
    const int64_t ia = batch_index(idx, a_batch) * m * k, ib = batch_index(idx, b_batch) * k * n;
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int64_t p = 0; p < k; ++p) acc += va[size_t(ia + i * k + p)] * vb[size_t(ib + p * n + j)];
        out[size_t((t * m + i) * n + j)] = acc;
      }
    }
  }
  Shape shape = batch;
  if (!a_vec) shape.push_back(m);
  if (!b_vec) shape.push_back(n);
  return ref::make(out, shape);
}

OpCase matmul_case(const std::string& name, const Shape& a, const Shape& b, bool with_empty = false) {
  OpCase c;
  c.name = "matmul/" + name;
  c.make_inputs = [a, b](DType dtype) {
    return Inputs{random_tensor(a, dtype, -1, 1, 41), random_tensor(b, dtype, -1, 1, 42)};
  };
  if (with_empty) {
    c.make_empty_inputs = [](DType dtype) { return Inputs{zeros({2, 0, 4}, dtype), zeros({4, 3}, dtype)}; };
  }
  c.op = [](const Inputs& in) { return matmul(in[0], in[1]); };
  c.reference = [](const Inputs& in) { return ref_matmul(in[0], in[1]); };
  return c;
}

// x (..., in) W^T + b with plain loops.
Tensor ref_linear(const Tensor& x, const Tensor& w, const Tensor* bias) {
  const int64_t in = w.shape()[1], out_f = w.shape()[0];
  const int64_t rows = x.numel() / std::max<int64_t>(in, 1);
  const auto vx = values(x), vw = values(w);
  std::vector<double> vb = bias ? values(*bias) : std::vector<double>(size_t(out_f), 0.0);
  std::vector<double> out(size_t(rows * out_f));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < out_f; ++o) {
      double acc = vb[size_t(o)];
      for (int64_t i = 0; i < in; ++i) acc += vx[size_t(r * in + i)] * vw[size_t(o * in + i)];
      out[size_t(r * out_f + o)] = acc;
    }
  }
  Shape shape(x.shape().begin(), x.shape().end() - 1);
  shape.push_back(out_f);
  return ref::make(out, shape);
}

OpCase linear_case(const std::string& name, const Shape& x, int64_t in, int64_t out, bool with_bias) {
  OpCase c;
  c.name = "linear/" + name;
  c.make_inputs = [x, in, out, with_bias](DType dtype) {
    Inputs inputs{random_tensor(x, dtype, -1, 1, 43), random_tensor({out, in}, dtype, -1, 1, 44)};
    if (with_bias) inputs.push_back(random_tensor({out}, dtype, -1, 1, 45));
    return inputs;
  };
  c.make_empty_inputs = [in, out, with_bias](DType dtype) {
    Inputs inputs{zeros({0, in}, dtype), random_tensor({out, in}, dtype, -1, 1, 46)};
    if (with_bias) inputs.push_back(random_tensor({out}, dtype, -1, 1, 47));
    return inputs;
  };
  c.op = [](const Inputs& in) { return linear(in[0], in[1], in.size() > 2 ? in[2] : Tensor()); };
  c.reference = [](const Inputs& in) { return ref_linear(in[0], in[1], in.size() > 2 ? &in[2] : nullptr); };
  return c;
}

const bool registered = register_ops({
    matmul_case("2d", {3, 4}, {4, 5}),
    matmul_case("dot", {6}, {6}),
    matmul_case("vec@mat", {4}, {4, 3}),
    matmul_case("mat@vec", {3, 4}, {4}),
    matmul_case("batched", {2, 3, 4}, {2, 4, 5}),
    matmul_case("broadcast_batch", {2, 1, 3, 4}, {3, 4, 2}),
    matmul_case("batched@2d", {2, 3, 4}, {4, 5}, /*with_empty=*/true),
    matmul_case("2d@batched", {3, 4}, {2, 4, 5}),
    matmul_case("vec@batched", {4}, {2, 4, 3}),
    matmul_case("batched@vec", {2, 3, 4}, {4}),
    matmul_case("inner_1", {5, 1}, {1, 4}),
    linear_case("bias", {3, 4}, 4, 5, true),
    linear_case("no_bias", {3, 4}, 4, 5, false),
    linear_case("1d_input", {4}, 4, 3, true),
    linear_case("batched", {2, 3, 4}, 4, 2, true),
});

// --- the GEMM kernels ---

// A column-major, row-major or gapped layout of an r x c matrix inside a buffer.
struct Layout {
  int64_t row_stride, col_stride, size;
};

Layout make_layout(int64_t r, int64_t c, int kind) {
  switch (kind) {
    case 0: return {c, 1, r * c};                  // row-major
    case 1: return {1, r, r * c};                  // column-major (a transposed view)
    case 2: return {2 * c + 3, 2, r * (2 * c + 3)};  // gaps between rows and elements
    default: return {2, 2 * r + 1, c * (2 * r + 1)};  // transposed with gaps
  }
}

// Every implementation gemm can run on this CPU (the reference itself excluded).
std::vector<cpu::GemmKernel> fast_gemm_kernels() {
  std::vector<cpu::GemmKernel> kernels;
  for (auto kernel : {cpu::GemmKernel::portable, cpu::GemmKernel::avx2, cpu::GemmKernel::avx512,
                      cpu::GemmKernel::avx512_intel}) {
    if (cpu::gemm_kernel_available(kernel)) kernels.push_back(kernel);
  }
  return kernels;
}

// spec: run gemm_detail::gemm_with_spec with this tile / blocking instead of gemm_with(kernel)
// (the tuning candidates; C must then not be column-major).
template <typename T>
void check_gemm_against_reference(cpu::GemmKernel kernel, int64_t m, int64_t n, int64_t k, int layout, T alpha,
                                  T beta, const cpu::gemm_detail::KernelSpec<T>* spec = nullptr) {
  const Layout la = make_layout(m, k, layout % 4), lb = make_layout(k, n, (layout / 4) % 4),
               lc = make_layout(m, n, (layout / 16) % 4);
  const auto a = values(random_tensor({std::max<int64_t>(la.size, 1)}, DType::f64, -1, 1, 51 + m));
  const auto b = values(random_tensor({std::max<int64_t>(lb.size, 1)}, DType::f64, -1, 1, 52 + n));
  const auto c0 = values(random_tensor({std::max<int64_t>(lc.size, 1)}, DType::f64, -1, 1, 53 + k));
  std::vector<T> ta(a.begin(), a.end()), tb(b.begin(), b.end()), fast(c0.begin(), c0.end()), slow = fast;
  if (beta == T(0)) {
    // beta = 0 must not read C: NaN there must not leak into the result.
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        fast[size_t(i * lc.row_stride + j * lc.col_stride)] = std::numeric_limits<T>::quiet_NaN();
      }
    }
  }
  if (spec != nullptr) {
    cpu::gemm_detail::gemm_with_spec<T>(*spec, m, n, k, alpha, {ta.data(), la.row_stride, la.col_stride},
                                        {tb.data(), lb.row_stride, lb.col_stride}, beta,
                                        {fast.data(), lc.row_stride, lc.col_stride});
  } else {
    cpu::gemm_with<T>(kernel, m, n, k, alpha, {ta.data(), la.row_stride, la.col_stride},
                      {tb.data(), lb.row_stride, lb.col_stride}, beta, {fast.data(), lc.row_stride, lc.col_stride});
  }
  cpu::gemm_reference<T>(m, n, k, alpha, {ta.data(), la.row_stride, la.col_stride},
                         {tb.data(), lb.row_stride, lb.col_stride}, beta, {slow.data(), lc.row_stride, lc.col_stride});
  const double tol = (std::is_same_v<T, float> ? 2e-6 : 1e-14) * double(k + 1) * 4;
  for (size_t i = 0; i < fast.size(); ++i) {
    if (!(std::abs(double(fast[i]) - double(slow[i])) <= tol)) {
      FAIL_CHECK("gemm kernel " << (spec != nullptr ? spec->name : cpu::gemm_kernel_name(kernel)) << " m=" << m << " n=" << n << " k=" << k << " layout " << layout << " alpha " << alpha << " beta "
                           << beta << ": element " << i << " fast " << fast[i] << " reference " << slow[i]);
      return;
    }
  }
}

TEST_CASE("gemm: every kernel matches the reference at odd sizes, strides, alpha and beta") {
  // Layouts cover row-major, column-major (a transposed view; for C this takes the C^T = B^T A^T
  // route), and gapped operands (C then goes through the scratch-tile store).
  const std::vector<int64_t> sizes{1, 7, 33, 65, 129};
  for (cpu::GemmKernel kernel : fast_gemm_kernels()) {
    CAPTURE(cpu::gemm_kernel_name(kernel));
    int layout = 0;
    for (int64_t m : sizes) {
      for (int64_t n : sizes) {
        for (int64_t k : sizes) {
          check_gemm_against_reference<float>(kernel, m, n, k, layout, 1.0f, 0.0f);
          check_gemm_against_reference<double>(kernel, m, n, k, layout + 1, -0.5, 1.5);
          layout = (layout + 7) % 64;  // walks through every combination of the three layouts
        }
      }
    }
    // Sizes spanning several depth blocks (kc = 256), row blocks (mc) and column blocks (nc),
    // with both full and edge register tiles.
    check_gemm_against_reference<float>(kernel, 300, 530, 290, 0, 2.0f, 0.5f);
    check_gemm_against_reference<double>(kernel, 257, 300, 513, 5, 1.0, 0.0);
    check_gemm_against_reference<float>(kernel, 97, 1, 600, 17, 1.0f, 1.0f);  // matrix-vector
    check_gemm_against_reference<float>(kernel, 1, 97, 600, 0, 1.0f, 0.0f);   // vector-matrix
    check_gemm_against_reference<float>(kernel, 19, 2100, 37, 0, 1.0f, -1.0f);  // n > nc
    check_gemm_against_reference<double>(kernel, 13, 1100, 41, 16, 0.5, 2.0);   // n > nc, C column-major
    check_gemm_against_reference<float>(kernel, 64, 64, 512, 32, 1.0f, 0.0f);   // C gapped, two depth blocks
    // k == 0 scales C by beta.
    check_gemm_against_reference<float>(kernel, 5, 6, 0, 0, 1.0f, 0.5f);
    check_gemm_against_reference<double>(kernel, 5, 6, 0, 21, 1.0, 0.0);
  }
}

TEST_CASE("gemm_reference: float dot products are summed in double and rounded once") {
  // 1 + 10000 x 1e-8: a float running sum never leaves 1 (each 1e-8 is under half an ulp of 1),
  // the exact sum is 1.0001. The oracle must get the latter (gemm.hpp: it sums float in double).
  const int64_t k = 10001;
  std::vector<float> a(static_cast<size_t>(k), 1e-8f), b(static_cast<size_t>(k), 1.0f);
  a[0] = 1.0f;
  double exact = 0;
  for (int64_t p = 0; p < k; ++p) exact += double(a[size_t(p)]) * double(b[size_t(p)]);
  float c = -1.0f;
  cpu::gemm_reference<float>(1, 1, k, 1.0f, {a.data(), k, 1}, {b.data(), 1, 1}, 0.0f, {&c, 1, 1});
  CHECK(c == static_cast<float>(exact));
  CHECK(c > 1.00009f);
}

TEST_CASE("gemm: every AVX-512 tuning candidate matches the reference") {
  // The tiles and prefetch distances benchmarks/gemm_tune.cpp times, including the ones no CPU
  // selects by default: each must be exact before its speed means anything.
  if (!cpu::gemm_kernel_available(cpu::GemmKernel::avx512)) return;
  for (cpu::gemm_detail::KernelSpec<float> spec : cpu::gemm_detail::avx512_candidates_f32()) {
    CAPTURE(spec.name);
    // Layouts: row-major and gapped (0-3 for A and B, 0 or 2 for C), edge tiles in m and n,
    // several depth blocks.
    for (int layout : {0, 5, 10, 15, 32 + 1, 32 + 6}) {
      check_gemm_against_reference<float>(cpu::GemmKernel::avx512, 37, 75, 300, layout, 1.0f, 0.0f, &spec);
      check_gemm_against_reference<float>(cpu::GemmKernel::avx512, 130, 97, 65, layout, -0.5f, 1.5f, &spec);
    }
    // Small blocking: several row, column and depth blocks inside one call.
    spec.mc = spec.mr * 2;
    spec.kc = 24;
    spec.nc = spec.nr * 2;
    check_gemm_against_reference<float>(cpu::GemmKernel::avx512, 101, 203, 77, 0, 2.0f, 0.5f, &spec);
  }
}

namespace {

// Producers (gemm.hpp's GemmPackA / GemmPackB) that read a row-major matrix: a (m, k), b (k, n).
// The vectors must outlive the producers.
cpu::GemmPackA<float> producer_of_a(const std::vector<float>& a, int64_t k) {
  return [&a, k](int64_t i0, int64_t mc, int64_t p0, int64_t kc, int mr, float* packed) {
    for (int64_t s = 0; s * mr < mc; ++s) {
      for (int64_t p = 0; p < kc; ++p) {
        for (int64_t i = 0; i < mr; ++i) {
          const int64_t row = s * mr + i;
          packed[(s * kc + p) * mr + i] = row < mc ? a[size_t((i0 + row) * k + p0 + p)] : 0.0f;
        }
      }
    }
  };
}

cpu::GemmPackB<float> producer_of_b(const std::vector<float>& b, int64_t n) {
  return [&b, n](int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, float* packed) {
    for (int64_t s = 0; s * nr < nc; ++s) {
      for (int64_t p = 0; p < kc; ++p) {
        for (int64_t j = 0; j < nr; ++j) {
          const int64_t col = s * nr + j;
          packed[(s * kc + p) * nr + j] = col < nc ? b[size_t((p0 + p) * n + j0 + col)] : 0.0f;
        }
      }
    }
  };
}

}  // namespace

TEST_CASE("gemm_packed_b: B from a packing callback gives the same bits as gemm on the matrix") {
  // The callback packs from an ordinary row-major B here; the convolution's im2col packer is
  // tested through the convolution tests. Sizes with edge slivers, several depth and column
  // blocks, and both thread counts.
  // Sizes as plain variables, not a structured binding (clang 14, the sanitizer build, cannot
  // capture a binding in a lambda).
  for (const auto& mnk : {std::array<int64_t, 3>{37, 75, 300}, std::array<int64_t, 3>{130, 2100, 65},
                          std::array<int64_t, 3>{5, 3, 1}}) {
    const int64_t m = mnk[0], n = mnk[1], k = mnk[2];
    const auto av = values(random_tensor({m, k}, DType::f32, -1, 1, 91));
    const auto bv = values(random_tensor({k, n}, DType::f32, -1, 1, 92));
    std::vector<float> a(av.begin(), av.end()), b(bv.begin(), bv.end());
    const cpu::GemmPackB<float> packer = producer_of_b(b, n);
    std::vector<float> expected(size_t(m * n), 0.5f), got = expected;
    cpu::gemm<float>(m, n, k, 1.5f, {a.data(), k, 1}, {b.data(), n, 1}, 0.25f, {expected.data(), n, 1});
    const int threads = num_threads();
    for (int t : {1, std::max(threads, 2)}) {
      set_num_threads(t);
      std::fill(got.begin(), got.end(), 0.5f);
      cpu::gemm_packed_b<float>(m, n, k, 1.5f, {a.data(), k, 1}, packer, 0.25f, {got.data(), n, 1});
      CHECK(got == expected);
    }
    set_num_threads(threads);
  }
}

TEST_CASE("gemm_produced: A and B from producers give the same bits as gemm on the matrices") {
  // Producers that read ordinary row-major matrices; the convolutions' producers (im2col, flipped
  // weights) are tested through the convolution tests. Shapes: with two threads C is cut into
  // row slabs (B produced once and shared; more columns than one column block) or column slabs
  // (A shared; more rows than one row block); edge slivers, several depth blocks; A alone, B
  // alone and both produced.
  for (const auto& mnk : {std::array<int64_t, 3>{2300, 2100, 40}, std::array<int64_t, 3>{300, 750, 290},
                          std::array<int64_t, 3>{301, 45, 300}, std::array<int64_t, 3>{5, 3, 1}}) {
    const int64_t m = mnk[0], n = mnk[1], k = mnk[2];
    const auto av = values(random_tensor({m, k}, DType::f32, -1, 1, 93));
    const auto bv = values(random_tensor({k, n}, DType::f32, -1, 1, 94));
    std::vector<float> a(av.begin(), av.end()), b(bv.begin(), bv.end());
    const cpu::GemmPackA<float> produce_a = producer_of_a(a, k);
    const cpu::GemmPackB<float> produce_b = producer_of_b(b, n);
    std::vector<float> expected(size_t(m * n), 0.5f), got = expected;
    cpu::gemm<float>(m, n, k, 1.5f, {a.data(), k, 1}, {b.data(), n, 1}, 0.25f, {expected.data(), n, 1});
    const int threads = num_threads();
    for (int t : {1, std::max(threads, 2)}) {
      set_num_threads(t);
      for (int which = 1; which <= 3; ++which) {  // 1: A produced, 2: B produced, 3: both
        CAPTURE(m);
        CAPTURE(n);
        CAPTURE(t);
        CAPTURE(which);
        std::fill(got.begin(), got.end(), 0.5f);
        const bool pa = which & 1, pb = which & 2;
        cpu::gemm_produced<float>(m, n, k, 1.5f, {pa ? nullptr : a.data(), k, 1}, pa ? &produce_a : nullptr,
                                  {pb ? nullptr : b.data(), n, 1}, pb ? &produce_b : nullptr, 0.25f, {got.data(), n, 1});
        CHECK(got == expected);
      }
    }
    set_num_threads(threads);
  }
}

TEST_CASE("gemm: the CPU model and the per-vendor kernel choice") {
  const cpu::CpuModel model = cpu::cpu_model();
  CAPTURE(model.vendor);
  CHECK(std::strlen(model.vendor) == 12);  // every x86-64 CPU reports a 12-character vendor string
  CHECK(model.family > 0);
  const cpu::GemmKernel best = cpu::gemm_best_kernel();
  if (cpu::gemm_kernel_available(cpu::GemmKernel::avx512)) {
    const bool intel = std::string(model.vendor) == "GenuineIntel" && model.family == 6;
    CHECK(best == (intel ? cpu::GemmKernel::avx512_intel : cpu::GemmKernel::avx512));
  } else {
    CHECK(best != cpu::GemmKernel::avx512);
    CHECK(best != cpu::GemmKernel::avx512_intel);
  }
  // Both AVX-512 variants are distinct specs (a different tile), so forcing one tests other code.
  if (cpu::gemm_kernel_available(cpu::GemmKernel::avx512)) {
    const auto zen = cpu::gemm_detail::kernel_spec<float>(cpu::GemmKernel::avx512);
    const auto intel = cpu::gemm_detail::kernel_spec<float>(cpu::GemmKernel::avx512_intel);
    CHECK((zen.mr != intel.mr || zen.nr != intel.nr || zen.kernel != intel.kernel));
  }
}

TEST_CASE("gemm: kernel names, availability and the selected kernel") {
  for (auto kernel : {cpu::GemmKernel::reference, cpu::GemmKernel::portable, cpu::GemmKernel::avx2,
                      cpu::GemmKernel::avx512, cpu::GemmKernel::avx512_intel}) {
    CHECK(cpu::gemm_kernel_from_name(cpu::gemm_kernel_name(kernel)) == kernel);
  }
  CHECK_FALSE(cpu::gemm_kernel_from_name("AVX512").has_value());
  CHECK_FALSE(cpu::gemm_kernel_from_name("").has_value());
  CHECK(cpu::gemm_kernel_available(cpu::GemmKernel::reference));
  CHECK(cpu::gemm_kernel_available(cpu::GemmKernel::portable));
  CHECK(cpu::gemm_kernel_available(cpu::gemm_selected_kernel()));
  CHECK(cpu::gemm_kernel_from_name("avx512-intel") == cpu::GemmKernel::avx512_intel);
  // Without an override, gemm picks the fastest kernel this CPU has.
  if (std::getenv("LOUPE_GEMM_KERNEL") == nullptr) {
    CHECK(cpu::gemm_selected_kernel() == cpu::gemm_best_kernel());
    const auto fast = fast_gemm_kernels();
    CHECK(std::find(fast.begin(), fast.end(), cpu::gemm_best_kernel()) != fast.end());
  }
}

TEST_CASE("gemm: results do not depend on the thread count, for every kernel") {
  const int threads = num_threads();
  for (cpu::GemmKernel kernel : fast_gemm_kernels()) {
    CAPTURE(cpu::gemm_kernel_name(kernel));
    // Big enough to be split across threads, along n (wide) and along m (tall), with edge tiles.
    for (const auto& mnk : {std::array<int64_t, 3>{203, 301, 270}, std::array<int64_t, 3>{517, 45, 300}}) {
      const int64_t m = mnk[0], n = mnk[1], k = mnk[2];
      const auto a = values(random_tensor({m, k}, DType::f32, -1, 1, 61));
      const auto b = values(random_tensor({k, n}, DType::f32, -1, 1, 62));
      std::vector<float> fa(a.begin(), a.end()), fb(b.begin(), b.end());
      std::vector<float> one(size_t(m * n), 0.5f), many = one;
      set_num_threads(1);
      cpu::gemm_with<float>(kernel, m, n, k, 1.5f, {fa.data(), k, 1}, {fb.data(), n, 1}, 0.25f, {one.data(), n, 1});
      set_num_threads(std::max(threads, 3));
      cpu::gemm_with<float>(kernel, m, n, k, 1.5f, {fa.data(), k, 1}, {fb.data(), n, 1}, 0.25f, {many.data(), n, 1});
      set_num_threads(threads);
      CHECK(one == many);
    }
  }
  // And through matmul, with whatever kernel gemm selected.
  const Tensor a = random_tensor({200, 300}, DType::f32, -1, 1, 61);
  const Tensor b = random_tensor({300, 270}, DType::f32, -1, 1, 62);
  set_num_threads(1);
  const auto one = values(ops::matmul(a, b));
  set_num_threads(std::max(threads, 3));
  const auto many = values(ops::matmul(a, b));
  set_num_threads(threads);
  CHECK(one == many);
}

TEST_CASE("matmul: larger float32 products match the reference") {
  const Tensor a = random_tensor({3, 70, 130}, DType::f32, -1, 1, 63);
  const Tensor b = random_tensor({130, 41}, DType::f32, -1, 1, 64);
  check_close(ops::matmul(a, b), ref_matmul(ops::to_dtype(a, DType::f64), ops::to_dtype(b, DType::f64)), 1e-4, 1e-4,
              "matmul (3, 70, 130) @ (130, 41)");
  // A transposed view goes through the strides, not a copy.
  const Tensor bt = random_tensor({41, 130}, DType::f32, -1, 1, 65);
  check_close(ops::matmul(a, ops::transpose(bt, 0, 1)),
              ref_matmul(ops::to_dtype(a, DType::f64), ops::to_dtype(ops::transpose(bt, 0, 1), DType::f64)), 1e-4,
              1e-4, "matmul with a transposed operand");
}

TEST_CASE("matmul and linear: an empty inner dimension gives zeros (plus the bias)") {
  CHECK(values(ops::matmul(zeros({3, 0}), zeros({0, 2}))) == std::vector<double>(6, 0.0));
  CHECK(values(ops::matmul(zeros({2, 3, 0}), zeros({0, 2}))) == std::vector<double>(12, 0.0));
  const Tensor bias = from_values(std::vector<double>{1.5, -2.0}, {2});
  CHECK(values(ops::linear(zeros({3, 0}), zeros({2, 0}), bias)) == std::vector<double>{1.5, -2.0, 1.5, -2.0, 1.5, -2.0});
}

TEST_CASE("matmul: int64 operands use the reference kernel and are exact") {
  const Tensor a = from_values(std::vector<int64_t>{1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor b = from_values(std::vector<int64_t>{7, 8, 9, 10, 11, 12}, {3, 2});
  const Tensor c = ops::matmul(a, b);
  CHECK(c.dtype() == DType::i64);
  CHECK(to_vector<int64_t>(c) == std::vector<int64_t>{58, 64, 139, 154});
  CHECK(to_vector<int64_t>(ops::matmul(ops::select(a, 0, 0), ops::select(b, 1, 0))) == std::vector<int64_t>{58});
}

TEST_CASE("matmul and linear record their op kinds") {
  const Tensor a = random_tensor({2, 3}, DType::f64).set_requires_grad();
  const Tensor w = random_tensor({4, 3}, DType::f64).set_requires_grad();
  CHECK(matmul(a, ops::transpose(w, 0, 1)).grad_fn()->kind() == autograd::OpKind::matmul);
  CHECK(linear(a, w).grad_fn()->kind() == autograd::OpKind::linear);
}

TEST_CASE("matmul and linear: bad shapes and dtypes raise loupe::Error") {
  const Tensor m34 = zeros({3, 4}), m56 = zeros({5, 6});
  CHECK_THROWS_WITH_AS(ops::matmul(m34, m56), doctest::Contains("matmul: inner dimensions differ: (3, 4) @ (5, 6)"),
                       Error);
  CHECK_THROWS_AS(ops::matmul(zeros({4}), zeros({5})), Error);
  CHECK_THROWS_AS(ops::matmul(scalar_tensor(1.0), zeros({3})), Error);
  CHECK_THROWS_AS(ops::matmul(m34, zeros({4, 2}, DType::f64)), Error);
  CHECK_THROWS_WITH_AS(ops::matmul(zeros({2, 3, 4}), zeros({3, 4, 5})), doctest::Contains("matmul"), Error);
  CHECK_THROWS_AS(ops::matmul(zeros({2, 2}, DType::b8), zeros({2, 2}, DType::b8)), Error);
  CHECK_THROWS_WITH_AS(ops::linear(zeros({2, 3}), zeros({5, 4})), doctest::Contains("linear: input shape (2, 3)"),
                       Error);
  CHECK_THROWS_AS(ops::linear(zeros({2, 4}), zeros({5, 4}), zeros({4})), Error);
  CHECK_THROWS_AS(ops::linear(zeros({2, 4}), zeros({4})), Error);
  CHECK_THROWS_AS(ops::linear(zeros({2, 4}, DType::i64), zeros({5, 4}, DType::i64)), Error);
  CHECK_THROWS_AS(linear(zeros({2, 4}), zeros({5, 4}, DType::f64)), Error);
}

}  // namespace
}  // namespace loupe::test
