// The shipped backward rule sets: guided backprop, deconvolution and DeepLIFT's rescale rule.
// See rules.hpp for the mechanism and REFERENCE.md section 2 for the definitions (they follow
// Captum's formulas, so attributions can be compared with Captum's on the same weights).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "autograd/rules.hpp"
#include "tensor/cpu/fast_elementwise.hpp"
#include "tensor/ops/binary.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/pool.hpp"
#include "tensor/ops/reduce.hpp"
#include "tensor/ops/softmax.hpp"
#include "tensor/ops/unary.hpp"
#include "tensor/ops/view.hpp"
#include "tensor/parallel.hpp"

namespace loupe::autograd {

namespace {

using Grads = std::vector<Tensor>;

Tensor positive_part(const Tensor& g) { return ops::relu(g); }

// The unary op behind a node of an elementwise kind (for its ordinary derivative).
ops::UnaryOp unary_op_of(OpKind kind) {
  switch (kind) {
    case OpKind::relu: return ops::UnaryOp::relu;
    case OpKind::elu: return ops::UnaryOp::elu;
    case OpKind::leaky_relu: return ops::UnaryOp::leaky_relu;
    case OpKind::sigmoid: return ops::UnaryOp::sigmoid;
    case OpKind::tanh: return ops::UnaryOp::tanh;
    case OpKind::softplus: return ops::UnaryOp::softplus;
    case OpKind::gelu: return ops::UnaryOp::gelu_erf;
    case OpKind::gelu_tanh: return ops::UnaryOp::gelu_tanh;
    case OpKind::silu: return ops::UnaryOp::silu;
    default: break;
  }
  throw Error(detail::make_message("deeplift: no rescale rule for op kind ", op_kind_name(kind)));
}

// The two halves [input; reference] of a doubled batch, each repeated to the full batch:
// returns (first half - second half) stacked twice, so it lines up with the whole tensor.
Tensor doubled_difference(const Tensor& t, const char* what) {
  LOUPE_CHECK(t.dim() >= 1 && t.size(0) % 2 == 0, "deeplift: ", what, " of shape ", shape_str(t.shape()),
              " is not a doubled batch [inputs; references] (dim 0 must be even)");
  const int64_t half = t.size(0) / 2;
  const Tensor delta = ops::sub(ops::narrow(t, 0, 0, half), ops::narrow(t, 0, half, half));
  Tensor out = Tensor::empty(t.shape(), delta.dtype(), t.device());
  ops::copy_(ops::narrow(out, 0, 0, half), delta);
  ops::copy_(ops::narrow(out, 0, half, half), delta);
  return out;
}

// where(|dx| < eps, ordinary, numerator / dx): the rescale multiplier with its fallback.
Tensor rescale(const Tensor& numerator, const Tensor& dx, const Tensor& ordinary, double eps) {
  const Tensor small = ops::lt(ops::abs(dx), ops::scalar_like(eps, dx));
  // Divide by 1 where the fallback is taken, so no inf/NaN is ever formed.
  const Tensor safe_dx = ops::where(small, ops::scalar_like(1.0, dx), dx);
  return ops::where(small, ordinary, ops::div(numerator, safe_dx));
}

// DeepLIFT's ReLU rule in one pass over the doubled batch (float32 / float64, contiguous, CPU):
// per element the same operations in the same order as the composed rule below (dx = x - x',
// dy = y - y', where(|dx| < eps, g 1[x > 0], (g dy) / dx)), each rounding once, so the result is
// identical; it replaces about a dozen passes and temporaries over every ReLU's activation, which
// made DeepLIFT's backward about three times a plain one. Element i of the input half and
// element i of the reference half share dx and dy.
// The eight-lane (AVX2) body shared by the fused rules for float32: where |dx| < eps the fallback,
// else numerator / dx, dividing by 1 in the fallback lanes as the composed rule does (so no lane
// forms inf or NaN it does not need). IEEE sub, mul and div round the same in a lane as in a
// scalar, so the vector loops give the scalar loops' bits. (The compiler does not vectorise the
// scalar loops itself: it will not turn their selects around a division into blends.)
inline __m256 rescale_or_fallback(__m256 numerator, __m256 dx, __m256 fallback, __m256 small) {
  return _mm256_blendv_ps(_mm256_div_ps(numerator, _mm256_blendv_ps(dx, _mm256_set1_ps(1.0f), small)), fallback, small);
}
inline __m256 is_small(__m256 dx, float eps) {
  return _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), dx), _mm256_set1_ps(eps), _CMP_LT_OQ);  // NaN: false
}

// relu_rescale's loop for float32, eight elements at a time from begin; returns where it stopped.
int64_t relu_rescale_avx2(const float* x, const float* y, const float* g, int64_t half, float eps, float* out,
                          int64_t begin, int64_t end) {
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const int64_t j = i + half;
    const __m256 xi = _mm256_loadu_ps(x + i), xj = _mm256_loadu_ps(x + j);
    const __m256 gi = _mm256_loadu_ps(g + i), gj = _mm256_loadu_ps(g + j);
    const __m256 dx = _mm256_sub_ps(xi, xj), dy = _mm256_sub_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(y + j));
    const __m256 small = is_small(dx, eps);
    // g 1[x > 0]: g where x > 0, else +0.
    const __m256 ordinary_i = _mm256_and_ps(gi, _mm256_cmp_ps(xi, _mm256_setzero_ps(), _CMP_GT_OQ));
    const __m256 ordinary_j = _mm256_and_ps(gj, _mm256_cmp_ps(xj, _mm256_setzero_ps(), _CMP_GT_OQ));
    _mm256_storeu_ps(out + i, rescale_or_fallback(_mm256_mul_ps(gi, dy), dx, ordinary_i, small));
    _mm256_storeu_ps(out + j, rescale_or_fallback(_mm256_mul_ps(gj, dy), dx, ordinary_j, small));
  }
  return i;
}

template <typename T>
void relu_rescale(const T* x, const T* y, const T* g, int64_t half, T eps, T* out) {
  cpu::fast::for_chunks(half, [&](int64_t begin, int64_t end) {
    int64_t i = begin;
    if constexpr (std::is_same_v<T, float>) i = relu_rescale_avx2(x, y, g, half, eps, out, begin, end);
    for (; i < end; ++i) {
      const int64_t j = i + half;
      const T dx = x[i] - x[j], dy = y[i] - y[j];
      const bool small = std::abs(dx) < eps;
      out[i] = small ? (x[i] > 0 ? g[i] : T(0)) : (g[i] * dy) / dx;
      out[j] = small ? (x[j] > 0 ? g[j] : T(0)) : (g[j] * dy) / dx;
    }
  });
}

// The fused ReLU rule when the operands qualify (else false: the composed rule runs).
bool fused_relu_rescale(const Node& node, const Tensor& g, double eps, Tensor& out) {
  const Tensor& x = node.saved[0];
  const Tensor& y = node.saved[1];
  if (node.kind() != OpKind::relu || !cpu::fast::enabled() || !x.defined() || !y.defined() || !g.defined()) return false;
  const DType dtype = x.dtype();
  if ((dtype != DType::f32 && dtype != DType::f64) || y.dtype() != dtype || g.dtype() != dtype) return false;
  if (!x.device().is_cpu() || !y.device().is_cpu() || !g.device().is_cpu()) return false;
  if (!x.is_contiguous() || !y.is_contiguous() || !g.is_contiguous()) return false;
  if (x.shape() != y.shape() || x.shape() != g.shape() || x.dim() < 1 || x.size(0) % 2 != 0) return false;
  out = Tensor::empty(x.shape(), dtype, x.device());
  const int64_t half = x.numel() / 2;
  if (dtype == DType::f32) {
    relu_rescale(x.data<float>(), y.data<float>(), g.data<float>(), half, static_cast<float>(eps), out.data<float>());
  } else {
    relu_rescale(x.data<double>(), y.data<double>(), g.data<double>(), half, eps, out.data<double>());
  }
  return true;
}

Grads deeplift_nonlinearity(const Node& node, const Tensor& g, double eps) {
  if (Tensor fused; fused_relu_rescale(node, g, eps, fused)) return {fused};
  const Tensor& x = node.saved[0];
  const Tensor& y = node.saved[1];
  const ops::UnaryParams params{node.attrs[0], node.attrs[1]};
  const Tensor ordinary = ops::unary_backward(unary_op_of(node.kind()), x, y, g, params);
  const Tensor dx = doubled_difference(x, "input");
  const Tensor dy = doubled_difference(y, "output");
  return {rescale(ops::mul(g, dy), dx, ordinary, eps)};
}

// DeepLIFT's max-pool rule (deeplift_max_pool below) in one pass per pair of planes, float32 /
// float64, contiguous, CPU: per element the same operations in the same order as the composed
// rule (m = maximum(y, y'), the products g (m - y') and g (y - m) scattered to each half's argmax
// in output order from zero, as max_pool2d_backward does, their sum divided by dx = x - x' where
// |dx| >= eps, else the ordinary routed g), so the result is identical. The composed rule makes
// about twenty passes and temporaries over the pooled activation; on ResNet's stem output that
// was 9 ms of a 57 ms DeepLIFT call. Plane p of the input half pairs with plane p + half_planes
// of the reference half; each pair scatters into its own four plane-sized accumulators.
// v rounded to T where it stands. The composed rule rounds each product in its own mul pass; in
// one loop the compiler may contract `acc += a * b` into an FMA (GCC does at -O2), which rounds
// once and breaks the equality. An empty asm with v in a vector register hides the product from
// that rewrite (x86-64, as all of loupe's CPU code).
template <typename T>
inline T rounded(T v) {
  asm("" : "+x"(v));
  return v;
}

template <typename T>
void max_pool_rescale(const T* x, const T* y, const int64_t* indices, const T* g, int64_t half_planes,
                      int64_t in_plane, int64_t out_plane, T eps, T* out) {
  parallel_for(0, half_planes, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, in_plane)), [&](int64_t begin, int64_t end) {
    std::vector<T> scratch(static_cast<size_t>(4 * in_plane));
    T* routed_in = scratch.data();
    T* routed_ref = routed_in + in_plane;
    T* ordinary_in = routed_ref + in_plane;
    T* ordinary_ref = ordinary_in + in_plane;
    for (int64_t plane = begin; plane < end; ++plane) {
      std::fill(scratch.begin(), scratch.end(), T(0));
      const int64_t o_in = plane * out_plane, o_ref = (plane + half_planes) * out_plane;
      for (int64_t o = 0; o < out_plane; ++o) {
        const T y_in = y[o_in + o], y_ref = y[o_ref + o];
        const T m = (y_in != y_in) ? y_in : ((y_ref != y_ref) ? y_ref : (y_in > y_ref ? y_in : y_ref));  // ops::maximum
        // A window with no tap inside the input holds an index outside the plane: no gradient.
        if (const int64_t at = indices[o_in + o]; at >= 0 && at < in_plane) {
          routed_in[at] += rounded(g[o_in + o] * (m - y_ref));
          ordinary_in[at] += g[o_in + o];
        }
        if (const int64_t at = indices[o_ref + o]; at >= 0 && at < in_plane) {
          routed_ref[at] += rounded(g[o_ref + o] * (y_in - m));
          ordinary_ref[at] += g[o_ref + o];
        }
      }
      const int64_t i_in = plane * in_plane, i_ref = (plane + half_planes) * in_plane;
      int64_t i = 0;
      if constexpr (std::is_same_v<T, float>) {
        for (; i + 8 <= in_plane; i += 8) {
          const __m256 dx = _mm256_sub_ps(_mm256_loadu_ps(x + i_in + i), _mm256_loadu_ps(x + i_ref + i));
          const __m256 numerator = _mm256_add_ps(_mm256_loadu_ps(routed_in + i), _mm256_loadu_ps(routed_ref + i));
          const __m256 small = is_small(dx, eps);
          _mm256_storeu_ps(out + i_in + i, rescale_or_fallback(numerator, dx, _mm256_loadu_ps(ordinary_in + i), small));
          _mm256_storeu_ps(out + i_ref + i, rescale_or_fallback(numerator, dx, _mm256_loadu_ps(ordinary_ref + i), small));
        }
      }
      for (; i < in_plane; ++i) {
        const T dx = x[i_in + i] - x[i_ref + i];
        const T numerator = routed_in[i] + routed_ref[i];
        const bool small = std::abs(dx) < eps;
        out[i_in + i] = small ? ordinary_in[i] : numerator / dx;
        out[i_ref + i] = small ? ordinary_ref[i] : numerator / dx;
      }
    }
  });
}

// The fused max-pool rule when the operands qualify (else false: the composed rule runs).
bool fused_max_pool_rescale(const Node& node, const Tensor& g, double eps, Tensor& out) {
  const Tensor& x = node.saved[0];
  const Tensor& y = node.saved[1];
  const Tensor& indices = node.saved[2];
  if (!cpu::fast::enabled() || !x.defined() || !y.defined() || !indices.defined() || !g.defined()) return false;
  const DType dtype = x.dtype();
  if ((dtype != DType::f32 && dtype != DType::f64) || y.dtype() != dtype || g.dtype() != dtype ||
      indices.dtype() != DType::i64) {
    return false;
  }
  for (const Tensor* t : {&x, &y, &indices, &g}) {
    if (!t->device().is_cpu() || !t->is_contiguous()) return false;
  }
  if (x.dim() < 3 || y.dim() != x.dim() || y.shape() != g.shape() || y.shape() != indices.shape() ||
      x.size(0) % 2 != 0 || y.size(0) != x.size(0)) {
    return false;
  }
  const int64_t in_plane = x.size(-2) * x.size(-1), out_plane = y.size(-2) * y.size(-1);
  if (in_plane == 0 || out_plane == 0 || x.numel() / in_plane != y.numel() / out_plane) return false;
  const int64_t half_planes = x.numel() / in_plane / 2;
  out = Tensor::empty(x.shape(), dtype, x.device());
  if (dtype == DType::f32) {
    max_pool_rescale(x.data<float>(), y.data<float>(), indices.data<int64_t>(), g.data<float>(), half_planes, in_plane,
                     out_plane, static_cast<float>(eps), out.data<float>());
  } else {
    max_pool_rescale(x.data<double>(), y.data<double>(), indices.data<int64_t>(), g.data<double>(), half_planes,
                     in_plane, out_plane, eps, out.data<double>());
  }
  return true;
}

Grads deeplift_max_pool(const Node& node, const Tensor& g, double eps) {
  if (Tensor fused; fused_max_pool_rescale(node, g, eps, fused)) return {fused};
  const Tensor& x = node.saved[0];        // (2B, C, H, W)
  const Tensor& y = node.saved[1];        // (2B, C, OH, OW)
  const Tensor& indices = node.saved[2];  // argmax positions of each half's own windows
  const int64_t half = y.size(0) / 2;
  LOUPE_CHECK(y.size(0) % 2 == 0, "deeplift: max_pool2d output of shape ", shape_str(y.shape()),
              " is not a doubled batch");
  const Tensor y_in = ops::narrow(y, 0, 0, half);
  const Tensor y_ref = ops::narrow(y, 0, half, half);
  const Tensor m = ops::maximum(y_in, y_ref);
  // Route g * (m - y') through the input half's argmax and g * (y - m) through the reference
  // half's, then add the two halves: that is the pooled difference seen from each input pixel.
  Tensor delta_out = Tensor::empty(y.shape(), y.dtype(), y.device());
  ops::copy_(ops::narrow(delta_out, 0, 0, half), ops::sub(m, y_ref));
  ops::copy_(ops::narrow(delta_out, 0, half, half), ops::sub(y_in, m));
  const Tensor routed = ops::max_pool2d_backward(ops::mul(g, delta_out), indices, x.shape());
  const Tensor summed = ops::add(ops::narrow(routed, 0, 0, half), ops::narrow(routed, 0, half, half));
  Tensor numerator = Tensor::empty(x.shape(), summed.dtype(), x.device());
  ops::copy_(ops::narrow(numerator, 0, 0, half), summed);
  ops::copy_(ops::narrow(numerator, 0, half, half), summed);
  const Tensor ordinary = ops::max_pool2d_backward(g, indices, x.shape());
  return {rescale(numerator, doubled_difference(x, "input"), ordinary, eps)};
}

Grads deeplift_softmax(const Node& node, const Tensor& g, double eps) {
  const Tensor& x = node.saved[0];
  const Tensor& y = node.saved[1];
  const auto dim = static_cast<int64_t>(node.attrs[0]);
  const Tensor ordinary = ops::softmax_backward(y, g, dim);
  const Tensor unnormalised =
      rescale(ops::mul(g, doubled_difference(y, "output")), doubled_difference(x, "input"), ordinary, eps);
  // Captum's normalisation: subtract the mean over the whole tensor.
  return {ops::sub(unnormalised, ops::mean(unnormalised))};
}

}  // namespace

RuleSet guided_backprop_rules() {
  RuleSet rules;
  rules.set(OpKind::relu, [](const Node& node, const Tensor& g) -> Grads {
    // 1[x > 0] * max(g, 0): the ordinary ReLU backward of the positive part of g.
    return {ops::unary_backward(ops::UnaryOp::relu, node.saved[0], node.saved[1], positive_part(g))};
  });
  return rules;
}

RuleSet deconvolution_rules() {
  RuleSet rules;
  rules.set(OpKind::relu, [](const Node&, const Tensor& g) -> Grads { return {positive_part(g)}; });
  return rules;
}

RuleSet deeplift_rescale_rules(double eps) {
  RuleSet rules;
  for (OpKind kind : {OpKind::relu, OpKind::elu, OpKind::leaky_relu, OpKind::sigmoid, OpKind::tanh, OpKind::softplus,
                      OpKind::gelu, OpKind::gelu_tanh, OpKind::silu}) {
    rules.set(kind, [eps](const Node& node, const Tensor& g) { return deeplift_nonlinearity(node, g, eps); });
  }
  rules.set(OpKind::max_pool2d, [eps](const Node& node, const Tensor& g) { return deeplift_max_pool(node, g, eps); });
  rules.set(OpKind::softmax, [eps](const Node& node, const Tensor& g) { return deeplift_softmax(node, g, eps); });
  return rules;
}

}  // namespace loupe::autograd
