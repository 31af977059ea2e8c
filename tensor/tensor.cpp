// Tensor handle methods. Printing lives in print.cpp. See tensor.hpp.
#include "tensor/tensor.hpp"

#include <cstring>

namespace loupe {

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t size : shape) {
    LOUPE_CHECK(size >= 0, "empty: negative size in shape ", shape_str(shape));
  }
  Tensor t;
  t.impl_ = std::make_shared<TensorImpl>();
  t.impl_->storage = Storage::allocate(static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype), device);
  t.impl_->shape = shape;
  t.impl_->strides = contiguous_strides(shape);
  t.impl_->dtype = dtype;
  return t;
}

Tensor Tensor::view_of(std::shared_ptr<Storage> storage, int64_t offset, const Shape& shape,
                       const Strides& strides, DType dtype) {
  LOUPE_CHECK(storage != nullptr, "view_of: null storage");
  LOUPE_CHECK(shape.size() == strides.size(), "view_of: shape ", shape_str(shape), " and strides ",
              shape_str(strides), " differ in length");
  // The lowest and highest element offsets the view can reach must lie inside the storage.
  int64_t low = offset, high = offset;
  bool empty = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    LOUPE_CHECK(shape[i] >= 0, "view_of: negative size in shape ", shape_str(shape));
    if (shape[i] == 0) empty = true;
    const int64_t span = (shape[i] - 1) * strides[i];
    (span < 0 ? low : high) += span;
  }
  const int64_t capacity = static_cast<int64_t>(storage->nbytes() / dtype_size(dtype));
  LOUPE_CHECK(empty || (low >= 0 && high < capacity), "view_of: shape ", shape_str(shape),
              " strides ", shape_str(strides), " offset ", offset, " reach outside a storage of ",
              capacity, " elements");
  Tensor t;
  t.impl_ = std::make_shared<TensorImpl>();
  t.impl_->storage = std::move(storage);
  t.impl_->offset = offset;
  t.impl_->shape = shape;
  t.impl_->strides = strides;
  t.impl_->dtype = dtype;
  return t;
}

TensorImpl& Tensor::impl() const {
  LOUPE_CHECK(impl_ != nullptr, "Tensor: use of an undefined tensor");
  return *impl_;
}

int64_t Tensor::size(int64_t dim_index) const {
  return impl().shape[static_cast<size_t>(wrap_dim(dim_index, dim(), "size"))];
}

int64_t Tensor::stride(int64_t dim_index) const {
  return impl().strides[static_cast<size_t>(wrap_dim(dim_index, dim(), "stride"))];
}

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (size_t i = impl().shape.size(); i-- > 0;) {
    if (impl().shape[i] == 1) continue;  // a size-1 dim's stride never matters
    if (impl().strides[i] != expected) return false;
    expected *= impl().shape[i];
  }
  return true;
}

void Tensor::check_access(DType wanted, const char* what) const {
  LOUPE_CHECK(dtype() == wanted, what, ": tensor has dtype ", dtype(), ", accessed as ", wanted);
  LOUPE_CHECK(device().is_cpu(), what, ": tensor is on ", device().str(),
              "; copy it to the CPU first");
}

void* Tensor::raw_data() const {
  return static_cast<char*>(impl().storage->data()) + impl().offset * static_cast<int64_t>(element_size());
}

void Tensor::set_data(const Tensor& source) {
  LOUPE_CHECK(defined() && source.defined(), "set_data: undefined tensor");
  TensorImpl& self = impl();
  const TensorImpl& src = source.impl();
  self.storage = src.storage;
  self.offset = src.offset;
  self.shape = src.shape;
  self.strides = src.strides;
  self.dtype = src.dtype;
}

double Tensor::item() const {
  LOUPE_CHECK(device().is_cpu(), "item: tensor is on ", device().str(), "; copy it to the CPU first");
  LOUPE_CHECK(numel() == 1, "item: expected a tensor with one element, got shape ", shape_str(shape()));
  const void* p = raw_data();
  switch (dtype()) {
    case DType::f32: return *static_cast<const float*>(p);
    case DType::f64: return *static_cast<const double*>(p);
    case DType::i64: return static_cast<double>(*static_cast<const int64_t*>(p));
    case DType::b8: return *static_cast<const bool*>(p) ? 1.0 : 0.0;
    default: break;
  }
  throw Error(detail::make_message("item: dtype ", dtype(), " is not readable on the CPU"));
}

bool Tensor::requires_grad() const { return impl().autograd && impl().autograd->requires_grad; }

Tensor& Tensor::set_requires_grad(bool requires_grad) {
  LOUPE_CHECK(!requires_grad || is_floating(dtype()), "set_requires_grad: only floating tensors can ",
              "require gradients, got ", dtype());
  LOUPE_CHECK(is_leaf() || requires_grad, "set_requires_grad: cannot turn off gradients of a ",
              "non-leaf tensor; use detach()");
  autograd_meta().requires_grad = requires_grad;
  return *this;
}

Tensor Tensor::grad() const {
  const auto& meta = impl().autograd;
  return meta && meta->grad ? *meta->grad : Tensor();
}

void Tensor::set_grad(const Tensor& grad) {
  if (!grad.defined()) {
    if (impl().autograd) impl().autograd->grad.reset();
    return;
  }
  LOUPE_CHECK(grad.shape() == shape(), "set_grad: gradient shape ", shape_str(grad.shape()),
              " differs from tensor shape ", shape_str(shape()));
  autograd_meta().grad = std::make_shared<Tensor>(grad);
}

std::shared_ptr<autograd::Node> Tensor::grad_fn() const {
  const auto& meta = impl().autograd;
  return meta ? meta->grad_fn : nullptr;
}

AutogradMeta& Tensor::autograd_meta() {
  if (!impl().autograd) impl().autograd = std::make_shared<AutogradMeta>();
  return *impl().autograd;
}

Tensor Tensor::detach() const {
  Tensor t;
  t.impl_ = std::make_shared<TensorImpl>();
  t.impl_->storage = impl().storage;
  t.impl_->offset = impl().offset;
  t.impl_->shape = impl().shape;
  t.impl_->strides = impl().strides;
  t.impl_->dtype = impl().dtype;
  return t;
}

}  // namespace loupe
