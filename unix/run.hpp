// One run of the Uni-X experiment as library code (so `loupe unix train`, `eval`, `conflict` and
// `experiment` share it, and tests can call it): the run's settings and their JSON form (kept in
// the saved model's safetensors metadata), the training loop on mixed batches with checkpoints,
// the held-out masked loss per modality, and the batches and losses the gradient-conflict
// analysis (unix/conflict.hpp) measures a model on.
//
// Training: each step's batch (B, T) takes ceil(B/2) multimodal sequences (text-to-image and
// image-to-text, 50/50 over a pass) and floor(B/2) text-only windows, each from the next chunk of a
// seeded pass over its pool (a new order per pass); the order depends on the seed only, so two
// arms with one seed see the same data in the same order. Loss: masked_token_loss over response
// tokens; Adam. The device follows the model: batches move to lm's device (lm.to(device) first).
// A checkpoint at step s is the model after s updates (s = 0: the initialisation).
//
// Held-out loss per modality m (image tokens, captions, text-only):
//   sum over held-out tokens of w_m * CE / sum of w_m,   w_m = modality_mask(batch, m)
// over the first `eval_sequences` multimodal and text sequences of the held-out split (all when -1),
// in batches of kEvalBatch (fixed, so train and eval give the same numbers).
// Tests: tests/unix/test_run.cpp, tests/unix/test_unix_cli.cpp
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "unix/conflict.hpp"
#include "unix/data.hpp"
#include "unix/model.hpp"

#if defined(unix)
#error "unix/ needs -std=c++20 (GNU dialects predefine the macro 'unix', the name of this namespace)"
#endif

namespace loupe::unix {

// --- settings ------------------------------------------------------------------------------------

struct RunConfig {
  std::string arm = "unix";  // "unix" (N, M separated layers), "shared" (N = M = 0) or "mot"
                             // (Mixture-of-Transformers: per-modality weights in every layer)
  int64_t layers = 8;        // L
  int64_t hidden = 128;
  int64_t intermediate = 0;  // SwiGLU width; 0: default_intermediate(hidden)
  int64_t heads = 4;
  int64_t front = 2;  // N
  int64_t back = 2;   // M
  int64_t steps = 2000;
  int64_t batch_size = 16;
  double lr = 0.003;
  uint64_t seed = 0;               // data split, data order and initialisation
  int64_t eval_sequences = -1;     // held-out sequences per kind (-1: all)
  std::string dataset = "digits";  // the images: "digits" (8x8, 17 levels) or "fashion-mnist" (14x14, 16)

  // Throws loupe::Error naming the setting ("--layers", ...) when inconsistent.
  void check() const;
};

// SwiGLU's usual 8/3 of the hidden width, rounded up to a multiple of 8.
int64_t default_intermediate(int64_t hidden);
// The model of a run: QK-norm on, untied head, rotary positions.
UnixConfig model_config(const RunConfig& run, int64_t vocab_size);
// One-line JSON of the run and the vocabulary size (what the safetensors metadata keeps), and back.
std::string run_config_json(const RunConfig& run, int64_t vocab_size);
RunConfig parse_run_config_json(const std::string& text, int64_t* vocab_size);

// The metadata key of that JSON in a saved model.
inline constexpr const char* kRunMetadataKey = "loupe_unix_config";
// Saves lm's state dict with the run's JSON as metadata (atomically).
void save_run_model(const UnixLM& lm, const RunConfig& run, const std::string& path);
// Reads the run's settings and vocabulary size from a saved model's metadata (loupe::Error when
// the file is missing or was not written by save_run_model).
RunConfig load_run_config(const std::string& path, int64_t* vocab_size);

// --- training -------------------------------------------------------------------------------------

struct TrainResult {
  double first_loss = 0.0, last_loss = 0.0;  // training loss of the first and the last step
  double tokens = 0.0;                       // model positions of the training batches (non-PAD)
  double seconds = 0.0;                      // wall time of the training steps (not checkpoints)
  std::vector<double> losses;                // one per step
};

using CheckpointFn = std::function<void(int64_t step, UnixLM& lm)>;

// Trains lm in place with run's steps, batch size, learning rate and seed. `checkpoint_steps`
// (each in [0, steps]) call `on_checkpoint` after that many updates.
TrainResult train_run(UnixLM& lm, const UnixData& data, const RunConfig& run,
                      const std::vector<int64_t>& checkpoint_steps = {}, const CheckpointFn& on_checkpoint = {});

// --- held-out loss ---------------------------------------------------------------------------------

inline constexpr int64_t kEvalBatch = 32;

struct HeldoutSet {
  std::vector<Sequence> multimodal, text;
  std::vector<Sequence> all() const;  // multimodal, then text
};
HeldoutSet heldout_set(const UnixData& data, int64_t eval_sequences);

struct HeldoutLoss {
  double loss = 0.0;    // weighted mean CE (NaN when no token of the modality was held out)
  double tokens = 0.0;  // sum of the modality's mask
};
// Keys: Modality::image, caption, text. Runs without a graph, in the model's current mode.
std::map<Modality, HeldoutLoss> heldout_losses(UnixLM& lm, const Vocabulary& vocab,
                                               const std::vector<Sequence>& sequences, int64_t seq_len);

// --- gradient conflict of a run's model -------------------------------------------------------------

struct ConflictBatches {
  std::vector<Batch> text, multimodal;  // text-only and image-text batches (B, T)
};
// `count` batches of each kind from the training split, in a seeded order independent of the
// training order (conflict_seed).
ConflictBatches conflict_batches(const UnixData& data, int64_t count, int64_t batch_size, uint64_t conflict_seed);
// REFERENCE.md section 8's conflict per shared layer and weight matrix of lm (its shared layers
// [N, L-M); a MoT model has none and is refused), plus the within-batch variant (image-token vs
// caption-token loss of the image-text batches; not the paper's metric). Rows carry `step`.
std::vector<ConflictRow> run_conflict(UnixLM& lm, const Vocabulary& vocab, const ConflictBatches& batches, int64_t step,
                                      uint64_t seed);

}  // namespace loupe::unix
