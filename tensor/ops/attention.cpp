// Scaled dot-product attention: argument checks, the reference (materialising) path built from
// tensor ops, and the dispatch to the fused CPU kernel. See attention.hpp.
#include "tensor/ops/attention.hpp"

#include <cmath>
#include <limits>

#include "tensor/cpu/attention.hpp"
#include "tensor/cpu/fast_elementwise.hpp"
#include "tensor/cuda/ops.hpp"
#include "tensor/dispatch.hpp"
#include "tensor/ops/binary.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/creation.hpp"
#include "tensor/ops/device.hpp"
#include "tensor/ops/linalg.hpp"
#include "tensor/ops/reduce.hpp"
#include "tensor/ops/unary.hpp"
#include "tensor/ops/view.hpp"

namespace loupe::ops {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// A 0-d tensor of x's dtype and device.
Tensor scalar_of(double value, const Tensor& like) { return full({}, value, like.dtype(), like.device()); }

// (B, Hkv, T, D) -> (B, H, T, D): each KV head repeated for the `group` query heads that read it.
Tensor repeat_kv(const Tensor& x, int64_t group) {
  if (group == 1) return x;
  const Shape& s = x.shape();
  return reshape(expand(unsqueeze(x, 2), {s[0], s[1], group, s[2], s[3]}), {s[0], s[1] * group, s[2], s[3]});
}

// (B, H, T, D) -> (B, Hkv, T, D): the sum over each group of query heads (repeat_kv's adjoint).
Tensor sum_groups(const Tensor& x, int64_t group) {
  if (group == 1) return x;
  const Shape& s = x.shape();
  return sum(reshape(x, {s[0], s[1] / group, group, s[2], s[3]}), {2});
}

// The mask as a 4-d tensor (leading 1s added).
Tensor mask_4d(const Tensor& mask) {
  Shape shape = mask.shape();
  while (shape.size() < 4) shape.insert(shape.begin(), 1);
  return reshape(mask, shape);
}

// The masked scores scale * q k^T + mask with forbidden keys at -inf   (B, H, Tq, Tk).
Tensor masked_scores(const Tensor& q, const Tensor& k, const AttentionOptions& o, const AttentionShape& s) {
  Tensor scores = mul(matmul(q, transpose(repeat_kv(k, s.heads / s.kv_heads), 2, 3)), s.scale);
  const Tensor minus_inf = scalar_of(-kInf, scores);
  if (o.mask.defined()) {
    if (o.mask.dtype() == DType::b8) {
      scores = where(o.mask, scores, minus_inf);
    } else {
      scores = add(scores, to_dtype(o.mask, scores.dtype()));
    }
  }
  if (s.causal != CausalMode::none) {
    // allowed[i, j] = j <= i + offset   (Tq, Tk)
    const Tensor rows = add(reshape(arange(s.q_len), {s.q_len, 1}), static_cast<double>(s.causal_offset()));
    const Tensor allowed = le(reshape(arange(s.kv_len), {1, s.kv_len}), rows);
    scores = where(to_device(allowed, scores.device()), scores, minus_inf);
  }
  return scores;
}

struct SafeSoftmax {
  Tensor p;    // (B, H, Tq, Tk), 0 on forbidden keys and on rows with no allowed key
  Tensor lse;  // (B, H, Tq), -inf on rows with no allowed key
};

// softmax over the last dim that gives 0 (not NaN) on a row of -inf.
SafeSoftmax safe_softmax(const Tensor& scores) {
  const Tensor m = amax(scores, {-1}, true);
  const Tensor safe_m = where(eq(m, scalar_of(-kInf, m)), scalar_of(0.0, m), m);
  const Tensor e = exp(sub(scores, safe_m));
  const Tensor l = sum(e, {-1}, true);
  const Tensor p = div(e, where(eq(l, scalar_of(0.0, l)), scalar_of(1.0, l), l));
  return {p, squeeze(add(safe_m, log(l)), -1)};
}

// The fused kernels (CPU, or CUDA where tensor/cuda/attention.cu handles the call), unless
// LOUPE_REFERENCE_KERNELS=1 forces the reference path.
bool use_fast_kernel(const Tensor& q) {
  return cpu::fast::enabled() && (q.dtype() == DType::f32 || q.dtype() == DType::f64);
}

template <typename T>
cpu::View4<T> view4(const Tensor& x) {
  return {x.data<T>(), x.stride(0), x.stride(1), x.stride(2), x.stride(3)};
}

// The mask expanded to (B, H, Tq, Tk) (stride 0 along broadcast dims), an additive one in `dtype`.
Tensor expanded_mask(const AttentionOptions& o, const AttentionShape& s, DType dtype) {
  if (!o.mask.defined()) return Tensor();
  const bool is_bool = o.mask.dtype() == DType::b8;
  return expand(mask_4d(is_bool ? o.mask : to_dtype(o.mask, dtype)), {s.batch, s.heads, s.q_len, s.kv_len});
}

cpu::MaskView mask_view(const Tensor& mask) {
  cpu::MaskView view;
  if (!mask.defined()) return view;
  view.data = mask.raw_data();
  view.is_bool = mask.dtype() == DType::b8;
  view.s0 = mask.stride(0);
  view.s1 = mask.stride(1);
  view.s2 = mask.stride(2);
  view.s3 = mask.stride(3);
  return view;
}

bool empty_call(const AttentionShape& s) { return s.batch * s.heads * s.q_len * s.v_dim == 0 || s.kv_len == 0; }

}  // namespace

AttentionShape check_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& o,
                               const char* op) {
  LOUPE_CHECK(q.defined() && k.defined() && v.defined(), op, ": q, k and v must be defined");
  LOUPE_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, op,
              ": expected q (B, H, Tq, D), k (B, Hkv, Tk, D) and v (B, Hkv, Tk, Dv), got q ", shape_str(q.shape()),
              ", k ", shape_str(k.shape()), ", v ", shape_str(v.shape()));
  LOUPE_CHECK(is_floating(q.dtype()) && q.dtype() == k.dtype() && q.dtype() == v.dtype(), op,
              ": q, k and v must share one floating dtype, got ", q.dtype(), ", ", k.dtype(), ", ", v.dtype());
  check_same_device(op, {q, k, v});
  AttentionShape s{q.size(0), q.size(1), k.size(1), q.size(2), k.size(2), q.size(3), v.size(3), o.scale, o.causal};
  const bool ok = k.size(0) == s.batch && v.size(0) == s.batch && v.size(1) == s.kv_heads && v.size(2) == s.kv_len &&
                  k.size(3) == s.head_dim && s.kv_heads > 0 && s.heads % s.kv_heads == 0;
  LOUPE_CHECK(ok, op, ": shapes do not match: q ", shape_str(q.shape()), " (B, H, Tq, D), k ", shape_str(k.shape()),
              " (B, Hkv, Tk, D), v ", shape_str(v.shape()),
              " (B, Hkv, Tk, Dv); batch, D, Tk must agree and H must be a multiple of Hkv");
  if (o.mask.defined()) {
    LOUPE_CHECK(o.mask.dtype() == DType::b8 || is_floating(o.mask.dtype()), op,
                ": the mask must be bool (true = may attend) or floating (added to the scores), got ", o.mask.dtype());
    LOUPE_CHECK(o.mask.device() == q.device(), op, ": the mask is on ", o.mask.device().str(), ", q on ",
                q.device().str());
    const Shape target{s.batch, s.heads, s.q_len, s.kv_len};
    bool broadcastable = o.mask.dim() <= 4;
    for (int64_t i = 1; broadcastable && i <= o.mask.dim(); ++i) {
      const int64_t m = o.mask.size(-i), t = target[static_cast<size_t>(4 - i)];
      broadcastable = m == t || m == 1;
    }
    LOUPE_CHECK(broadcastable, op, ": mask of shape ", shape_str(o.mask.shape()), " does not broadcast to ",
                shape_str(target), " (B, H, Tq, Tk)");
  }
  LOUPE_CHECK(std::isfinite(o.scale), op, ": scale must be finite, got ", o.scale);
  if (s.scale < 0) s.scale = 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(s.head_dim, 1)));
  return s;
}

AttentionForward attention_forward_reference(const Tensor& q, const Tensor& k, const Tensor& v,
                                             const AttentionOptions& o) {
  const AttentionShape s = check_attention(q, k, v, o, "scaled_dot_product_attention");
  if (empty_call(s)) {
    return {zeros({s.batch, s.heads, s.q_len, s.v_dim}, q.dtype(), q.device()),
            full({s.batch, s.heads, s.q_len}, -kInf, q.dtype(), q.device())};
  }
  const SafeSoftmax sm = safe_softmax(masked_scores(q, k, o, s));
  return {matmul(sm.p, repeat_kv(v, s.heads / s.kv_heads)), sm.lse};
}

AttentionGrads attention_backward_reference(const Tensor& g, const Tensor& q, const Tensor& k, const Tensor& v,
                                            const Tensor& out, const Tensor& /*lse*/, const AttentionOptions& o) {
  const AttentionShape s = check_attention(q, k, v, o, "scaled_dot_product_attention_backward");
  if (empty_call(s)) return {zeros_like(q), zeros_like(k), zeros_like(v)};
  const int64_t group = s.heads / s.kv_heads;
  const Tensor p = safe_softmax(masked_scores(q, k, o, s)).p;  // (B, H, Tq, Tk)
  const Tensor kr = repeat_kv(k, group), vr = repeat_kv(v, group);
  const Tensor dv = sum_groups(matmul(transpose(p, 2, 3), g), group);
  // Softmax backward: ds = p * (dp - sum_j dp_j p_j), and sum_j dp_j p_j = sum_d g_d out_d.
  const Tensor dp = matmul(g, transpose(vr, 2, 3));
  const Tensor ds = mul(p, sub(dp, sum(mul(g, out), {-1}, true)));
  const Tensor dq = mul(matmul(ds, kr), s.scale);
  const Tensor dk = sum_groups(mul(matmul(transpose(ds, 2, 3), q), s.scale), group);
  return {dq, dk, dv};
}

AttentionForward attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& o) {
  if (!use_fast_kernel(q)) return attention_forward_reference(q, k, v, o);
  const AttentionShape s = check_attention(q, k, v, o, "scaled_dot_product_attention");
  AttentionForward f{Tensor::empty({s.batch, s.heads, s.q_len, s.v_dim}, q.dtype(), q.device()),
                     Tensor::empty({s.batch, s.heads, s.q_len}, q.dtype(), q.device())};
  if (f.out.numel() == 0) return f;
  const Tensor mask_holder = expanded_mask(o, s, q.dtype());
  if (q.device().is_cuda()) {
    if (!empty_call(s) && cuda::attention_forward(s, q, k, v, mask_holder, f.out, f.lse)) return f;
    return attention_forward_reference(q, k, v, o);
  }
  const cpu::MaskView mask = mask_view(mask_holder);
  dispatch_floating(q.dtype(), "scaled_dot_product_attention", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cpu::attention_forward<T>(s, view4<T>(q), view4<T>(k), view4<T>(v), mask, f.out.data<T>(), f.lse.data<T>());
  });
  return f;
}

AttentionGrads attention_backward(const Tensor& g_in, const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& out_in, const Tensor& lse_in, const AttentionOptions& o) {
  if (!use_fast_kernel(q)) return attention_backward_reference(g_in, q, k, v, out_in, lse_in, o);
  const AttentionShape s = check_attention(q, k, v, o, "scaled_dot_product_attention_backward");
  const Shape out_shape{s.batch, s.heads, s.q_len, s.v_dim};
  LOUPE_CHECK(g_in.shape() == out_shape && out_in.shape() == out_shape, "scaled_dot_product_attention_backward: ",
              "gradient ", shape_str(g_in.shape()), " and output ", shape_str(out_in.shape()), " must be ",
              shape_str(out_shape));
  const Tensor g = to_dtype(g_in, q.dtype());
  const Tensor out = contiguous(to_dtype(out_in, q.dtype()));
  const Tensor lse = contiguous(to_dtype(lse_in, q.dtype()));
  const Tensor mask_holder = expanded_mask(o, s, q.dtype());
  if (q.device().is_cuda()) {
    AttentionGrads grads{Tensor::empty(q.shape(), q.dtype(), q.device()), Tensor::empty(k.shape(), q.dtype(), q.device()),
                         Tensor::empty(v.shape(), q.dtype(), q.device())};
    if (!empty_call(s) &&
        cuda::attention_backward(s, q, k, v, g, out, lse, mask_holder, grads.dq, grads.dk, grads.dv)) {
      return grads;
    }
    return attention_backward_reference(g, q, k, v, out, lse, o);
  }
  AttentionGrads grads{zeros(q.shape(), q.dtype()), zeros(k.shape(), q.dtype()), zeros(v.shape(), q.dtype())};
  if (empty_call(s)) return grads;
  const cpu::MaskView mask = mask_view(mask_holder);
  dispatch_floating(q.dtype(), "scaled_dot_product_attention_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cpu::attention_backward<T>(s, view4<T>(q), view4<T>(k), view4<T>(v), view4<T>(g), out.data<T>(), lse.data<T>(),
                               mask, grads.dq.data<T>(), grads.dk.data<T>(), grads.dv.data<T>());
  });
  return grads;
}

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& o) {
  return attention_forward(q, k, v, o).out;
}

}  // namespace loupe::ops
