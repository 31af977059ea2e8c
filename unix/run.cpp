// One run of the Uni-X experiment: settings, training, held-out loss, conflict batches. See run.hpp.
#include "unix/run.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>
#include <sstream>

#include "autograd/autograd.hpp"
#include "nn/optim/optimizer.hpp"
#include "nn/serialization.hpp"
#include "tensor/io/json.hpp"
#include "tensor/io/safetensors.hpp"
#include "unix/loss.hpp"

namespace loupe::unix {

// --- settings ------------------------------------------------------------------------------------

void RunConfig::check() const {
  LOUPE_CHECK(arm == "unix" || arm == "shared" || arm == "mot", "unix run: --arm must be unix, shared or mot, got '",
              arm, "'");
  LOUPE_CHECK(dataset == "digits" || dataset == "fashion-mnist",
              "unix run: --dataset must be digits or fashion-mnist, got '", dataset, "'");
  LOUPE_CHECK(layers >= 1, "unix run: --layers must be positive, got ", layers);
  LOUPE_CHECK(hidden >= 1, "unix run: --hidden must be positive, got ", hidden);
  LOUPE_CHECK(intermediate >= 0, "unix run: --intermediate must be >= 0 (0: the default), got ", intermediate);
  LOUPE_CHECK(heads >= 1 && hidden % heads == 0, "unix run: --heads must be positive and divide --hidden ", hidden,
              ", got ", heads);
  LOUPE_CHECK((hidden / heads) % 2 == 0, "unix run: the head width --hidden / --heads must be even (rotary), got ",
              hidden / heads);
  LOUPE_CHECK(steps >= 1, "unix run: --steps must be positive, got ", steps);
  LOUPE_CHECK(batch_size >= 2, "unix run: --batch-size must be at least 2 (one multimodal and one text sequence), got ",
              batch_size);
  LOUPE_CHECK(std::isfinite(lr) && lr > 0, "unix run: --lr must be positive, got ", lr);
  LOUPE_CHECK(eval_sequences == -1 || eval_sequences >= 1, "unix run: --eval-sequences must be positive, got ",
              eval_sequences);
  LOUPE_CHECK(front >= 0 && front <= layers, "unix run: --separated-front must be in [0, --layers ", layers, "], got ",
              front);
  LOUPE_CHECK(back >= 0 && back <= layers, "unix run: --separated-back must be in [0, --layers ", layers, "], got ",
              back);
  LOUPE_CHECK(front + back <= layers, "unix run: --separated-front ", front, " and --separated-back ", back,
              " together exceed --layers ", layers);
  LOUPE_CHECK(arm == "unix" || front + back == 0, "unix run: --separated-front / --separated-back: the ", arm,
              " arm has no separated layers (got N ", front, ", M ", back, ")");
}

int64_t default_intermediate(int64_t hidden) { return (hidden * 8 / 3 + 7) / 8 * 8; }

UnixConfig model_config(const RunConfig& run, int64_t vocab_size) {
  run.check();
  UnixConfig config;
  config.vocab_size = vocab_size;
  config.hidden = run.hidden;
  config.intermediate = run.intermediate > 0 ? run.intermediate : default_intermediate(run.hidden);
  config.n_layers = run.layers;
  config.n_heads = run.heads;
  config.n_separated_start = run.front;
  config.m_separated_end = run.back;
  config.qk_norm = true;
  config.mixture_of_transformers = run.arm == "mot";
  config.check();
  return config;
}

std::string run_config_json(const RunConfig& run, int64_t vocab_size) {
  char lr[64];
  std::snprintf(lr, sizeof lr, "%.17g", run.lr);
  std::ostringstream out;
  out << "{\"arm\":" << json::quote(run.arm) << ",\"vocab_size\":" << vocab_size << ",\"layers\":" << run.layers
      << ",\"hidden\":" << run.hidden << ",\"intermediate\":" << model_config(run, vocab_size).intermediate
      << ",\"heads\":" << run.heads << ",\"separated_front\":" << run.front << ",\"separated_back\":" << run.back
      << ",\"steps\":" << run.steps << ",\"batch_size\":" << run.batch_size << ",\"lr\":" << lr
      << ",\"seed\":" << run.seed << ",\"eval_sequences\":" << run.eval_sequences
      << ",\"dataset\":" << json::quote(run.dataset) << ",\"qk_norm\":true}";
  return out.str();
}

RunConfig parse_run_config_json(const std::string& text, int64_t* vocab_size) {
  const json::Value root = json::parse(text);
  LOUPE_CHECK(root.kind == json::Value::Kind::object, "unix run config: expected a JSON object, got '", text, "'");
  const auto number = [&](const char* key) -> std::string {
    const json::Value* v = root.find(key);
    LOUPE_CHECK(v != nullptr && v->kind == json::Value::Kind::number, "unix run config: missing number '", key,
                "' in '", text, "'");
    return v->text;
  };
  const auto integer = [&](const char* key) { return static_cast<int64_t>(std::stoll(number(key))); };
  RunConfig run;
  const json::Value* arm = root.find("arm");
  LOUPE_CHECK(arm != nullptr && arm->kind == json::Value::Kind::string, "unix run config: missing 'arm' in '", text,
              "'");
  run.arm = arm->text;
  // Optional (runs saved before the option existed used the digits).
  const json::Value* dataset = root.find("dataset");
  if (dataset != nullptr) {
    LOUPE_CHECK(dataset->kind == json::Value::Kind::string, "unix run config: 'dataset' must be a string in '", text,
                "'");
    run.dataset = dataset->text;
  }
  run.layers = integer("layers");
  run.hidden = integer("hidden");
  run.intermediate = integer("intermediate");
  run.heads = integer("heads");
  run.front = integer("separated_front");
  run.back = integer("separated_back");
  run.steps = integer("steps");
  run.batch_size = integer("batch_size");
  run.lr = std::stod(number("lr"));
  run.seed = static_cast<uint64_t>(std::stoull(number("seed")));
  run.eval_sequences = integer("eval_sequences");
  if (vocab_size != nullptr) *vocab_size = integer("vocab_size");
  run.check();
  return run;
}

void save_run_model(const UnixLM& lm, const RunConfig& run, const std::string& path) {
  nn::save_state_dict(lm, path, {{"format", "pt"}, {kRunMetadataKey, run_config_json(run, lm.config().vocab_size)}});
}

RunConfig load_run_config(const std::string& path, int64_t* vocab_size) {
  LOUPE_CHECK(std::filesystem::is_regular_file(path), "unix: model file '", path, "' does not exist");
  const std::map<std::string, std::string> metadata = load_safetensors_metadata(path);
  const auto it = metadata.find(kRunMetadataKey);
  LOUPE_CHECK(it != metadata.end(), "unix: '", path, "' has no '", kRunMetadataKey,
              "' metadata (not a model saved by loupe unix train)");
  try {
    return parse_run_config_json(it->second, vocab_size);
  } catch (const Error& e) {
    throw Error(detail::make_message("unix: '", path, "': ", e.what()));
  }
}

// --- training -------------------------------------------------------------------------------------

TrainResult train_run(UnixLM& lm, const UnixData& data, const RunConfig& run,
                      const std::vector<int64_t>& checkpoint_steps, const CheckpointFn& on_checkpoint) {
  run.check();
  for (int64_t s : checkpoint_steps) {
    LOUPE_CHECK(s >= 0 && s <= run.steps, "unix train: checkpoint step ", s, " is outside [0, --steps ", run.steps,
                "]");
  }
  const std::set<int64_t> checkpoints(checkpoint_steps.begin(), checkpoint_steps.end());
  const Vocabulary& vocab = data.vocab;
  const int64_t T = data.seq_len();
  const std::vector<Sequence> train_mm = data.multimodal_sequences(Split::train);
  const std::vector<Sequence> train_text = data.text_sequences(Split::train, T);
  LOUPE_CHECK(!train_mm.empty() && !train_text.empty(), "unix train: the training split is empty (", train_mm.size(),
              " multimodal and ", train_text.size(), " text sequences)");

  const Device device = lm.device();
  nn::AdamOptions adam;
  adam.lr = run.lr;
  nn::Adam optimizer(lm.parameters(), adam);
  const int64_t n_mm = run.batch_size - run.batch_size / 2, n_text = run.batch_size / 2;
  std::vector<Sequence> pool = train_mm;
  pool.insert(pool.end(), train_text.begin(), train_text.end());
  const auto mm_count = static_cast<int64_t>(train_mm.size()), text_count = static_cast<int64_t>(train_text.size());
  std::vector<int64_t> mm_order, text_order;
  int64_t mm_next = mm_count, text_next = text_count, pass = 0;
  // The order depends on the seed and the pass only (not on the model): the same for every arm.
  const auto next_index = [&](std::vector<int64_t>& order, int64_t& next, int64_t count) {
    if (next == count) order = seeded_permutation(count, run.seed * 1000003u + static_cast<uint64_t>(++pass)), next = 0;
    return order[static_cast<size_t>(next++)];
  };

  TrainResult result;
  const bool was_training = lm.is_training();
  lm.train();
  double seconds = 0.0;
  for (int64_t step = 0; step < run.steps; ++step) {
    if (checkpoints.count(step) && on_checkpoint) on_checkpoint(step, lm);
    const auto start = std::chrono::steady_clock::now();
    std::vector<int64_t> indices;
    for (int64_t i = 0; i < n_mm; ++i) indices.push_back(next_index(mm_order, mm_next, mm_count));
    for (int64_t i = 0; i < n_text; ++i) indices.push_back(mm_count + next_index(text_order, text_next, text_count));
    for (int64_t i : indices) result.tokens += static_cast<double>(pool[static_cast<size_t>(i)].length() - 1);
    const Batch batch = to_device(make_batch(pool, indices, T), device);
    optimizer.zero_grad();
    const Tensor loss =
        masked_token_loss(lm.forward(batch.tokens, vocab.vision_mask(batch.tokens)), batch.targets, batch.loss_mask);
    backward(loss);
    optimizer.step();
    const double value = loss.item();
    LOUPE_CHECK(std::isfinite(value), "unix train: the training loss is not finite at step ", step + 1,
                " (try a smaller --lr)");
    result.losses.push_back(value);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  if (checkpoints.count(run.steps) && on_checkpoint) on_checkpoint(run.steps, lm);
  result.first_loss = result.losses.front();
  result.last_loss = result.losses.back();
  result.seconds = seconds;
  if (!was_training) lm.eval();
  return result;
}

// --- held-out loss ---------------------------------------------------------------------------------

std::vector<Sequence> HeldoutSet::all() const {
  std::vector<Sequence> out = multimodal;
  out.insert(out.end(), text.begin(), text.end());
  return out;
}

HeldoutSet heldout_set(const UnixData& data, int64_t eval_sequences) {
  HeldoutSet set;
  set.multimodal = data.multimodal_sequences(Split::heldout);
  set.text = data.text_sequences(Split::heldout, data.seq_len());
  LOUPE_CHECK(!set.multimodal.empty() && !set.text.empty(), "unix: the held-out split is empty (",
              set.multimodal.size(), " multimodal and ", set.text.size(), " text sequences)");
  if (eval_sequences > 0) {
    set.multimodal.resize(std::min<size_t>(set.multimodal.size(), static_cast<size_t>(eval_sequences)));
    set.text.resize(std::min<size_t>(set.text.size(), static_cast<size_t>(eval_sequences)));
  }
  return set;
}

std::map<Modality, HeldoutLoss> heldout_losses(UnixLM& lm, const Vocabulary& vocab,
                                               const std::vector<Sequence>& sequences, int64_t seq_len) {
  const std::vector<Modality> kinds = {Modality::image, Modality::caption, Modality::text};
  std::map<Modality, double> sums, weights;
  NoGradGuard guard;
  const Device device = lm.device();
  for (const auto& indices : batch_indices(static_cast<int64_t>(sequences.size()), kEvalBatch)) {
    const Batch batch = to_device(make_batch(sequences, indices, seq_len), device);
    const Tensor logits = lm.forward(batch.tokens, vocab.vision_mask(batch.tokens));
    for (Modality m : kinds) {
      const Tensor mask = modality_mask(batch, m);
      const double w = ops::sum(mask).item();
      if (w == 0.0) continue;
      sums[m] += masked_token_loss(logits, batch.targets, mask).item() * w;
      weights[m] += w;
    }
  }
  std::map<Modality, HeldoutLoss> out;
  for (Modality m : kinds) out[m] = {weights[m] > 0 ? sums[m] / weights[m] : std::nan(""), weights[m]};
  return out;
}

// --- gradient conflict of a run's model -------------------------------------------------------------

ConflictBatches conflict_batches(const UnixData& data, int64_t count, int64_t batch_size, uint64_t conflict_seed) {
  LOUPE_CHECK(count >= 1 && batch_size >= 1, "unix conflict: need at least one batch of one sequence, got ", count,
              " batches of ", batch_size);
  const int64_t T = data.seq_len();
  const std::vector<Sequence> mm = data.multimodal_sequences(Split::train);
  const std::vector<Sequence> text = data.text_sequences(Split::train, T);
  const auto take = [&](const std::vector<Sequence>& pool, uint64_t salt) {
    const auto n = static_cast<int64_t>(pool.size());
    LOUPE_CHECK(n >= count * batch_size, "unix conflict: ", count, " batches of ", batch_size, " need ",
                count * batch_size, " sequences, the training split has ", n);
    const std::vector<int64_t> order = seeded_permutation(n, conflict_seed * 7919u + salt);
    std::vector<Batch> batches;
    for (int64_t b = 0; b < count; ++b) {
      const std::vector<int64_t> indices(order.begin() + b * batch_size, order.begin() + (b + 1) * batch_size);
      batches.push_back(make_batch(pool, indices, T));
    }
    return batches;
  };
  ConflictBatches out;
  out.text = take(text, 1);
  out.multimodal = take(mm, 2);
  return out;
}

std::vector<ConflictRow> run_conflict(UnixLM& lm, const Vocabulary& vocab, const ConflictBatches& batches, int64_t step,
                                      uint64_t seed) {
  const UnixConfig& c = lm.config();
  LOUPE_CHECK(!c.mixture_of_transformers,
              "unix conflict: a Mixture-of-Transformers model has no shared layer "
              "(per-modality weights in every layer)");
  const nn::NamedTensors matrices =
      select_matrices(lm.named_parameters(), shared_layers(c.n_layers, c.n_separated_start, c.m_separated_end));
  LOUPE_CHECK(!matrices.empty(), "unix conflict: the model has no shared layer (L ", c.n_layers, ", N ",
              c.n_separated_start, ", M ", c.m_separated_end, ")");
  const Device device = lm.device();
  const auto loss_of = [&](const Batch& cpu_batch) {
    const Batch b = to_device(cpu_batch, device);
    return masked_token_loss(lm.forward(b.tokens, vocab.vision_mask(b.tokens)), b.targets, b.loss_mask);
  };
  ConflictInputs inputs;
  inputs.text_loss = [&](int64_t i) { return loss_of(batches.text[static_cast<size_t>(i)]); };
  inputs.text_batches = static_cast<int64_t>(batches.text.size());
  inputs.multimodal_loss = [&](int64_t i) { return loss_of(batches.multimodal[static_cast<size_t>(i)]); };
  inputs.multimodal_batches = static_cast<int64_t>(batches.multimodal.size());
  inputs.within_batch_losses = [&](int64_t i) {
    const Batch b = to_device(batches.multimodal[static_cast<size_t>(i)], device);
    const Tensor logits = lm.forward(b.tokens, vocab.vision_mask(b.tokens));
    return std::make_pair(masked_token_loss(logits, b.targets, modality_mask(b, Modality::image)),
                          masked_token_loss(logits, b.targets, modality_mask(b, Modality::caption)));
  };
  ConflictOptions options;
  options.seed = seed;
  options.step = step;
  return gradient_conflict(inputs, matrices, options);
}

}  // namespace loupe::unix
