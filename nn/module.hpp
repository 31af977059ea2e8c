// Module: a node of a model tree with named parameters, buffers and children, and a train/eval
// mode. Names join with '.', like PyTorch state dicts ("layer1.0.conv1.weight"), so weights can
// move between loupe and PyTorch unchanged.
//
// A state dict holds every parameter and every persistent buffer (BatchNorm's running_mean,
// running_var and int64 num_batches_tracked), in PyTorch's order: a module's own parameters, then
// its own buffers, then each child's entries. Loading checks the whole dict before copying
// anything, so a failed load leaves the model unchanged. Files: nn/serialization.hpp.
//
// Call children through operator() (not forward()) so that summary() and forward hooks see every
// call.
//
// Forward hooks: add_forward_hook(fn) makes operator() call fn(output) after each forward() of
// that module, until the returned handle is destroyed. They exist to read intermediate feature
// maps (explain/activation_profiles.hpp records chosen layers' outputs) without changing any
// model's forward() and without a second, instrumented copy of the model. A hook only observes:
// it gets the output by const reference and the caller receives the same tensor, so outputs and
// gradients are unchanged. With no hook registered operator() costs one empty-vector check.
// Tests: tests/nn/models/test_module.cpp
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/autograd.hpp"

namespace loupe::nn {

// Name -> tensor, sorted by name (the form safetensors files take).
using StateDict = std::map<std::string, Tensor>;
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// What a non-strict load_state_dict skipped (a strict load raises instead).
struct LoadResult {
  std::vector<std::string> missing_keys;     // in the model, not in the dict
  std::vector<std::string> unexpected_keys;  // in the dict, not in the model
};

class Module;

// Removes its forward hook when destroyed (move-only). The module must outlive the handle.
class ForwardHookHandle {
 public:
  ForwardHookHandle() = default;
  ForwardHookHandle(Module* module, int64_t id) : module_(module), id_(id) {}
  ForwardHookHandle(ForwardHookHandle&& other) noexcept { *this = std::move(other); }
  ForwardHookHandle& operator=(ForwardHookHandle&& other) noexcept;
  ForwardHookHandle(const ForwardHookHandle&) = delete;
  ForwardHookHandle& operator=(const ForwardHookHandle&) = delete;
  ~ForwardHookHandle() { remove(); }
  void remove();  // idempotent

 private:
  Module* module_ = nullptr;
  int64_t id_ = 0;
};

class Module {
 public:
  virtual ~Module() = default;

  virtual Tensor forward(const Tensor& x) = 0;
  // forward(x), recorded by summary() when one is running.
  Tensor operator()(const Tensor& x);
  // The class name shown by summary() ("Conv2d", "ResNet", ...).
  virtual std::string type_name() const { return "Module"; }

  // --- the tree, depth first, with dotted names ---
  NamedTensors named_parameters() const;
  NamedTensors named_buffers() const;  // persistent and non-persistent
  std::vector<Tensor> parameters() const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const { return children_; }
  // Every module including this one (named ""), parents before children.
  std::vector<std::pair<std::string, Module*>> named_modules();
  std::vector<std::pair<std::string, const Module*>> named_modules() const;
  int64_t parameter_count() const;  // elements of all parameters
  int64_t trainable_parameter_count() const;  // those with requires_grad

  // --- state dicts ---
  // Parameters and persistent buffers in PyTorch's order; the tensors share storage with the
  // model (detached: no gradient history).
  NamedTensors named_state() const;
  StateDict state_dict() const;
  // Copies every tensor of `state` into the model (converting dtypes as PyTorch's copy_ does).
  // Always raises loupe::Error on a shape mismatch; with strict, also on missing or unexpected
  // keys. The message names the keys. Nothing is copied unless everything checks out.
  LoadResult load_state_dict(const StateDict& state, bool strict = true);

  // --- modes and devices ---
  virtual void train(bool training = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Moves every parameter, gradient and buffer of the tree to `device` in place: the tensors
  // keep their identity (layers hold them as members, optimisers by handle), only their storage
  // moves. Raises loupe::Error when the device does not exist (e.g. CUDA in a CPU-only build).
  void to(Device device);
  // Where the model lives: the device of its first parameter or buffer (the CPU when it has none).
  Device device() const;
  void zero_grad();  // clears .grad of every parameter

  // A table of every module call made by one forward pass on zeros of `input_shape` (run in eval
  // mode without a graph; the mode is restored): qualified name, type, output shape and the
  // parameter count of that module with its children, then the totals. max_depth limits the rows
  // to modules at most that deep in the tree (-1: all; 0: the model only).
  std::string summary(const Shape& input_shape, int max_depth = -1);

  // --- forward hooks (see the head comment) ---
  using ForwardHook = std::function<void(const Tensor& output)>;
  // fn runs after every forward() of this module made through operator(), in the order hooks were
  // added, while the handle lives.
  [[nodiscard]] ForwardHookHandle add_forward_hook(ForwardHook fn);
  size_t forward_hook_count() const { return forward_hooks_.size(); }

 protected:
  Tensor register_parameter(const std::string& name, Tensor value);  // marks it requires_grad
  // persistent = false keeps a buffer out of state dicts (PyTorch's persistent=False).
  Tensor register_buffer(const std::string& name, Tensor value, bool persistent = true);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    LOUPE_CHECK(module != nullptr, "register_module: module '", name, "' is null");
    children_.emplace_back(name, module);
    return module;
  }
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }

 private:
  struct Buffer {
    std::string name;
    Tensor tensor;
    bool persistent;
  };
  void collect(const std::string& prefix, bool params, bool buffers, bool persistent_only, NamedTensors& out) const;

  NamedTensors parameters_;
  std::vector<Buffer> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
  std::vector<std::pair<int64_t, ForwardHook>> forward_hooks_;
  int64_t next_hook_id_ = 1;
  friend class ForwardHookHandle;
};

}  // namespace loupe::nn
