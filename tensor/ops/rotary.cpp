// Rotary position embeddings. See rotary.hpp.
#include "tensor/ops/rotary.hpp"

#include <cmath>
#include <vector>

#include "tensor/ops/binary.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/creation.hpp"
#include "tensor/ops/device.hpp"
#include "tensor/ops/join.hpp"
#include "tensor/ops/unary.hpp"
#include "tensor/ops/view.hpp"

namespace loupe::ops {

RotaryTables rotary_tables(const Tensor& positions, int64_t head_dim, double theta, DType dtype) {
  const int64_t half = head_dim / 2;
  std::vector<double> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    inv_freq[static_cast<size_t>(i)] = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
  }
  const Tensor freq = to_device(from_values(inv_freq, {half}, DType::f64), positions.device());
  const Tensor pos = positions.dim() == 1 ? unsqueeze(positions, 0) : positions;  // (B or 1, T)
  const Tensor angle = mul(unsqueeze(to_dtype(pos, DType::f64), -1), freq);     // (B, T, D/2)
  return {unsqueeze(to_dtype(cos(angle), dtype), 1), unsqueeze(to_dtype(sin(angle), dtype), 1)};
}

Tensor rotary_embedding(const Tensor& x, const Tensor& positions, double theta, bool inverse) {
  const char* op = "rotary_embedding";
  LOUPE_CHECK(x.dim() == 4 && x.size(3) % 2 == 0, op, ": expected x (B, H, T, D) with D even, got ",
              shape_str(x.shape()));
  LOUPE_CHECK(is_floating(x.dtype()), op, ": x must be floating, got ", x.dtype());
  LOUPE_CHECK(positions.dtype() == DType::i64, op, ": positions must be int64, got ", positions.dtype());
  const bool ok = (positions.dim() == 2 && (positions.size(0) == x.size(0) || positions.size(0) == 1) && positions.size(1) == x.size(2)) ||
                  (positions.dim() == 1 && positions.size(0) == x.size(2));
  LOUPE_CHECK(ok, op, ": positions ", shape_str(positions.shape()), " must be (B, T), (1, T) or (T) for x ",
              shape_str(x.shape()), " (B, H, T, D)");
  LOUPE_CHECK(std::isfinite(theta) && theta > 0, op, ": theta must be positive, got ", theta);
  check_same_device(op, {x, positions});
  const int64_t half = x.size(3) / 2;
  const RotaryTables t = rotary_tables(positions, x.size(3), theta, x.dtype());
  const Tensor s = inverse ? neg(t.sin) : t.sin;
  const Tensor x1 = narrow(x, 3, 0, half), x2 = narrow(x, 3, half, half);
  return cat({sub(mul(x1, t.cos), mul(x2, s)), add(mul(x2, t.cos), mul(x1, s))}, 3);
}

}  // namespace loupe::ops
