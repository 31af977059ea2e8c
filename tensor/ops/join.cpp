// cat, stack, split, chunk and pad. See join.hpp.
//
// cat copies each input into its window of the output with the strided copy kernel (which also
// converts dtypes). split and chunk return views. pad maps every output position, dim by dim, to
// the input position it reads (or to "fill"); the one table serves all three modes, and the
// backward walks the same table in reverse to fold gradients back onto the input. On CUDA the
// same tables (and, for the backward, their inverse: the outputs reading each input index) are
// copied to the device for the kernels of tensor/cuda/pad.cu. cat, stack, split and chunk are
// copies and views, so they run on any one device as they are.
// Tests: tests/ops/op_table_join.cpp, tests/cuda/test_cuda_pool.cpp
#include "tensor/ops/join.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "tensor/cuda/ops.hpp"
#include "tensor/dispatch.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/creation.hpp"
#include "tensor/ops/view.hpp"
#include "tensor/parallel.hpp"
#include "tensor/ops/device.hpp"

namespace loupe {

const char* pad_mode_name(PadMode mode) {
  switch (mode) {
    case PadMode::constant: return "constant";
    case PadMode::reflect: return "reflect";
    case PadMode::replicate: return "replicate";
  }
  return "unknown";
}

}  // namespace loupe

namespace loupe::ops {

namespace {

size_t u(int64_t i) { return static_cast<size_t>(i); }

std::string list_str(const std::vector<int64_t>& v) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < v.size(); ++i) out << (i ? ", " : "") << v[i];
  out << "]";
  return out.str();
}

// torch.cat's legacy rule: a 1-d tensor of size 0 joins anything (it is skipped).
bool skipped_by_cat(const Tensor& t) { return t.dim() == 1 && t.shape()[0] == 0; }

}  // namespace

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  check_same_device("cat", tensors);  // cat is copies into views: it runs on any one device
  LOUPE_CHECK(!tensors.empty(), "cat: expected a non-empty list of tensors");
  DType dtype = tensors[0].defined() ? tensors[0].dtype() : DType::f32;
  const Tensor* first = nullptr;  // the first tensor that takes part in the shape checks
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    LOUPE_CHECK(t.defined(), "cat: tensor ", i, " in the list is undefined");
    LOUPE_CHECK(t.dim() > 0, "cat: zero-dimensional tensor (at position ", i, ") cannot be concatenated");
    dtype = promote_types(dtype, t.dtype());
    if (!first && !skipped_by_cat(t)) first = &t;
  }
  if (!first) return Tensor::empty({0}, dtype, tensors[0].device());  // only empty 1-d tensors
  dim = wrap_dim(dim, first->dim(), "cat");

  Shape shape = first->shape();
  shape[u(dim)] = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    if (skipped_by_cat(t)) continue;
    LOUPE_CHECK(t.dim() == first->dim(), "cat: tensors must have the same number of dimensions: got ", first->dim(),
                " and ", t.dim(), " (tensor number ", i, " in the list, shape ", shape_str(t.shape()), ")");
    for (int64_t d = 0; d < t.dim(); ++d) {
      LOUPE_CHECK(d == dim || t.shape()[u(d)] == shape[u(d)], "cat: sizes of tensors must match except in dimension ",
                  dim, ": expected size ", shape[u(d)], " but got size ", t.shape()[u(d)], " for tensor number ", i,
                  " in the list (shape ", shape_str(t.shape()), ")");
    }
    shape[u(dim)] += t.shape()[u(dim)];
  }

  Tensor out = Tensor::empty(shape, dtype, first->device());
  int64_t offset = 0;
  for (const Tensor& t : tensors) {
    if (skipped_by_cat(t)) continue;
    const int64_t n = t.shape()[u(dim)];
    if (t.numel() > 0) copy_(narrow(out, dim, offset, n), t);
    offset += n;
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  LOUPE_CHECK(!tensors.empty(), "stack: expected a non-empty list of tensors");
  for (size_t i = 0; i < tensors.size(); ++i) {
    LOUPE_CHECK(tensors[i].defined(), "stack: tensor ", i, " in the list is undefined");
    LOUPE_CHECK(tensors[i].shape() == tensors[0].shape(), "stack: expects each tensor to be equal size, but got ",
                shape_str(tensors[0].shape()), " at entry 0 and ", shape_str(tensors[i].shape()), " at entry ", i);
  }
  dim = wrap_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  parts.reserve(tensors.size());
  for (const Tensor& t : tensors) parts.push_back(unsqueeze(t, dim));
  return cat(parts, dim);
}

std::vector<int64_t> split_sizes(int64_t size, int64_t split_size) {
  LOUPE_CHECK(split_size >= 0, "split: split_size must be non-negative, got ", split_size);
  LOUPE_CHECK(split_size != 0 || size == 0, "split: split_size can only be 0 if the dimension size is 0, got size ",
              size);
  if (split_size == 0) return {0};
  const int64_t pieces = std::max<int64_t>((size + split_size - 1) / split_size, 1);
  std::vector<int64_t> sizes(u(pieces), split_size);
  sizes.back() = size - split_size * (pieces - 1);
  return sizes;
}

std::vector<int64_t> chunk_sizes(int64_t size, int64_t chunks) {
  LOUPE_CHECK(chunks > 0, "chunk: chunks must be greater than 0, got ", chunks);
  const int64_t split_size = (size + chunks - 1) / chunks;
  // An empty dim still gives `chunks` empty pieces (split would give one).
  if (split_size == 0) return std::vector<int64_t>(u(chunks), 0);
  return split_sizes(size, split_size);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  LOUPE_CHECK(x.dim() > 0, "split: expects at least a 1-dimensional tensor");
  dim = wrap_dim(dim, x.dim(), "split");
  const int64_t size = x.shape()[u(dim)];
  int64_t total = 0;
  for (int64_t s : sizes) {
    LOUPE_CHECK(s >= 0, "split: sizes must be non-negative, got ", list_str(sizes));
    total += s;
  }
  LOUPE_CHECK(total == size, "split: sizes must sum exactly to ", size, " (the size of dimension ", dim,
              " of input ", shape_str(x.shape()), "), got ", list_str(sizes));
  std::vector<Tensor> pieces;
  int64_t offset = 0;
  for (int64_t s : sizes) {
    pieces.push_back(slice(x, dim, offset, offset + s));
    offset += s;
  }
  return pieces;
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  LOUPE_CHECK(x.dim() > 0, "split: expects at least a 1-dimensional tensor");
  return split(x, split_sizes(x.shape()[u(wrap_dim(dim, x.dim(), "split"))], split_size), dim);
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  LOUPE_CHECK(x.dim() > 0, "chunk: expects at least a 1-dimensional tensor");
  return split(x, chunk_sizes(x.shape()[u(wrap_dim(dim, x.dim(), "chunk"))], chunks), dim);
}

// ---- pad ----

namespace {

// The output shape of a pad and, for every dim, the input index each output index reads
// (-1: the fill value of constant mode). Unpadded dims map to themselves.
struct PadPlan {
  Shape out_shape;
  std::vector<std::vector<int64_t>> source;
  int64_t padded_dims = 0;  // the last `padded_dims` dims are padded
};

int64_t source_index(int64_t o, int64_t before, int64_t size, PadMode mode) {
  const int64_t j = o - before;
  switch (mode) {
    case PadMode::constant: return j >= 0 && j < size ? j : -1;
    case PadMode::reflect: return j < 0 ? -j : (j >= size ? 2 * (size - 1) - j : j);
    case PadMode::replicate: return std::clamp<int64_t>(j, 0, size - 1);
  }
  return -1;
}

PadPlan plan_pad(const Shape& in, const std::vector<int64_t>& pads, PadMode mode) {
  const auto ndim = static_cast<int64_t>(in.size());
  const auto npads = static_cast<int64_t>(pads.size());
  LOUPE_CHECK(npads % 2 == 0, "pad: padding length must be divisible by 2, got ", npads);
  LOUPE_CHECK(npads / 2 <= ndim, "pad: padding length should be at most twice the input dimension, but got padding ",
              "length ", npads, " and input of dimension ", ndim);
  PadPlan plan;
  plan.padded_dims = npads / 2;
  if (mode != PadMode::constant) {
    const int64_t k = plan.padded_dims;
    LOUPE_CHECK(k >= 1 && k <= 3 && (ndim == k + 1 || ndim == k + 2), "pad: ", pad_mode_name(mode),
                " mode pads the last 1, 2 or 3 dims of an input with 1 or 2 more dims (2 pads for 2-d or 3-d, 4 ",
                "for 3-d or 4-d, 6 for 4-d or 5-d input); got ", npads, " pads for input ", shape_str(in));
    for (int64_t d = 1; d < ndim; ++d) {
      LOUPE_CHECK(in[u(d)] > 0, "pad: ", pad_mode_name(mode), " mode needs non-zero sizes in every dim but the ",
                  "first, got input ", shape_str(in));
    }
  }
  plan.out_shape = in;
  plan.source.resize(in.size());
  for (int64_t d = 0; d < ndim; ++d) {
    const int64_t size = in[u(d)];
    const int64_t from_end = ndim - 1 - d;  // pads[2 * from_end] and [2 * from_end + 1] belong to d
    int64_t before = 0, after = 0;
    if (from_end < plan.padded_dims) {
      before = pads[u(2 * from_end)];
      after = pads[u(2 * from_end + 1)];
      LOUPE_CHECK(mode != PadMode::reflect || (before < size && after < size), "pad: reflect padding (", before, ", ",
                  after, ") must be smaller than the size ", size, " of dimension ", d, " of input ", shape_str(in));
      const int64_t out_size = size + before + after;
      const int64_t min_size = mode == PadMode::constant ? 0 : 1;
      LOUPE_CHECK(out_size >= min_size, "pad: the input size ", size, " plus padding ", before, " and ", after,
                  " gives output size ", out_size, ", which is invalid (dimension ", d, " of input ", shape_str(in),
                  ")");
    }
    const int64_t out_size = size + before + after;
    plan.out_shape[u(d)] = out_size;
    auto& map = plan.source[u(d)];
    map.resize(u(out_size));
    for (int64_t o = 0; o < out_size; ++o) map[u(o)] = source_index(o, before, size, mode);
  }
  return plan;
}

// The CUDA kernels' view of a plan (layout in tensor/cuda/ops.hpp): planes of the padded trailing
// dims, and one int64 tensor on `device` with each padded dim's source table and its inverse.
struct CudaPadPlan {
  cuda::PadShape shape;
  Tensor tables;
};

CudaPadPlan cuda_pad_plan(const PadPlan& plan, const Shape& in, Device device, const char* op) {
  LOUPE_CHECK(plan.padded_dims <= cuda::kMaxPadDims, op, ": at most ", cuda::kMaxPadDims, " padded dims on ",
              device.str(), ", got ", plan.padded_dims, " for input ", shape_str(in));
  const size_t ndim = in.size(), lead = ndim - u(plan.padded_dims);
  CudaPadPlan result;
  cuda::PadShape& s = result.shape;
  s.dims = static_cast<int>(plan.padded_dims);
  s.planes = s.plane_in = s.plane_out = 1;
  for (size_t d = 0; d < lead; ++d) s.planes *= in[d];
  std::vector<int64_t> tables;
  for (size_t k = 0; k < u(plan.padded_dims); ++k) {
    const size_t d = lead + k;
    const std::vector<int64_t>& source = plan.source[d];
    const int64_t in_size = in[d];
    s.in_size[k] = in_size;
    s.out_size[k] = plan.out_shape[d];
    s.plane_in *= in_size;
    s.plane_out *= plan.out_shape[d];
    s.source_at[k] = static_cast<int64_t>(tables.size());
    tables.insert(tables.end(), source.begin(), source.end());
    // The inverse, as offsets first[i] .. first[i + 1] into a list of outputs in increasing order.
    std::vector<int64_t> first(u(in_size) + 1, 0);
    for (int64_t from : source) {
      if (from >= 0) ++first[u(from) + 1];
    }
    for (size_t i = 0; i < u(in_size); ++i) first[i + 1] += first[i];
    std::vector<int64_t> outputs(u(first.back())), next(first.begin(), first.end() - 1);
    for (size_t o = 0; o < source.size(); ++o) {
      if (source[o] >= 0) outputs[u(next[u(source[o])]++)] = static_cast<int64_t>(o);
    }
    s.first_at[k] = static_cast<int64_t>(tables.size());
    tables.insert(tables.end(), first.begin(), first.end());
    s.outputs_at[k] = static_cast<int64_t>(tables.size());
    tables.insert(tables.end(), outputs.begin(), outputs.end());
  }
  result.tables = to_device(from_values(tables, {static_cast<int64_t>(tables.size())}), device);
  return result;
}

}  // namespace

Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, PadMode mode, double value) {
  const PadPlan plan = plan_pad(x.shape(), pads, mode);
  LOUPE_CHECK(is_floating(x.dtype()) || (std::isfinite(value) && std::abs(value) < 9.2e18), "pad: value ", value,
              " does not fit the input dtype ", x.dtype());
  Tensor out = Tensor::empty(plan.out_shape, x.dtype(), x.device());
  if (out.numel() == 0) return out;
  if (x.dim() == 0) {
    copy_(out, x);
    return out;
  }
  if (x.device().is_cuda()) {
    const CudaPadPlan cp = cuda_pad_plan(plan, x.shape(), x.device(), "pad");
    cuda::pad(contiguous(x), cp.tables, cp.shape, value, out);
    return out;
  }
  // One output row (along the last dim) at a time: its other coordinates give the input row (or
  // say the whole row is fill), then the last dim's table picks the elements.
  const size_t ndim = plan.out_shape.size();
  const int64_t width = plan.out_shape.back();
  const int64_t rows = out.numel() / width;
  const Strides& xs = x.strides();
  const std::vector<int64_t>& last = plan.source.back();
  dispatch_all(x.dtype(), "pad", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T v = static_cast<T>(value);
    const T* px = x.data<T>();
    T* o = out.data<T>();
    parallel_for(0, rows, std::max<int64_t>(1, 16384 / width), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        T* row = o + r * width;
        int64_t base = 0;
        bool fill = false;
        int64_t rest = r;
        for (size_t d = ndim - 1; d-- > 0;) {
          const int64_t s = plan.source[d][u(rest % plan.out_shape[d])];
          rest /= plan.out_shape[d];
          if (s < 0) fill = true;
          base += s * xs[d];
        }
        if (fill) {
          std::fill_n(row, width, v);
          continue;
        }
        for (int64_t k = 0; k < width; ++k) row[k] = last[u(k)] < 0 ? v : px[base + last[u(k)] * xs[ndim - 1]];
      }
    });
  });
  return out;
}

Tensor pad_backward(const Tensor& grad, const Shape& input_shape, const std::vector<int64_t>& pads, PadMode mode) {
  const PadPlan plan = plan_pad(input_shape, pads, mode);
  LOUPE_CHECK(grad.shape() == plan.out_shape, "pad_backward: grad ", shape_str(grad.shape()),
              " does not match the padded shape ", shape_str(plan.out_shape));
  Tensor out = Tensor::empty(input_shape, grad.dtype(), grad.device());
  if (grad.device().is_cuda() && grad.numel() > 0 && out.numel() > 0) {
    // Each input element gathers the outputs that read it: every element is written.
    const CudaPadPlan cp = cuda_pad_plan(plan, input_shape, grad.device(), "pad_backward");
    cuda::pad_backward(contiguous(grad), cp.tables, cp.shape, out);
    return out;
  }
  fill_(out, 0.0);
  if (grad.numel() == 0 || out.numel() == 0) return out;
  // Several output elements can read one input element (reflect and replicate), so chunks are
  // whole planes of the unpadded leading dims, which never share an input element.
  const Tensor g = contiguous(grad);
  const size_t ndim = input_shape.size();
  const size_t lead = ndim - u(plan.padded_dims);
  int64_t planes = 1, plane_out = 1, plane_in = 1;
  for (size_t d = 0; d < lead; ++d) planes *= input_shape[d];
  for (size_t d = lead; d < ndim; ++d) {
    plane_out *= plan.out_shape[d];
    plane_in *= input_shape[d];
  }
  const Strides in_strides = contiguous_strides(input_shape);
  dispatch_numeric(grad.dtype(), "pad_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pg = g.data<T>();
    T* o = out.data<T>();
    parallel_for(0, planes, std::max<int64_t>(1, 16384 / plane_out), [&](int64_t begin, int64_t end) {
      std::vector<int64_t> coord(ndim - lead);
      for (int64_t p = begin; p < end; ++p) {
        std::fill(coord.begin(), coord.end(), 0);
        for (int64_t e = 0; e < plane_out; ++e) {
          int64_t at = 0;
          bool fill = false;
          for (size_t d = lead; d < ndim; ++d) {
            const int64_t s = plan.source[d][u(coord[d - lead])];
            if (s < 0) fill = true;
            at += s * in_strides[d];
          }
          if (!fill) o[p * plane_in + at] += pg[p * plane_out + e];
          for (size_t d = ndim - lead; d-- > 0;) {  // next output position in the plane
            if (++coord[d] < plan.out_shape[lead + d]) break;
            coord[d] = 0;
          }
        }
      }
    });
  });
  return out;
}

}  // namespace loupe::ops
