// Direct depthwise convolution kernels. See depthwise_conv.hpp.
#include "tensor/cpu/depthwise_conv.hpp"

#include <algorithm>
#include <vector>

#include "tensor/parallel.hpp"

namespace loupe::cpu::depthwise {

namespace {

// Planes per parallel task: about this many output elements each.
constexpr int64_t kGrainElements = 16384;

int64_t grain(int64_t per_task) { return std::max<int64_t>(1, kGrainElements / std::max<int64_t>(per_task, 1)); }

// sum over q < n of a[q] * b[q * stride]: 16 partial sums (two AVX2 vectors when stride is 1)
// combined in a fixed order, so the result depends only on n, not on how work is split.
template <typename T>
T dot(const T* a, const T* b, int64_t stride, int64_t n) {
  constexpr int kLanes = 16;
  T part[kLanes] = {};
  int64_t q = 0;
  if (stride == 1) {
    for (; q + kLanes <= n; q += kLanes) {
      for (int l = 0; l < kLanes; ++l) part[l] += a[q + l] * b[q + l];
    }
  } else {
    for (; q + kLanes <= n; q += kLanes) {
      for (int l = 0; l < kLanes; ++l) part[l] += a[q + l] * b[(q + l) * stride];
    }
  }
  for (; q < n; ++q) part[q % kLanes] += a[q] * b[q * stride];
  T total = 0;
  for (int l = 0; l < kLanes; ++l) total += part[l];
  return total;
}

// The output columns [ow0, ow1) whose tap kj reads inside the row, per kj.
struct ColumnRanges {
  std::vector<int64_t> first, last, offset;  // offset: input column of output column 0
  explicit ColumnRanges(const ConvGeometry& g) : first(g.kernel_w), last(g.kernel_w), offset(g.kernel_w) {
    for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
      offset[kj] = kj * g.dilation_w - g.pad_w;
      valid_range(g.out_w, g.stride_w, offset[kj], g.width, first[kj], last[kj]);
    }
  }
};

}  // namespace

template <typename T>
void forward(const ConvGeometry& g, const T* x, const T* weight, const T* bias, T* out) {
  const int64_t mult = g.group_out(), taps = g.kernel_h * g.kernel_w;
  const int64_t in_plane = g.height * g.width, out_plane = g.out_h * g.out_w;
  const ColumnRanges cols(g);
  parallel_for(0, g.batch * g.out_channels, grain(out_plane * taps), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / g.out_channels, o = t % g.out_channels;
      const T* src = x + (n * g.in_channels + o / mult) * in_plane;
      const T* w = weight + o * taps;
      T* dst_plane = out + t * out_plane;
      const T b = bias != nullptr ? bias[o] : T(0);
      // Row by row, so the output row stays in L1 while every tap adds onto it (in tap order).
      for (int64_t oh = 0; oh < g.out_h; ++oh) {
        T* dst = dst_plane + oh * g.out_w;
        std::fill_n(dst, g.out_w, b);
        for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
          const int64_t ih = oh * g.stride_h + ki * g.dilation_h - g.pad_h;
          if (ih < 0 || ih >= g.height) continue;
          const T* row = src + ih * g.width;
          for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
            const T wv = w[ki * g.kernel_w + kj];
            const int64_t off = cols.offset[kj];
            if (g.stride_w == 1) {
              const T* s = row + off;
              for (int64_t ow = cols.first[kj]; ow < cols.last[kj]; ++ow) dst[ow] += wv * s[ow];
            } else {
              for (int64_t ow = cols.first[kj]; ow < cols.last[kj]; ++ow) dst[ow] += wv * row[ow * g.stride_w + off];
            }
          }
        }
      }
    }
  });
}

template <typename T>
void backward_input(const ConvGeometry& g, const T* grad_out, const T* weight, T* grad_x) {
  const int64_t mult = g.group_out(), taps = g.kernel_h * g.kernel_w;
  const int64_t in_plane = g.height * g.width, out_plane = g.out_h * g.out_w;
  const ColumnRanges cols(g);
  // One task per input plane: it gathers from its `mult` output channels, so no two tasks write
  // the same element.
  parallel_for(0, g.batch * g.in_channels, grain(mult * out_plane * taps), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / g.in_channels, c = t % g.in_channels;
      T* dst_plane = grad_x + t * in_plane;
      std::fill_n(dst_plane, in_plane, T(0));
      for (int64_t m = 0; m < mult; ++m) {
        const int64_t o = c * mult + m;
        const T* go_plane = grad_out + (n * g.out_channels + o) * out_plane;
        const T* w = weight + o * taps;
        for (int64_t oh = 0; oh < g.out_h; ++oh) {
          const T* go = go_plane + oh * g.out_w;
          for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
            const int64_t ih = oh * g.stride_h + ki * g.dilation_h - g.pad_h;
            if (ih < 0 || ih >= g.height) continue;
            T* row = dst_plane + ih * g.width;
            for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
              const T wv = w[ki * g.kernel_w + kj];
              const int64_t off = cols.offset[kj];
              if (g.stride_w == 1) {
                T* d = row + off;
                for (int64_t ow = cols.first[kj]; ow < cols.last[kj]; ++ow) d[ow] += wv * go[ow];
              } else {
                for (int64_t ow = cols.first[kj]; ow < cols.last[kj]; ++ow) row[ow * g.stride_w + off] += wv * go[ow];
              }
            }
          }
        }
      }
    }
  });
}

template <typename T>
void backward_weight(const ConvGeometry& g, const T* grad_out, const T* x, T* grad_weight) {
  const int64_t mult = g.group_out(), taps = g.kernel_h * g.kernel_w;
  const int64_t in_plane = g.height * g.width, out_plane = g.out_h * g.out_w;
  const ColumnRanges cols(g);
  // One task per output channel; each tap's sum runs over images, then rows, in order. Every
  // output row's dot product is a partial sum of its own (less rounding error than one running
  // total over N Ho Wo products).
  parallel_for(0, g.out_channels, grain(g.batch * out_plane * taps), [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      T* dw = grad_weight + o * taps;
      std::fill_n(dw, taps, T(0));
      for (int64_t n = 0; n < g.batch; ++n) {
        const T* go_plane = grad_out + (n * g.out_channels + o) * out_plane;
        const T* src = x + (n * g.in_channels + o / mult) * in_plane;
        for (int64_t oh = 0; oh < g.out_h; ++oh) {
          const T* go = go_plane + oh * g.out_w;
          for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
            const int64_t ih = oh * g.stride_h + ki * g.dilation_h - g.pad_h;
            if (ih < 0 || ih >= g.height) continue;
            const T* row = src + ih * g.width;
            for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
              const int64_t first = cols.first[kj], count = cols.last[kj] - first;
              if (count <= 0) continue;
              dw[ki * g.kernel_w + kj] +=
                  dot(go + first, row + first * g.stride_w + cols.offset[kj], g.stride_w, count);
            }
          }
        }
      }
    }
  });
}

#define LOUPE_DEPTHWISE_INSTANTIATE(T)                                                     \
  template void forward<T>(const ConvGeometry&, const T*, const T*, const T*, T*);       \
  template void backward_input<T>(const ConvGeometry&, const T*, const T*, T*);          \
  template void backward_weight<T>(const ConvGeometry&, const T*, const T*, T*);

LOUPE_DEPTHWISE_INSTANTIATE(float)
LOUPE_DEPTHWISE_INSTANTIATE(double)
#undef LOUPE_DEPTHWISE_INSTANTIATE

}  // namespace loupe::cpu::depthwise
