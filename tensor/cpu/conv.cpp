// Convolution CPU reference kernels: im2col + GEMM, one image at a time. See conv.hpp for the
// layouts; the fast kernels that batch images per GEMM are in fast_conv.cpp.
//
// Parallelism: the forward and the input gradient split the batch over the thread pool (each
// sample writes its own output), and a single sample lets GEMM and im2col split instead (a nested
// parallel_for runs inline). The weight gradient sums over samples in a fixed order, with GEMM
// parallel inside, so results never depend on the thread count.
#include "tensor/cpu/conv.hpp"

#include <algorithm>
#include <vector>

#include "tensor/cpu/gemm.hpp"
#include "tensor/parallel.hpp"

namespace loupe::cpu {

namespace {

// Rows of cols per parallel chunk in im2col / channels per chunk in col2im.
constexpr int64_t kIm2colGrain = 8;

}  // namespace

template <typename T>
void im2col(const ConvGeometry& g, const T* x_group, T* cols) {
  const int64_t kernel = g.kernel_h * g.kernel_w;
  const int64_t ncols = g.col_cols();
  parallel_for(0, g.col_rows(), kIm2colGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t c = r / kernel, i = (r % kernel) / g.kernel_w, j = r % g.kernel_w;
      im2col_row(g, x_group + c * g.height * g.width, i, j, cols + r * ncols);
    }
  });
}

template <typename T>
void col2im_add(const ConvGeometry& g, const T* cols, T* x_group) {
  const int64_t kernel = g.kernel_h * g.kernel_w;
  const int64_t ncols = g.col_cols();
  // One channel per task: every (i, j) row of a channel adds into that channel's plane only.
  parallel_for(0, g.group_in(), 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      T* plane = x_group + c * g.height * g.width;
      for (int64_t k = 0; k < kernel; ++k) {
        const int64_t i = k / g.kernel_w, j = k % g.kernel_w;
        const T* row = cols + (c * kernel + k) * ncols;
        const int64_t off_h = i * g.dilation_h - g.pad_h, off_w = j * g.dilation_w - g.pad_w;
        int64_t ow0, ow1;
        valid_range(g.out_w, g.stride_w, off_w, g.width, ow0, ow1);
        for (int64_t oh = 0; oh < g.out_h; ++oh) {
          const int64_t ih = oh * g.stride_h + off_h;
          if (ih < 0 || ih >= g.height) continue;
          T* dst = plane + ih * g.width;
          const T* src = row + oh * g.out_w;
          for (int64_t ow = ow0; ow < ow1; ++ow) dst[ow * g.stride_w + off_w] += src[ow];
        }
      }
    }
  });
}

template <typename T>
void conv2d_forward(const ConvGeometry& g, const T* x, const T* weight, const T* bias, T* out) {
  const int64_t cin = g.group_in(), cout = g.group_out(), rows = g.col_rows(), ncols = g.col_cols();
  const int64_t plane = g.height * g.width;
  parallel_for(0, g.batch, 1, [&](int64_t n0, int64_t n1) {
    std::vector<T> cols(g.is_pointwise() ? 0 : static_cast<size_t>(rows * ncols));
    for (int64_t n = n0; n < n1; ++n) {
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        const T* x_group = x + (n * g.in_channels + grp * cin) * plane;  // (cin, H, W)
        const T* b = x_group;                                             // (rows, ncols)
        if (!g.is_pointwise()) {
          im2col(g, x_group, cols.data());
          b = cols.data();
        }
        T* out_group = out + (n * g.out_channels + grp * cout) * ncols;  // (cout, Ho * Wo)
        if (bias != nullptr) {
          for (int64_t o = 0; o < cout; ++o) std::fill_n(out_group + o * ncols, ncols, bias[grp * cout + o]);
        }
        // out_group (cout, ncols) = weight_g (cout, rows) @ cols (rows, ncols) [+ bias]
        gemm<T>(cout, ncols, rows, T(1), {weight + grp * cout * rows, rows, 1}, {b, ncols, 1},
                bias != nullptr ? T(1) : T(0), {out_group, ncols, 1});
      }
    }
  });
}

template <typename T>
void conv2d_backward_input(const ConvGeometry& g, const T* grad_out, const T* weight, T* grad_x) {
  const int64_t cin = g.group_in(), cout = g.group_out(), rows = g.col_rows(), ncols = g.col_cols();
  const int64_t plane = g.height * g.width;
  parallel_for(0, g.batch, 1, [&](int64_t n0, int64_t n1) {
    std::vector<T> cols(g.is_pointwise() ? 0 : static_cast<size_t>(rows * ncols));
    for (int64_t n = n0; n < n1; ++n) {
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        const T* go = grad_out + (n * g.out_channels + grp * cout) * ncols;  // (cout, ncols)
        T* gx = grad_x + (n * g.in_channels + grp * cin) * plane;           // (cin, H, W)
        // weight_g^T (rows, cout): weight_g (cout, rows) with its strides swapped.
        const MatrixRef<const T> wt{weight + grp * cout * rows, 1, rows};
        if (g.is_pointwise()) {
          gemm<T>(rows, ncols, cout, T(1), wt, {go, ncols, 1}, T(0), {gx, ncols, 1});
          continue;
        }
        // dcols (rows, ncols) = weight_g^T @ grad_out_g, then scattered back onto the input.
        gemm<T>(rows, ncols, cout, T(1), wt, {go, ncols, 1}, T(0), {cols.data(), ncols, 1});
        std::fill_n(gx, cin * plane, T(0));
        col2im_add(g, cols.data(), gx);
      }
    }
  });
}

template <typename T>
void conv2d_backward_weight(const ConvGeometry& g, const T* grad_out, const T* x, T* grad_weight) {
  const int64_t cin = g.group_in(), cout = g.group_out(), rows = g.col_rows(), ncols = g.col_cols();
  const int64_t plane = g.height * g.width;
  std::fill_n(grad_weight, g.out_channels * rows, T(0));
  std::vector<T> cols(g.is_pointwise() ? 0 : static_cast<size_t>(rows * ncols));
  for (int64_t n = 0; n < g.batch; ++n) {
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const T* x_group = x + (n * g.in_channels + grp * cin) * plane;
      const T* b = x_group;
      if (!g.is_pointwise()) {
        im2col(g, x_group, cols.data());
        b = cols.data();
      }
      const T* go = grad_out + (n * g.out_channels + grp * cout) * ncols;  // (cout, ncols)
      // grad_weight_g (cout, rows) += grad_out_g (cout, ncols) @ cols^T (ncols, rows)
      gemm<T>(cout, rows, ncols, T(1), {go, ncols, 1}, {b, 1, ncols}, T(1), {grad_weight + grp * cout * rows, rows, 1});
    }
  }
}

#define LOUPE_CONV_INSTANTIATE(T)                                                           \
  template void im2col<T>(const ConvGeometry&, const T*, T*);                               \
  template void col2im_add<T>(const ConvGeometry&, const T*, T*);                           \
  template void conv2d_forward<T>(const ConvGeometry&, const T*, const T*, const T*, T*);   \
  template void conv2d_backward_input<T>(const ConvGeometry&, const T*, const T*, T*);      \
  template void conv2d_backward_weight<T>(const ConvGeometry&, const T*, const T*, T*);

LOUPE_CONV_INSTANTIATE(float)
LOUPE_CONV_INSTANTIATE(double)
#undef LOUPE_CONV_INSTANTIATE

}  // namespace loupe::cpu
