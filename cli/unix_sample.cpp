// `loupe unix sample`: draws digit images from a saved run's model, prompted with a caption
// (BOS caption IMAGE_START, the instruction part of a text-to-image sequence), greedy or top-k,
// one new token at a time against the KV cache (unix/generate.hpp). Pixels are drawn from the
// image codebook only (the other logits are masked); each image is saved as an 8-bit grey PNG,
// upscaled by nearest neighbour (8x8 -> 64x64 with --scale 8).
//
//   loupe unix sample --run runs/unix-quick --caption "a drawing of a seven." --count 4 --top-k 3
// Tests: tests/unix/test_unix_cli.cpp (runs this program).
#include <filesystem>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/unix_common.hpp"
#include "nn/data/image.hpp"
#include "unix/generate.hpp"

namespace loupe::cli {

namespace {

namespace fs = std::filesystem;

const std::vector<OptionSpec> kSampleOptions = unix_cli::with_data_options({
    {"run", "DIR", "", "a run folder of loupe unix train (or its model file)"},
    {"caption", "TEXT", "", "the prompt caption (default: every class caption, e.g. \"a drawing of a seven.\")"},
    {"count", "N", "1", "images per caption"},
    {"top-k", "K", "1", "1: greedy; more: sample among the K most likely levels"},
    {"temperature", "X", "1", "softmax temperature for --top-k > 1"},
    {"seed", "S", "0", "the sampling draws"},
    {"scale", "F", "8", "nearest-neighbour upscaling of the saved PNG"},
    {"grid", "", "", "also write OUT/grid.png: one row per caption, one column per sample"},
    {"no-cache", "", "", "recompute the whole sequence at every step instead of the KV cache"},
    {"out", "DIR", "", "output folder (default: RUN/samples)"},
});

const char* kSampleSummary =
    "Draws images from a caption with a model saved by loupe unix train (greedy or top-k, KV cache)\n"
    "and writes them as PNG files.";

}  // namespace

int run_unix_sample(int argc, char** argv) {
  const Args args(kSampleOptions, argc, argv, 3);
  if (args.help()) {
    std::cout << usage("unix sample", kSampleSummary, kSampleOptions);
    return 0;
  }
  const std::string run_arg = args.get("run");
  const std::string model_path = unix_cli::run_model_path(run_arg);
  const int64_t count = args.get_int("count"), top_k = args.get_int("top-k"), scale = args.get_int("scale");
  const int64_t seed = args.get_int("seed");
  const double temperature = args.get_double("temperature");
  LOUPE_CHECK(count >= 1 && count <= 1024, "option --count must be in [1, 1024], got ", count);
  LOUPE_CHECK(top_k >= 1, "option --top-k must be positive, got ", top_k);
  LOUPE_CHECK(std::isfinite(temperature) && temperature > 0, "option --temperature must be positive, got ",
              temperature);
  LOUPE_CHECK(scale >= 1 && scale <= 64, "option --scale must be in [1, 64], got ", scale);
  LOUPE_CHECK(seed >= 0, "option --seed must be >= 0, got ", seed);
  const std::string out =
      !args.get("out").empty()
          ? args.get("out")
          : ((fs::is_directory(run_arg) ? fs::path(run_arg) : fs::path(model_path).parent_path()) / "samples").string();

  unix_cli::LoadedRun loaded = unix_cli::load_run(model_path);
  const unix::UnixData data = unix_cli::load_data(args, loaded.run.seed, loaded.run.dataset);
  loaded.lm->to(unix_cli::device_option(args));
  unix_cli::check_vocab(data, loaded.vocab_size, model_path);
  const unix::Vocabulary& vocab = data.vocab;
  const int64_t height = data.train_images.height, width = data.train_images.width;
  std::vector<std::string> captions = data.train_images.captions;
  if (!args.get("caption").empty()) {
    const std::string caption = args.get("caption");
    for (char c : caption) {
      LOUPE_CHECK(vocab.has_char(c), "option --caption: the character '", std::string(1, c),
                  "' is not in the model's vocabulary");
    }
    captions = {caption};
  }

  unix::SampleOptions options;
  options.max_new_tokens = height * width;
  options.top_k = top_k;
  options.temperature = temperature;
  Generator generator(static_cast<uint64_t>(seed));
  options.generator = &generator;
  options.use_cache = !args.flag("no-cache");
  options.allowed = unix::image_token_ids(vocab);
  fs::create_directories(out);
  int64_t written = 0;
  // The grid: rows of `count` images (scale * H x scale * W) with a 2-pixel mid-grey gap.
  const int64_t gap = 2, cell_h = height * scale, cell_w = width * scale;
  const int64_t grid_h = static_cast<int64_t>(captions.size()) * (cell_h + gap) - gap,
                grid_w = count * (cell_w + gap) - gap;
  std::vector<float> grid(args.flag("grid") ? static_cast<size_t>(grid_h * grid_w) : 0, 0.5f);
  for (size_t c = 0; c < captions.size(); ++c) {
    const std::vector<int64_t> prompt_ids = unix::caption_prompt(vocab, captions[c]);
    const auto length = static_cast<int64_t>(prompt_ids.size());
    std::vector<int64_t> rows;
    for (int64_t i = 0; i < count; ++i) rows.insert(rows.end(), prompt_ids.begin(), prompt_ids.end());
    const Tensor prompt = from_values(rows, {count, length});  // (count, prompt length)
    const std::vector<int64_t> drawn = to_vector<int64_t>(unix::generate(*loaded.lm, vocab, prompt, options));
    const int64_t total = length + height * width;
    for (int64_t i = 0; i < count; ++i) {
      const std::vector<int64_t> pixels(drawn.begin() + i * total + length, drawn.begin() + (i + 1) * total);
      const std::string path =
          (fs::path(out) / ("caption" + std::to_string(c) + "_sample" + std::to_string(i) + ".png")).string();
      const Tensor image = unix::levels_image(vocab, pixels, height, width, scale);  // (1, cell_h, cell_w)
      nn::save_png(path, image);
      if (!grid.empty()) {
        const std::vector<float> v = to_vector<float>(image);
        for (int64_t y = 0; y < cell_h; ++y) {
          for (int64_t x = 0; x < cell_w; ++x) {
            grid[static_cast<size_t>((static_cast<int64_t>(c) * (cell_h + gap) + y) * grid_w + i * (cell_w + gap) +
                                     x)] = v[static_cast<size_t>(y * cell_w + x)];
          }
        }
      }
      std::cout << path << "  \"" << captions[c] << "\"\n";
      ++written;
    }
  }
  if (!grid.empty()) {
    const std::string path = (fs::path(out) / "grid.png").string();
    nn::save_png(path, from_values(grid, {1, grid_h, grid_w}));
    std::cout << path << "  (rows: captions, columns: samples)\n";
  }
  std::cout << written << " image(s) of " << height << "x" << width << " levels, saved at " << height * scale << "x"
            << width * scale << " in " << out << "\n";
  return 0;
}

}  // namespace loupe::cli
