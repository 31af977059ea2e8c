// Tests of unix/run.hpp (one run of the Uni-X experiment) on a tiny synthetic data set:
//   - the run's settings survive JSON and the saved model's metadata; bad settings name the option;
//     a file without the metadata is refused
//   - train_run calls the checkpoints at exactly the asked steps (step 0 = the initial weights, the
//     last = the final ones), is deterministic, and feeds two arms the same data (same token counts)
//   - heldout_losses equals a per-sequence recomputation (one sequence at a time, per-token CE
//     summed by modality) — batching and weighting cannot change it
//   - conflict_batches and run_conflict: rows for every shared layer and matrix, none for separated
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "autograd/autograd.hpp"
#include "nn/serialization.hpp"
#include "unix/loss.hpp"
#include "unix/run.hpp"

using namespace loupe;
using namespace loupe::unix;
namespace fs = std::filesystem;

namespace {

// n images of 3x3 with 17 levels, labels cycling over 0..9, pixels from a fixed pattern.
ImageSet images(int64_t n, int64_t offset) {
  ImageSet set;
  set.name = "tiny";
  set.height = 3;
  set.width = 3;
  set.levels = 17;
  set.captions = digit_captions();
  for (int64_t i = 0; i < n; ++i) {
    set.labels.push_back((i + offset) % 10);
    for (int64_t p = 0; p < 9; ++p) set.pixels.push_back(static_cast<uint8_t>((i * 7 + p * 3 + offset) % 17));
    set.source_index.push_back(i + offset);
  }
  return set;
}

UnixData tiny_data() {
  std::string text;
  for (int i = 0; i < 40; ++i) text += "the quick brown fox jumps over the lazy dog. ";
  return make_unix_data(images(24, 0), images(6, 100), text, 0.2, 1);
}

RunConfig tiny_run(const std::string& arm) {
  RunConfig r;
  r.arm = arm;
  r.layers = 3;
  r.hidden = 16;
  r.heads = 2;
  r.front = r.back = arm == "unix" ? 1 : 0;
  r.steps = 5;
  r.batch_size = 4;
  r.lr = 0.01;
  r.seed = 3;
  return r;
}

std::vector<std::vector<double>> weights(const UnixLM& lm) {
  std::vector<std::vector<double>> out;
  for (const Tensor& p : lm.parameters()) out.push_back(to_vector<double>(p));
  return out;
}

}  // namespace

TEST_CASE("unix run: settings as JSON and in the saved model's metadata") {
  RunConfig r = tiny_run("unix");
  r.lr = 0.0025;
  r.eval_sequences = 17;
  r.intermediate = 40;
  r.dataset = "fashion-mnist";
  int64_t vocab = 0;
  const RunConfig back = parse_run_config_json(run_config_json(r, 57), &vocab);
  CHECK(vocab == 57);
  CHECK(back.arm == "unix");
  CHECK(back.layers == 3);
  CHECK(back.hidden == 16);
  CHECK(back.intermediate == 40);
  CHECK(back.heads == 2);
  CHECK(back.front == 1);
  CHECK(back.back == 1);
  CHECK(back.steps == 5);
  CHECK(back.batch_size == 4);
  CHECK(back.lr == 0.0025);
  CHECK(back.seed == 3);
  CHECK(back.eval_sequences == 17);
  CHECK(back.dataset == "fashion-mnist");
  // A JSON without "dataset" (saved before the option) means the digits.
  std::string old = run_config_json(tiny_run("unix"), 57);
  old.replace(old.find(",\"dataset\":\"digits\""), std::string(",\"dataset\":\"digits\"").size(), "");
  CHECK(old.find("dataset") == std::string::npos);
  CHECK(parse_run_config_json(old, nullptr).dataset == "digits");
  CHECK(model_config(back, 57).intermediate == 40);
  CHECK(model_config(tiny_run("shared"), 57).intermediate == default_intermediate(16));
  CHECK(default_intermediate(64) == 176);

  const fs::path dir = fs::temp_directory_path() / ("loupe_test_unix_run_" + std::to_string(getpid()));
  fs::create_directories(dir);
  Generator g(1);
  UnixLM lm(model_config(r, 57), &g);
  save_run_model(lm, r, (dir / "m.safetensors").string());
  int64_t v2 = 0;
  const RunConfig loaded = load_run_config((dir / "m.safetensors").string(), &v2);
  CHECK(v2 == 57);
  CHECK(loaded.front == 1);
  UnixLM again(model_config(loaded, v2));
  CHECK_NOTHROW(nn::load_state_dict(again, (dir / "m.safetensors").string(), true));
  nn::save_state_dict(lm, (dir / "plain.safetensors").string());
  CHECK_THROWS_WITH_AS(load_run_config((dir / "plain.safetensors").string(), nullptr),
                       doctest::Contains("loupe_unix_config"), Error);
  CHECK_THROWS_AS(load_run_config((dir / "none.safetensors").string(), nullptr), Error);
  fs::remove_all(dir);

  // Bad settings name the option.
  const auto fails_with = [](RunConfig c, const char* option) {
    CHECK_THROWS_WITH_AS(c.check(), doctest::Contains(option), Error);
  };
  RunConfig c = tiny_run("unix");
  c.front = 2;
  c.back = 2;
  fails_with(c, "--separated-back");
  c = tiny_run("shared");
  c.front = 1;
  fails_with(c, "--separated-front");
  c = tiny_run("mixed");
  fails_with(c, "--arm");
  c = tiny_run("unix");
  c.dataset = "mnist";
  fails_with(c, "--dataset");
  c = tiny_run("unix");
  c.heads = 3;
  fails_with(c, "--heads");
  c = tiny_run("unix");
  c.batch_size = 1;
  fails_with(c, "--batch-size");
  c = tiny_run("unix");
  c.lr = std::nan("");
  fails_with(c, "--lr");
  CHECK_THROWS_AS(parse_run_config_json("{\"arm\": \"unix\"}", nullptr), Error);
}

TEST_CASE("unix run: training, checkpoints, determinism and the same data for every arm") {
  const UnixData data = tiny_data();
  const RunConfig run = tiny_run("unix");
  Generator g(run.seed);
  UnixLM lm(model_config(run, data.vocab.size()), &g);
  const auto initial = weights(lm);
  std::map<int64_t, std::vector<std::vector<double>>> saved;
  const TrainResult result =
      train_run(lm, data, run, {0, 2, 5}, [&](int64_t step, UnixLM& m) { saved[step] = weights(m); });
  CHECK(saved.size() == 3);
  REQUIRE(saved.count(0));
  REQUIRE(saved.count(2));
  REQUIRE(saved.count(5));
  CHECK(saved[0] == initial);
  CHECK(saved[5] == weights(lm));
  CHECK(saved[2] != saved[0]);
  CHECK(saved[2] != saved[5]);
  REQUIRE(result.losses.size() == 5);
  CHECK(result.first_loss == result.losses.front());
  CHECK(result.last_loss == result.losses.back());
  CHECK(result.tokens > 0);
  CHECK(result.seconds > 0);
  for (double l : result.losses) CHECK(std::isfinite(l));

  // The same seed: the same losses, bit for bit.
  Generator g2(run.seed);
  UnixLM lm2(model_config(run, data.vocab.size()), &g2);
  CHECK(train_run(lm2, data, run).losses == result.losses);
  // Another arm with the same seed reads the same sequences (the token count of each step's batch
  // is the same); training more steps than one pass of the text pool exercises the reshuffle.
  RunConfig shared = tiny_run("shared");
  shared.steps = 40;
  RunConfig unix_long = run;
  unix_long.steps = 40;
  Generator g3(1), g4(2);
  UnixLM a(model_config(shared, data.vocab.size()), &g3), b(model_config(unix_long, data.vocab.size()), &g4);
  CHECK(train_run(a, data, shared).tokens == train_run(b, data, unix_long).tokens);

  CHECK_THROWS_AS(train_run(lm, data, run, {6}), Error);
}

TEST_CASE("unix run: held-out loss per modality equals a per-sequence recomputation") {
  const UnixData data = tiny_data();
  Generator g(9);
  UnixLM lm(model_config(tiny_run("unix"), data.vocab.size()), &g);
  const HeldoutSet set = heldout_set(data, -1);
  CHECK(set.multimodal.size() == 12);  // both layouts of 6 images
  REQUIRE_FALSE(set.text.empty());
  const std::vector<Sequence> all = set.all();
  const int64_t T = data.seq_len();
  const auto got = heldout_losses(lm, data.vocab, all, T);

  std::map<Modality, double> sums, counts;
  NoGradGuard guard;
  for (size_t i = 0; i < all.size(); ++i) {
    const Batch b = make_batch(all, {static_cast<int64_t>(i)}, T);
    const Tensor logits = lm.forward(b.tokens, data.vocab.vision_mask(b.tokens));
    CrossEntropyOptions options;
    options.reduction = Reduction::none;
    const std::vector<double> ce = to_vector<double>(
        cross_entropy(ops::reshape(logits, {T, logits.size(2)}), ops::reshape(b.targets, {T}), options));
    const std::vector<double> w = to_vector<double>(b.loss_mask);
    const std::vector<int64_t> mod = to_vector<int64_t>(b.modality);
    for (int64_t t = 0; t < T; ++t) {
      if (w[static_cast<size_t>(t)] == 0) continue;
      const auto m = static_cast<Modality>(mod[static_cast<size_t>(t)]);
      sums[m] += ce[static_cast<size_t>(t)];
      counts[m] += 1;
    }
  }
  for (Modality m : {Modality::image, Modality::caption, Modality::text}) {
    CAPTURE(modality_name(m));
    REQUIRE(counts[m] > 0);
    CHECK(got.at(m).tokens == counts[m]);
    CHECK(got.at(m).loss == doctest::Approx(sums[m] / counts[m]).epsilon(1e-5));
  }
  // eval_sequences keeps the first ones of each kind.
  const HeldoutSet few = heldout_set(data, 2);
  CHECK(few.multimodal.size() == 2);
  CHECK(few.text.size() == 2);
  CHECK(few.multimodal[1].tokens == set.multimodal[1].tokens);
}

TEST_CASE("unix run: conflict batches and the conflict rows of a model's shared layers") {
  const UnixData data = tiny_data();
  const ConflictBatches batches = conflict_batches(data, 2, 3, 5);
  REQUIRE(batches.text.size() == 2);
  REQUIRE(batches.multimodal.size() == 2);
  CHECK(batches.text[0].batch_size() == 3);
  CHECK(ops::sum(modality_mask(batches.multimodal[0], Modality::image)).item() > 0);
  CHECK(ops::sum(modality_mask(batches.text[1], Modality::image)).item() == 0);
  const ConflictBatches again = conflict_batches(data, 2, 3, 5);
  CHECK(to_vector<int64_t>(again.multimodal[1].tokens) == to_vector<int64_t>(batches.multimodal[1].tokens));
  CHECK_THROWS_AS(conflict_batches(data, 100, 3, 5), Error);  // more than the split holds

  RunConfig run = tiny_run("unix");
  run.layers = 4;  // layers 1, 2 shared
  Generator g(2);
  UnixLM lm(model_config(run, data.vocab.size()), &g);
  const std::vector<ConflictRow> rows = run_conflict(lm, data.vocab, batches, 7, 1);
  std::set<std::pair<int64_t, std::string>> seen;
  for (const ConflictRow& r : rows) {
    CHECK(r.step == 7);
    CHECK((r.layer == 1 || r.layer == 2));
    CHECK(std::isfinite(r.conflict));
    CHECK(std::isfinite(r.within_batch_cos_image_text));
    seen.insert({r.layer, r.kind});
  }
  CHECK(rows.size() == 2 * 8);  // 7 matrices and the "all" row per shared layer
  for (int64_t l : {1, 2}) {
    for (const std::string& k : matrix_kinds()) CHECK(seen.count({l, k}) == 1);
    CHECK(seen.count({l, "all"}) == 1);
  }
  // A model with no shared layer has nothing to measure.
  RunConfig all_separated = tiny_run("unix");
  all_separated.layers = 2;
  Generator g5(2);
  UnixLM none(model_config(all_separated, data.vocab.size()), &g5);
  CHECK_THROWS_AS(run_conflict(none, data.vocab, batches, 0, 1), Error);
}
