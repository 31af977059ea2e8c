// Everything explain/ offers in one include: the attribution API (attribution.hpp) and the
// gradient and rule-based methods. docs/explain.md teaches them.
#pragma once

#include "explain/attribution.hpp"
#include "explain/deeplift.hpp"
#include "explain/gradients.hpp"
#include "explain/guided_backprop.hpp"
#include "explain/integrated_gradients.hpp"
#include "explain/noise_tunnel.hpp"
#include "explain/occlusion.hpp"
#include "explain/perturbation.hpp"
// coalition and surrogate methods
#include "explain/feature_ablation.hpp"
#include "explain/kernel_shap.hpp"
#include "explain/lime.hpp"
#include "explain/shapley_sampling.hpp"
