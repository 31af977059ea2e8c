// Occlusion (Zeiler & Fergus 2014), as Captum's Occlusion: a window slides over each input with a
// stride; each position gives one perturbed copy of the row where the window's elements take the
// baseline's values; every element's attribution is the mean, over the windows covering it, of
//   f_t(x) - f_t(x with the window occluded).
//
// Windows (per input, over its non-batch dims, any rank): along a dim of size D with window w and
// stride s there are ceil((D - w) / s) + 1 positions k * s; the last one is clipped at the border
// (it covers [k * s, D)), so every element is covered at least once. Elements covered by more
// windows average more gaps: the sum of the gaps is divided by the element's coverage count,
// counting clipped windows once like whole ones (Captum's weights).
// Several inputs: the windows of input 0 come first, then those of input 1, ... (one index over
// all of them, as Captum 0.9 enumerates them); each copy occludes one window of one input and
// leaves the other inputs as they are.
//
// Shapes: input i is (N, D_1, ..., D_k) with window (w_1, ..., w_k); the result is (R, D_1, ...,
// D_k) in the input's dtype, R result rows (several targets of a row are answered from the same
// forward passes). Work on the input's device: the per-dim window ranges are built once; a chunk
// of P copies is a (P, D_1, ..., D_k) bool mask from broadcast comparisons, blended with the
// baseline; the gaps (R, W) are turned into attributions by matmuls with the masks (float64).
//
// Differences from Captum: perturbations_per_eval 0 (the default) sizes the chunks from a memory
// budget (Captum's default is 1); the result keeps the input's dtype (Captum returns float32).
// Tests: tests/explain/test_occlusion.cpp, tests/explain/test_captum_perturbation.cpp,
// tests/cuda/test_cuda_occlusion.cpp
#pragma once

#include "explain/attribution.hpp"

namespace loupe::explain {

struct OcclusionOptions {
  // The window of each input over its non-batch dims (one per input; rank = the input's rank - 1).
  std::vector<Shape> windows;
  // Strides per input: empty means 1 everywhere; one entry is used for every input; else one per
  // input. Each entry is one number for every dim, or one per dim. A stride must be between 1 and
  // the window, except along a dim the window covers whole (one position: the stride is unused).
  std::vector<std::vector<int64_t>> strides = {};
  int64_t perturbations_per_eval = 0;  // copies per forward pass; 0: as many as fit a memory budget
};

Attribution occlusion(const Query& query, const OcclusionOptions& options);

}  // namespace loupe::explain
