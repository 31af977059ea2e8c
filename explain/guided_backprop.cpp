// Guided backprop and deconvolution. See guided_backprop.hpp.
#include "explain/guided_backprop.hpp"

#include "explain/gradients.hpp"

namespace loupe::explain {

Attribution guided_backprop(const Query& query, const GuidedBackpropOptions& options) {
  const detail::Prepared p = detail::prepare(query, "guided_backprop");
  autograd::RuleScope scope(autograd::guided_backprop_rules());
  return detail::make_result(p, detail::batched_gradients(p, options.internal_batch_size));
}

Attribution deconvolution(const Query& query, const GuidedBackpropOptions& options) {
  const detail::Prepared p = detail::prepare(query, "deconvolution");
  autograd::RuleScope scope(autograd::deconvolution_rules());
  return detail::make_result(p, detail::batched_gradients(p, options.internal_batch_size));
}

}  // namespace loupe::explain
