// `loupe profile`: neuron activation profiles of a checkpoint (explain/activation_profiles.hpp):
// which feature maps of chosen layers respond more to one group of images than to the others.
//
//   loupe profile --model runs/cxr/best.safetensors --preset cxr --data labels.csv --split test
//                 --layers layer3,layer4 --groups covid19,pneumonia,pneumonia-covid19,none --out prof
//
// Data options and preprocessing are those of `loupe evaluate` (cli/train_common.hpp): images go
// through the checkpoint's own pipeline, in batches on --device, without a graph. Writes
// DIR/profiles.json, DIR/profiles.html and DIR/<layer>_<group>.png, and prints a summary (or, with
// --json, the JSON). Tests: tests/explain/test_activation_profiles.cpp (runs this program).
#include <cstdio>
#include <iostream>
#include <sstream>

#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/progress.hpp"
#include "cli/train_common.hpp"
#include "explain/activation_profiles.hpp"

namespace loupe::cli {

namespace {

const std::vector<OptionSpec> kProfileOptions = {
    {"model", "CKPT", "", "checkpoint written by loupe train"},
    {"preset", "NAME", "", "cxr: the chest X-ray study's data options (as loupe train --preset cxr)"},
    {"data", "SRC", "", "fashion-mnist, a folder with <split>/<class> folders, or a CSV"},
    {"fashion-mnist-dir", "DIR", "/usr/share/datasets/fashion-mnist", "folder of the Fashion-MNIST .gz files"},
    {"image-dir", "DIR", "", "CSV: folder the file column is relative to"},
    {"label-columns", "A,B,..", "", "CSV: label columns (default: the checkpoint's labels)"},
    {"split-column", "NAME", "split", "CSV: column naming the split"},
    {"split", "NAME", "test", "which split to use (empty = every row / the folder itself)"},
    {"where", "COL=VAL,..", "", "CSV: keep only rows with these values, e.g. population=adult"},
    {"on-bad-image", "POLICY", "stop", "stop or skip unreadable images"},
    {"layers", "A,B,..", "", "module names whose outputs are profiled (see --list-layers)"},
    {"groups", "G,G,..", "", "group expressions (see above); default: every label, and none if multilabel"},
    {"top", "N", "8", "top maps shown per group"},
    {"limit", "N", "0", "use only the first N images (0: all)"},
    {"batch-size", "N", "32", "images per forward pass"},
    {"workers", "N", "2", "data-loading threads"},
    {"tile", "PX", "64", "size of each map's picture in the PNGs"},
    {"device", "NAME", "cpu", "cpu, cuda or cuda:N (a GPU needs a build with the CUDA backend)"},
    {"out", "DIR", "", "output folder (created if missing)"},
    {"json", "", "", "print the JSON (also written to DIR/profiles.json) instead of the summary"},
    {"list-layers", "", "", "print the model's layer names and types, then stop"},
};

const char* kSummary =
    "Neuron activation profiles: records the feature maps of --layers over a data split, drops dead\n"
    "maps (max - min <= 1e-30 on every image), averages each map's spatial mean per group of images,\n"
    "subtracts the mean over groups and ranks maps by the mean absolute result. Writes\n"
    "DIR/profiles.json, DIR/profiles.html and DIR/<layer>_<group>.png (each group's top maps).\n"
    "\n"
    "groups: NAME (label NAME positive; a name or an index), NAME-A[-B..] (NAME positive, A, B\n"
    "  negative, e.g. pneumonia-covid19), none (no positive label), all (every image)";

std::string summary_text(const explain::ActivationProfiles& p) {
  std::ostringstream out;
  out << p.images << " images;";
  for (size_t j = 0; j < p.groups.size(); ++j) out << (j ? ", " : " groups ") << p.groups[j] << " (" << p.group_sizes[j] << ")";
  out << "\n";
  for (const explain::LayerProfile& layer : p.layers) {
    char line[200];
    std::snprintf(line, sizeof line, "%s: %lld maps of %lldx%lld, %.1f%% dead\n", layer.layer.c_str(),
                  static_cast<long long>(layer.maps), static_cast<long long>(layer.height),
                  static_cast<long long>(layer.width), 100.0 * layer.dead_share);
    out << line << "  ranking:";
    for (size_t i = 0; i < layer.ranking.size() && i < static_cast<size_t>(p.top); ++i) {
      std::snprintf(line, sizeof line, " %lld (%.3g)", static_cast<long long>(layer.ranking[i]),
                    layer.score[static_cast<size_t>(layer.ranking[i])]);
      out << line;
    }
    out << "\n";
    for (size_t j = 0; j < p.groups.size(); ++j) {
      out << "  " << p.groups[j] << ":";
      for (int64_t c : layer.top[j]) {
        std::snprintf(line, sizeof line, " %lld (%+.3g)", static_cast<long long>(c),
                      layer.normalised[j][static_cast<size_t>(c)]);
        out << line;
      }
      out << "\n";
    }
  }
  return out.str();
}

}  // namespace

int run_profile(int argc, char** argv) {
  std::vector<std::string> arguments(argv, argv + argc);
  apply_preset(arguments, 2);
  std::vector<char*> pointers;
  for (std::string& a : arguments) pointers.push_back(a.data());
  // The cxr preset brings training options too; only the data options matter here.
  std::vector<OptionSpec> specs = kProfileOptions;
  for (const char* ignored : {"multilabel", "optimizer", "lr", "weight-decay", "in-channels", "image-size", "threshold"})
    specs.push_back({ignored, std::string(ignored) == "multilabel" ? "" : "X", "", "(set by --preset; ignored)"});
  const Args args(specs, static_cast<int>(pointers.size()), pointers.data(), 2);
  if (args.help()) {
    std::cout << usage("profile", kSummary, kProfileOptions);
    return 0;
  }
  LOUPE_CHECK(args.get("preset").empty() || args.get("preset") == "cxr", "option --preset: unknown preset '",
              args.get("preset"), "' (known: cxr)");
  const std::string checkpoint = args.get("model");
  LOUPE_CHECK(!checkpoint.empty(), "option --model is required (see --help)");
  nn::ModelInfo info;
  std::shared_ptr<nn::Module> model = nn::load_model(checkpoint, &info);
  if (args.flag("list-layers")) {
    for (const auto& [name, module] : model->named_modules())
      if (!name.empty()) std::cout << name << "  " << module->type_name() << "\n";
    return 0;
  }
  const std::vector<std::string> layers = split_list(args.get("layers"));
  LOUPE_CHECK(!layers.empty(), "option --layers is required; valid layers: ", [&] {
    std::string list;
    for (const auto& [name, module] : model->named_children()) list += (list.empty() ? "" : ", ") + name;
    return list + ", ... (--list-layers prints all)";
  }());
  const std::string folder = args.get("out");
  LOUPE_CHECK(!folder.empty(), "option --out is required (see --help)");
  const int64_t top = args.get_int("top"), limit = args.get_int("limit"), batch_size = args.get_int("batch-size");
  const int64_t tile = args.get_int("tile");
  LOUPE_CHECK(top >= 1, "option --top must be positive, got ", top);
  LOUPE_CHECK(limit >= 0, "option --limit must be >= 0, got ", limit);
  LOUPE_CHECK(batch_size >= 1, "option --batch-size must be positive, got ", batch_size);
  LOUPE_CHECK(tile >= 4 && tile <= 1024, "option --tile must be in [4, 1024], got ", tile);
  model->to(parse_device_option(args.get("device")));
  model->eval();

  const std::vector<explain::ImageGroup> groups = explain::parse_groups(args.get("groups"), info.labels, info.multilabel);
  std::vector<std::string> group_names;
  for (const auto& g : groups) group_names.push_back(g.name);
  // Hooks first: a bad layer name fails before any image is read.
  explain::ProfileAccumulator accumulator(*model, layers, group_names);

  nn::DataSpec spec = data_spec(args);
  if (spec.label_columns.empty()) spec.label_columns = info.labels;
  nn::DataSplit split = nn::open_split(spec, args.get("split"));
  LOUPE_CHECK(static_cast<int64_t>(split.label_names.size()) == info.num_classes, "profile: the data has ",
              split.label_names.size(), " classes / labels but '", checkpoint, "' has ", info.num_classes, " outputs");
  if (limit > 0) split.dataset = nn::first_examples(split.dataset, limit);
  LOUPE_CHECK(split.dataset->size() > 0, "profile: the selected split has no examples");
  nn::LoaderOptions o;
  o.batch_size = batch_size;
  o.num_workers = static_cast<int>(args.get_int("workers"));
  nn::DataLoader loader(split.dataset, o, nn::image_transform(info));

  ProgressBar bar("profile", loader.batches_per_epoch());
  int64_t done = 0;
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    accumulator.add(batch->images, explain::group_membership(groups, batch->labels, info.num_classes));
    bar.update(++done);
  }
  bar.finish();
  const explain::ActivationProfiles profiles = accumulator.result(top);
  std::ostringstream source;
  source << "checkpoint " << checkpoint << " (" << info.model << "), data " << spec.source << ", split '"
         << args.get("split") << "'" << (args.get("where").empty() ? "" : ", " + args.get("where"));
  explain::write_profiles(profiles, folder, "loupe profile", source.str(), tile);
  if (args.flag("json")) {
    std::cout << explain::profiles_json(profiles);
  } else {
    std::cout << summary_text(profiles) << "report: " << folder << "/profiles.html\n";
  }
  return 0;
}

}  // namespace loupe::cli
