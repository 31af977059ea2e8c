// Normalisation kernels. See norm.hpp.
//
// Every kernel reads a contiguous copy of x, so a group is easy to walk:
//   batch norm  (N, C, S): channel c is the N planes x[n, c, 0:S]
//   layer norm  (R, K):    row r is x[r, 0:K]
// Groups are independent and run in parallel; inside a group the sums run in a fixed order in
// float64, so results do not depend on the thread count. With the fast kernels on (the default;
// LOUPE_REFERENCE_KERNELS=1 turns them off) the inner loops are the vectorised ones of
// tensor/cpu/fast_elementwise.hpp: the same float64 statistics summed in a fixed vector order, and
// the elementwise passes computed in x's dtype. CUDA tensors go to tensor/cuda/norm.cu once the
// arguments are checked.
#include "tensor/ops/norm.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "tensor/cpu/fast_elementwise.hpp"
#include "tensor/cpu/loops.hpp"
#include "tensor/cuda/ops.hpp"
#include "tensor/dispatch.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/creation.hpp"
#include "tensor/ops/device.hpp"
#include "tensor/ops/join.hpp"
#include "tensor/parallel.hpp"

namespace loupe::ops {

namespace {

// The machine epsilon of x's dtype (PyTorch's rms_norm eps=None), or eps itself when >= 0.
double resolve_eps(double eps, DType dtype) {
  if (eps >= 0) return eps;
  return dtype == DType::f64 ? std::numeric_limits<double>::epsilon()
                             : static_cast<double>(std::numeric_limits<float>::epsilon());
}

// Groups per parallel chunk, so that a chunk holds about kElementwiseGrain elements.
int64_t group_grain(int64_t group_size) {
  return std::max<int64_t>(1, cpu::kElementwiseGrain / std::max<int64_t>(group_size, 1));
}

void check_floating(const Tensor& x, const char* op) {
  LOUPE_CHECK(is_floating(x.dtype()), op, ": expected a floating input, got ", x.dtype(), " of shape ",
              shape_str(x.shape()));
}

// The CPU kernels compute in float32 or float64; bfloat16 / float16 batch norm (mixed precision)
// exists only on CUDA devices.
void check_cpu_dtype(const Tensor& x, const char* op) {
  LOUPE_CHECK(x.dtype() == DType::f32 || x.dtype() == DType::f64, op, ": a ", x.dtype(), " input (shape ",
              shape_str(x.shape()), ") is supported only on CUDA devices; the CPU computes in float32 or float64");
}

// An optional parameter / statistic: undefined, or a floating tensor of exactly `shape`.
void check_param(const Tensor& p, const Shape& shape, const char* op, const char* what) {
  if (!p.defined()) return;
  LOUPE_CHECK(is_floating(p.dtype()), op, ": ", what, " must be floating, got ", p.dtype());
  LOUPE_CHECK(p.shape() == shape, op, ": ", what, " has shape ", shape_str(p.shape()), ", expected ",
              shape_str(shape));
}

// The values of an optional parameter, or `fill` (1 for a scale, 0 for a shift) when undefined.
std::vector<double> param_values(const Tensor& p, int64_t n, double fill) {
  return p.defined() ? to_vector<double>(p) : std::vector<double>(static_cast<size_t>(n), fill);
}

Tensor f64_vector(const std::vector<double>& v) {
  return from_values(v, {static_cast<int64_t>(v.size())}, DType::f64);
}

// --- batch norm: x (N, C, S) ---

struct ChannelLayout {
  int64_t n = 0, c = 0, s = 1;
  int64_t per_channel() const { return n * s; }  // M
};

ChannelLayout channel_layout(const Tensor& x) {
  ChannelLayout l;
  l.n = x.shape()[0];
  l.c = x.shape()[1];
  for (size_t d = 2; d < x.shape().size(); ++d) l.s *= x.shape()[d];
  return l;
}

// Calls body(plane) for the N planes (S contiguous elements each) of channel c.
template <typename Body>
void for_each_plane(const ChannelLayout& l, int64_t c, Body&& body) {
  for (int64_t n = 0; n < l.n; ++n) body((n * l.c + c) * l.s);
}

// Batch mean and biased variance of each channel (two passes: exact enough in float64).
template <typename T>
void channel_moments(const T* x, const ChannelLayout& l, std::vector<double>& mean, std::vector<double>& var) {
  const double m = static_cast<double>(l.per_channel());
  const bool fast = cpu::fast::enabled();
  parallel_for(0, l.c, group_grain(l.per_channel()), [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      double sum = 0.0;
      for_each_plane(l, c, [&](int64_t at) {
        if (fast) {
          sum += cpu::fast::sum_serial(x + at, l.s);
          return;
        }
        for (int64_t j = 0; j < l.s; ++j) sum += static_cast<double>(x[at + j]);
      });
      const double mu = sum / m;
      double squares = 0.0;
      for_each_plane(l, c, [&](int64_t at) {
        if (fast) {
          squares += cpu::fast::sum_squared_deviation(x + at, l.s, mu);
          return;
        }
        for (int64_t j = 0; j < l.s; ++j) {
          const double d = static_cast<double>(x[at + j]) - mu;
          squares += d * d;
        }
      });
      mean[static_cast<size_t>(c)] = mu;
      var[static_cast<size_t>(c)] = squares / m;
    }
  });
}

// out = x * scale[c] + shift[c] (then max(out, 0) when relu), one (n, c) plane per step;
// source(plane) is where the input plane n * C + c starts (plane * s in a contiguous x).
template <typename T, typename Source>
void channel_affine_from(Source&& source, T* out, const ChannelLayout& l, const std::vector<double>& scale,
                         const std::vector<double>& shift, bool relu) {
  const bool fast = cpu::fast::enabled();
  parallel_for(0, l.n * l.c, group_grain(l.s), [&](int64_t lo, int64_t hi) {
    for (int64_t plane = lo; plane < hi; ++plane) {
      const size_t c = static_cast<size_t>(plane % l.c);
      const T a = static_cast<T>(scale[c]);
      const T b = static_cast<T>(shift[c]);
      const T* px = source(plane);
      T* po = out + plane * l.s;
      if (fast) {
        cpu::fast::scale_shift(px, l.s, a, b, relu, po);
        continue;
      }
      for (int64_t j = 0; j < l.s; ++j) po[j] = px[j] * a + b;
      if (relu) {
        for (int64_t j = 0; j < l.s; ++j) po[j] = po[j] > T(0) ? po[j] : T(0);
      }
    }
  });
}

template <typename T>
void channel_affine(const T* x, T* out, const ChannelLayout& l, const std::vector<double>& scale,
                    const std::vector<double>& shift, bool relu) {
  channel_affine_from<T>([&](int64_t plane) { return x + plane * l.s; }, out, l, scale, shift, relu);
}

// Batch norm as x * scale + shift for per-channel mean and var: rstd = 1 / sqrt(var + eps),
// scale = w rstd, shift = b - mean scale (weight and bias undefined: 1 and 0).
void batch_norm_affine(const std::vector<double>& mean, const std::vector<double>& var, const Tensor& weight,
                       const Tensor& bias, double eps, std::vector<double>& rstd, std::vector<double>& scale,
                       std::vector<double>& shift) {
  const int64_t channels = static_cast<int64_t>(mean.size());
  const std::vector<double> w = param_values(weight, channels, 1.0), b = param_values(bias, channels, 0.0);
  rstd.resize(mean.size());
  scale.resize(mean.size());
  shift.resize(mean.size());
  for (size_t c = 0; c < mean.size(); ++c) {
    rstd[c] = 1.0 / std::sqrt(var[c] + eps);
    scale[c] = w[c] * rstd[c];
    shift[c] = b[c] - mean[c] * scale[c];
  }
}

// running = (1 - momentum) * running + momentum * batch, in place (any layout and dtype).
void update_running(const Tensor& running, const std::vector<double>& batch, double momentum) {
  std::vector<double> v = to_vector<double>(running);
  for (size_t i = 0; i < v.size(); ++i) v[i] = (1.0 - momentum) * v[i] + momentum * batch[i];
  copy_(running, f64_vector(v));
}

// --- layer / rms norm: x (R, K) ---

struct RowLayout {
  int64_t rows = 0, k = 1;
};

RowLayout row_layout(const Tensor& x, const Shape& normalized_shape, const char* op) {
  LOUPE_CHECK(!normalized_shape.empty(), op, ": normalized_shape must have at least one dim");
  const size_t nd = normalized_shape.size();
  bool matches = x.shape().size() >= nd;
  for (size_t i = 0; matches && i < nd; ++i) matches = x.shape()[x.shape().size() - nd + i] == normalized_shape[i];
  LOUPE_CHECK(matches, op, ": input of shape ", shape_str(x.shape()), " does not end with normalized_shape ",
              shape_str(normalized_shape));
  RowLayout l;
  l.rows = 1;
  for (size_t d = 0; d + nd < x.shape().size(); ++d) l.rows *= x.shape()[d];
  l.k = shape_numel(normalized_shape);
  return l;
}

// Per row: mean (0 without centring), rstd = 1 / sqrt(mean((x - mean)^2) + eps), then
// out = (x - mean) * rstd * w + b.
template <typename T>
void row_norm_kernel(const T* x, T* out, const RowLayout& l, const std::vector<double>& w,
                     const std::vector<double>& b, double eps, bool center, std::vector<double>& mean,
                     std::vector<double>& rstd) {
  const double k = static_cast<double>(l.k);
  if (cpu::fast::enabled()) {
    // Statistics as below (float64, fixed order); the output pass in T, vectorised.
    const std::vector<T> wt(w.begin(), w.end()), bt(b.begin(), b.end());
    parallel_for(0, l.rows, group_grain(l.k), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const T* px = x + r * l.k;
        const double mu = center ? cpu::fast::sum_serial(px, l.k) / k : 0.0;
        const double rs = 1.0 / std::sqrt(cpu::fast::sum_squared_deviation(px, l.k, mu) / k + eps);
        cpu::fast::normalize_row(px, l.k, static_cast<T>(mu), static_cast<T>(rs), wt.data(), bt.data(), out + r * l.k);
        mean[static_cast<size_t>(r)] = mu;
        rstd[static_cast<size_t>(r)] = rs;
      }
    });
    return;
  }
  parallel_for(0, l.rows, group_grain(l.k), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* px = x + r * l.k;
      T* po = out + r * l.k;
      double mu = 0.0;
      if (center) {
        for (int64_t j = 0; j < l.k; ++j) mu += static_cast<double>(px[j]);
        mu /= k;
      }
      double squares = 0.0;
      for (int64_t j = 0; j < l.k; ++j) {
        const double d = static_cast<double>(px[j]) - mu;
        squares += d * d;
      }
      const double rs = 1.0 / std::sqrt(squares / k + eps);
      for (int64_t j = 0; j < l.k; ++j) {
        const size_t i = static_cast<size_t>(j);
        po[j] = static_cast<T>((static_cast<double>(px[j]) - mu) * rs * w[i] + b[i]);
      }
      mean[static_cast<size_t>(r)] = mu;
      rstd[static_cast<size_t>(r)] = rs;
    }
  });
}

NormForward row_norm_forward(const char* op, const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                             const Tensor& bias, double eps, bool center) {
  check_floating(x, op);
  const RowLayout l = row_layout(x, normalized_shape, op);
  check_param(weight, normalized_shape, op, "weight");
  check_param(bias, normalized_shape, op, "bias");
  check_same_device(op, {x, weight, bias});
  if (x.device().is_cuda()) {
    return cuda::row_norm_forward(x, l.rows, l.k, weight, bias, resolve_eps(eps, x.dtype()), center);
  }
  const std::vector<double> w = param_values(weight, l.k, 1.0);
  const std::vector<double> b = param_values(bias, l.k, 0.0);
  std::vector<double> mean(static_cast<size_t>(l.rows), 0.0), rstd(static_cast<size_t>(l.rows), 0.0);
  const Tensor xc = contiguous(x);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    row_norm_kernel<T>(xc.data<T>(), out.data<T>(), l, w, b, resolve_eps(eps, x.dtype()), center, mean, rstd);
  });
  return {out, center ? f64_vector(mean) : Tensor(), f64_vector(rstd)};
}

}  // namespace

NormForward batch_norm_forward(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                               const Tensor& weight, const Tensor& bias, bool training, double momentum,
                               double eps, bool fuse_relu) {
  LOUPE_CHECK(x.dim() >= 2, "batch_norm: expected an input of shape (N, C, *), got ", shape_str(x.shape()));
  check_floating(x, "batch_norm");
  const ChannelLayout l = channel_layout(x);
  const Shape channels{l.c};
  check_param(running_mean, channels, "batch_norm", "running_mean");
  check_param(running_var, channels, "batch_norm", "running_var");
  check_param(weight, channels, "batch_norm", "weight");
  check_param(bias, channels, "batch_norm", "bias");
  LOUPE_CHECK(running_mean.defined() == running_var.defined(),
              "batch_norm: running_mean and running_var must be given together");
  LOUPE_CHECK(training || running_mean.defined(),
              "batch_norm: inference (training = false) needs running_mean and running_var");
  const int64_t m = l.per_channel();
  LOUPE_CHECK(!training || m != 1,
              "batch_norm: expected more than 1 value per channel when training, got input of shape ",
              shape_str(x.shape()));
  check_same_device("batch_norm", {x, running_mean, running_var, weight, bias});
  if (x.device().is_cuda()) {
    return cuda::batch_norm_forward(x, running_mean, running_var, weight, bias, training, momentum, eps, fuse_relu);
  }
  check_cpu_dtype(x, "batch_norm");

  std::vector<double> mean(static_cast<size_t>(l.c), 0.0), var(static_cast<size_t>(l.c), 0.0);
  const Tensor xc = contiguous(x);
  if (!training) {
    mean = to_vector<double>(running_mean);
    var = to_vector<double>(running_var);
  } else if (m > 0) {
    dispatch_floating(x.dtype(), "batch_norm", [&](auto tag) {
      using T = typename decltype(tag)::type;
      channel_moments<T>(xc.data<T>(), l, mean, var);
    });
    if (running_mean.defined()) {
      // The running variance tracks the unbiased estimate, as in PyTorch.
      std::vector<double> unbiased(var);
      for (double& v : unbiased) v *= static_cast<double>(m) / static_cast<double>(m - 1);
      update_running(running_mean, mean, momentum);
      update_running(running_var, unbiased, momentum);
    }
  }

  // y = (x - mean) * rstd * w + b = x * scale + shift
  std::vector<double> rstd, scale, shift;
  batch_norm_affine(mean, var, weight, bias, eps, rstd, scale, shift);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch_floating(x.dtype(), "batch_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    channel_affine<T>(xc.data<T>(), out.data<T>(), l, scale, shift, fuse_relu);
  });
  return {out, f64_vector(mean), f64_vector(rstd)};
}

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  return batch_norm_forward(x, running_mean, running_var, weight, bias, training, momentum, eps).out;
}

Tensor batch_norm_relu(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                       const Tensor& bias, bool training, double momentum, double eps) {
  return batch_norm_forward(x, running_mean, running_var, weight, bias, training, momentum, eps, /*fuse_relu=*/true)
      .out;
}

NormForward layer_norm_forward(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                               const Tensor& bias, double eps) {
  return row_norm_forward("layer_norm", x, normalized_shape, weight, bias, eps, /*center=*/true);
}

Tensor batch_norm_relu_of_concat(const std::vector<Tensor>& parts, const Tensor& running_mean,
                                 const Tensor& running_var, const Tensor& weight, const Tensor& bias, double eps) {
  LOUPE_CHECK(!parts.empty(), "batch_norm_relu_of_concat: expected a non-empty list of tensors");
  const Tensor& first = parts[0];
  for (size_t i = 0; i < parts.size(); ++i) {
    const Tensor& t = parts[i];
    LOUPE_CHECK(t.defined() && t.dim() >= 2, "batch_norm_relu_of_concat: part ", i, " must be (N, C, *), got ",
                t.defined() ? shape_str(t.shape()) : "undefined");
    LOUPE_CHECK(t.dtype() == first.dtype() && t.device() == first.device(), "batch_norm_relu_of_concat: part ", i,
                " is ", dtype_name(t.dtype()), " on ", t.device().str(), ", part 0 ", dtype_name(first.dtype()), " on ",
                first.device().str());
    bool same = t.dim() == first.dim() && t.size(0) == first.size(0);
    for (int64_t d = 2; same && d < t.dim(); ++d) same = t.size(d) == first.size(d);
    LOUPE_CHECK(same, "batch_norm_relu_of_concat: part ", i, " has shape ", shape_str(t.shape()),
                "; every part must match part 0 ", shape_str(first.shape()), " except in dimension 1");
  }
  if (first.device().is_cuda()) {  // no fused kernel there: the three steps
    return batch_norm_relu(cat(parts, 1), running_mean, running_var, weight, bias, false, 0.0, eps);
  }
  check_floating(first, "batch_norm_relu_of_concat");
  check_cpu_dtype(first, "batch_norm_relu_of_concat");
  Shape shape = first.shape();
  shape[1] = 0;
  for (const Tensor& t : parts) shape[1] += t.size(1);
  const Shape channels{shape[1]};
  check_param(running_mean, channels, "batch_norm_relu_of_concat", "running_mean");
  check_param(running_var, channels, "batch_norm_relu_of_concat", "running_var");
  check_param(weight, channels, "batch_norm_relu_of_concat", "weight");
  check_param(bias, channels, "batch_norm_relu_of_concat", "bias");
  LOUPE_CHECK(running_mean.defined() && running_var.defined(),
              "batch_norm_relu_of_concat: inference needs running_mean and running_var");
  check_same_device("batch_norm_relu_of_concat", {first, running_mean, running_var, weight, bias});

  ChannelLayout l;
  l.n = shape[0], l.c = shape[1];
  for (size_t d = 2; d < shape.size(); ++d) l.s *= shape[d];
  std::vector<double> rstd, scale, shift;
  batch_norm_affine(to_vector<double>(running_mean), to_vector<double>(running_var), weight, bias, eps, rstd, scale,
                    shift);
  // Channel c of the whole is channel c - first_channel[i] of part i.
  std::vector<Tensor> contiguous_parts;
  std::vector<int64_t> part_of(static_cast<size_t>(l.c)), first_channel;
  for (size_t i = 0; i < parts.size(); ++i) {
    contiguous_parts.push_back(contiguous(parts[i]));
    const int64_t begin = first_channel.empty() ? 0 : first_channel.back() + parts[i - 1].size(1);
    first_channel.push_back(begin);
    for (int64_t c = begin; c < begin + parts[i].size(1); ++c) part_of[static_cast<size_t>(c)] = static_cast<int64_t>(i);
  }
  Tensor out = Tensor::empty(shape, first.dtype(), first.device());
  dispatch_floating(first.dtype(), "batch_norm_relu_of_concat", [&](auto tag) {
    using T = typename decltype(tag)::type;
    auto source = [&](int64_t plane) {
      const int64_t n = plane / l.c, c = plane % l.c;
      const size_t i = static_cast<size_t>(part_of[static_cast<size_t>(c)]);
      const Tensor& part = contiguous_parts[i];
      return part.data<T>() + (n * part.size(1) + c - first_channel[i]) * l.s;
    };
    channel_affine_from<T>(source, out.data<T>(), l, scale, shift, /*relu=*/true);
  });
  return out;
}

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  return layer_norm_forward(x, normalized_shape, weight, bias, eps).out;
}

NormForward rms_norm_forward(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, double eps) {
  return row_norm_forward("rms_norm", x, normalized_shape, weight, Tensor(), eps, /*center=*/false);
}

Tensor rms_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, double eps) {
  return rms_norm_forward(x, normalized_shape, weight, eps).out;
}

// --- backward ---

NormGrads batch_norm_backward(const Tensor& g_in, const Tensor& x, const Tensor& mean_t, const Tensor& rstd_t,
                              const Tensor& weight, bool training, NormNeeds needs) {
  check_same_device("batch_norm_backward", {g_in, x, mean_t, rstd_t, weight});
  if (x.device().is_cuda()) return cuda::batch_norm_backward(g_in, x, mean_t, rstd_t, weight, training, needs);
  check_cpu_dtype(x, "batch_norm_backward");
  const ChannelLayout l = channel_layout(x);
  const double m = static_cast<double>(l.per_channel());
  const std::vector<double> mean = to_vector<double>(mean_t);
  const std::vector<double> rstd = to_vector<double>(rstd_t);
  const std::vector<double> w = param_values(weight, l.c, 1.0);
  std::vector<double> sum_g(static_cast<size_t>(l.c), 0.0), sum_g_xhat(static_cast<size_t>(l.c), 0.0);
  const Tensor xc = contiguous(x);
  const Tensor g = contiguous(to_dtype(g_in, x.dtype()));
  NormGrads grads;
  if (needs[0]) grads.x = Tensor::empty(x.shape(), x.dtype(), x.device());

  dispatch_floating(x.dtype(), "batch_norm_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = xc.data<T>();
    const T* pg = g.data<T>();
    T* pdx = needs[0] ? grads.x.data<T>() : nullptr;
    const bool fast = cpu::fast::enabled();
    // In inference the statistics are constants: dx = w rstd g, and the two sums over g are needed
    // only for the parameters' gradients. Explanations take this path (they ask for dx alone), and
    // skip reading x and a second pass over g. (x does not enter dx at all here, as in PyTorch:
    // a NaN or inf in x leaves dx finite.)
    const bool scale_only = !training && !needs[1] && !needs[2];
    parallel_for(0, l.c, group_grain(l.per_channel()), [&](int64_t lo, int64_t hi) {
      for (int64_t c = lo; c < hi; ++c) {
        const size_t ci = static_cast<size_t>(c);
        if (scale_only) {
          if (pdx == nullptr) continue;
          const double k = w[ci] * rstd[ci];
          for_each_plane(l, c, [&](int64_t at) {
            if (fast) {
              const T kt = static_cast<T>(k);
              for (int64_t j = 0; j < l.s; ++j) pdx[at + j] = kt * pg[at + j];
            } else {
              for (int64_t j = 0; j < l.s; ++j) pdx[at + j] = static_cast<T>(k * static_cast<double>(pg[at + j]));
            }
          });
          continue;
        }
        double sg = 0.0, sgx = 0.0;
        if (fast) {
          // sum(g * xhat) = rstd * sum(g * (x - mean)), both sums in float64 per plane.
          for_each_plane(l, c, [&](int64_t at) {
            double plane_g = 0.0, plane_dot = 0.0;
            cpu::fast::sum_and_dot_deviation(pg + at, px + at, l.s, mean[ci], plane_g, plane_dot);
            sg += plane_g;
            sgx += plane_dot * rstd[ci];
          });
          sum_g[ci] = sg;
          sum_g_xhat[ci] = sgx;
          if (pdx == nullptr) continue;
          const double a = training ? sg / m : 0.0;
          const double b = training ? sgx / m : 0.0;
          // dx = k (g - a - (x - mean) rstd b)
          for_each_plane(l, c, [&](int64_t at) {
            cpu::fast::batch_norm_dx(pg + at, px + at, l.s, static_cast<T>(w[ci] * rstd[ci]), static_cast<T>(a),
                                     static_cast<T>(mean[ci]), static_cast<T>(rstd[ci] * b), pdx + at);
          });
          continue;
        }
        for_each_plane(l, c, [&](int64_t at) {
          for (int64_t j = 0; j < l.s; ++j) {
            const double gv = static_cast<double>(pg[at + j]);
            sg += gv;
            sgx += gv * (static_cast<double>(px[at + j]) - mean[ci]) * rstd[ci];
          }
        });
        sum_g[ci] = sg;
        sum_g_xhat[ci] = sgx;
        if (pdx == nullptr) continue;
        const double k = w[ci] * rstd[ci];
        // In training the batch statistics depend on x: remove the mean gradient and its
        // projection on xhat. In inference they are constants and only the scale remains.
        const double a = training ? sg / m : 0.0;
        const double b = training ? sgx / m : 0.0;
        for_each_plane(l, c, [&](int64_t at) {
          for (int64_t j = 0; j < l.s; ++j) {
            const double xhat = (static_cast<double>(px[at + j]) - mean[ci]) * rstd[ci];
            pdx[at + j] = static_cast<T>(k * (static_cast<double>(pg[at + j]) - a - xhat * b));
          }
        });
      }
    });
  });
  if (needs[1]) grads.weight = to_dtype(f64_vector(sum_g_xhat), x.dtype());
  if (needs[2]) grads.bias = to_dtype(f64_vector(sum_g), x.dtype());
  return grads;
}

NormGrads layer_norm_backward(const Tensor& g_in, const Tensor& x, const Shape& normalized_shape,
                              const Tensor& mean_t, const Tensor& rstd_t, const Tensor& weight, NormNeeds needs) {
  const bool center = mean_t.defined();
  const char* op = center ? "layer_norm_backward" : "rms_norm_backward";
  const RowLayout l = row_layout(x, normalized_shape, op);
  check_same_device(op, {g_in, x, mean_t, rstd_t, weight});
  if (x.device().is_cuda()) {
    return cuda::row_norm_backward(g_in, x, normalized_shape, l.rows, l.k, mean_t, rstd_t, weight, needs);
  }
  const double k = static_cast<double>(l.k);
  const std::vector<double> mean =
      center ? to_vector<double>(mean_t) : std::vector<double>(static_cast<size_t>(l.rows), 0.0);
  const std::vector<double> rstd = to_vector<double>(rstd_t);
  const std::vector<double> w = param_values(weight, l.k, 1.0);
  const Tensor xc = contiguous(x);
  const Tensor g = contiguous(to_dtype(g_in, x.dtype()));
  NormGrads grads;
  std::vector<double> sum_g_xhat(static_cast<size_t>(l.k), 0.0), sum_g(static_cast<size_t>(l.k), 0.0);
  if (needs[0]) grads.x = Tensor::empty(x.shape(), x.dtype(), x.device());

  dispatch_floating(x.dtype(), "layer_norm_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = xc.data<T>();
    const T* pg = g.data<T>();
    auto xhat = [&](int64_t r, int64_t j) {
      const size_t ri = static_cast<size_t>(r);
      return (static_cast<double>(px[r * l.k + j]) - mean[ri]) * rstd[ri];
    };
    if (needs[0]) {
      T* pdx = grads.x.data<T>();
      parallel_for(0, l.rows, group_grain(l.k), [&](int64_t lo, int64_t hi) {
        for (int64_t r = lo; r < hi; ++r) {
          const T* gr = pg + r * l.k;
          double sum_wg = 0.0, sum_wg_xhat = 0.0;
          for (int64_t j = 0; j < l.k; ++j) {
            const double wg = static_cast<double>(gr[j]) * w[static_cast<size_t>(j)];
            sum_wg += wg;
            sum_wg_xhat += wg * xhat(r, j);
          }
          const double a = center ? sum_wg / k : 0.0;
          const double b = sum_wg_xhat / k;
          const double rs = rstd[static_cast<size_t>(r)];
          for (int64_t j = 0; j < l.k; ++j) {
            const double wg = static_cast<double>(gr[j]) * w[static_cast<size_t>(j)];
            pdx[r * l.k + j] = static_cast<T>(rs * (wg - a - xhat(r, j) * b));
          }
        }
      });
    }
    if (needs[1] || needs[2]) {
      // Parameter gradients: one column per step, rows summed in order (deterministic).
      parallel_for(0, l.k, group_grain(l.rows), [&](int64_t lo, int64_t hi) {
        for (int64_t j = lo; j < hi; ++j) {
          double sg = 0.0, sgx = 0.0;
          for (int64_t r = 0; r < l.rows; ++r) {
            const double gv = static_cast<double>(pg[r * l.k + j]);
            sg += gv;
            sgx += gv * xhat(r, j);
          }
          sum_g[static_cast<size_t>(j)] = sg;
          sum_g_xhat[static_cast<size_t>(j)] = sgx;
        }
      });
    }
  });
  if (needs[1]) grads.weight = from_values(sum_g_xhat, normalized_shape, x.dtype());
  if (needs[2]) grads.bias = from_values(sum_g, normalized_shape, x.dtype());
  return grads;
}

}  // namespace loupe::ops
