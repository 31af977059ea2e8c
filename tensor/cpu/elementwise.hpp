// Elementwise CPU kernels over strided, broadcast operands, built on for_each_run.
// map_unary / map_binary / map_ternary take a scalar functor and apply it to every element;
// the contiguous case gets a plain indexed loop the compiler vectorises.
// These are the reference kernels of the elementwise family (issue 3 adds hand-vectorised ones).
#pragma once

#include "tensor/cpu/loops.hpp"
#include "tensor/tensor.hpp"

namespace loupe::cpu {

// out[i] = f(a[i]); `out` has the broadcast shape, a's strides are broadcast to it.
template <typename Out, typename In, typename F>
void map_unary(const Tensor& out, const Tensor& a, F f) {
  Out* o = static_cast<Out*>(out.raw_data());
  const In* x = static_cast<const In*>(a.raw_data());
  const Strides sa = broadcast_strides(a.shape(), a.strides(), out.shape());
  for_each_run<2>(out.shape(), {out.strides(), sa}, [&](int64_t n, const Offsets<2>& at, const Offsets<2>& step) {
    Out* po = o + at[0];
    const In* px = x + at[1];
    if (step[0] == 1 && step[1] == 1) {
      for (int64_t j = 0; j < n; ++j) po[j] = f(px[j]);
    } else {
      for (int64_t j = 0; j < n; ++j) po[j * step[0]] = f(px[j * step[1]]);
    }
  });
}

// out[i] = f(a[i], b[i]) with a and b broadcast to out's shape.
template <typename Out, typename InA, typename InB, typename F>
void map_binary(const Tensor& out, const Tensor& a, const Tensor& b, F f) {
  Out* o = static_cast<Out*>(out.raw_data());
  const InA* x = static_cast<const InA*>(a.raw_data());
  const InB* y = static_cast<const InB*>(b.raw_data());
  const Strides sa = broadcast_strides(a.shape(), a.strides(), out.shape());
  const Strides sb = broadcast_strides(b.shape(), b.strides(), out.shape());
  for_each_run<3>(out.shape(), {out.strides(), sa, sb},
                  [&](int64_t n, const Offsets<3>& at, const Offsets<3>& step) {
                    Out* po = o + at[0];
                    const InA* px = x + at[1];
                    const InB* py = y + at[2];
                    if (step[0] == 1 && step[1] == 1 && step[2] == 1) {
                      for (int64_t j = 0; j < n; ++j) po[j] = f(px[j], py[j]);
                    } else if (step[0] == 1 && step[1] == 1 && step[2] == 0) {
                      const InB v = *py;  // tensor op scalar, the common broadcast case
                      for (int64_t j = 0; j < n; ++j) po[j] = f(px[j], v);
                    } else {
                      for (int64_t j = 0; j < n; ++j) po[j * step[0]] = f(px[j * step[1]], py[j * step[2]]);
                    }
                  });
}

// out[i] = f(a[i], b[i], c[i]) with broadcasting.
template <typename Out, typename InA, typename InB, typename InC, typename F>
void map_ternary(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& c, F f) {
  Out* o = static_cast<Out*>(out.raw_data());
  const InA* x = static_cast<const InA*>(a.raw_data());
  const InB* y = static_cast<const InB*>(b.raw_data());
  const InC* z = static_cast<const InC*>(c.raw_data());
  const Strides sa = broadcast_strides(a.shape(), a.strides(), out.shape());
  const Strides sb = broadcast_strides(b.shape(), b.strides(), out.shape());
  const Strides sc = broadcast_strides(c.shape(), c.strides(), out.shape());
  for_each_run<4>(out.shape(), {out.strides(), sa, sb, sc},
                  [&](int64_t n, const Offsets<4>& at, const Offsets<4>& step) {
                    for (int64_t j = 0; j < n; ++j) {
                      o[at[0] + j * step[0]] = f(x[at[1] + j * step[1]], y[at[2] + j * step[2]], z[at[3] + j * step[3]]);
                    }
                  });
}

}  // namespace loupe::cpu
