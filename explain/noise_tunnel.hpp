// NoiseTunnel: SmoothGrad (Smilkov et al. 2017) and its variants over any base method.
//   smoothgrad:     mean_s  A(x + e_s)
//   smoothgrad_sq:  mean_s  A(x + e_s)^2
//   vargrad:        mean_s  A(x + e_s)^2 - (mean_s A(x + e_s))^2
// with e_s ~ N(0, sigma^2) elementwise. sigma is `stdev` (absolute, Captum's default 1.0), or
// stdev * (max - min) of each input row when relative_to_range is set (the SmoothGrad paper's noise
// level, 0.1-0.2). Baselines are passed to the base method unchanged.
//
// The n_samples noisy copies of every row are stacked along the batch dim (virtual row
// v = row * n_samples + sample, like Captum's repeat_interleave) and the base method runs on chunks
// of at most internal_batch_size virtual rows. The noise of virtual row v is drawn from its own
// block of Philox counters (the generator's offset at the call plus v's share), so attributions do
// not depend on the split; the generator advances past all of them.
// Tests: tests/explain/test_noise_tunnel.cpp
#pragma once

#include "explain/attribution.hpp"
#include "tensor/random.hpp"

namespace loupe::explain {

enum class NoiseType { smoothgrad, smoothgrad_sq, vargrad };

struct NoiseTunnelOptions {
  NoiseType type = NoiseType::smoothgrad;
  int64_t n_samples = 5;                 // Captum's default; the SmoothGrad paper uses 50
  std::vector<double> stdevs = {1.0};    // one for all inputs, or one per input
  bool relative_to_range = false;        // sigma = stdev * (max - min) of each input row
  int64_t internal_batch_size = 0;       // noisy rows per base-method call; 0: all at once
  Generator* generator = nullptr;        // null: the default generator
};

// The delta (when the base method returns one) is the mean over the samples of each row.
Attribution noise_tunnel(const Query& query, const Method& base, const NoiseTunnelOptions& options = {});

}  // namespace loupe::explain
