// DeepLIFT's rescale rules (REFERENCE.md section 2) as one-pass CPU kernels over a doubled batch
// [inputs; references], float32 and float64. The autograd rules (autograd/rule_sets.cpp) run them
// on contiguous CPU tensors and fall back to the rules composed of ops otherwise; per element they
// do the same operations in the same order as the composed rules, each rounding once, so the
// result is the same bits (tests/autograd/test_rules.cpp holds them to it). What they replace:
// about a dozen passes and temporaries over every ReLU's activation, which made DeepLIFT's backward
// about three times a plain one, and about twenty over the stem's pooled activation (9 ms of a
// 57 ms ResNet18 call).
#pragma once

#include <cstdint>

namespace loupe::cpu::deeplift {

// The ReLU rule. x and y: the ReLU's input and output, 2 * half elements, element i of the input
// half pairing with element i + half of the reference half (they share dx = x - x' and
// dy = y - y'); g: the incoming gradient. out = where(|dx| < eps, g 1[x > 0], (g dy) / dx).
template <typename T>
void relu_rescale(const T* x, const T* y, const T* g, int64_t half, T eps, T* out);

// The max-pool rule. x: the pooling's input, planes of in_plane elements; y and indices: its
// output and argmax (the position inside each plane), planes of out_plane; g: the incoming
// gradient, like y. Plane p of the input half pairs with plane p + half_planes of the reference
// half. With m = maximum(y, y'), g (m - y') is routed to the input half's argmax and g (y - m) to
// the reference half's (in output order, from zero, as max_pool2d_backward does); their sum is
// divided by dx = x - x' where |dx| >= eps, else each half gets its ordinary routed g.
template <typename T>
void max_pool_rescale(const T* x, const T* y, const int64_t* indices, const T* g, int64_t half_planes,
                      int64_t in_plane, int64_t out_plane, T eps, T* out);

}  // namespace loupe::cpu::deeplift
