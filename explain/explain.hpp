// Everything explain/ offers in one include: the attribution API (attribution.hpp), the gradient
// and rule-based methods, the perturbation and surrogate methods, image feature masks and neuron
// activation profiles, image baselines (black, zeros, blur, uniform, mean). docs/explain.md teaches them.
#pragma once

#include "explain/activation_profiles.hpp"
#include "explain/attribution.hpp"
#include "explain/baselines.hpp"
#include "explain/coalitions.hpp"
#include "explain/deeplift.hpp"
#include "explain/feature_ablation.hpp"
#include "explain/feature_masks.hpp"
#include "explain/gradients.hpp"
#include "explain/guided_backprop.hpp"
#include "explain/integrated_gradients.hpp"
#include "explain/kernel_shap.hpp"
#include "explain/lime.hpp"
#include "explain/linear_fit.hpp"
#include "explain/noise_tunnel.hpp"
#include "explain/occlusion.hpp"
#include "explain/perturbation.hpp"
#include "explain/shapley_sampling.hpp"
