// Neuron activation profiles: a global explanation of what a CNN's feature maps respond to, per
// group of images (Chatterjee et al. 2020; REFERENCE.md section 2, last row).
//
// For chosen layers, each giving (N, C, H', W') feature maps (or (N, C), taken as 1x1 maps):
//   1. record every image's maps (forward hooks on the named modules, nn/module.hpp; batched, no
//      graph, on the model's device);
//   2. per map c and image n, the spatial mean a[n, c];
//   3. dead maps: max - min over the map's spatial values <= 1e-30 on every image. A 1x1 map has
//      no spatial spread, so for it the test is over images instead (the same value everywhere);
//      dead maps are left out of everything below, and their share per layer is reported;
//   4. per group g of images (an image can be in several groups), the group mean
//      m[g, c] = mean over n in g of a[n, c];
//   5. normalised profile p[g, c] = m[g, c] - mean over groups g' of m[g', c];
//   6. score[c] = mean over groups of |p[g, c]|; `ranking` = live maps by score, descending;
//      per group, `top` = live maps by p[g, c] descending (the maps that fire more for this group
//      than on average over groups), the first `top` of them.
// Ties in any ordering go to the lower map index. The group's mean map (H', W') of each channel is
// kept so the top maps can be shown as small heat images.
//
// Groups are written as expressions over the model's labels (parse_group):
//   NAME            images where label NAME is positive (NAME: a label name or its index)
//   NAME-A[-B..]    positive for NAME and negative for A (and B, ...): "pneumonia-covid19"
//   none            images with no positive label (multilabel data), e.g. "no finding"
//   all             every image
// A label name that itself contains '-' (Fashion-MNIST's "T-shirt/top") is matched whole first.
// Single-label data has exactly one positive label per image (its class).
//
// Used by `loupe profile` (cli/profile.cpp). Tests: tests/explain/test_activation_profiles.cpp
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nn/module.hpp"

namespace loupe::explain {

// --- groups of images ---

struct ImageGroup {
  std::string name;              // the expression as written
  std::vector<int64_t> with;     // label indices that must be positive
  std::vector<int64_t> without;  // label indices that must not be positive
  bool none = false;             // no label may be positive
  bool contains(const std::vector<bool>& positive) const;
};

// One expression (grammar above) against the label names. Raises naming the expression and the
// valid labels on anything it cannot read.
ImageGroup parse_group(const std::string& text, const std::vector<std::string>& labels);
// A comma list of expressions; empty: every label, plus "none" when `multilabel`.
std::vector<ImageGroup> parse_groups(const std::string& list, const std::vector<std::string>& labels,
                                     bool multilabel);
// Which image is in which group: (N, G) float32 of 0 / 1. labels: (N,) int64 class indices, or
// (N, K) multi-hot (a label is positive when > 0.5).
Tensor group_membership(const std::vector<ImageGroup>& groups, const Tensor& labels, int64_t num_labels);

// --- recording layer outputs ---

// The names of every submodule (named_modules() without the model itself), parents first.
std::vector<std::string> layer_names(const nn::Module& model);

// Forward hooks on the named modules that keep each one's output of the latest forward pass. An
// unknown name raises an error listing the valid names. Hooks are removed when it is destroyed.
class LayerRecorder {
 public:
  LayerRecorder(nn::Module& model, const std::vector<std::string>& layers);
  // The outputs of the last forward, in the order of `layers`, then forgets them. Raises when a
  // layer did not run, or ran more than once (a module called twice, like a shared ReLU: its
  // parent has one output per forward).
  std::vector<Tensor> take();

 private:
  struct Slot {
    std::string name;
    Tensor output;
    int64_t calls = 0;
  };
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<nn::ForwardHookHandle> hooks_;
};

// --- the profiles ---

struct LayerProfile {
  std::string layer;
  int64_t maps = 0;                    // C
  int64_t height = 1, width = 1;       // H', W' of each map
  std::vector<bool> dead;              // (C)
  double dead_share = 0.0;             // dead maps / C
  // (G) x (C) values; dead maps hold 0 in normalised and score (their means are still given).
  std::vector<std::vector<double>> group_means;  // m[g][c]
  std::vector<std::vector<double>> normalised;   // p[g][c]
  std::vector<double> score;                     // (C) mean_g |p[g][c]|
  std::vector<int64_t> ranking;                  // live maps, by score descending
  std::vector<std::vector<int64_t>> top;         // per group, at most `top` live maps by p[g][c] descending
  Tensor group_maps;                   // (G, C, H', W') float64 on the CPU: each group's mean map
};

struct ActivationProfiles {
  std::vector<std::string> groups;
  std::vector<int64_t> group_sizes;  // images per group
  int64_t images = 0;                // images seen (also those in no group)
  int64_t top = 0;
  std::vector<LayerProfile> layers;
};

// Accumulates the statistics batch by batch; result() computes the profiles. The sums stay on the
// model's device in float64 (one (B, G) x (B, C H' W') product per batch and layer).
class ProfileAccumulator {
 public:
  ProfileAccumulator(nn::Module& model, const std::vector<std::string>& layers, std::vector<std::string> group_names);
  // inputs: a model batch (B, ...) (moved to the model's device); membership: (B, G), 0 / 1.
  void add(const Tensor& inputs, const Tensor& membership);
  // Raises when a group has no image. top >= 1.
  ActivationProfiles result(int64_t top = 8) const;

 private:
  struct Layer {
    std::string name;
    Shape map_shape;     // (C, H', W') once seen
    Tensor sums;         // (G, C * H' * W') float64 on the device
    Tensor spread;       // (C) float64 on the device: max over images of (max - min over space)
    Tensor low, high;    // (C) float64: min and max over images of the map means (for 1x1 maps)
  };
  nn::Module& model_;
  LayerRecorder recorder_;
  std::vector<std::string> groups_;
  std::vector<Layer> layers_;
  std::vector<double> group_sizes_;
  int64_t images_ = 0;
};

// The whole pipeline on in-memory inputs (N, ...), in batches of `batch_size`, in eval mode
// without a graph (the model's mode is restored).
ActivationProfiles activation_profiles(nn::Module& model, const std::vector<std::string>& layers, const Tensor& inputs,
                                       const Tensor& membership, const std::vector<std::string>& group_names,
                                       int64_t top = 8, int64_t batch_size = 32);

// --- output ---

// The top maps of group g as one picture: a row of tiles (tile x tile pixels, 2-pixel white gaps),
// each the group's mean map upsampled (bilinear) and coloured with the sequential colour map,
// scaled by that map's min and max over all groups (so one map looks the same in every group's
// row). (3, tile, n * (tile + 2) - 2) float32; an empty row gives a (3, tile, tile) white image.
Tensor top_maps_image(const LayerProfile& layer, int64_t group, int64_t tile = 64);

// JSON of everything but the mean maps.
std::string profiles_json(const ActivationProfiles& profiles);

// Writes <folder>/profiles.json, <folder>/<layer>_<group>.png (top_maps_image; names made safe) and
// <folder>/profiles.html (a table per layer: dead share, the ranking, each group's top maps as a
// picture with their indices and normalised values). `title` heads the page, `source` describes
// the model and data.
void write_profiles(const ActivationProfiles& profiles, const std::string& folder, const std::string& title,
                    const std::string& source, int64_t tile = 64);

}  // namespace loupe::explain
