// `loupe unix train`: trains a small Uni-X model (unix/model.hpp) or its fully shared baseline on
// the Uni-X experiment's data (unix/data.hpp: sklearn's digits with captions, and a character-level
// text stream), then reports the held-out masked loss per modality and the training speed.
//
//   loupe unix train --quick --arm unix --out runs/unix-quick [--json]
//
// Each step's batch (B, T) mixes ceil(B/2) multimodal sequences (text-to-image and image-to-text,
// 50/50) with floor(B/2) text-only windows; the loss is masked_token_loss over response tokens.
// Held-out loss per modality m = sum of w_m * CE / sum of w_m over the held-out sequences, with
// w_m = modality_mask(batch, m) (image tokens, captions, text-only). Writes DIR/model.safetensors
// (the state dict) and DIR/metrics.json (atomically), prints a table or, with --json, the JSON.
// Tests: tests/unix/test_unix_cli.cpp (runs this program).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>

#include "autograd/autograd.hpp"
#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "nn/optim/optimizer.hpp"
#include "nn/serialization.hpp"
#include "tensor/error.hpp"
#include "unix/data.hpp"
#include "unix/loss.hpp"
#include "unix/model.hpp"

namespace loupe::cli {

namespace {

const std::vector<OptionSpec> kUnixOptions = {
    {"quick", "", "", "a small, short run (~15 s on 2 cores): L 4, hidden 64, heads 4, 250 steps"},
    {"arm", "NAME", "unix", "unix (two-end-separated layers) or shared (the fully shared baseline)"},
    {"layers", "L", "", "decoder layers (default: 4 with --quick, else 8)"},
    {"separated-front", "N", "-1", "separated layers at the front (-1: unix arm 1 quick / 2, shared 0)"},
    {"separated-back", "M", "-1", "separated layers at the back (-1: as --separated-front)"},
    {"hidden", "C", "", "hidden width (default: 64 with --quick, else 128)"},
    {"heads", "H", "4", "attention heads"},
    {"steps", "S", "", "training steps (default: 250 with --quick, else 2000)"},
    {"batch-size", "B", "16", "sequences per step (half multimodal, half text-only)"},
    {"lr", "X", "0.003", "Adam learning rate"},
    {"seed", "K", "0", "data split, sequence order and initialisation"},
    {"eval-sequences", "N", "0", "held-out sequences per kind evaluated (0: 192 with --quick, else all)"},
    {"digits", "FILE", "", "sklearn's digits.csv.gz (default: $LOUPE_DIGITS_CSV or the copy ./run extracts)"},
    {"text-dir", "DIR", "/usr/share/common-licenses", "folder of the text stream"},
    {"out", "DIR", "runs/unix", "output folder (created if missing)"},
    {"json", "", "", "print the JSON (also written to DIR/metrics.json) instead of the table"},
};

const char* kSummary =
    "Uni-X experiment: trains an L-layer decoder whose first N and last M layers are separate per\n"
    "modality (--arm unix) or all shared (--arm shared) with Adam on mixed batches of image-caption\n"
    "and text-only sequences, then reports the held-out masked loss per modality (image tokens,\n"
    "captions, text-only) and tokens/s. Writes DIR/model.safetensors and DIR/metrics.json.";

struct HeldoutLoss {
  double loss = 0.0;    // weighted mean CE (NaN when no token of the modality was held out)
  double tokens = 0.0;  // sum of the modality's mask
};

// Sum over batches of masked_token_loss * sum(mask), per modality, over `sequences`.
std::map<unix::Modality, HeldoutLoss> heldout_losses(unix::UnixLM& lm, const unix::Vocabulary& vocab,
                                                     const std::vector<unix::Sequence>& sequences, int64_t seq_len,
                                                     int64_t batch_size) {
  const std::vector<unix::Modality> kinds = {unix::Modality::image, unix::Modality::caption, unix::Modality::text};
  std::map<unix::Modality, double> sums, weights;
  NoGradGuard guard;
  for (const auto& indices : unix::batch_indices(static_cast<int64_t>(sequences.size()), batch_size)) {
    const unix::Batch batch = unix::make_batch(sequences, indices, seq_len);
    const Tensor logits = lm.forward(batch.tokens, vocab.vision_mask(batch.tokens));
    for (unix::Modality m : kinds) {
      const Tensor mask = unix::modality_mask(batch, m);
      const double w = ops::sum(mask).item();
      if (w == 0.0) continue;
      sums[m] += unix::masked_token_loss(logits, batch.targets, mask).item() * w;
      weights[m] += w;
    }
  }
  std::map<unix::Modality, HeldoutLoss> out;
  for (unix::Modality m : kinds) out[m] = {weights[m] > 0 ? sums[m] / weights[m] : std::nan(""), weights[m]};
  return out;
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.9g", v);
  return buffer;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

int run_unix_train(int argc, char** argv) {
  const Args args(kUnixOptions, argc, argv, 3);
  if (args.help()) {
    std::cout << usage("unix train", kSummary, kUnixOptions);
    return 0;
  }
  const bool quick = args.flag("quick");
  const std::string arm = args.get("arm");
  LOUPE_CHECK(arm == "unix" || arm == "shared", "option --arm must be unix or shared, got '", arm, "'");
  // An option left out takes its --quick or full default; one given must be positive.
  const auto positive = [&](const std::string& name, int64_t fallback) {
    if (args.get(name).empty()) return fallback;
    const int64_t value = args.get_int(name);
    LOUPE_CHECK(value >= 1, "option --", name, " must be positive, got ", value);
    return value;
  };
  const int64_t layers = positive("layers", quick ? 4 : 8);
  const int64_t hidden = positive("hidden", quick ? 64 : 128);
  const int64_t heads = args.get_int("heads");
  const int64_t steps = positive("steps", quick ? 250 : 2000);
  const int64_t batch_size = args.get_int("batch-size");
  const int64_t eval_sequences = args.get_int("eval-sequences") != 0 ? args.get_int("eval-sequences") : (quick ? 192 : -1);
  const double lr = args.get_double("lr");
  const int64_t seed = args.get_int("seed");
  int64_t front = args.get_int("separated-front");
  if (front == -1) front = arm == "shared" ? 0 : (quick ? 1 : 2);
  int64_t back = args.get_int("separated-back");
  if (back == -1) back = front;
  LOUPE_CHECK(heads >= 1 && hidden % heads == 0, "option --heads must be positive and divide --hidden ", hidden, ", got ", heads);
  LOUPE_CHECK(batch_size >= 2, "option --batch-size must be at least 2 (one multimodal and one text sequence), got ", batch_size);
  LOUPE_CHECK(std::isfinite(lr) && lr > 0, "option --lr must be positive, got ", lr);
  LOUPE_CHECK(seed >= 0, "option --seed must be >= 0, got ", seed);
  LOUPE_CHECK(args.get_int("eval-sequences") >= 0, "option --eval-sequences must be >= 0, got ", args.get_int("eval-sequences"));
  LOUPE_CHECK(front >= 0 && front <= layers, "option --separated-front must be in [0, --layers ", layers, "], got ", front);
  LOUPE_CHECK(back >= 0 && back <= layers, "option --separated-back must be in [0, --layers ", layers, "], got ", back);
  LOUPE_CHECK(front + back <= layers, "options --separated-front ", front, " and --separated-back ", back,
              " together exceed --layers ", layers);
  LOUPE_CHECK(arm == "unix" || front + back == 0, "option --separated-front / --separated-back: the shared arm has no "
              "separated layers (got N ", front, ", M ", back, ")");
  const std::string folder = args.get("out");
  LOUPE_CHECK(!folder.empty(), "option --out must name a folder");

  unix::DataConfig data_config;
  data_config.seed = static_cast<uint64_t>(seed);
  data_config.text_dir = args.get("text-dir");
  data_config.digits_path = args.get("digits");
  if (!data_config.digits_path.empty()) {
    LOUPE_CHECK(std::filesystem::is_regular_file(data_config.digits_path), "option --digits: '", data_config.digits_path,
                "' (sklearn's digits.csv.gz) does not exist");
  }
  const unix::UnixData data = unix::load_unix_data(data_config);
  const unix::Vocabulary& vocab = data.vocab;
  const int64_t T = data.seq_len();
  const std::vector<unix::Sequence> train_mm = data.multimodal_sequences(unix::Split::train);
  const std::vector<unix::Sequence> train_text = data.text_sequences(unix::Split::train, T);
  std::vector<unix::Sequence> held_mm = data.multimodal_sequences(unix::Split::heldout);
  std::vector<unix::Sequence> held_text = data.text_sequences(unix::Split::heldout, T);
  LOUPE_CHECK(!train_mm.empty() && !train_text.empty() && !held_mm.empty() && !held_text.empty(),
              "unix train: the data has an empty split (", train_mm.size(), " / ", train_text.size(),
              " training, ", held_mm.size(), " / ", held_text.size(), " held-out multimodal / text sequences)");
  if (eval_sequences > 0) {
    held_mm.resize(std::min<size_t>(held_mm.size(), static_cast<size_t>(eval_sequences)));
    held_text.resize(std::min<size_t>(held_text.size(), static_cast<size_t>(eval_sequences)));
  }
  std::vector<unix::Sequence> heldout = held_mm;
  heldout.insert(heldout.end(), held_text.begin(), held_text.end());

  unix::UnixConfig config;
  config.vocab_size = vocab.size();
  config.hidden = hidden;
  config.intermediate = (hidden * 8 / 3 + 7) / 8 * 8;  // SwiGLU's usual 8/3, rounded to 8
  config.n_layers = layers;
  config.n_heads = heads;
  config.n_separated_start = front;
  config.m_separated_end = back;
  config.qk_norm = true;
  config.check();
  Generator generator(static_cast<uint64_t>(seed));
  unix::UnixLM lm(config, &generator);
  const unix::ParameterCount params = unix::count_parameters(lm);
  nn::AdamOptions adam;
  adam.lr = lr;
  nn::Adam optimizer(lm.parameters(), adam);

  // Training: each step takes the next chunk of a seeded pass over each pool (a new order per pass).
  const int64_t n_mm = batch_size - batch_size / 2, n_text = batch_size / 2;
  std::vector<unix::Sequence> pool = train_mm;
  pool.insert(pool.end(), train_text.begin(), train_text.end());
  const auto mm_count = static_cast<int64_t>(train_mm.size()), text_count = static_cast<int64_t>(train_text.size());
  std::vector<int64_t> mm_order, text_order;
  int64_t mm_next = mm_count, text_next = text_count, pass = 0;
  double first_loss = 0.0, last_loss = 0.0, tokens = 0.0;
  lm.train();
  const auto start = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < steps; ++step) {
    std::vector<int64_t> indices;
    for (int64_t i = 0; i < n_mm; ++i) {
      if (mm_next == mm_count) mm_order = unix::seeded_permutation(mm_count, static_cast<uint64_t>(seed) * 1000003u + ++pass), mm_next = 0;
      indices.push_back(mm_order[static_cast<size_t>(mm_next++)]);
    }
    for (int64_t i = 0; i < n_text; ++i) {
      if (text_next == text_count) text_order = unix::seeded_permutation(text_count, static_cast<uint64_t>(seed) * 1000003u + ++pass), text_next = 0;
      indices.push_back(mm_count + text_order[static_cast<size_t>(text_next++)]);
    }
    for (int64_t i : indices) tokens += static_cast<double>(pool[static_cast<size_t>(i)].length() - 1);
    const unix::Batch batch = unix::make_batch(pool, indices, T);
    optimizer.zero_grad();
    const Tensor loss = unix::masked_token_loss(lm.forward(batch.tokens, vocab.vision_mask(batch.tokens)), batch.targets,
                                                batch.loss_mask);
    backward(loss);
    optimizer.step();
    last_loss = loss.item();
    if (step == 0) first_loss = last_loss;
    LOUPE_CHECK(std::isfinite(last_loss), "unix train: the training loss is not finite at step ", step + 1,
                " (try a smaller --lr)");
  }
  const double train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double tokens_per_second = tokens / std::max(train_seconds, 1e-9);

  lm.eval();
  const auto eval_start = std::chrono::steady_clock::now();
  const std::map<unix::Modality, HeldoutLoss> held = heldout_losses(lm, vocab, heldout, T, std::max<int64_t>(batch_size, 32));
  const double eval_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - eval_start).count();

  std::filesystem::create_directories(folder);
  const std::string model_path = (std::filesystem::path(folder) / "model.safetensors").string();
  std::ostringstream description;
  description << "{\"arm\":\"" << arm << "\",\"vocab_size\":" << config.vocab_size << ",\"hidden\":" << hidden
              << ",\"intermediate\":" << config.intermediate << ",\"layers\":" << layers << ",\"heads\":" << heads
              << ",\"separated_front\":" << front << ",\"separated_back\":" << back << ",\"qk_norm\":true}";
  nn::save_state_dict(lm, model_path, {{"format", "pt"}, {"loupe_unix_config", description.str()}});

  const double bound = std::log(static_cast<double>(vocab.size()));
  std::ostringstream json;
  json << "{\n  \"command\": \"unix train\",\n  \"arm\": " << json_string(arm) << ",\n  \"quick\": " << (quick ? "true" : "false")
       << ",\n  \"layers\": " << layers << ",\n  \"hidden\": " << hidden << ",\n  \"heads\": " << heads
       << ",\n  \"separated_front\": " << front << ",\n  \"separated_back\": " << back << ",\n  \"steps\": " << steps
       << ",\n  \"batch_size\": " << batch_size << ",\n  \"lr\": " << json_number(lr) << ",\n  \"seed\": " << seed
       << ",\n  \"vocab_size\": " << vocab.size() << ",\n  \"seq_len\": " << T << ",\n  \"parameters_total\": " << params.total
       << ",\n  \"parameters_active\": " << params.active << ",\n  \"initial_loss_bound\": " << json_number(bound)
       << ",\n  \"train_loss_first\": " << json_number(first_loss) << ",\n  \"train_loss_last\": " << json_number(last_loss)
       << ",\n  \"heldout_sequences\": {\"multimodal\": " << held_mm.size() << ", \"text\": " << held_text.size() << "}"
       << ",\n  \"heldout_loss\": {";
  const char* sep = "";
  for (const auto& [m, h] : held) json << sep << "\"" << unix::modality_name(m) << "\": " << json_number(h.loss), sep = ", ";
  json << "},\n  \"heldout_tokens\": {";
  sep = "";
  for (const auto& [m, h] : held) json << sep << "\"" << unix::modality_name(m) << "\": " << json_number(h.tokens), sep = ", ";
  json << "},\n  \"train_tokens\": " << json_number(tokens) << ",\n  \"train_seconds\": " << json_number(train_seconds)
       << ",\n  \"tokens_per_second\": " << json_number(tokens_per_second) << ",\n  \"eval_seconds\": "
       << json_number(eval_seconds) << ",\n  \"model\": " << json_string(model_path) << "\n}\n";
  write_text_atomic((std::filesystem::path(folder) / "metrics.json").string(), json.str());

  if (args.flag("json")) {
    std::cout << json.str();
    return 0;
  }
  char line[256];
  std::snprintf(line, sizeof line, "arm %s: L %lld (N %lld, M %lld), hidden %lld, %lld parameters (%lld active), %lld steps of %lld\n",
                arm.c_str(), static_cast<long long>(layers), static_cast<long long>(front), static_cast<long long>(back),
                static_cast<long long>(hidden), static_cast<long long>(params.total), static_cast<long long>(params.active),
                static_cast<long long>(steps), static_cast<long long>(batch_size));
  std::cout << line;
  std::snprintf(line, sizeof line, "train loss %.4f -> %.4f (log V = %.4f), %.0f tokens/s over %.1f s\n", first_loss,
                last_loss, bound, tokens_per_second, train_seconds);
  std::cout << line << "\nheld-out modality   masked loss   tokens\n";
  for (const auto& [m, h] : held) {
    std::snprintf(line, sizeof line, "%-18s %12.4f %8.0f\n", unix::modality_name(m), h.loss, h.tokens);
    std::cout << line;
  }
  std::cout << "\nmodel: " << model_path << "\nmetrics: " << (std::filesystem::path(folder) / "metrics.json").string() << "\n";
  return 0;
}

}  // namespace

int run_unix(int argc, char** argv) {
  const std::string sub = argc >= 3 ? argv[2] : "";
  if (sub.empty() || sub == "--help" || sub == "-h") {
    std::cout << "usage: loupe unix train [options]   (the Uni-X experiment; 'loupe unix train --help')\n";
    return sub.empty() ? 2 : 0;
  }
  LOUPE_CHECK(sub == "train", "unknown subcommand '", sub, "' (known: train)");
  return run_unix_train(argc, argv);
}

}  // namespace loupe::cli
