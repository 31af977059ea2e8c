// Stand-ins for the CUDA backend in a build without it (-Dcuda=disabled, or no nvcc). No tensor
// can live on a CUDA device here (allocating one raises), so the op stand-ins are never reached
// through the dispatch lines in tensor/ops/*.cpp; they exist so that those lines link.
#include "tensor/cuda/backend.hpp"
#include "tensor/cuda/ops.hpp"
#include "tensor/error.hpp"

namespace loupe::cuda {

namespace {
[[noreturn]] void unavailable(const char* what) {
  throw Error(detail::make_message(what, ": this build of loupe has no CUDA backend (configure with -Dcuda=enabled ",
                                   "on a machine with nvcc)"));
}
}  // namespace

bool is_built() { return false; }
int device_count() { return 0; }
std::string device_name(int) { unavailable("device_name"); }
void synchronize(int) { unavailable("synchronize"); }
void set_matmul_precision(MatmulPrecision) {}
MatmulPrecision matmul_precision() { return MatmulPrecision::highest; }
void set_use_cudnn(bool) {}
bool use_cudnn() { return false; }
void set_cudnn_benchmark(bool) {}
bool cudnn_benchmark() { return false; }
MemoryStats memory_stats(int) { return {}; }
void reset_peak_memory_stats(int) {}
void empty_cache(int) {}
void* allocate_storage(size_t, int device) { unavailable(Device::cuda(device).str().c_str()); }
void free_storage(void*, int) noexcept {}

void copy_(const Tensor&, const Tensor&) { unavailable("copy_"); }
void fill_(const Tensor&, double) { unavailable("fill_"); }
Tensor to_device(const Tensor&, Device device) { unavailable(device.str().c_str()); }

Tensor unary(ops::UnaryOp op, const Tensor&, ops::UnaryParams) { unavailable(ops::unary_name(op)); }
Tensor unary_backward(ops::UnaryOp op, const Tensor&, const Tensor&, const Tensor&, ops::UnaryParams) {
  unavailable(ops::unary_name(op));
}
Tensor binary(ops::BinaryOp op, const Tensor&, const Tensor&) { unavailable(ops::binary_name(op)); }
Tensor logical_not(const Tensor&) { unavailable("logical_not"); }
Tensor where(const Tensor&, const Tensor&, const Tensor&) { unavailable("where"); }
void add_(const Tensor&, const Tensor&, double) { unavailable("add_"); }

Tensor sum(const Tensor&, const std::vector<int64_t>&, bool) { unavailable("sum"); }
ops::ValuesIndices max(const Tensor&, int64_t, bool) { unavailable("max"); }
ops::ValuesIndices min(const Tensor&, int64_t, bool) { unavailable("min"); }
Tensor amax(const Tensor&, const std::vector<int64_t>&, bool) { unavailable("amax"); }
Tensor amin(const Tensor&, const std::vector<int64_t>&, bool) { unavailable("amin"); }
Tensor var(const Tensor&, const std::vector<int64_t>&, int64_t, bool, bool) { unavailable("var"); }
Tensor norm(const Tensor&, double, const std::vector<int64_t>&, bool) { unavailable("norm"); }
Tensor logsumexp(const Tensor&, const std::vector<int64_t>&, bool) { unavailable("logsumexp"); }
Tensor all(const Tensor&, const std::vector<int64_t>&, bool) { unavailable("all"); }
Tensor any(const Tensor&, const std::vector<int64_t>&, bool) { unavailable("any"); }
Tensor cumsum(const Tensor&, int64_t, bool) { unavailable("cumsum"); }

Tensor softmax(const Tensor&, int64_t, bool) { unavailable("softmax"); }
Tensor softmax_backward(const Tensor&, const Tensor&, int64_t, bool) { unavailable("softmax_backward"); }

Tensor matmul(const Tensor&, const Tensor&) { unavailable("matmul"); }
Tensor linear(const Tensor&, const Tensor&, const Tensor&) { unavailable("linear"); }

Tensor conv2d(const Tensor&, const Tensor&, const Tensor&, const Conv2dParams&) { unavailable("conv2d"); }
Tensor conv2d_backward_input(const Tensor&, const Tensor&, const Shape&, const Conv2dParams&) {
  unavailable("conv2d_backward_input");
}
Tensor conv2d_backward_weight(const Tensor&, const Tensor&, const Shape&, const Conv2dParams&) {
  unavailable("conv2d_backward_weight");
}

Tensor uniform(const Shape&, double, double, DType, Generator&, Device) { unavailable("uniform"); }
Tensor normal(const Shape&, double, double, DType, Generator&, Device) { unavailable("normal"); }
Tensor bernoulli(const Shape&, double, DType, Generator&, Device) { unavailable("bernoulli"); }
Tensor bernoulli(const Tensor&, Generator&) { unavailable("bernoulli"); }

void max_pool2d(const Tensor&, const Pool2dShape&, const Tensor&, const Tensor&) { unavailable("max_pool2d"); }
void max_pool2d_backward(const Tensor&, const Tensor&, const Pool2dShape&, const Tensor&) {
  unavailable("max_pool2d_backward");
}
void avg_pool2d(const Tensor&, const Pool2dShape&, const Tensor&) { unavailable("avg_pool2d"); }
void avg_pool2d_backward(const Tensor&, const Pool2dShape&, const Tensor&) { unavailable("avg_pool2d_backward"); }
void adaptive_avg_pool2d(const Tensor&, const Pool2dShape&, const Tensor&) { unavailable("adaptive_avg_pool2d"); }
void adaptive_avg_pool2d_backward(const Tensor&, const Pool2dShape&, const Tensor&) {
  unavailable("adaptive_avg_pool2d_backward");
}
void interpolate(const Tensor&, const ResampleAxis&, const ResampleAxis&, bool, const Tensor&) {
  unavailable("interpolate");
}
void interpolate_backward(const Tensor&, const ResampleAxis&, const ResampleAxis&, bool, const Tensor&) {
  unavailable("interpolate_backward");
}
void pad(const Tensor&, const Tensor&, const PadShape&, double, const Tensor&) { unavailable("pad"); }
void pad_backward(const Tensor&, const Tensor&, const PadShape&, const Tensor&) { unavailable("pad_backward"); }
std::optional<int64_t> first_out_of_range(const Tensor&, int64_t, int64_t, std::optional<int64_t>) {
  unavailable("first_out_of_range");
}
Tensor gather(const Tensor&, int64_t, const Tensor&) { unavailable("gather"); }
void scatter_add_(const Tensor&, int64_t, const Tensor&, const Tensor&) { unavailable("scatter_add"); }
Tensor index_select(const Tensor&, int64_t, const Tensor&) { unavailable("index_select"); }
void index_add_(const Tensor&, int64_t, const Tensor&, const Tensor&, double) { unavailable("index_add"); }
Tensor masked_fill(const Tensor&, const Tensor&, double) { unavailable("masked_fill"); }
void one_hot_(const Tensor&, const Tensor&) { unavailable("one_hot"); }

Tensor class_loss(const Tensor&, const Tensor&, const CrossEntropyOptions&, int64_t, int64_t, int64_t, bool) {
  unavailable("class_loss");
}
Tensor class_loss_backward(const Tensor&, const Tensor&, const Tensor&, const CrossEntropyOptions&, int64_t, int64_t,
                           int64_t, bool) {
  unavailable("class_loss_backward");
}
Tensor bce_with_logits(const Tensor&, const Tensor&, const Tensor&) { unavailable("binary_cross_entropy_with_logits"); }
void bce_with_logits_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                              const Tensor&) {
  unavailable("binary_cross_entropy_with_logits_backward");
}

ops::ValuesIndices sort(const Tensor&, int64_t, int64_t, bool) { unavailable("sort"); }
void sort_backward_(const Tensor&, const Tensor&, const Tensor&, int64_t) { unavailable("sort_backward"); }
ops::NormForward batch_norm_forward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, bool,
                                    double, double, bool) {
  unavailable("batch_norm");
}
ops::NormGrads batch_norm_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, bool,
                                   ops::NormNeeds) {
  unavailable("batch_norm_backward");
}
ops::NormForward row_norm_forward(const Tensor&, int64_t, int64_t, const Tensor&, const Tensor&, double, bool) {
  unavailable("layer_norm");
}
ops::NormGrads row_norm_backward(const Tensor&, const Tensor&, const Shape&, int64_t, int64_t, const Tensor&,
                                 const Tensor&, const Tensor&, ops::NormNeeds) {
  unavailable("layer_norm_backward");
}

void sgd_step(const std::vector<Tensor>&, const std::vector<Tensor>&, const std::vector<Tensor>&,
              const std::vector<bool>&, double, double, double, double, bool) {
  unavailable("SGD");
}
void adam_step(const std::vector<Tensor>&, const std::vector<Tensor>&, const std::vector<Tensor>&,
               const std::vector<Tensor>&, double, double, double, double, double, bool, int64_t) {
  unavailable("Adam");
}

bool attention_forward(const ops::AttentionShape&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                       const Tensor&, const Tensor&) {
  unavailable("scaled_dot_product_attention");
}
bool attention_backward(const ops::AttentionShape&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                        const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&) {
  unavailable("scaled_dot_product_attention_backward");
}

}  // namespace loupe::cuda
