// Neuron activation profiles. See activation_profiles.hpp.
#include "explain/activation_profiles.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <numeric>
#include <set>
#include <sstream>

#include "explain/heatmap.hpp"
#include "explain/report.hpp"
#include "nn/data/image.hpp"
#include "report/html.hpp"
#include "tensor/error.hpp"
#include "tensor/io/json.hpp"
#include "tensor/ops.hpp"

namespace loupe::explain {

namespace {

constexpr double kDeadSpread = 1e-30;  // REFERENCE.md: max - min <= 1e-30 on every image

std::string label_list(const std::vector<std::string>& labels) {
  std::string out;
  for (size_t i = 0; i < labels.size(); ++i) out += (i ? ", " : "") + labels[i];
  return out;
}

// A label name, or an index written in decimal; -1 when it is neither.
int64_t find_label(const std::string& text, const std::vector<std::string>& labels) {
  for (size_t k = 0; k < labels.size(); ++k)
    if (labels[k] == text) return static_cast<int64_t>(k);
  if (!text.empty() && text.size() < 10 && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    const int64_t k = std::stoll(text);
    if (k < static_cast<int64_t>(labels.size())) return k;
  }
  return -1;
}

// Splits text into labels joined by '-', each piece as long as possible first (so labels that
// contain '-' are found whole). Empty when there is no such split.
std::vector<int64_t> split_labels(const std::string& text, const std::vector<std::string>& labels) {
  if (const int64_t k = find_label(text, labels); k >= 0) return {k};
  for (size_t cut = text.size(); cut-- > 1;) {
    if (text[cut] != '-') continue;
    const int64_t first = find_label(text.substr(0, cut), labels);
    if (first < 0) continue;
    std::vector<int64_t> rest = split_labels(text.substr(cut + 1), labels);
    if (rest.empty()) continue;
    rest.insert(rest.begin(), first);
    return rest;
  }
  return {};
}

std::string number(double v, const char* format = "%.9g") {
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, format, v);
  return buffer;
}

// Letters, digits, '-' and '_' kept, anything else '_': a file-name part.
std::string safe_name(const std::string& text) {
  std::string out;
  for (char c : text) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
  return out.empty() ? "_" : out;
}

// Indices 0..n-1 of the entries with keep[i], sorted by value descending, ties by index.
std::vector<int64_t> order_by(const std::vector<double>& value, const std::vector<bool>& keep) {
  std::vector<int64_t> order;
  for (size_t i = 0; i < value.size(); ++i)
    if (keep[i]) order.push_back(static_cast<int64_t>(i));
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return value[static_cast<size_t>(a)] > value[static_cast<size_t>(b)]; });
  return order;
}

}  // namespace

// --- groups ---

bool ImageGroup::contains(const std::vector<bool>& positive) const {
  if (none) return std::none_of(positive.begin(), positive.end(), [](bool p) { return p; });
  for (int64_t k : with)
    if (!positive[static_cast<size_t>(k)]) return false;
  for (int64_t k : without)
    if (positive[static_cast<size_t>(k)]) return false;
  return true;
}

ImageGroup parse_group(const std::string& text, const std::vector<std::string>& labels) {
  ImageGroup group;
  group.name = text;
  if (const int64_t k = find_label(text, labels); k >= 0) {  // a label first: labels may be named "none"
    group.with = {k};
    return group;
  }
  if (text == "none") {
    group.none = true;
    return group;
  }
  if (text == "all") return group;
  std::string positive = text;
  std::vector<int64_t> pieces;
  if (text.rfind("all-", 0) == 0) {
    pieces = split_labels(text.substr(4), labels);
    if (!pieces.empty()) pieces.insert(pieces.begin(), -1);
  } else {
    pieces = split_labels(text, labels);
  }
  LOUPE_CHECK(!pieces.empty(), "group '", text,
              "': expected a label name or index, NAME-NAME2 (with NAME, without NAME2), none or all; labels: ",
              label_list(labels));
  if (pieces[0] >= 0) group.with = {pieces[0]};
  group.without.assign(pieces.begin() + 1, pieces.end());
  for (int64_t k : group.without)
    LOUPE_CHECK(std::find(group.with.begin(), group.with.end(), k) == group.with.end(), "group '", text,
                "': label '", labels[static_cast<size_t>(k)], "' is both required and excluded (the group is empty)");
  return group;
}

std::vector<ImageGroup> parse_groups(const std::string& list, const std::vector<std::string>& labels,
                                     bool multilabel) {
  std::vector<ImageGroup> groups;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) groups.push_back(parse_group(item, labels));
  if (groups.empty()) {
    for (const std::string& label : labels) groups.push_back(parse_group(label, labels));
    if (multilabel) groups.push_back(parse_group("none", labels));
  }
  for (size_t i = 0; i < groups.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      LOUPE_CHECK(groups[i].name != groups[j].name, "groups: '", groups[i].name, "' is given twice");
  return groups;
}

Tensor group_membership(const std::vector<ImageGroup>& groups, const Tensor& labels, int64_t num_labels) {
  LOUPE_CHECK(labels.defined(), "group_membership: undefined labels");
  const Tensor cpu = ops::to_device(labels, Device::cpu());
  const bool classes = labels.dim() == 1;
  LOUPE_CHECK(classes || (labels.dim() == 2 && labels.size(1) == num_labels), "group_membership: expected (N,) classes or (N, ",
              num_labels, ") multi-hot labels, got ", shape_str(labels.shape()));
  const int64_t n = labels.size(0), g = static_cast<int64_t>(groups.size());
  const std::vector<double> v = to_vector<double>(cpu);
  std::vector<float> out(static_cast<size_t>(n * g));
  std::vector<bool> positive(static_cast<size_t>(num_labels));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < num_labels; ++k) {
      if (classes) {
        const double c = v[static_cast<size_t>(i)];
        LOUPE_CHECK(c >= 0 && c < static_cast<double>(num_labels), "group_membership: class ", c, " of example ", i,
                    " is outside 0..", num_labels - 1);
        positive[static_cast<size_t>(k)] = static_cast<int64_t>(c) == k;
      } else {
        positive[static_cast<size_t>(k)] = v[static_cast<size_t>(i * num_labels + k)] > 0.5;
      }
    }
    for (int64_t j = 0; j < g; ++j)
      out[static_cast<size_t>(i * g + j)] = groups[static_cast<size_t>(j)].contains(positive) ? 1.0f : 0.0f;
  }
  return from_values(out, {n, g});
}

// --- recording ---

std::vector<std::string> layer_names(const nn::Module& model) {
  std::vector<std::string> names;
  for (const auto& [name, module] : model.named_modules())
    if (!name.empty()) names.push_back(name);
  return names;
}

LayerRecorder::LayerRecorder(nn::Module& model, const std::vector<std::string>& layers) {
  LOUPE_CHECK(!layers.empty(), "activation profiles: no layers chosen; valid layers: ", label_list(layer_names(model)));
  const auto modules = model.named_modules();
  for (const std::string& name : layers) {
    nn::Module* module = nullptr;
    for (const auto& [n, m] : modules)
      if (!n.empty() && n == name) module = m;
    if (module == nullptr) {
      std::vector<std::string> valid = layer_names(model);
      const size_t limit = 80;
      std::string list = label_list(std::vector<std::string>(valid.begin(), valid.begin() + static_cast<std::ptrdiff_t>(std::min(valid.size(), limit))));
      if (valid.size() > limit) list += ", ... and " + std::to_string(valid.size() - limit) + " more";
      throw Error("activation profiles: the model has no layer '" + name + "'; valid layers: " + list);
    }
    for (const auto& slot : slots_) LOUPE_CHECK(slot->name != name, "activation profiles: layer '", name, "' is given twice");
    slots_.push_back(std::make_unique<Slot>(Slot{name, Tensor(), 0}));
    Slot* slot = slots_.back().get();
    hooks_.push_back(module->add_forward_hook([slot](const Tensor& output) {
      slot->output = output;
      ++slot->calls;
    }));
  }
}

std::vector<Tensor> LayerRecorder::take() {
  std::vector<Tensor> outputs;
  for (const auto& slot : slots_) {
    LOUPE_CHECK(slot->calls > 0, "activation profiles: layer '", slot->name, "' did not run in the forward pass");
    LOUPE_CHECK(slot->calls == 1, "activation profiles: layer '", slot->name, "' ran ", slot->calls,
                " times in one forward pass (a module used more than once has no single output): choose its parent");
    outputs.push_back(slot->output);
  }
  for (const auto& slot : slots_) {
    slot->output = Tensor();
    slot->calls = 0;
  }
  return outputs;
}

// --- accumulation ---

ProfileAccumulator::ProfileAccumulator(nn::Module& model, const std::vector<std::string>& layers,
                                       std::vector<std::string> group_names)
    : model_(model), recorder_(model, layers), groups_(std::move(group_names)), group_sizes_(groups_.size(), 0.0) {
  LOUPE_CHECK(!groups_.empty(), "activation profiles: no groups of images");
  for (const std::string& name : layers) layers_.push_back(Layer{name, {}, Tensor(), Tensor(), Tensor(), Tensor()});
}

void ProfileAccumulator::add(const Tensor& inputs, const Tensor& membership) {
  const int64_t g = static_cast<int64_t>(groups_.size());
  LOUPE_CHECK(inputs.defined() && inputs.dim() >= 1, "activation profiles: expected a batch of inputs");
  const int64_t b = inputs.size(0);
  LOUPE_CHECK(membership.defined() && membership.dim() == 2 && membership.size(0) == b && membership.size(1) == g,
              "activation profiles: membership ", membership.defined() ? shape_str(membership.shape()) : "(undefined)",
              " does not match a batch of ", b, " images and ", g, " groups");
  if (b == 0) return;
  NoGradGuard no_grad;
  const Device device = model_.device();
  (void)model_(ops::to_device(inputs, device));
  const std::vector<Tensor> outputs = recorder_.take();
  const Tensor m = ops::to_dtype(ops::to_device(membership, device), DType::f64);  // (B, G)
  const Tensor m_t = ops::transpose(m, 0, 1);                                       // (G, B)
  for (size_t l = 0; l < layers_.size(); ++l) {
    Layer& layer = layers_[l];
    Tensor y = outputs[l];
    LOUPE_CHECK((y.dim() == 4 || y.dim() == 2) && y.size(0) == b, "activation profiles: layer '", layer.name,
                "' gives ", shape_str(y.shape()), "; expected (N, C, H, W) feature maps or (N, C) features for a batch of ", b);
    if (y.dim() == 2) y = ops::reshape(y, {b, y.size(1), 1, 1});
    const Shape map_shape{y.size(1), y.size(2), y.size(3)};
    const int64_t c = map_shape[0], hw = map_shape[1] * map_shape[2];
    const Tensor y64 = ops::to_dtype(y, DType::f64);
    const Tensor sums = ops::matmul(m_t, ops::reshape(y64, {b, c * hw}));  // (G, C H' W')
    const Tensor per_map = ops::reshape(y64, {b, c, hw});
    const Tensor spread = ops::amax(ops::sub(ops::amax(per_map, {2}), ops::amin(per_map, {2})), {0});  // (C)
    const Tensor means = ops::mean(per_map, {2});                                                       // (B, C)
    const Tensor low = ops::amin(means, {0}), high = ops::amax(means, {0});
    if (!layer.sums.defined()) {
      layer.map_shape = map_shape;
      layer.sums = sums;
      layer.spread = spread;
      layer.low = low;
      layer.high = high;
    } else {
      LOUPE_CHECK(layer.map_shape == map_shape, "activation profiles: layer '", layer.name, "' gave maps ",
                  shape_str(map_shape), " after ", shape_str(layer.map_shape), " (inputs of different sizes)");
      layer.sums = ops::add(layer.sums, sums);
      layer.spread = ops::maximum(layer.spread, spread);
      layer.low = ops::minimum(layer.low, low);
      layer.high = ops::maximum(layer.high, high);
    }
  }
  const std::vector<double> counts = to_vector<double>(ops::to_device(ops::sum(m, {0}), Device::cpu()));
  for (int64_t j = 0; j < g; ++j) group_sizes_[static_cast<size_t>(j)] += counts[static_cast<size_t>(j)];
  images_ += b;
}

ActivationProfiles ProfileAccumulator::result(int64_t top) const {
  LOUPE_CHECK(top >= 1, "activation profiles: top must be positive, got ", top);
  LOUPE_CHECK(images_ > 0, "activation profiles: no images were recorded");
  const size_t g = groups_.size();
  for (size_t j = 0; j < g; ++j)
    LOUPE_CHECK(group_sizes_[j] > 0, "activation profiles: group '", groups_[j], "' has no image among the ", images_,
                " recorded");
  ActivationProfiles out;
  out.groups = groups_;
  for (double n : group_sizes_) out.group_sizes.push_back(static_cast<int64_t>(std::llround(n)));
  out.images = images_;
  out.top = top;
  auto host = [](const Tensor& t) { return to_vector<double>(ops::to_device(t, Device::cpu())); };
  for (const Layer& layer : layers_) {
    LayerProfile p;
    p.layer = layer.name;
    p.maps = layer.map_shape[0];
    p.height = layer.map_shape[1];
    p.width = layer.map_shape[2];
    const int64_t c = p.maps, hw = p.height * p.width;
    std::vector<double> maps = host(layer.sums);  // (G, C, H' W') sums -> means
    for (size_t j = 0; j < g; ++j)
      for (size_t i = 0; i < static_cast<size_t>(c * hw); ++i) maps[j * static_cast<size_t>(c * hw) + i] /= group_sizes_[j];
    const std::vector<double> spread = host(layer.spread), low = host(layer.low), high = host(layer.high);
    p.dead.resize(static_cast<size_t>(c));
    std::vector<bool> alive(static_cast<size_t>(c));
    int64_t dead = 0;
    for (size_t k = 0; k < static_cast<size_t>(c); ++k) {
      // 1x1 maps have no spatial spread: for them a map is dead when it is the same on every image.
      p.dead[k] = hw > 1 ? spread[k] <= kDeadSpread : high[k] - low[k] <= kDeadSpread;
      alive[k] = !p.dead[k];
      dead += p.dead[k] ? 1 : 0;
    }
    p.dead_share = static_cast<double>(dead) / static_cast<double>(c);
    p.group_means.assign(g, std::vector<double>(static_cast<size_t>(c), 0.0));
    for (size_t j = 0; j < g; ++j)
      for (size_t k = 0; k < static_cast<size_t>(c); ++k) {
        const double* map = &maps[(j * static_cast<size_t>(c) + k) * static_cast<size_t>(hw)];
        p.group_means[j][k] = std::accumulate(map, map + hw, 0.0) / static_cast<double>(hw);
      }
    p.normalised.assign(g, std::vector<double>(static_cast<size_t>(c), 0.0));
    p.score.assign(static_cast<size_t>(c), 0.0);
    for (size_t k = 0; k < static_cast<size_t>(c); ++k) {
      if (!alive[k]) continue;
      double over_groups = 0.0;
      for (size_t j = 0; j < g; ++j) over_groups += p.group_means[j][k];
      over_groups /= static_cast<double>(g);
      for (size_t j = 0; j < g; ++j) {
        p.normalised[j][k] = p.group_means[j][k] - over_groups;
        p.score[k] += std::abs(p.normalised[j][k]) / static_cast<double>(g);
      }
    }
    p.ranking = order_by(p.score, alive);
    for (size_t j = 0; j < g; ++j) {
      std::vector<int64_t> order = order_by(p.normalised[j], alive);
      if (static_cast<int64_t>(order.size()) > top) order.resize(static_cast<size_t>(top));
      p.top.push_back(std::move(order));
    }
    p.group_maps = from_values(maps, {static_cast<int64_t>(g), c, p.height, p.width}, DType::f64);
    out.layers.push_back(std::move(p));
  }
  return out;
}

ActivationProfiles activation_profiles(nn::Module& model, const std::vector<std::string>& layers, const Tensor& inputs,
                                       const Tensor& membership, const std::vector<std::string>& group_names,
                                       int64_t top, int64_t batch_size) {
  LOUPE_CHECK(batch_size >= 1, "activation profiles: batch_size must be positive, got ", batch_size);
  LOUPE_CHECK(inputs.defined() && inputs.dim() >= 1 && membership.defined() && membership.dim() == 2 &&
                  membership.size(0) == inputs.size(0),
              "activation profiles: inputs and membership must have the same number of rows");
  const bool was_training = model.is_training();
  model.eval();
  try {
    ProfileAccumulator accumulator(model, layers, group_names);
    for (int64_t start = 0; start < inputs.size(0); start += batch_size) {
      const int64_t end = std::min(inputs.size(0), start + batch_size);
      accumulator.add(ops::slice(inputs, 0, start, end), ops::slice(membership, 0, start, end));
    }
    ActivationProfiles result = accumulator.result(top);
    model.train(was_training);
    return result;
  } catch (...) {
    model.train(was_training);
    throw;
  }
}

// --- output ---

Tensor top_maps_image(const LayerProfile& layer, int64_t group, int64_t tile) {
  LOUPE_CHECK(tile >= 4, "top_maps_image: tile must be at least 4 pixels, got ", tile);
  LOUPE_CHECK(group >= 0 && group < static_cast<int64_t>(layer.top.size()), "top_maps_image: group ", group,
              " out of range for layer '", layer.layer, "' (", layer.top.size(), " groups)");
  const std::vector<int64_t>& maps = layer.top[static_cast<size_t>(group)];
  const int64_t gap = 2, count = static_cast<int64_t>(maps.size());
  const int64_t width = count == 0 ? tile : count * (tile + gap) - gap;
  std::vector<float> canvas(static_cast<size_t>(3 * tile * width), 1.0f);
  const ColourMap colours = sequential_colour_map();
  for (int64_t i = 0; i < count; ++i) {
    const int64_t c = maps[static_cast<size_t>(i)];
    const Tensor all = ops::select(layer.group_maps, 1, c);  // (G, H', W')
    const std::vector<double> v = to_vector<double>(all);
    const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    const Tensor mine = ops::to_dtype(ops::reshape(ops::select(all, 0, group), {1, 1, layer.height, layer.width}), DType::f32);
    const std::vector<double> up = to_vector<double>(ops::interpolate(mine, {tile, tile}, InterpolateMode::bilinear));
    for (int64_t y = 0; y < tile; ++y) {
      for (int64_t x = 0; x < tile; ++x) {
        const double value = up[static_cast<size_t>(y * tile + x)];
        const double t = *hi > *lo ? (value - *lo) / (*hi - *lo) : 0.5;
        const auto rgb = colours(t);
        for (int64_t k = 0; k < 3; ++k)
          canvas[static_cast<size_t>((k * tile + y) * width + i * (tile + gap) + x)] = static_cast<float>(rgb[static_cast<size_t>(k)]);
      }
    }
  }
  return from_values(canvas, {3, tile, width});
}

std::string profiles_json(const ActivationProfiles& p) {
  std::ostringstream out;
  out << "{\"images\": " << p.images << ", \"top\": " << p.top << ", \"groups\": [";
  for (size_t j = 0; j < p.groups.size(); ++j)
    out << (j ? ", " : "") << "{\"name\": " << json::quote(p.groups[j]) << ", \"images\": " << p.group_sizes[j] << "}";
  out << "],\n \"layers\": [";
  for (size_t l = 0; l < p.layers.size(); ++l) {
    const LayerProfile& layer = p.layers[l];
    out << (l ? ",\n  " : "\n  ") << "{\"layer\": " << json::quote(layer.layer) << ", \"maps\": " << layer.maps
        << ", \"map_height\": " << layer.height << ", \"map_width\": " << layer.width
        << ", \"dead_share\": " << number(layer.dead_share) << ", \"dead\": [";
    bool first = true;
    for (size_t k = 0; k < layer.dead.size(); ++k)
      if (layer.dead[k]) {
        out << (first ? "" : ", ") << k;
        first = false;
      }
    out << "],\n   \"ranking\": [";
    for (size_t i = 0; i < layer.ranking.size(); ++i)
      out << (i ? ", " : "") << "{\"map\": " << layer.ranking[i]
          << ", \"score\": " << number(layer.score[static_cast<size_t>(layer.ranking[i])]) << "}";
    out << "],\n   \"groups\": [";
    for (size_t j = 0; j < p.groups.size(); ++j) {
      out << (j ? ",\n    " : "\n    ") << "{\"name\": " << json::quote(p.groups[j]) << ", \"top\": [";
      for (size_t i = 0; i < layer.top[j].size(); ++i) {
        const size_t k = static_cast<size_t>(layer.top[j][i]);
        out << (i ? ", " : "") << "{\"map\": " << k << ", \"normalised\": " << number(layer.normalised[j][k])
            << ", \"mean\": " << number(layer.group_means[j][k]) << "}";
      }
      out << "],\n     \"means\": [";
      for (size_t k = 0; k < layer.group_means[j].size(); ++k) out << (k ? ", " : "") << number(layer.group_means[j][k]);
      out << "],\n     \"normalised\": [";
      for (size_t k = 0; k < layer.normalised[j].size(); ++k) out << (k ? ", " : "") << number(layer.normalised[j][k]);
      out << "]}";
    }
    out << "]}";
  }
  out << "]}\n";
  return out.str();
}

void write_profiles(const ActivationProfiles& p, const std::string& folder, const std::string& title,
                    const std::string& source, int64_t tile) {
  std::error_code error;
  std::filesystem::create_directories(folder, error);
  LOUPE_CHECK(!error, "activation profiles: cannot create the folder '", folder, "': ", error.message());
  std::ostringstream html;
  html << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" << report::html_escape(title)
       << "</title>\n<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
          "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}"
          "img{image-rendering:pixelated}.small{color:#555;font-size:90%}</style></head><body>\n<h1>"
       << report::html_escape(title) << "</h1>\n<p>" << report::html_escape(source) << "</p>\n<p>" << p.images
       << " images. Groups: ";
  for (size_t j = 0; j < p.groups.size(); ++j)
    html << (j ? ", " : "") << "<b>" << report::html_escape(p.groups[j]) << "</b> (" << p.group_sizes[j] << ")";
  html << ".</p>\n<p class=\"small\">Per map: the spatial mean of each image's activation, averaged over a group; "
          "normalised = the group's mean minus the mean over groups; maps ranked by the mean absolute normalised "
          "value. Dead maps (max - min &lt;= 1e-30 on every image) are left out. Each picture shows a group's top "
          "maps (highest normalised value) averaged over the group's images, coloured from each map's lowest to "
          "its highest value over all groups.</p>\n";
  std::set<std::string> used;
  for (const LayerProfile& layer : p.layers) {
    html << "<h2>" << report::html_escape(layer.layer) << "</h2>\n<p>" << layer.maps << " maps of " << layer.height << "x"
         << layer.width << "; dead: " << number(100.0 * layer.dead_share, "%.1f") << "%. Ranking: ";
    for (size_t i = 0; i < layer.ranking.size() && i < static_cast<size_t>(2 * p.top); ++i)
      html << (i ? ", " : "") << layer.ranking[i] << " ("
           << number(layer.score[static_cast<size_t>(layer.ranking[i])], "%.3g") << ")";
    html << "</p>\n<table><tr><th>group</th><th>top maps</th></tr>\n";
    for (size_t j = 0; j < p.groups.size(); ++j) {
      std::string stem = safe_name(layer.layer) + "_" + safe_name(p.groups[j]);
      for (int n = 2; used.count(stem); ++n) stem = safe_name(layer.layer) + "_" + safe_name(p.groups[j]) + "_" + std::to_string(n);
      used.insert(stem);
      const std::string png = stem + ".png";
      nn::save_png((std::filesystem::path(folder) / png).string(), top_maps_image(layer, static_cast<int64_t>(j), tile));
      html << "<tr><td>" << report::html_escape(p.groups[j]) << "</td><td><img src=\"" << report::html_escape(png) << "\" alt=\""
           << report::html_escape(stem) << "\"><br><span class=\"small\">";
      for (size_t i = 0; i < layer.top[j].size(); ++i) {
        const size_t k = static_cast<size_t>(layer.top[j][i]);
        html << (i ? " &middot; " : "") << "map " << k << ": " << number(layer.normalised[j][k], "%+.3g");
      }
      html << "</span></td></tr>\n";
    }
    html << "</table>\n";
  }
  html << "</body></html>\n";
  write_text_file((std::filesystem::path(folder) / "profiles.html").string(), html.str());
  write_text_file((std::filesystem::path(folder) / "profiles.json").string(), profiles_json(p));
}

}  // namespace loupe::explain
