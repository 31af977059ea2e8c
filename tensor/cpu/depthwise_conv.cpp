// Direct depthwise convolution kernels. See depthwise_conv.hpp.
#include "tensor/cpu/depthwise_conv.hpp"

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "tensor/parallel.hpp"

namespace loupe::cpu::depthwise {

namespace {

// Planes per parallel task: about this many multiply-adds each.
constexpr int64_t kGrainWork = 65536;

int64_t grain(int64_t per_task) { return std::max<int64_t>(1, kGrainWork / std::max<int64_t>(per_task, 1)); }

// Lanes of the weight gradient's partial sums (one AVX2 register: 8 floats, 4 doubles): output
// column ow adds into lane ow % kLanes of each tap, so the sums vectorise and their order depends
// only on the shape.
template <typename T>
constexpr int kLanes = static_cast<int>(32 / sizeof(T));

// The part of a zero-padded input plane the kernel reaches: row r, column q hold input
// (r - pad_h, q - pad_w), zero outside the input. Every tap of every output then reads inside
// it, so the inner loops need no bounds checks (padding reads a zero and adds w * 0, as im2col +
// GEMM does).
struct PaddedExtent {
  int64_t rows, cols;
  explicit PaddedExtent(const ConvGeometry& g)
      : rows((g.out_h - 1) * g.stride_h + (g.kernel_h - 1) * g.dilation_h + 1),
        cols((g.out_w - 1) * g.stride_w + (g.kernel_w - 1) * g.dilation_w + 1) {}
  int64_t size() const { return rows * cols; }
};

template <typename T>
void pad_plane(const ConvGeometry& g, const PaddedExtent& e, const T* src, T* dst) {
  const int64_t q0 = std::min(g.pad_w, e.cols), q1 = std::clamp<int64_t>(g.pad_w + g.width, q0, e.cols);
  for (int64_t r = 0; r < e.rows; ++r) {
    T* row = dst + r * e.cols;
    const int64_t ih = r - g.pad_h;
    if (ih < 0 || ih >= g.height) {
      std::fill_n(row, e.cols, T(0));
      continue;
    }
    std::fill(row, row + q0, T(0));
    std::copy(src + ih * g.width + (q0 - g.pad_w), src + ih * g.width + (q1 - g.pad_w), row + q0);
    std::fill(row + q1, row + e.cols, T(0));
  }
}

// grad_x plane from a padded gradient plane (the inverse of pad_plane; input positions no tap
// reaches get 0).
template <typename T>
void unpad_plane(const ConvGeometry& g, const PaddedExtent& e, const T* src, T* dst) {
  for (int64_t ih = 0; ih < g.height; ++ih) {
    T* row = dst + ih * g.width;
    const int64_t r = ih + g.pad_h;
    for (int64_t iw = 0; iw < g.width; ++iw) {
      const int64_t q = iw + g.pad_w;
      row[iw] = r < e.rows && q < e.cols ? src[r * e.cols + q] : T(0);
    }
  }
}

// One output plane: out[oh][ow] = b + sum over taps (ki, kj), in that order, of
// w[ki][kj] * P[oh sh + ki dh][ow sw + kj dw] (accumulate: onto out[oh][ow] instead of b).
// K > 0: a K x K kernel known at compile time (the tap loops unroll and the ow loop vectorises);
// K == 0: any kernel.
template <typename T, int K>
void forward_plane(const ConvGeometry& g, const PaddedExtent& e, const T* P, const T* w, T b, bool accumulate,
                   T* out) {
  const int64_t kh = K > 0 ? K : g.kernel_h, kw = K > 0 ? K : g.kernel_w;
  const int64_t sw = g.stride_w, dw = g.dilation_w;
  // The start value's choice is made once per plane (std::bool_constant), outside the ow loop,
  // which must stay branch-free to vectorise.
  auto rows = [&](auto accumulate_here) {
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      const T* top = P + oh * g.stride_h * e.cols;
      T* __restrict dst = out + oh * g.out_w;
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        T acc;
        if constexpr (decltype(accumulate_here)::value) {
          acc = dst[ow];
        } else {
          acc = b;
        }
        for (int64_t ki = 0; ki < kh; ++ki) {
          const T* row = top + ki * g.dilation_h * e.cols + ow * sw;
          for (int64_t kj = 0; kj < kw; ++kj) acc += w[ki * kw + kj] * row[kj * dw];
        }
        dst[ow] = acc;
      }
    }
  };
  if (accumulate) {
    rows(std::true_type{});
  } else {
    rows(std::false_type{});
  }
}

// Scatter of one output-gradient plane into a padded gradient plane Q (the adjoint of
// forward_plane without the bias).
template <typename T, int K>
void backward_input_plane(const ConvGeometry& g, const PaddedExtent& e, const T* go, const T* w, T* Q) {
  const int64_t kh = K > 0 ? K : g.kernel_h, kw = K > 0 ? K : g.kernel_w;
  const int64_t sw = g.stride_w, dw = g.dilation_w;
  for (int64_t oh = 0; oh < g.out_h; ++oh) {
    const T* __restrict src = go + oh * g.out_w;
    for (int64_t ki = 0; ki < kh; ++ki) {
      T* row = Q + (oh * g.stride_h + ki * g.dilation_h) * e.cols;
      for (int64_t kj = 0; kj < kw; ++kj) {
        const T wv = w[ki * kw + kj];
        T* __restrict d = row + kj * dw;
        if (sw == 1) {
          for (int64_t ow = 0; ow < g.out_w; ++ow) d[ow] += wv * src[ow];
        } else {
          for (int64_t ow = 0; ow < g.out_w; ++ow) d[ow * sw] += wv * src[ow];
        }
      }
    }
  }
}

// kLanes values of T as one GCC vector (one AVX2 register): partial sums that stay in registers.
template <typename T>
struct LaneVector;
template <>
struct LaneVector<float> {
  typedef float V __attribute__((vector_size(32)));
};
template <>
struct LaneVector<double> {
  typedef double V __attribute__((vector_size(32)));
};

// Adds one image's contribution to the weight gradient's lanes: acc[t * kLanes + ow % kLanes]
// += go[oh][ow] * P[oh sh + ki dh][ow sw + kj dw] for tap t = (ki, kj). The columns below
// full = out_w rounded down to kLanes are summed per tap over the whole plane in a register
// first; the rest go straight into their lanes.
template <typename T, int K>
void backward_weight_plane(const ConvGeometry& g, const PaddedExtent& e, const T* go, const T* P, T* acc) {
  using V = typename LaneVector<T>::V;
  const int64_t kh = K > 0 ? K : g.kernel_h, kw = K > 0 ? K : g.kernel_w;
  const int64_t sw = g.stride_w, dw = g.dilation_w;
  const int64_t full = g.out_w / kLanes<T> * kLanes<T>;
  auto load = [&](const T* x, int64_t ow) {
    V v;
    if (sw == 1) {
      std::memcpy(&v, x + ow, sizeof(V));
    } else {
      for (int l = 0; l < kLanes<T>; ++l) v[l] = x[(ow + l) * sw];
    }
    return v;
  };
  // The columns past `full` go straight into their lanes.
  auto remainder = [&](const T* src, const T* x, T* lanes) {
    for (int64_t ow = full; ow < g.out_w; ++ow) lanes[ow - full] += src[ow] * x[ow * sw];
  };
  if constexpr (K > 0) {
    // All K x K taps at once: K^2 independent partial sums in registers (one FMA chain each, so
    // the FMA latency is hidden), each output-gradient chunk loaded once for all of them.
    V part[K * K] = {};
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      const T* src = go + oh * g.out_w;
      const T* top = P + oh * g.stride_h * e.cols;
      for (int64_t ow = 0; ow < full; ow += kLanes<T>) {
        V a;
        std::memcpy(&a, src + ow, sizeof(V));
        for (int ki = 0; ki < K; ++ki) {
          for (int kj = 0; kj < K; ++kj) part[ki * K + kj] += a * load(top + ki * g.dilation_h * e.cols + kj * dw, ow);
        }
      }
      for (int ki = 0; ki < K; ++ki) {
        for (int kj = 0; kj < K; ++kj) {
          remainder(src, top + ki * g.dilation_h * e.cols + kj * dw, acc + (ki * K + kj) * kLanes<T>);
        }
      }
    }
    for (int t = 0; t < K * K; ++t) {
      for (int l = 0; l < kLanes<T>; ++l) acc[t * kLanes<T> + l] += part[t][l];
    }
  } else {
    // Any kernel: tap by tap over the whole plane, one partial sum in a register.
    for (int64_t ki = 0; ki < kh; ++ki) {
      for (int64_t kj = 0; kj < kw; ++kj) {
        T* lanes = acc + (ki * kw + kj) * kLanes<T>;
        V part{};
        for (int64_t oh = 0; oh < g.out_h; ++oh) {
          const T* src = go + oh * g.out_w;
          const T* x = P + (oh * g.stride_h + ki * g.dilation_h) * e.cols + kj * dw;
          for (int64_t ow = 0; ow < full; ow += kLanes<T>) {
            V a;
            std::memcpy(&a, src + ow, sizeof(V));
            part += a * load(x, ow);
          }
          remainder(src, x, lanes);
        }
        for (int l = 0; l < kLanes<T>; ++l) lanes[l] += part[l];
      }
    }
  }
}

// Calls the K-specialised instance for square 3x3, 5x5 and 7x7 kernels, else the generic one.
template <template <typename, int> class Fn, typename T, typename... Args>
void dispatch_kernel_size(const ConvGeometry& g, Args&&... args) {
  const int64_t k = g.kernel_h == g.kernel_w ? g.kernel_h : 0;
  switch (k) {
    case 3: Fn<T, 3>::run(g, args...); break;
    case 5: Fn<T, 5>::run(g, args...); break;
    case 7: Fn<T, 7>::run(g, args...); break;
    default: Fn<T, 0>::run(g, args...); break;
  }
}

template <typename T, int K>
struct ForwardPlane {
  static void run(const ConvGeometry& g, const PaddedExtent& e, const T* P, const T* w, T b, bool accumulate,
                  T* out) {
    forward_plane<T, K>(g, e, P, w, b, accumulate, out);
  }
};
template <typename T, int K>
struct BackwardInputPlane {
  static void run(const ConvGeometry& g, const PaddedExtent& e, const T* go, const T* w, T* Q) {
    backward_input_plane<T, K>(g, e, go, w, Q);
  }
};
template <typename T, int K>
struct BackwardWeightPlane {
  static void run(const ConvGeometry& g, const PaddedExtent& e, const T* go, const T* P, T* acc) {
    backward_weight_plane<T, K>(g, e, go, P, acc);
  }
};

}  // namespace

template <typename T>
void forward(const ConvGeometry& g, const T* x, const T* weight, const T* bias, T* out) {
  const int64_t mult = g.group_out(), taps = g.kernel_h * g.kernel_w;
  const int64_t in_plane = g.height * g.width, out_plane = g.out_h * g.out_w;
  const PaddedExtent e(g);
  // One task per (image, input channel): pad the input plane once, then compute its `mult`
  // output planes from it.
  parallel_for(0, g.batch * g.in_channels, grain(mult * out_plane * taps), [&](int64_t t0, int64_t t1) {
    std::vector<T> padded(static_cast<size_t>(e.size()));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / g.in_channels, c = t % g.in_channels;
      pad_plane(g, e, x + t * in_plane, padded.data());
      for (int64_t m = 0; m < mult; ++m) {
        const int64_t o = c * mult + m;
        dispatch_kernel_size<ForwardPlane, T>(g, e, padded.data(), weight + o * taps, bias != nullptr ? bias[o] : T(0),
                                              false, out + (n * g.out_channels + o) * out_plane);
      }
    }
  });
}

template <typename T>
void backward_input(const ConvGeometry& g, const T* grad_out, const T* weight, T* grad_x) {
  const int64_t mult = g.group_out(), taps = g.kernel_h * g.kernel_w;
  const int64_t in_plane = g.height * g.width, out_plane = g.out_h * g.out_w;
  // With stride 1 (and padding no wider than the kernel's reach), the input gradient is itself a
  // convolution: grad_out padded by (k - 1) d - p on each side, correlated with the flipped kernel,
  // i.e. forward_plane on a transposed geometry (one write per element instead of one per tap).
  // Otherwise each output gradient is scattered into a padded plane.
  const bool as_convolution = g.stride_h == 1 && g.stride_w == 1 && g.pad_h <= (g.kernel_h - 1) * g.dilation_h &&
                              g.pad_w <= (g.kernel_w - 1) * g.dilation_w;
  ConvGeometry t = g;
  t.height = g.out_h, t.width = g.out_w, t.out_h = g.height, t.out_w = g.width;
  t.pad_h = (g.kernel_h - 1) * g.dilation_h - g.pad_h, t.pad_w = (g.kernel_w - 1) * g.dilation_w - g.pad_w;
  const PaddedExtent e(as_convolution ? t : g);
  // One task per input plane: it gathers from its `mult` output channels (in order), so no two
  // tasks write the same element.
  parallel_for(0, g.batch * g.in_channels, grain(mult * out_plane * taps), [&](int64_t t0, int64_t t1) {
    std::vector<T> padded(static_cast<size_t>(e.size()));
    std::vector<T> flipped(static_cast<size_t>(taps));
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t n = task / g.in_channels, c = task % g.in_channels;
      T* gx = grad_x + task * in_plane;
      if (!as_convolution) std::fill(padded.begin(), padded.end(), T(0));
      for (int64_t m = 0; m < mult; ++m) {
        const int64_t o = c * mult + m;
        const T* go = grad_out + (n * g.out_channels + o) * out_plane;
        if (as_convolution) {
          std::reverse_copy(weight + o * taps, weight + (o + 1) * taps, flipped.begin());
          pad_plane(t, e, go, padded.data());
          dispatch_kernel_size<ForwardPlane, T>(t, e, padded.data(), flipped.data(), T(0), m > 0, gx);
        } else {
          dispatch_kernel_size<BackwardInputPlane, T>(g, e, go, weight + o * taps, padded.data());
        }
      }
      if (!as_convolution) unpad_plane(g, e, padded.data(), gx);
    }
  });
}

template <typename T>
void backward_weight(const ConvGeometry& g, const T* grad_out, const T* x, T* grad_weight) {
  const int64_t mult = g.group_out(), taps = g.kernel_h * g.kernel_w;
  const int64_t in_plane = g.height * g.width, out_plane = g.out_h * g.out_w;
  const PaddedExtent e(g);
  // One task per input channel (all images, all `mult` output channels reading it): each tap's
  // sum runs over images, rows and columns in an order fixed by the shape, in kLanes partial sums
  // added up at the end.
  parallel_for(0, g.in_channels, grain(g.batch * mult * out_plane * taps), [&](int64_t c0, int64_t c1) {
    std::vector<T> padded(static_cast<size_t>(e.size()));
    std::vector<T> acc(static_cast<size_t>(mult * taps * kLanes<T>));
    for (int64_t c = c0; c < c1; ++c) {
      std::fill(acc.begin(), acc.end(), T(0));
      for (int64_t n = 0; n < g.batch; ++n) {
        pad_plane(g, e, x + (n * g.in_channels + c) * in_plane, padded.data());
        for (int64_t m = 0; m < mult; ++m) {
          const int64_t o = c * mult + m;
          dispatch_kernel_size<BackwardWeightPlane, T>(g, e, grad_out + (n * g.out_channels + o) * out_plane,
                                                       padded.data(), acc.data() + m * taps * kLanes<T>);
        }
      }
      for (int64_t m = 0; m < mult; ++m) {
        for (int64_t t = 0; t < taps; ++t) {
          const T* lanes = acc.data() + (m * taps + t) * kLanes<T>;
          T total = 0;
          for (int l = 0; l < kLanes<T>; ++l) total += lanes[l];
          grad_weight[(c * mult + m) * taps + t] = total;
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
