// Tensor: a view of a Storage = storage + offset + shape + strides + dtype.
// Copying a Tensor copies a handle (both handles name the same tensor); views made by ops share
// the storage but have their own handle. Gradient bookkeeping lives in AutogradMeta, whose node
// type is opaque here: tensor/ knows nothing of how autograd/ uses it.
// Tests: tests/tensor/test_tensor.cpp
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tensor/device.hpp"
#include "tensor/dtype.hpp"
#include "tensor/error.hpp"
#include "tensor/shape.hpp"
#include "tensor/storage.hpp"

namespace loupe {

namespace autograd {
class Node;  // defined in autograd/node.hpp
}

class Tensor;

// Per-tensor gradient state. Created on demand; tensors that never meet autograd carry none.
struct AutogradMeta {
  bool requires_grad = false;
  std::shared_ptr<Tensor> grad;              // accumulated gradient of a leaf (.grad)
  std::shared_ptr<autograd::Node> grad_fn;   // the node that produced this tensor, null for leaves
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  Strides strides;     // in elements
  DType dtype = DType::f32;
  std::shared_ptr<AutogradMeta> autograd;
};

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor: the "no gradient" value

  // A new contiguous tensor with uninitialised elements.
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  // A view of existing storage; checks that every reachable element lies inside the storage.
  static Tensor view_of(std::shared_ptr<Storage> storage, int64_t offset, const Shape& shape,
                        const Strides& strides, DType dtype);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  int64_t size(int64_t dim) const;  // negative dims count from the end
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t numel() const { return shape_numel(impl().shape); }
  const Strides& strides() const { return impl().strides; }
  int64_t stride(int64_t dim) const;
  int64_t offset() const { return impl().offset; }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  size_t element_size() const { return dtype_size(dtype()); }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }

  // Pointer to the first element (storage start + offset). Checks that T matches the dtype and
  // that the tensor is on the CPU.
  template <typename T>
  T* data() const {
    check_access(dtype_of<T>::value, "data");
    return static_cast<T*>(impl().storage->data()) + impl().offset;
  }
  void* raw_data() const;  // first element, any dtype

  // The single element of a one-element tensor, converted to double / to T.
  double item() const;
  template <typename T>
  T item() const {
    return static_cast<T>(item());
  }

  // PyTorch-like printing: tensor([[1.0000, 2.0000], ...]) with the middle elided when large.
  std::string str() const;

  // --- gradient state (used by autograd/, readable by anyone) ---
  bool requires_grad() const;
  // Marks a leaf as a trainable value; returns *this for chaining.
  Tensor& set_requires_grad(bool requires_grad = true);
  Tensor grad() const;               // undefined when no gradient was accumulated
  void set_grad(const Tensor& grad);  // pass an undefined tensor to clear
  std::shared_ptr<autograd::Node> grad_fn() const;
  bool is_leaf() const { return grad_fn() == nullptr; }
  AutogradMeta& autograd_meta();     // creates the meta on first use
  const std::shared_ptr<AutogradMeta>& autograd_meta_ptr() const { return impl().autograd; }

  // The same data with no gradient history (shares storage).
  Tensor detach() const;
  // Points this tensor at source's elements (storage, layout, dtype and so device), keeping the
  // handle and its gradient state: every holder of the handle sees the change. What Module::to
  // uses to move parameters that layers also hold as members (PyTorch's `param.data = source`).
  void set_data(const Tensor& source);

  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }
  TensorImpl& impl() const;

 private:
  void check_access(DType wanted, const char* what) const;
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& out, const Tensor& tensor);

}  // namespace loupe
