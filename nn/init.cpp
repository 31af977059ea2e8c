// Weight initialisers. See init.hpp.
#include "nn/init.hpp"

#include <cmath>

#include "tensor/ops.hpp"
#include "tensor/parallel.hpp"

namespace loupe::nn::init {

namespace {

void check_floating(const Tensor& t, const char* op) {
  LOUPE_CHECK(t.defined(), op, ": tensor is undefined");
  LOUPE_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::f64, op, ": expected a float32 or float64 tensor, got ",
              dtype_name(t.dtype()));
}

double fan(const Tensor& t, FanMode mode) {
  const Fans f = calculate_fans(t);
  return static_cast<double>(mode == FanMode::fan_in ? f.fan_in : f.fan_out);
}

// Inverse of the error function: Giles' single-precision approximation ("Approximating the erfinv
// function", GPU Computing Gems, 2011), then one Newton step in double.
double erfinv(double y) {
  if (y <= -1.0) return -INFINITY;
  if (y >= 1.0) return INFINITY;
  double w = -std::log((1.0 - y) * (1.0 + y)), x;
  if (w < 5.0) {
    w -= 2.5;
    double p = 2.81022636e-08;
    for (double c : {3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503, -0.00417768164,
                     0.246640727, 1.50140941})
      p = c + p * w;
    x = p * y;
  } else {
    w = std::sqrt(w) - 3.0;
    double p = -0.000200214257;
    for (double c : {0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613, 0.00943887047,
                     1.00167406, 2.83297682})
      p = c + p * w;
    x = p * y;
  }
  const double two_over_sqrt_pi = 1.1283791670955126;
  return x - (std::erf(x) - y) / (two_over_sqrt_pi * std::exp(-x * x));
}

}  // namespace

Fans calculate_fans(const Tensor& t) {
  LOUPE_CHECK(t.defined() && t.dim() >= 2, "calculate_fans: fan in and fan out need a tensor with at least 2 dims, got ",
              t.defined() ? shape_str(t.shape()) : "an undefined tensor");
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.size(d);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

double calculate_gain(const std::string& nonlinearity, double param) {
  if (nonlinearity == "linear" || nonlinearity == "sigmoid" || nonlinearity.rfind("conv", 0) == 0) return 1.0;
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") {
    const double slope = param < 0 ? 0.01 : param;
    return std::sqrt(2.0 / (1.0 + slope * slope));
  }
  if (nonlinearity == "selu") return 0.75;
  LOUPE_CHECK(false, "calculate_gain: unsupported nonlinearity '", nonlinearity, "'");
  return 1.0;
}

void constant_(const Tensor& t, double value) {
  LOUPE_CHECK(t.defined(), "constant_: tensor is undefined");
  ops::fill_(t, value);
}
void zeros_(const Tensor& t) { constant_(t, 0.0); }
void ones_(const Tensor& t) { constant_(t, 1.0); }

void uniform_(const Tensor& t, double low, double high, Generator* generator) {
  check_floating(t, "uniform_");
  LOUPE_CHECK(low <= high, "uniform_: low ", low, " > high ", high);
  ops::copy_(t, uniform(t.shape(), low, high, t.dtype(), generator));
}

void normal_(const Tensor& t, double mean, double std, Generator* generator) {
  check_floating(t, "normal_");
  LOUPE_CHECK(std >= 0, "normal_: std must be non-negative, got ", std);
  ops::copy_(t, normal(t.shape(), mean, std, t.dtype(), generator));
}

void trunc_normal_(const Tensor& t, double mean, double std, double a, double b, Generator* generator) {
  check_floating(t, "trunc_normal_");
  LOUPE_CHECK(std >= 0 && a < b, "trunc_normal_: need std >= 0 and a < b, got std ", std, ", a ", a, ", b ", b);
  // The method of torch.nn.init.trunc_normal_: u uniform on [cdf(a), cdf(b)] of the standard
  // normal, then x = mean + std * sqrt(2) * erfinv(2u - 1), clamped to [a, b].
  auto cdf = [](double x) { return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))); };
  const double lo = cdf((a - mean) / std), hi = cdf((b - mean) / std);
  Tensor u = uniform(t.shape(), 2.0 * lo - 1.0, 2.0 * hi - 1.0, DType::f64, generator);
  double* p = u.data<double>();
  parallel_for(0, u.numel(), 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const double x = mean + std * std::sqrt(2.0) * erfinv(p[i]);
      p[i] = std::min(std::max(x, a), b);
    }
  });
  ops::copy_(t, u);
}

void kaiming_uniform_(const Tensor& t, double a, FanMode mode, const std::string& nonlinearity, Generator* generator) {
  check_floating(t, "kaiming_uniform_");
  const double std = calculate_gain(nonlinearity, a) / std::sqrt(fan(t, mode));
  const double bound = std::sqrt(3.0) * std;
  uniform_(t, -bound, bound, generator);
}

void kaiming_normal_(const Tensor& t, double a, FanMode mode, const std::string& nonlinearity, Generator* generator) {
  check_floating(t, "kaiming_normal_");
  normal_(t, 0.0, calculate_gain(nonlinearity, a) / std::sqrt(fan(t, mode)), generator);
}

void xavier_uniform_(const Tensor& t, double gain, Generator* generator) {
  check_floating(t, "xavier_uniform_");
  const Fans f = calculate_fans(t);
  const double bound = std::sqrt(3.0) * gain * std::sqrt(2.0 / static_cast<double>(f.fan_in + f.fan_out));
  uniform_(t, -bound, bound, generator);
}

void xavier_normal_(const Tensor& t, double gain, Generator* generator) {
  check_floating(t, "xavier_normal_");
  const Fans f = calculate_fans(t);
  normal_(t, 0.0, gain * std::sqrt(2.0 / static_cast<double>(f.fan_in + f.fan_out)), generator);
}

void default_weight_(const Tensor& weight, Generator* generator) {
  // kaiming_uniform_(a = sqrt(5)): gain sqrt(2 / 6), bound sqrt(3) * gain / sqrt(fan_in) = 1 / sqrt(fan_in).
  const double bound = 1.0 / std::sqrt(static_cast<double>(calculate_fans(weight).fan_in));
  uniform_(weight, -bound, bound, generator);
}

void default_bias_(const Tensor& bias, int64_t fan_in, Generator* generator) {
  const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
  uniform_(bias, -bound, bound, generator);
}

}  // namespace loupe::nn::init
