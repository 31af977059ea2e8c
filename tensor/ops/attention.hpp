// Scaled dot-product attention (raw forward and backward), PyTorch's
// F.scaled_dot_product_attention with grouped KV heads:
//
//   q (B, H, Tq, D), k (B, Hkv, Tk, D), v (B, Hkv, Tk, Dv), H a multiple of Hkv: query head h reads
//   KV head h / (H / Hkv) (the grouping of GQA; H == Hkv is plain multi-head attention).
//   scores  s = scale * q k^T + additive mask                      (B, H, Tq, Tk)
//   out     = softmax(s over allowed keys) v                       (B, H, Tq, Dv)
//
// Masks. `mask` is broadcastable to (B, H, Tq, Tk): a bool mask says which keys a query may attend
// (true = may attend); a floating mask is added to the scores (-inf entries forbid a key). `causal`
// forbids keys after the query: top_left (PyTorch's is_causal=True: query i sees keys j <= i, the
// mask torch.ones(Tq, Tk).tril()) or bottom_right (query i sees keys j <= i + Tk - Tq, the
// alignment a KV cache needs; torch.nn.attention.bias.causal_lower_right). Both combine with mask.
// A query row that may attend no key at all (every key masked) gives an output of zeros, a
// log-sum-exp of -inf and zero gradients -- the behaviour of PyTorch's math path since 2.5
// (_safe_softmax), rather than the NaN of a plain softmax over -inf.
// scale < 0 means 1 / sqrt(D) (PyTorch's scale=None). The mask gets no gradient.
//
// Kernels. attention_*_reference is the plain path: it materialises the (B, H, Tq, Tk) scores with
// tensor ops (matmul, where, exp, sum), so it runs on any device. The fast CPU kernel
// (tensor/cpu/attention.hpp) is fused and tiled with an online softmax: no Tq x Tk matrix is
// formed. On CUDA, tensor/cuda/attention.cu holds simple fused kernels (head dims up to 128,
// float32 / float64; other calls take the reference path). LOUPE_REFERENCE_KERNELS=1 forces the
// reference path everywhere. The backward recomputes the probabilities from the saved log-sum-exp.
// Tests: tests/ops/op_table_attention.cpp (op table, fast vs reference kernels, masks, errors),
// tests/cuda/test_cuda_attention.cpp (the CUDA kernels; skipped without a GPU)
#pragma once

#include "tensor/tensor.hpp"

// The options live in namespace loupe (like Conv2dParams) so that the differentiable
// loupe::scaled_dot_product_attention and this raw one are never ambiguous through ADL.
namespace loupe {

enum class CausalMode { none, top_left, bottom_right };

struct AttentionOptions {
  Tensor mask;                          // bool or floating, broadcastable to (B, H, Tq, Tk); may be undefined
  CausalMode causal = CausalMode::none;
  double scale = -1.0;                  // < 0: 1 / sqrt(D)
};

}  // namespace loupe

namespace loupe::ops {

struct AttentionForward {
  Tensor out;  // (B, H, Tq, Dv), q's dtype
  Tensor lse;  // (B, H, Tq) log-sum-exp of the allowed scores (-inf for a row with none), q's dtype
};

struct AttentionGrads {
  Tensor dq, dk, dv;  // shapes of q, k, v (dk, dv summed over the query heads of each KV head)
};

// The op: the fast CPU kernel when it applies, otherwise the reference path.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const AttentionOptions& options = {});
AttentionForward attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                   const AttentionOptions& options);
// Given g = dL/dout and the forward's out and lse.
AttentionGrads attention_backward(const Tensor& g, const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& out, const Tensor& lse, const AttentionOptions& options);

// The plain (materialising) path, on any device; the fast kernel is tested against it.
AttentionForward attention_forward_reference(const Tensor& q, const Tensor& k, const Tensor& v,
                                             const AttentionOptions& options);
AttentionGrads attention_backward_reference(const Tensor& g, const Tensor& q, const Tensor& k, const Tensor& v,
                                            const Tensor& out, const Tensor& lse, const AttentionOptions& options);

// The checked sizes of one call (raises loupe::Error naming the op and the shapes otherwise).
struct AttentionShape {
  int64_t batch, heads, kv_heads, q_len, kv_len, head_dim, v_dim;
  double scale;  // resolved (never < 0)
  CausalMode causal;
  // Causal modes: key j is allowed for query i iff j <= i + causal_offset().
  int64_t causal_offset() const { return causal == CausalMode::bottom_right ? kv_len - q_len : 0; }
};
AttentionShape check_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options,
                               const char* op);

}  // namespace loupe::ops
