// The model-randomisation sanity check of Adebayo et al. 2018 ("Sanity checks for saliency
// maps"), cascading version: starting at the top of the network (the logits), re-initialise the
// layers one block at a time, keeping the blocks above randomised, and after each step compare
// the new attribution with the original one by Spearman rank correlation. A method whose maps
// depend on what the model learned decorrelates quickly; one that mostly reflects the input (an
// edge detector, or the input itself) stays correlated.
//
// Blocks: parameters grouped by name prefix, the first name component, plus the second when it
// is an index ("layer4.1.conv2.weight" -> "layer4.1"; "fc.weight" -> "fc"), in reverse order of
// the module's parameter list (so from the output down, for the zoo models).
// Re-initialisation: every parameter of the block gets Gaussian values with the mean and standard
// deviation of its trained values (0.01 when they are all equal), from a seeded Philox generator.
// Buffers (batch-norm running statistics) are kept. The trained values are restored on return,
// also when the method throws.
//
// Shapes: one input (R, ...) after target expansion; Spearman over all elements of each row.
// Tests: tests/explain/test_sanity.cpp
#pragma once

#include <string>
#include <vector>

#include "explain/attribution.hpp"
#include "nn/module.hpp"

namespace loupe::explain::evaluate {

// Spearman rank correlation of two equally long lists (average ranks for ties); NaN when either
// is constant.
double spearman(const std::vector<double>& a, const std::vector<double>& b);

// The blocks of a module, top (output) first, as described above.
std::vector<std::string> parameter_blocks(const nn::Module& model);

struct RandomisationStep {
  std::string block;       // the block randomised at this step (all blocks above it stay randomised)
  std::vector<double> spearman;      // (R) rank correlation with the original attribution
  std::vector<double> spearman_abs;  // (R) the same on |attribution| (Adebayo's second variant)
};

struct RandomisationOptions {
  // Top first. Empty: parameter_blocks(model). A block may also be a coarser prefix ("layer4"
  // takes layer4.0 and layer4.1): a parameter belongs to it when its name starts with "block.".
  std::vector<std::string> blocks;
  uint64_t seed = 0;
};

// `query.model` must evaluate `model` (e.g. as_forward(model)), so randomising the module's
// parameters changes what the method sees.
std::vector<RandomisationStep> cascading_randomisation(nn::Module& model, const Query& query, const Method& method,
                                                       const RandomisationOptions& options = {});

}  // namespace loupe::explain::evaluate
