// CUDA fused attention (the op of tensor/ops/attention.hpp), flash-attention style, float32 and
// float64. A simple, correct kernel set, not a tuned one:
//   forward      a block per (batch, head, 64 queries), one thread per query; tiles of keys and
//                values are staged in shared memory, each thread keeps its query, its running
//                max m, sum l and output accumulator (online softmax: rescaled when m grows);
//                writes out and lse = m + log(l).
//   backward dq  the same grid: p = exp(s - lse) recomputed per key, ds = p (g.v - rowsum(g * out)),
//                dq = scale * sum ds k; it also stores rowsum(g * out) for the next kernel.
//   backward dkv a block per (batch, KV head, 64 keys), one thread per key, looping over the query
//                heads of its group and tiles of queries (q, g, lse, rowsum staged in shared
//                memory): dv = sum p g, dk = scale * sum ds q.
// Every output element is written by one thread (no atomics): results are deterministic.
// Head dims above kMaxHead are not handled (the caller takes the reference path). Rows with no
// allowed key give zeros and lse -inf, as on the CPU.
// Tests: tests/cuda/test_cuda_attention.cpp, and the attention entries of the op table on the GPU.
#include <cmath>
#include <cstdint>
#include <limits>

#include "tensor/cuda/common.cuh"
#include "tensor/cuda/ops.hpp"

namespace loupe::cuda {

namespace {

constexpr int kRows = 64;       // queries (forward, dq) or keys (dkv) per block, one thread each
constexpr int kMaxHead = 128;   // D and Dv handled by the kernels (per-thread arrays)
constexpr int kSharedBytes = 40 * 1024;

template <typename T>
struct View {
  const T* p;
  int64_t s0, s1, s2, s3;
  __device__ const T* row(int64_t b, int64_t h, int64_t t) const { return p + b * s0 + h * s1 + t * s2; }
};

template <typename T>
__device__ T neg_inf() {
  return -std::numeric_limits<T>::infinity();
}
__device__ int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
__device__ int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

struct MaskRef {
  const void* p;
  bool is_bool;
  int64_t s0, s1, s2, s3;
};

struct Dims {
  int64_t B, H, Hkv, Tq, Tk, D, Dv, offset;
  double scale;
  bool causal;
};

template <typename T>
View<T> view_of(const Tensor& x) {
  return {device_data<const T>(x), x.stride(0), x.stride(1), x.stride(2), x.stride(3)};
}

MaskRef mask_of(const Tensor& m) {
  if (!m.defined()) return {nullptr, false, 0, 0, 0, 0};
  return {m.raw_data(), m.dtype() == DType::b8, m.stride(0), m.stride(1), m.stride(2), m.stride(3)};
}

// The score of (query i, key j) with the mask applied: -inf when the key is forbidden.
template <typename T>
__device__ T masked(T s, const Dims& d, const MaskRef& m, int64_t b, int64_t h, int64_t i, int64_t j) {
  if (d.causal && j > i + d.offset) return neg_inf<T>();
  if (m.p != nullptr) {
    const int64_t at = b * m.s0 + h * m.s1 + i * m.s2 + j * m.s3;
    if (m.is_bool) {
      if (!static_cast<const bool*>(m.p)[at]) return neg_inf<T>();
    } else {
      s += static_cast<const T*>(m.p)[at];
    }
  }
  return s;
}

// Keys of one tile a block stages: rows * width elements of one head, row-major in shared memory.
template <typename T>
__device__ void stage(T* dst, const View<T>& x, int64_t b, int64_t h, int64_t t0, int64_t rows, int64_t width) {
  for (int64_t idx = threadIdx.x; idx < rows * width; idx += blockDim.x) {
    const int64_t r = idx / width, c = idx % width;
    dst[idx] = x.row(b, h, t0 + r)[c * x.s3];
  }
}

int64_t tile_of(int64_t width, size_t element) {
  return std::max<int64_t>(1, std::min<int64_t>(kRows, kSharedBytes / static_cast<int64_t>(width * element)));
}

template <typename T>
__global__ void attention_forward_kernel(Dims d, View<T> q, View<T> k, View<T> v, MaskRef m, T* out, T* lse,
                                         int64_t key_tile) {
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  T* ks = reinterpret_cast<T*>(shared_bytes);
  T* vs = ks + key_tile * d.D;
  const int64_t b = blockIdx.z, h = blockIdx.y, hk = h / (d.H / d.Hkv);
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * kRows, i = i0 + threadIdx.x;
  const bool active = i < d.Tq;
  T qr[kMaxHead], acc[kMaxHead];
  if (active) {
    for (int64_t c = 0; c < d.D; ++c) qr[c] = q.row(b, h, i)[c * q.s3];
  }
  for (int64_t c = 0; c < d.Dv; ++c) acc[c] = 0;
  T mx = neg_inf<T>(), l = 0;
  const int64_t last_row = imin(d.Tq, i0 + kRows) - 1;
  const int64_t keys = d.causal ? imax(0, imin(d.Tk, last_row + d.offset + 1)) : d.Tk;
  for (int64_t j0 = 0; j0 < keys; j0 += key_tile) {
    const int64_t cols = imin(key_tile, keys - j0);
    __syncthreads();  // the previous tile's readers are done
    stage(ks, k, b, hk, j0, cols, d.D);
    stage(vs, v, b, hk, j0, cols, d.Dv);
    __syncthreads();
    if (!active) continue;
    for (int64_t c = 0; c < cols; ++c) {
      T dot = 0;
      for (int64_t e = 0; e < d.D; ++e) dot += qr[e] * ks[c * d.D + e];
      const T s = masked(static_cast<T>(d.scale) * dot, d, m, b, h, i, j0 + c);
      if (s == neg_inf<T>()) continue;
      if (s > mx) {  // rescale what was accumulated under the old max
        const T r = exp(mx - s);
        l *= r;
        for (int64_t e = 0; e < d.Dv; ++e) acc[e] *= r;
        mx = s;
      }
      const T p = exp(s - mx);
      l += p;
      for (int64_t e = 0; e < d.Dv; ++e) acc[e] += p * vs[c * d.Dv + e];
    }
  }
  if (!active) return;
  const int64_t row = (b * d.H + h) * d.Tq + i;
  const bool any = l > 0;
  for (int64_t e = 0; e < d.Dv; ++e) out[row * d.Dv + e] = any ? acc[e] / l : T(0);
  lse[row] = any ? mx + log(l) : neg_inf<T>();
}

template <typename T>
__global__ void attention_dq_kernel(Dims d, View<T> q, View<T> k, View<T> v, View<T> g, MaskRef m, const T* out,
                                    const T* lse, T* dq, T* di_out, int64_t key_tile) {
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  T* ks = reinterpret_cast<T*>(shared_bytes);
  T* vs = ks + key_tile * d.D;
  const int64_t b = blockIdx.z, h = blockIdx.y, hk = h / (d.H / d.Hkv);
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * kRows, i = i0 + threadIdx.x;
  const bool active = i < d.Tq;
  const int64_t row = (b * d.H + h) * d.Tq + i;
  T qr[kMaxHead], gr[kMaxHead], acc[kMaxHead];
  T di = 0, row_lse = neg_inf<T>();
  if (active) {
    for (int64_t c = 0; c < d.D; ++c) qr[c] = q.row(b, h, i)[c * q.s3];
    for (int64_t c = 0; c < d.Dv; ++c) {
      gr[c] = g.row(b, h, i)[c * g.s3];
      di += gr[c] * out[row * d.Dv + c];
    }
    row_lse = lse[row];
    di_out[row] = di;
  }
  for (int64_t c = 0; c < d.D; ++c) acc[c] = 0;
  const int64_t last_row = imin(d.Tq, i0 + kRows) - 1;
  const int64_t keys = d.causal ? imax(0, imin(d.Tk, last_row + d.offset + 1)) : d.Tk;
  for (int64_t j0 = 0; j0 < keys; j0 += key_tile) {
    const int64_t cols = imin(key_tile, keys - j0);
    __syncthreads();
    stage(ks, k, b, hk, j0, cols, d.D);
    stage(vs, v, b, hk, j0, cols, d.Dv);
    __syncthreads();
    if (!active || row_lse == neg_inf<T>()) continue;
    for (int64_t c = 0; c < cols; ++c) {
      T dot = 0;
      for (int64_t e = 0; e < d.D; ++e) dot += qr[e] * ks[c * d.D + e];
      const T s = masked(static_cast<T>(d.scale) * dot, d, m, b, h, i, j0 + c);
      if (s == neg_inf<T>()) continue;
      const T p = exp(s - row_lse);
      T dp = 0;
      for (int64_t e = 0; e < d.Dv; ++e) dp += gr[e] * vs[c * d.Dv + e];
      const T ds = p * (dp - di);
      for (int64_t e = 0; e < d.D; ++e) acc[e] += ds * ks[c * d.D + e];
    }
  }
  if (!active) return;
  for (int64_t e = 0; e < d.D; ++e) dq[row * d.D + e] = static_cast<T>(d.scale) * acc[e];
}

template <typename T>
__global__ void attention_dkv_kernel(Dims d, View<T> q, View<T> k, View<T> v, View<T> g, MaskRef m, const T* lse,
                                     const T* di, T* dk, T* dv, int64_t query_tile) {
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  T* qs = reinterpret_cast<T*>(shared_bytes);
  T* gs = qs + query_tile * d.D;
  T* ls = gs + query_tile * d.Dv;
  T* dis = ls + query_tile;
  const int64_t b = blockIdx.z, hk = blockIdx.y;
  const int64_t j0 = static_cast<int64_t>(blockIdx.x) * kRows, j = j0 + threadIdx.x;
  const bool active = j < d.Tk;
  T kr[kMaxHead], vr[kMaxHead], dk_acc[kMaxHead], dv_acc[kMaxHead];
  if (active) {
    for (int64_t c = 0; c < d.D; ++c) kr[c] = k.row(b, hk, j)[c * k.s3];
    for (int64_t c = 0; c < d.Dv; ++c) vr[c] = v.row(b, hk, j)[c * v.s3];
  }
  for (int64_t c = 0; c < d.D; ++c) dk_acc[c] = 0;
  for (int64_t c = 0; c < d.Dv; ++c) dv_acc[c] = 0;
  // Causal: query i sees key j iff i >= j - offset; the block's first key bounds the first query.
  const int64_t first_query = d.causal ? imax(0, j0 - d.offset) : 0;
  const int64_t group = d.H / d.Hkv;
  for (int64_t h = hk * group; h < (hk + 1) * group; ++h) {
    for (int64_t i0 = first_query; i0 < d.Tq; i0 += query_tile) {
      const int64_t rows = imin(query_tile, d.Tq - i0);
      __syncthreads();
      stage(qs, q, b, h, i0, rows, d.D);
      stage(gs, g, b, h, i0, rows, d.Dv);
      for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
        ls[r] = lse[(b * d.H + h) * d.Tq + i0 + r];
        dis[r] = di[(b * d.H + h) * d.Tq + i0 + r];
      }
      __syncthreads();
      if (!active) continue;
      for (int64_t r = 0; r < rows; ++r) {
        if (ls[r] == neg_inf<T>()) continue;
        T dot = 0;
        for (int64_t e = 0; e < d.D; ++e) dot += qs[r * d.D + e] * kr[e];
        const T s = masked(static_cast<T>(d.scale) * dot, d, m, b, h, i0 + r, j);
        if (s == neg_inf<T>()) continue;
        const T p = exp(s - ls[r]);
        T dp = 0;
        for (int64_t e = 0; e < d.Dv; ++e) {
          dv_acc[e] += p * gs[r * d.Dv + e];
          dp += gs[r * d.Dv + e] * vr[e];
        }
        const T ds = p * (dp - dis[r]);
        for (int64_t e = 0; e < d.D; ++e) dk_acc[e] += ds * qs[r * d.D + e];
      }
    }
  }
  if (!active) return;
  const int64_t row = (b * d.Hkv + hk) * d.Tk + j;
  for (int64_t e = 0; e < d.D; ++e) dk[row * d.D + e] = static_cast<T>(d.scale) * dk_acc[e];
  for (int64_t e = 0; e < d.Dv; ++e) dv[row * d.Dv + e] = dv_acc[e];
}

Dims dims_of(const ops::AttentionShape& s) {
  return {s.batch, s.heads, s.kv_heads, s.q_len, s.kv_len, s.head_dim, s.v_dim, s.causal_offset(), s.scale,
          s.causal != CausalMode::none};
}

bool handled(const ops::AttentionShape& s, DType dtype) {
  return (dtype == DType::f32 || dtype == DType::f64) && s.head_dim <= kMaxHead && s.v_dim <= kMaxHead &&
         s.q_len <= (int64_t{1} << 31) / kRows && s.heads <= 65535 && s.batch <= 65535;
}

}  // namespace

bool attention_forward(const ops::AttentionShape& s, const Tensor& q, const Tensor& k, const Tensor& v,
                       const Tensor& mask, const Tensor& out, const Tensor& lse) {
  if (!handled(s, q.dtype())) return false;
  const int device = q.device().index;
  DeviceGuard guard(device);
  cudaStream_t st = stream(device);
  dispatch_floating(q.dtype(), "scaled_dot_product_attention", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t key_tile = tile_of(s.head_dim + s.v_dim, sizeof(T));
    const dim3 grid(static_cast<unsigned>((s.q_len + kRows - 1) / kRows), static_cast<unsigned>(s.heads),
                    static_cast<unsigned>(s.batch));
    const size_t shared = static_cast<size_t>(key_tile * (s.head_dim + s.v_dim)) * sizeof(T);
    attention_forward_kernel<T><<<grid, kRows, shared, st>>>(dims_of(s), view_of<T>(q), view_of<T>(k), view_of<T>(v),
                                                              mask_of(mask), device_data<T>(out), device_data<T>(lse),
                                                              key_tile);
    LOUPE_CUDA_CHECK_LAUNCH();
  });
  return true;
}

bool attention_backward(const ops::AttentionShape& s, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& g, const Tensor& out, const Tensor& lse, const Tensor& mask, const Tensor& dq,
                        const Tensor& dk, const Tensor& dv) {
  if (!handled(s, q.dtype()) || s.kv_len > (int64_t{1} << 31) / kRows || s.kv_heads > 65535) return false;
  const int device = q.device().index;
  DeviceGuard guard(device);
  cudaStream_t st = stream(device);
  Tensor di = Tensor::empty({s.batch, s.heads, s.q_len}, q.dtype(), q.device());
  dispatch_floating(q.dtype(), "scaled_dot_product_attention_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const Dims d = dims_of(s);
    const int64_t key_tile = tile_of(s.head_dim + s.v_dim, sizeof(T));
    const dim3 q_grid(static_cast<unsigned>((s.q_len + kRows - 1) / kRows), static_cast<unsigned>(s.heads),
                      static_cast<unsigned>(s.batch));
    attention_dq_kernel<T><<<q_grid, kRows, static_cast<size_t>(key_tile * (s.head_dim + s.v_dim)) * sizeof(T), st>>>(
        d, view_of<T>(q), view_of<T>(k), view_of<T>(v), view_of<T>(g), mask_of(mask), device_data<const T>(out),
        device_data<const T>(lse), device_data<T>(dq), device_data<T>(di), key_tile);
    LOUPE_CUDA_CHECK_LAUNCH();
    const int64_t query_tile = tile_of(s.head_dim + s.v_dim + 2, sizeof(T));
    const dim3 k_grid(static_cast<unsigned>((s.kv_len + kRows - 1) / kRows), static_cast<unsigned>(s.kv_heads),
                      static_cast<unsigned>(s.batch));
    attention_dkv_kernel<T>
        <<<k_grid, kRows, static_cast<size_t>(query_tile * (s.head_dim + s.v_dim + 2)) * sizeof(T), st>>>(
            d, view_of<T>(q), view_of<T>(k), view_of<T>(v), view_of<T>(g), mask_of(mask), device_data<const T>(lse),
            device_data<const T>(di), device_data<T>(dk), device_data<T>(dv), query_tile);
    LOUPE_CUDA_CHECK_LAUNCH();
  });
  return true;
}

}  // namespace loupe::cuda
