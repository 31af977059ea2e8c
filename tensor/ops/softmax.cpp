// softmax and log_softmax along one dim, and their backward kernels. See softmax.hpp.
//
// Inputs are made contiguous and seen as (outer, size, inner) around the dim: each "line" of
// `size` elements (stride inner) is normalised on its own, lines run in parallel. Sums run in
// double; the max is subtracted first so exp never overflows. Float32 with the dim innermost takes
// the vectorised kernel of tensor/cpu/fast_elementwise.hpp (LOUPE_REFERENCE_KERNELS=1 turns it off).
#include "tensor/ops/softmax.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "tensor/cpu/fast_elementwise.hpp"
#include "tensor/cpu/loops.hpp"
#include "tensor/cpu/reduce.hpp"
#include "tensor/dispatch.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/parallel.hpp"

namespace loupe::ops {

namespace {

// Calls body(base) for every line, in parallel; element k of the line is at base + k * inner.
template <typename Body>
void for_each_line(const cpu::Lines& l, Body&& body) {
  const int64_t grain = std::max<int64_t>(1, cpu::kElementwiseGrain / std::max<int64_t>(l.size, 1));
  parallel_for(0, l.outer * l.inner, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t line = lo; line < hi; ++line) body((line / l.inner) * l.size * l.inner + line % l.inner);
  });
}

template <bool Log>
Tensor softmax_forward(const Tensor& x_in, int64_t dim_in, const char* op) {
  const int64_t dim = wrap_dim(dim_in, x_in.dim(), op);
  const Tensor x = contiguous(x_in);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  const cpu::Lines l = cpu::lines_around(x.shape(), dim);
  if (cpu::fast::enabled() && x.dtype() == DType::f32 && l.inner == 1) {
    cpu::fast::softmax_rows(x.data<float>(), l.outer, l.size, Log, y.data<float>());
    return y;
  }
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = x.data<T>();
    T* out = y.data<T>();
    for_each_line(l, [&](int64_t base) {
      // A NaN anywhere makes the whole line NaN (through the sum), as in PyTorch.
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t k = 0; k < l.size; ++k) m = std::max(m, static_cast<double>(in[base + k * l.inner]));
      double total = 0.0;
      for (int64_t k = 0; k < l.size; ++k) total += std::exp(static_cast<double>(in[base + k * l.inner]) - m);
      const double log_total = std::log(total);
      for (int64_t k = 0; k < l.size; ++k) {
        const double shifted = static_cast<double>(in[base + k * l.inner]) - m;
        out[base + k * l.inner] = static_cast<T>(Log ? shifted - log_total : std::exp(shifted) / total);
      }
    });
  });
  return y;
}

// Shared checks of the backward kernels: y and g have one shape and one floating dtype.
void check_backward_args(const Tensor& y, const Tensor& g, const char* op) {
  LOUPE_CHECK(y.shape() == g.shape(), op, ": output shape ", shape_str(y.shape()), " and gradient shape ",
              shape_str(g.shape()), " differ");
  LOUPE_CHECK(y.dtype() == g.dtype(), op, ": output dtype ", y.dtype(), " and gradient dtype ", g.dtype(),
              " differ");
}

// softmax: dx = y * (g - sum(g * y)); log_softmax: dx = g - exp(y) * sum(g).
template <bool Log>
Tensor softmax_backward_kernel(const Tensor& y_in, const Tensor& g_in, int64_t dim_in, const char* op) {
  check_backward_args(y_in, g_in, op);
  const int64_t dim = wrap_dim(dim_in, y_in.dim(), op);
  const Tensor y = contiguous(y_in);
  const Tensor g = contiguous(g_in);
  Tensor dx = Tensor::empty(y.shape(), y.dtype(), y.device());
  const cpu::Lines l = cpu::lines_around(y.shape(), dim);
  dispatch_floating(y.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* yp = y.data<T>();
    const T* gp = g.data<T>();
    T* out = dx.data<T>();
    for_each_line(l, [&](int64_t base) {
      double total = 0.0;
      for (int64_t k = 0; k < l.size; ++k) {
        const int64_t at = base + k * l.inner;
        total += Log ? static_cast<double>(gp[at]) : static_cast<double>(gp[at]) * static_cast<double>(yp[at]);
      }
      for (int64_t k = 0; k < l.size; ++k) {
        const int64_t at = base + k * l.inner;
        const double yv = static_cast<double>(yp[at]), gv = static_cast<double>(gp[at]);
        out[at] = static_cast<T>(Log ? gv - std::exp(yv) * total : yv * (gv - total));
      }
    });
  });
  return dx;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_forward<false>(x, dim, "softmax"); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_forward<true>(x, dim, "log_softmax"); }

Tensor softmax_backward(const Tensor& y, const Tensor& g, int64_t dim) {
  return softmax_backward_kernel<false>(y, g, dim, "softmax_backward");
}

Tensor log_softmax_backward(const Tensor& y, const Tensor& g, int64_t dim) {
  return softmax_backward_kernel<true>(y, g, dim, "log_softmax_backward");
}

}  // namespace loupe::ops
