// Saliency and input x gradient. See gradients.hpp.
#include "explain/gradients.hpp"

namespace loupe::explain {

namespace detail {

std::vector<Tensor> batched_gradients(const Prepared& p, int64_t internal_batch_size) {
  std::vector<std::vector<Tensor>> parts(p.inputs.size());
  const auto total = static_cast<int64_t>(p.rows.size());
  for_each_chunk(total, internal_batch_size, [&](int64_t start, int64_t end) {
    const std::vector<int64_t> classes(p.classes.begin() + start, p.classes.begin() + end);
    const auto grads = target_gradients(p.model, narrow_rows(p.inputs, start, end), classes, p.output);
    for (size_t i = 0; i < grads.size(); ++i) parts[i].push_back(grads[i]);
  });
  std::vector<Tensor> out;
  for (auto& chunks : parts) out.push_back(chunks.size() == 1 ? chunks[0] : ops::cat(chunks, 0));
  return out;
}

}  // namespace detail

Attribution saliency(const Query& query, const SaliencyOptions& options) {
  const detail::Prepared p = detail::prepare(query, "saliency");
  std::vector<Tensor> grads = detail::batched_gradients(p, options.internal_batch_size);
  if (options.absolute) {
    for (Tensor& g : grads) g = ops::abs(g);
  }
  return detail::make_result(p, std::move(grads));
}

Attribution input_x_gradient(const Query& query, const InputXGradientOptions& options) {
  const detail::Prepared p = detail::prepare(query, "input_x_gradient");
  std::vector<Tensor> grads = detail::batched_gradients(p, options.internal_batch_size);
  if (options.multiply_by_inputs) {
    for (size_t i = 0; i < grads.size(); ++i) grads[i] = ops::mul(p.inputs[i], grads[i]);
  }
  return detail::make_result(p, std::move(grads));
}

}  // namespace loupe::explain
