// Autocast state and casts. See autocast.hpp.
#include "autograd/autocast.hpp"

#include "autograd/functions/view.hpp"
#include "tensor/error.hpp"

namespace loupe {

namespace {
thread_local bool autocast_enabled = false;
thread_local DType autocast_dtype = DType::bf16;
}  // namespace

AutocastGuard::AutocastGuard(DType dtype, bool enabled)
    : previous_enabled_(autocast_enabled), previous_dtype_(autocast_dtype) {
  LOUPE_CHECK(dtype == DType::bf16, "AutocastGuard: dtype ", dtype,
              " is not supported (bfloat16 is the only reduced precision with GPU kernels)");
  autocast_enabled = enabled;
  autocast_dtype = dtype;
}

AutocastGuard::~AutocastGuard() {
  autocast_enabled = previous_enabled_;
  autocast_dtype = previous_dtype_;
}

namespace autocast {
bool is_enabled() { return autocast_enabled; }
DType dtype() { return autocast_dtype; }
}  // namespace autocast

Tensor autocast_to_lower(const Tensor& x) {
  if (!autocast_enabled || !x.defined() || !x.device().is_cuda() || x.dtype() != DType::f32) return x;
  return to_dtype(x, autocast_dtype);
}

Tensor autocast_to_float(const Tensor& x) {
  if (!autocast_enabled || !x.defined() || !x.device().is_cuda()) return x;
  if (x.dtype() != DType::bf16 && x.dtype() != DType::f16) return x;
  return to_dtype(x, DType::f32);
}

}  // namespace loupe
