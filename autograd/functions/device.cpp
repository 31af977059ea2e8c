// Differentiable device moves. See device.hpp.
#include "autograd/functions/device.hpp"

#include "autograd/record.hpp"
#include "tensor/ops/device.hpp"

namespace loupe {

using autograd::Node;
using autograd::OpKind;

Tensor to_device(const Tensor& x, Device device) {
  Tensor out = ops::to_device(x, device);
  if (!autograd::should_record({x})) return out;
  // attrs = {source device type (0 cpu, 1 cuda), source device index}
  const Device source = x.device();
  return autograd::record(
      out, OpKind::copy, "to_device", {x},
      [](const Node& n, const Tensor& g) -> std::vector<Tensor> {
        const Device back = n.attrs[0] == 0 ? Device::cpu() : Device::cuda(static_cast<int>(n.attrs[1]));
        return {ops::to_device(g, back)};
      },
      {}, {source.is_cpu() ? 0.0 : 1.0, static_cast<double>(source.index)});
}

}  // namespace loupe
