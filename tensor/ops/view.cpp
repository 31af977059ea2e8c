// View ops: new shape/strides/offset over the same storage. See view.hpp.
#include "tensor/ops/view.hpp"

#include <algorithm>

#include "tensor/ops/copy.hpp"

namespace loupe::ops {

Tensor as_strided(const Tensor& x, const Shape& shape, const Strides& strides, int64_t offset) {
  return Tensor::view_of(x.storage(), offset, shape, strides, x.dtype());
}

Shape infer_shape(const Shape& shape, int64_t numel, const char* op) {
  Shape out = shape;
  int64_t known = 1;
  int infer_at = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      LOUPE_CHECK(infer_at < 0, op, ": only one dimension can be -1 in ", shape_str(shape));
      infer_at = static_cast<int>(i);
    } else {
      LOUPE_CHECK(out[i] >= 0, op, ": invalid size ", out[i], " in ", shape_str(shape));
      known *= out[i];
    }
  }
  if (infer_at >= 0) {
    LOUPE_CHECK(known != 0 && numel % known == 0, op, ": shape ", shape_str(shape),
                " is invalid for input of size ", numel);
    out[static_cast<size_t>(infer_at)] = numel / known;
  }
  LOUPE_CHECK(shape_numel(out) == numel, op, ": shape ", shape_str(shape), " is invalid for input of size ",
              numel);
  return out;
}

namespace {

// Strides that let `new_shape` view memory laid out as (old_shape, old_strides), or an empty
// optional-like result when impossible. Walks groups of old dims that are contiguous with each
// other ("chunks") and matches them with groups of new dims of the same element count.
bool view_strides(const Shape& old_shape, const Strides& old_strides, const Shape& new_shape,
                  Strides& new_strides) {
  new_strides.assign(new_shape.size(), 0);
  if (shape_numel(old_shape) == 0 || old_shape.empty()) {  // nothing to read, or a single element
    new_strides = contiguous_strides(new_shape);
    return true;
  }
  int64_t view_d = static_cast<int64_t>(new_shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.empty() ? 1 : old_strides.back();
  int64_t tensor_numel = 1;
  int64_t view_numel = 1;
  for (int64_t tensor_d = static_cast<int64_t>(old_shape.size()) - 1; tensor_d >= 0; --tensor_d) {
    tensor_numel *= old_shape[static_cast<size_t>(tensor_d)];
    const bool chunk_ends =
        tensor_d == 0 || (old_shape[static_cast<size_t>(tensor_d - 1)] != 1 &&
                          old_strides[static_cast<size_t>(tensor_d - 1)] != tensor_numel * chunk_base_stride);
    if (chunk_ends) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_shape[static_cast<size_t>(view_d)] == 1)) {
        new_strides[static_cast<size_t>(view_d)] = view_numel * chunk_base_stride;
        view_numel *= new_shape[static_cast<size_t>(view_d)];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (tensor_d > 0) {
        chunk_base_stride = old_strides[static_cast<size_t>(tensor_d - 1)];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

}  // namespace

Tensor view(const Tensor& x, const Shape& shape) {
  const Shape target = infer_shape(shape, x.numel(), "view");
  Strides strides;
  LOUPE_CHECK(view_strides(x.shape(), x.strides(), target, strides), "view: shape ", shape_str(target),
              " cannot view a tensor of shape ", shape_str(x.shape()), " with strides ",
              shape_str(x.strides()), "; use reshape (which copies)");
  return as_strided(x, target, strides, x.offset());
}

Tensor reshape(const Tensor& x, const Shape& shape) {
  const Shape target = infer_shape(shape, x.numel(), "reshape");
  Strides strides;
  if (view_strides(x.shape(), x.strides(), target, strides)) {
    return as_strided(x, target, strides, x.offset());
  }
  return view(clone(x), target);
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  const int64_t ndim = x.dim();
  LOUPE_CHECK(static_cast<int64_t>(dims.size()) == ndim, "permute: ", dims.size(),
              " dims given for a tensor of shape ", shape_str(x.shape()));
  Shape shape(dims.size());
  Strides strides(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = wrap_dim(dims[i], ndim, "permute");
    LOUPE_CHECK(!seen[static_cast<size_t>(d)], "permute: dim ", d, " repeated in the permutation");
    seen[static_cast<size_t>(d)] = true;
    shape[i] = x.shape()[static_cast<size_t>(d)];
    strides[i] = x.strides()[static_cast<size_t>(d)];
  }
  return as_strided(x, shape, strides, x.offset());
}

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
  const int64_t ndim = x.dim();
  if (ndim == 0) return x;
  dim0 = wrap_dim(dim0, ndim, "transpose");
  dim1 = wrap_dim(dim1, ndim, "transpose");
  Shape shape = x.shape();
  Strides strides = x.strides();
  std::swap(shape[static_cast<size_t>(dim0)], shape[static_cast<size_t>(dim1)]);
  std::swap(strides[static_cast<size_t>(dim0)], strides[static_cast<size_t>(dim1)]);
  return as_strided(x, shape, strides, x.offset());
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  LOUPE_CHECK(x.dim() > 0, "slice: cannot slice a 0-d tensor");
  dim = wrap_dim(dim, x.dim(), "slice");
  LOUPE_CHECK(step >= 1, "slice: step must be positive, got ", step);
  const int64_t size = x.shape()[static_cast<size_t>(dim)];
  if (start < 0) start += size;
  if (end < 0) end += size;
  start = std::clamp<int64_t>(start, 0, size);
  end = std::clamp<int64_t>(end, start, size);
  Shape shape = x.shape();
  Strides strides = x.strides();
  shape[static_cast<size_t>(dim)] = (end - start + step - 1) / step;
  strides[static_cast<size_t>(dim)] *= step;
  return as_strided(x, shape, strides, x.offset() + start * x.strides()[static_cast<size_t>(dim)]);
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  LOUPE_CHECK(x.dim() > 0, "narrow: cannot narrow a 0-d tensor");
  dim = wrap_dim(dim, x.dim(), "narrow");
  const int64_t size = x.shape()[static_cast<size_t>(dim)];
  if (start < 0) start += size;
  LOUPE_CHECK(start >= 0 && length >= 0 && start + length <= size, "narrow: start ", start, " length ",
              length, " out of range for dim ", dim, " of shape ", shape_str(x.shape()));
  return slice(x, dim, start, start + length, 1);
}

Tensor select(const Tensor& x, int64_t dim, int64_t index) {
  LOUPE_CHECK(x.dim() > 0, "select: cannot select from a 0-d tensor");
  dim = wrap_dim(dim, x.dim(), "select");
  const int64_t size = x.shape()[static_cast<size_t>(dim)];
  LOUPE_CHECK(index >= -size && index < size, "select: index ", index, " out of range for dim ", dim,
              " of shape ", shape_str(x.shape()));
  if (index < 0) index += size;
  Shape shape = x.shape();
  Strides strides = x.strides();
  const int64_t offset = x.offset() + index * strides[static_cast<size_t>(dim)];
  shape.erase(shape.begin() + dim);
  strides.erase(strides.begin() + dim);
  return as_strided(x, shape, strides, offset);
}

Tensor expand(const Tensor& x, const Shape& shape) {
  LOUPE_CHECK(shape.size() >= x.shape().size(), "expand: target shape ", shape_str(shape),
              " has fewer dims than input shape ", shape_str(x.shape()));
  const size_t lead = shape.size() - x.shape().size();
  Shape out_shape(shape.size());
  Strides out_strides(shape.size(), 0);
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i < lead) {
      LOUPE_CHECK(shape[i] >= 0, "expand: size -1 is not allowed for a new leading dim in ",
                  shape_str(shape));
      out_shape[i] = shape[i];
      continue;
    }
    const int64_t have = x.shape()[i - lead];
    const int64_t want = shape[i] == -1 ? have : shape[i];
    LOUPE_CHECK(have == want || have == 1, "expand: cannot expand shape ", shape_str(x.shape()), " to ",
                shape_str(shape));
    out_shape[i] = want;
    out_strides[i] = have == want ? x.strides()[i - lead] : 0;
  }
  return as_strided(x, out_shape, out_strides, x.offset());
}

Tensor squeeze(const Tensor& x) {
  Shape shape;
  Strides strides;
  for (size_t i = 0; i < x.shape().size(); ++i) {
    if (x.shape()[i] == 1) continue;
    shape.push_back(x.shape()[i]);
    strides.push_back(x.strides()[i]);
  }
  return as_strided(x, shape, strides, x.offset());
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  if (x.dim() == 0) return x;
  dim = wrap_dim(dim, x.dim(), "squeeze");
  if (x.shape()[static_cast<size_t>(dim)] != 1) return x;  // PyTorch leaves other dims alone
  Shape shape = x.shape();
  Strides strides = x.strides();
  shape.erase(shape.begin() + dim);
  strides.erase(strides.begin() + dim);
  return as_strided(x, shape, strides, x.offset());
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  dim = wrap_dim(dim, x.dim() + 1, "unsqueeze");
  Shape shape = x.shape();
  Strides strides = x.strides();
  const int64_t stride = dim < x.dim() ? strides[static_cast<size_t>(dim)] * shape[static_cast<size_t>(dim)] : 1;
  shape.insert(shape.begin() + dim, 1);
  strides.insert(strides.begin() + dim, stride);
  return as_strided(x, shape, strides, x.offset());
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  if (x.dim() == 0) return reshape(x, {1});
  start_dim = wrap_dim(start_dim, x.dim(), "flatten");
  end_dim = wrap_dim(end_dim, x.dim(), "flatten");
  LOUPE_CHECK(start_dim <= end_dim, "flatten: start_dim ", start_dim, " is after end_dim ", end_dim);
  Shape shape(x.shape().begin(), x.shape().begin() + start_dim);
  int64_t merged = 1;
  for (int64_t d = start_dim; d <= end_dim; ++d) merged *= x.shape()[static_cast<size_t>(d)];
  shape.push_back(merged);
  shape.insert(shape.end(), x.shape().begin() + end_dim + 1, x.shape().end());
  return reshape(x, shape);
}

}  // namespace loupe::ops
