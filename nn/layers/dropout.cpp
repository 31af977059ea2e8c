// Dropout. See dropout.hpp.
#include "nn/layers/dropout.hpp"

namespace loupe::nn {

Dropout::Dropout(double p, Generator* generator) : p_(p), generator_(generator) {
  LOUPE_CHECK(p >= 0.0 && p <= 1.0, "Dropout: probability must be in [0, 1], got ", p);
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p_, is_training(), generator_); }

}  // namespace loupe::nn
