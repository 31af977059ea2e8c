// Strided copy with dtype conversion. See copy.hpp.
#include "tensor/ops/copy.hpp"

#include <cstring>

#include "tensor/cpu/loops.hpp"
#include "tensor/dispatch.hpp"
#include "tensor/cuda/ops.hpp"

namespace loupe::ops {

void copy_(const Tensor& dst, const Tensor& src) {
  if (dst.device().is_cuda() || src.device().is_cuda()) return cuda::copy_(dst, src);
  const Shape target = broadcast_shapes(dst.shape(), src.shape(), "copy_");
  LOUPE_CHECK(target == dst.shape(), "copy_: source shape ", shape_str(src.shape()),
              " does not broadcast to destination shape ", shape_str(dst.shape()));
  LOUPE_CHECK(dst.device().is_cpu() && src.device().is_cpu(), "copy_: ", src.device().str(), " -> ",
              dst.device().str(), " needs the CUDA backend");
  const Strides src_strides = broadcast_strides(src.shape(), src.strides(), dst.shape());
  dispatch_all(dst.dtype(), "copy_", [&](auto dst_tag) {
    using D = typename decltype(dst_tag)::type;
    dispatch_all(src.dtype(), "copy_", [&](auto src_tag) {
      using S = typename decltype(src_tag)::type;
      D* out = static_cast<D*>(dst.raw_data());
      const S* in = static_cast<const S*>(src.raw_data());
      cpu::for_each_run<2>(dst.shape(), {dst.strides(), src_strides},
                           [&](int64_t n, const cpu::Offsets<2>& at, const cpu::Offsets<2>& step) {
                             D* o = out + at[0];
                             const S* i = in + at[1];
                             if (step[0] == 1 && step[1] == 1) {
                               for (int64_t j = 0; j < n; ++j) o[j] = static_cast<D>(i[j]);
                             } else {
                               for (int64_t j = 0; j < n; ++j) o[j * step[0]] = static_cast<D>(i[j * step[1]]);
                             }
                           });
    });
  });
}

void fill_(const Tensor& dst, double value) {
  if (dst.device().is_cuda()) return cuda::fill_(dst, value);
  dispatch_all(dst.dtype(), "fill_", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* out = static_cast<T*>(dst.raw_data());
    const T v = static_cast<T>(value);
    cpu::for_each_run<1>(dst.shape(), {dst.strides()},
                         [&](int64_t n, const cpu::Offsets<1>& at, const cpu::Offsets<1>& step) {
                           for (int64_t j = 0; j < n; ++j) out[at[0] + j * step[0]] = v;
                         });
  });
}

Tensor contiguous(const Tensor& x) { return x.is_contiguous() ? x : clone(x); }

Tensor clone(const Tensor& x) {
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  copy_(out, x);
  return out;
}

Tensor to_dtype(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  Tensor out = Tensor::empty(x.shape(), dtype, x.device());
  copy_(out, x);
  return out;
}

}  // namespace loupe::ops
