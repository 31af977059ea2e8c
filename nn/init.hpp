// Weight initialisers with torch.nn.init's formulas, filling a tensor in place (raw ops: no graph
// is recorded, so parameters stay leaves). Random numbers come from a Philox Generator (null: the
// default generator), so the values differ from PyTorch's but follow the same distributions.
//
//   fan_in  = size(1) * receptive field, fan_out = size(0) * receptive field
//             (receptive field = product of the dims after the first two; conv weight (O, I, kh, kw))
//   gain    = calculate_gain(nonlinearity, param): linear/conv/sigmoid 1, tanh 5/3, relu sqrt(2),
//             leaky_relu sqrt(2 / (1 + slope^2)), selu 3/4
//   kaiming: std = gain / sqrt(fan), uniform bound = sqrt(3) * std
//   xavier:  std = gain * sqrt(2 / (fan_in + fan_out)), uniform bound = sqrt(3) * std
//   trunc_normal: normal(mean, std) restricted to [a, b] (absolute bounds, as PyTorch's),
//             drawn by inverting the normal CDF on a uniform sample of [cdf(a), cdf(b)] — the
//             scipy-free method torch.nn.init.trunc_normal_ uses and torchvision's InceptionV3
//             init calls with std 0.1 (0.01 and 0.001 in its auxiliary head), a = -2, b = 2.
// Tests: tests/nn/models/test_layers.cpp
#pragma once

#include <string>

#include "tensor/random.hpp"
#include "tensor/tensor.hpp"

namespace loupe::nn::init {

enum class FanMode { fan_in, fan_out };

struct Fans {
  int64_t fan_in;
  int64_t fan_out;
};
// Needs at least 2 dims (PyTorch's rule).
Fans calculate_fans(const Tensor& t);
// nonlinearity: "linear", "conv2d" (any conv*), "sigmoid", "tanh", "relu", "leaky_relu" (param =
// negative slope, default 0.01 when param < 0), "selu".
double calculate_gain(const std::string& nonlinearity, double param = -1.0);

void constant_(const Tensor& t, double value);
void zeros_(const Tensor& t);
void ones_(const Tensor& t);
void uniform_(const Tensor& t, double low = 0.0, double high = 1.0, Generator* generator = nullptr);
void normal_(const Tensor& t, double mean = 0.0, double std = 1.0, Generator* generator = nullptr);
void trunc_normal_(const Tensor& t, double mean = 0.0, double std = 1.0, double a = -2.0, double b = 2.0,
                   Generator* generator = nullptr);

// a: the negative slope of leaky_relu (ignored for relu). PyTorch's defaults: a = 0, fan_in,
// leaky_relu (= relu's gain sqrt(2) when a = 0).
void kaiming_uniform_(const Tensor& t, double a = 0.0, FanMode mode = FanMode::fan_in,
                      const std::string& nonlinearity = "leaky_relu", Generator* generator = nullptr);
void kaiming_normal_(const Tensor& t, double a = 0.0, FanMode mode = FanMode::fan_in,
                     const std::string& nonlinearity = "leaky_relu", Generator* generator = nullptr);
void xavier_uniform_(const Tensor& t, double gain = 1.0, Generator* generator = nullptr);
void xavier_normal_(const Tensor& t, double gain = 1.0, Generator* generator = nullptr);

// torch.nn.Conv2d / nn.Linear's own reset_parameters: weight kaiming_uniform with a = sqrt(5),
// which reduces to uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)); the bias uses the same bound.
void default_weight_(const Tensor& weight, Generator* generator = nullptr);
void default_bias_(const Tensor& bias, int64_t fan_in, Generator* generator = nullptr);

}  // namespace loupe::nn::init
