// Conv2d: torch.nn.Conv2d's parameters ("weight" (O, I / groups, kh, kw), "bias" (O)), options and
// default initialisation (weight and bias uniform in +-1/sqrt(fan_in), fan_in = I / groups * kh * kw).
// Forward: loupe::conv2d (autograd/functions/conv.hpp). x (N, I, H, W) or (I, H, W).
// Tests: tests/nn/models/test_layers.cpp
#pragma once

#include <array>
#include <string>

#include "nn/module.hpp"

namespace loupe::nn {

struct Conv2dOptions {
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> padding{0, 0};
  std::array<int64_t, 2> dilation{1, 1};
  int64_t groups = 1;
  bool bias = true;
};

class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, std::array<int64_t, 2> kernel_size, const Conv2dOptions& options = {},
         Generator* generator = nullptr);
  // A square kernel.
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, const Conv2dOptions& options = {},
         Generator* generator = nullptr)
      : Conv2d(in_channels, out_channels, {kernel_size, kernel_size}, options, generator) {}

  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Conv2d"; }

  int64_t in_channels() const { return in_channels_; }
  int64_t out_channels() const { return out_channels_; }
  const Conv2dParams& params() const { return params_; }
  // Gives a convolution built without bias a "bias" parameter (registered like the constructor's)
  // holding `value` (O); with a bias already, copies value into it. Used by
  // nn/fold_batch_norm.hpp, which moves a batch norm's shift into the convolution.
  void set_bias(const Tensor& value);

  Tensor weight;  // (O, I / groups, kh, kw)
  Tensor bias;    // (O) or undefined

 private:
  int64_t in_channels_, out_channels_;
  Conv2dParams params_;
};

}  // namespace loupe::nn
