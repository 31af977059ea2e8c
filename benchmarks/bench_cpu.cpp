// bench_cpu: the loupe side of the side-by-side CPU benchmark (benchmarks/README.md).
//
// Times every case with loupe's public op API and prints one row per case (median milliseconds
// and GFLOP/s or GB/s); `--json FILE` writes the same rows for benchmarks/compare.py, which joins
// them with the PyTorch rows of benchmarks/bench_torch.py. `./run bench cpu` runs all of it.
//
// The cases, their shapes, FLOP and byte counts and the timing method are mirrored one for one in
// bench_torch.py: change one, change the other.
//
// Timing method (identical on both sides): two warm-up calls (the second one's time is the
// estimate), then `reps` timed calls with reps = clamp(budget / estimate, min_reps, max_reps);
// the reported time is the median. Results are dropped inside the timed region (allocation and
// freeing of outputs are part of the op's cost, as they are for a user).
//
// Ceilings, measured here with the same thread count:
//   peak:  a register-only FMA loop per thread (independent accumulator chains, no memory
//          traffic), the machine's f32 FLOP ceiling for GEMM and convolution;
//   copy:  copy_ of 16M floats into an existing tensor, the memory-bandwidth ceiling for the
//          elementwise cases (bytes read + bytes written).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "autograd/autograd.hpp"
#include "explain/explain.hpp"
#include "nn/fold_batch_norm.hpp"
#include "nn/models/zoo.hpp"
#include "nn/optim/optimizer.hpp"
#include "tensor/ops.hpp"
#include "tensor/parallel.hpp"
// The deterministic weight formula shared with tests/fixtures/make_fixtures.py, which the PyTorch
// side uses too: both sides explain the same ResNet18. (Only its formula functions are used here;
// doctest's macros are compiled out.)
#define DOCTEST_CONFIG_DISABLE
#include "tests/nn/models/fixture_support.hpp"

namespace {

using loupe::Shape;
using loupe::Tensor;
namespace ops = loupe::ops;

// ---------------------------------------------------------------------------------------------
// Options

struct Options {
  std::string json_path;
  std::string filter;
  bool quick = false;
  bool worker = false;  // answer "list" / "time CASE" requests on stdin (benchmarks/interleave.py)
  int rounds = 1;       // worker: the driver's round count; each request gets 1/rounds of the budget
};

const char* kUsage =
    "usage: bench_cpu [--json FILE] [--filter SUBSTR] [--quick] [--worker [--rounds N]] [--help]\n"
    "\n"
    "Times loupe's CPU kernels on the cases of benchmarks/README.md and prints one row per case.\n"
    "  --json FILE      also write the rows as JSON (read by benchmarks/compare.py)\n"
    "  --filter SUBSTR  only cases whose name contains SUBSTR (the ceilings always run)\n"
    "  --quick          smaller shapes and shorter timing, for a smoke run\n"
    "  --worker         serve the interleaving driver (benchmarks/interleave.py): read requests on\n"
    "                   stdin, one per line: 'list' (one JSON line per case, then 'end'), 'time CASE'\n"
    "                   (one JSON row), 'quit'; --rounds N divides each request's timing budget by N\n"
    "The thread count comes from LOUPE_NUM_THREADS (default: all cores).\n"
    "./run bench cpu runs this next to the PyTorch side and prints the comparison.\n";

// ---------------------------------------------------------------------------------------------
// Timing

struct TimingPolicy {
  double budget_s;  // aim for about this much timed work per case
  int min_reps;
  int max_reps;
};

double seconds_of(const std::function<void()>& fn) {
  const auto start = std::chrono::steady_clock::now();
  fn();
  const auto stop = std::chrono::steady_clock::now();
  return std::chrono::duration<double>(stop - start).count();
}

struct Timing {
  double median_s;
  double min_s;  // recorded too: on a loaded machine the fastest run shows what the kernel can do
  int reps;
};

Timing time_median(const std::function<void()>& fn, const TimingPolicy& policy) {
  fn();                                      // warm-up: first touch of pages, pool start-up
  const double estimate = seconds_of(fn);    // warm-up that also sizes the repetition count
  const int reps = std::clamp(static_cast<int>(std::lround(policy.budget_s / std::max(estimate, 1e-6))),
                              policy.min_reps, policy.max_reps);
  std::vector<double> times;
  times.reserve(static_cast<size_t>(reps));
  for (int i = 0; i < reps; ++i) times.push_back(seconds_of(fn));
  std::sort(times.begin(), times.end());
  const size_t mid = times.size() / 2;
  const double median = times.size() % 2 ? times[mid] : 0.5 * (times[mid - 1] + times[mid]);
  return {median, times.front(), reps};
}

// A case long enough that start-up costs vanish in it: one timed call.
Timing time_once(const std::function<void()>& fn) {
  const double s = seconds_of(fn);
  return {s, s, 1};
}

// ---------------------------------------------------------------------------------------------
// Cases

// One row of the output. flops > 0: compute-bound (GFLOP/s); otherwise bytes (GB/s).
struct Row {
  std::string name;
  std::string group;  // peak, memory, gemm, transformer, conv, elementwise, model
  std::string shape;  // what was actually run (differs under --quick)
  double flops = 0;
  double bytes = 0;
  int count = 1;      // how often this layer occurs in its model (conv rows; used for totals)
  double median_s = 0;
  double min_s = 0;
  int reps = 0;
  bool single_run = false;  // listed for the driver: such a case is timed in one round only
};

struct Case {
  Row row;
  std::function<void()> setup;  // allocate inputs (outside the timing); may be empty
  std::function<void()> run;    // the timed work
  std::function<void()> teardown;
  bool single_run = false;  // one timed call without warm-up calls: cases of tens of seconds (setup warms up)
};

// What Bench::run does with a case: time it (the stand-alone program), only record its row
// (a worker's "list"), or time it only when it is the one case asked for (a worker's "time CASE").
enum class BenchMode { run, list, one };

class Bench {
 public:
  Bench(Options options, TimingPolicy policy) : options_(std::move(options)), policy_(policy) {}

  // Runs the case now (if it passes the filter) and records its row. always: ignore the filter.
  void run(Case c, bool always = false) {
    if (mode_ == BenchMode::list) {
      c.row.single_run = c.single_run;
      rows_.push_back(c.row);
      return;
    }
    if (mode_ == BenchMode::one && c.row.name != only_) return;
    if (mode_ == BenchMode::run && !always && !options_.filter.empty() &&
        c.row.name.find(options_.filter) == std::string::npos)
      return;
    std::fprintf(stderr, "  %-48s", c.row.name.c_str());
    std::fflush(stderr);
    if (c.setup) c.setup();
    const Timing t = c.single_run ? time_once(c.run) : time_median(c.run, policy_);
    if (c.teardown) c.teardown();
    c.row.median_s = t.median_s;
    c.row.min_s = t.min_s;
    c.row.reps = t.reps;
    std::fprintf(stderr, " %10.3f ms  %s\n", t.median_s * 1e3, rate_str(c.row).c_str());
    rows_.push_back(c.row);
  }

  // A row measured by other means (the FMA peak).
  void record(Row row) { rows_.push_back(std::move(row)); }

  // Worker requests: what the next pass over the cases does (clears the rows).
  void set_mode(BenchMode mode, std::string only = "") {
    mode_ = mode;
    only_ = std::move(only);
    rows_.clear();
  }
  BenchMode mode() const { return mode_; }
  // Whether a row named `name` is to be measured in this pass.
  bool wants(const std::string& name) const {
    return mode_ == BenchMode::run || (mode_ == BenchMode::one && name == only_);
  }

  const std::vector<Row>& rows() const { return rows_; }
  const Options& options() const { return options_; }

  static std::string rate_str(const Row& row) {
    char buf[64];
    if (row.flops > 0)
      std::snprintf(buf, sizeof buf, "%8.1f GFLOP/s", row.flops / row.median_s * 1e-9);
    else
      std::snprintf(buf, sizeof buf, "%8.1f GB/s", row.bytes / row.median_s * 1e-9);
    return buf;
  }

 private:
  Options options_;
  TimingPolicy policy_;
  std::vector<Row> rows_;
  BenchMode mode_ = BenchMode::run;
  std::string only_;
};

Tensor randn(const Shape& shape, uint64_t seed) {
  loupe::Generator generator(seed);
  return loupe::normal(shape, 0.0, 1.0, loupe::DType::f32, &generator);
}

std::string shape_text(const std::vector<Shape>& shapes) {
  std::string text;
  for (size_t i = 0; i < shapes.size(); ++i) {
    if (i) text += " x ";
    text += loupe::shape_str(shapes[i]);
  }
  return text;
}

// --- FMA peak -------------------------------------------------------------------------------
// Each thread runs kChains independent FMA chains on registers: enough chains to cover the FMA
// latency times the number of FMA ports, so the loop is bound by FMA throughput only.

constexpr int kChains = 12;

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) float fma_loop_avx2(int64_t iterations) {
  __m256 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(1.0f + 0.01f * c);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < iterations; ++i)
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
  __m256 sum = acc[0];
  for (int c = 1; c < kChains; ++c) sum = _mm256_add_ps(sum, acc[c]);
  float lanes[8];
  _mm256_storeu_ps(lanes, sum);
  return lanes[0];
}

__attribute__((target("avx512f"))) float fma_loop_avx512(int64_t iterations) {
  __m512 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(1.0f + 0.01f * c);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t i = 0; i < iterations; ++i)
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
  __m512 sum = acc[0];
  for (int c = 1; c < kChains; ++c) sum = _mm512_add_ps(sum, acc[c]);
  float lanes[16];  // (not _mm512_reduce_add_ps: GCC 12 warns inside it under -Wuninitialized)
  _mm512_storeu_ps(lanes, sum);
  return lanes[0];
}
#endif

// Runs loop(iterations) on `threads` threads at once; returns the fastest of `attempts` short
// tries (a ceiling is a best case, and on a shared machine some try runs undisturbed).
double time_fma(float (*loop)(int64_t), int64_t iterations, int threads, int attempts) {
  volatile float sink = 0;
  std::vector<double> tries;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    std::vector<float> results(static_cast<size_t>(threads));
    tries.push_back(seconds_of([&] {
      std::vector<std::thread> workers;
      for (int t = 0; t < threads; ++t)
        workers.emplace_back([&, t] { results[static_cast<size_t>(t)] = loop(iterations); });
      for (auto& w : workers) w.join();
    }));
    for (float r : results) sink = sink + r;
  }
  return *std::min_element(tries.begin(), tries.end());
}

void measure_peak(Bench& bench) {
#if defined(__x86_64__)
  const int threads = loupe::num_threads();
  const int64_t iterations = 2'000'000;  // a few milliseconds per try
  const int attempts = bench.options().quick ? 10 : 40;
  struct Variant {
    const char* name;
    const char* feature;
    float (*loop)(int64_t);
    int lanes;
  };
  const Variant variants[] = {{"peak fma avx2 f32", "avx2", fma_loop_avx2, 8},
                              {"peak fma avx512 f32", "avx512f", fma_loop_avx512, 16}};
  __builtin_cpu_init();
  for (const Variant& v : variants) {
    const bool supported = std::strcmp(v.feature, "avx2") == 0 ? __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
                                                               : __builtin_cpu_supports("avx512f");
    if (!supported) continue;
    Row row;
    row.name = v.name;
    row.group = "peak";
    row.shape = std::to_string(threads) + " threads x " + std::to_string(kChains) + " chains";
    row.flops = 2.0 * v.lanes * kChains * static_cast<double>(iterations) * threads;
    if (bench.mode() == BenchMode::list) {
      bench.record(row);
      continue;
    }
    if (!bench.wants(row.name)) continue;
    row.median_s = row.min_s = time_fma(v.loop, iterations, threads, attempts);
    row.reps = attempts;
    std::fprintf(stderr, "  %-48s %10.3f ms  %s\n", row.name.c_str(), row.median_s * 1e3, Bench::rate_str(row).c_str());
    bench.record(row);
  }
#else
  (void)bench;  // no peak measurement off x86-64: compare.py then reports no % of peak
#endif
}

// --- Memory-bound cases: the copy ceiling and the elementwise ops ----------------------------

void memory_cases(Bench& bench) {
  const int64_t n = bench.options().quick ? (int64_t{4} << 20) : (int64_t{16} << 20);
  const std::string count = std::to_string(n >> 20) + "M";
  const double fbytes = 4.0 * static_cast<double>(n);
  // Softmax runs over rows of 1024 (a long attention or classifier row), n / 1024 rows.
  const int64_t row_length = 1024;

  // Allocated by the first case that runs (a worker asked for another case allocates nothing).
  Tensor a, b, dst, rows;
  auto allocate = [&] {
    if (a.defined()) return;
    a = randn({n}, 1);
    b = randn({n}, 2);
    dst = loupe::zeros({n});
    rows = ops::reshape(a, {n / row_length, row_length});
  };

  auto add_case = [&](const std::string& name, const std::string& group, double bytes, std::function<void()> fn,
                      bool always = false, const std::string& shape = "") {
    Case c;
    c.row.name = name;
    c.row.group = group;
    c.row.shape = shape.empty() ? loupe::shape_str({n}) : shape;
    c.row.bytes = bytes;
    c.setup = allocate;
    c.run = std::move(fn);
    bench.run(std::move(c), always);
  };
  // The ceiling: read n floats, write n floats into memory that already exists.
  add_case("copy " + count, "memory", 2 * fbytes, [&] { ops::copy_(dst, a); }, /*always=*/true);
  // The same copy into a fresh tensor: adds the allocation and first-touch page faults every
  // out-of-place op pays (kept as a row so the elementwise numbers can be read against it).
  add_case("clone " + count, "memory", 2 * fbytes, [&] { Tensor out = ops::clone(a); });
  add_case("add " + count, "elementwise", 3 * fbytes, [&] { Tensor out = ops::add(a, b); });
  add_case("mul " + count, "elementwise", 3 * fbytes, [&] { Tensor out = ops::mul(a, b); });
  add_case("gelu " + count, "elementwise", 2 * fbytes, [&] { Tensor out = ops::gelu(a); });
  // gelu's input gradient for an output gradient b: reads x and g, writes the result.
  add_case("gelu backward " + count, "elementwise", 3 * fbytes,
           [&] { Tensor out = ops::unary_backward(ops::UnaryOp::gelu_erf, a, a, b); });
  // silu's input gradient (SwiGLU's gate), likewise.
  add_case("silu backward " + count, "elementwise", 3 * fbytes,
           [&] { Tensor out = ops::unary_backward(ops::UnaryOp::silu, a, a, b); });
  add_case("softmax " + count + " rows of 1024", "elementwise", 2 * fbytes,
           [&] { Tensor out = ops::softmax(rows, -1); }, false, loupe::shape_str({n / row_length, row_length}));
}

// --- SGEMM and the small transformer -------------------------------------------------------------

void gemm_cases(Bench& bench) {
  std::vector<int64_t> sizes = {256, 512, 1024, 2048};
  if (bench.options().quick) sizes = {256, 512};
  for (int64_t s : sizes) {
    Tensor a, b;
    Case c;
    c.row.name = "sgemm " + std::to_string(s);
    c.row.group = "gemm";
    c.row.shape = shape_text({{s, s}, {s, s}});
    c.row.flops = 2.0 * s * s * s;
    c.setup = [&, s] { a = randn({s, s}, 3); b = randn({s, s}, 4); };
    c.run = [&] { Tensor out = ops::matmul(a, b); };
    c.teardown = [&] { a = Tensor(); b = Tensor(); };
    bench.run(std::move(c));
  }
}

// A small transformer layer: d_model 512, 8 heads of 64, sequence 128, batch 8, FFN 2048.
// Projections are linear layers on (batch * seq, d_model) rows (x W^T, PyTorch's layout);
// attention works on (batch, heads, seq, head_dim).
void transformer_cases(Bench& bench) {
  const int64_t batch = bench.options().quick ? 2 : 8, seq = 128, d_model = 512, heads = 8, ffn = 2048;
  const int64_t head_dim = d_model / heads, tokens = batch * seq;

  auto linear_case = [&](const std::string& name, int64_t in, int64_t out) {
    Tensor x, w;
    Case c;
    c.row.name = "transformer " + name;
    c.row.group = "transformer";
    c.row.shape = shape_text({{tokens, in}, {out, in}});
    c.row.flops = 2.0 * tokens * in * out;
    c.setup = [&, in, out] { x = randn({tokens, in}, 5); w = randn({out, in}, 6); };
    c.run = [&] { Tensor y = ops::linear(x, w); };
    c.teardown = [&] { x = Tensor(); w = Tensor(); };
    bench.run(std::move(c));
  };
  linear_case("qkv projection", d_model, 3 * d_model);

  const Shape qkv = {batch, heads, seq, head_dim};
  {
    Tensor q, k;
    Case c;
    c.row.name = "transformer attention scores";  // q k^T: (B, H, S, D) x (B, H, D, S)
    c.row.group = "transformer";
    c.row.shape = shape_text({qkv, {batch, heads, head_dim, seq}});
    c.row.flops = 2.0 * batch * heads * seq * seq * head_dim;
    c.setup = [&] { q = randn(qkv, 7); k = randn(qkv, 8); };
    c.run = [&] { Tensor s = ops::matmul(q, ops::transpose(k, -2, -1)); };
    c.teardown = [&] { q = Tensor(); k = Tensor(); };
    bench.run(std::move(c));
  }
  {
    Tensor p, v;
    Case c;
    c.row.name = "transformer attention context";  // p v: (B, H, S, S) x (B, H, S, D)
    c.row.group = "transformer";
    c.row.shape = shape_text({{batch, heads, seq, seq}, qkv});
    c.row.flops = 2.0 * batch * heads * seq * seq * head_dim;
    c.setup = [&] { p = randn({batch, heads, seq, seq}, 9); v = randn(qkv, 10); };
    c.run = [&] { Tensor o = ops::matmul(p, v); };
    c.teardown = [&] { p = Tensor(); v = Tensor(); };
    bench.run(std::move(c));
  }
  linear_case("output projection", d_model, d_model);
  linear_case("ffn up", d_model, ffn);
  linear_case("ffn down", ffn, d_model);
}

// --- Fused attention vs torch.nn.functional.scaled_dot_product_attention -----------------------
// Causal self-attention, H = 8 heads of D = 64, float32. FLOPs count the useful products of the
// causal half: forward 2 matmuls (q k^T, p v) = 4 B H T^2 D / 2; forward + backward counts 3.5x
// that (the backward's dv, dp, dq, dk and the recomputed scores: PyTorch's flash backward does
// the same five products).
void attention_cases(Bench& bench) {
  const std::vector<int64_t> batches = bench.options().quick ? std::vector<int64_t>{1} : std::vector<int64_t>{1, 2, 4};
  const std::vector<int64_t> lengths =
      bench.options().quick ? std::vector<int64_t>{256} : std::vector<int64_t>{512, 1024, 2048};
  const int64_t heads = 8, head_dim = 64;
  for (bool backward : {false, true}) {
    for (int64_t t : lengths) {
      for (int64_t b : batches) {
        const Shape qkv = {b, heads, t, head_dim};
        Tensor q, k, v, g;
        Case c;
        c.row.name = std::string("attention causal ") + (backward ? "fwd+bwd" : "forward") + " B" + std::to_string(b) +
                     " T" + std::to_string(t);
        c.row.group = "attention";
        c.row.shape = shape_text({qkv, qkv, qkv});
        c.row.flops = 2.0 * b * heads * double(t) * double(t) * head_dim * (backward ? 3.5 : 1.0);
        c.setup = [&, qkv, backward] {
          q = randn(qkv, 21);
          k = randn(qkv, 22);
          v = randn(qkv, 23);
          g = randn(qkv, 24);
          if (backward) {
            for (Tensor* x : {&q, &k, &v}) x->set_requires_grad(true);
          }
        };
        c.run = [&, backward] {
          loupe::AttentionOptions o;
          o.causal = loupe::CausalMode::top_left;
          if (!backward) {
            Tensor y = ops::scaled_dot_product_attention(q, k, v, o);
            return;
          }
          loupe::EnableGradGuard enable;
          const Tensor y = loupe::scaled_dot_product_attention(q, k, v, o);
          const std::vector<Tensor> grads = loupe::grad({y}, {q, k, v}, {g});
        };
        c.teardown = [&] { q = k = v = g = Tensor(); };
        bench.run(std::move(c));
      }
    }
  }
}

// --- ResNet18's convolutions ---------------------------------------------------------------------

struct ConvLayer {
  const char* name;
  int64_t in_channels, out_channels, kernel, stride, padding, in_size;
  int count;  // occurrences in ResNet18
};

// Every distinct convolution of ResNet18 at 224x224 (no bias; batch norm follows each one).
const ConvLayer kResNet18Convs[] = {
    {"conv1 7x7/2 3->64", 3, 64, 7, 2, 3, 224, 1},
    {"layer1 3x3 64->64", 64, 64, 3, 1, 1, 56, 4},
    {"layer2 3x3/2 64->128", 64, 128, 3, 2, 1, 56, 1},
    {"layer2 3x3 128->128", 128, 128, 3, 1, 1, 28, 3},
    {"layer2 downsample 1x1/2 64->128", 64, 128, 1, 2, 0, 56, 1},
    {"layer3 3x3/2 128->256", 128, 256, 3, 2, 1, 28, 1},
    {"layer3 3x3 256->256", 256, 256, 3, 1, 1, 14, 3},
    {"layer3 downsample 1x1/2 128->256", 128, 256, 1, 2, 0, 28, 1},
    {"layer4 3x3/2 256->512", 256, 512, 3, 2, 1, 14, 1},
    {"layer4 3x3 512->512", 512, 512, 3, 1, 1, 7, 3},
    {"layer4 downsample 1x1/2 256->512", 256, 512, 1, 2, 0, 14, 1},
};

void conv_cases(Bench& bench) {
  const int64_t batch = bench.options().quick ? 1 : 8;
  for (const ConvLayer& layer : kResNet18Convs) {
    loupe::Conv2dParams params;
    params.stride = {layer.stride, layer.stride};
    params.padding = {layer.padding, layer.padding};
    const int64_t out_size = (layer.in_size + 2 * layer.padding - layer.kernel) / layer.stride + 1;
    const Shape x_shape = {batch, layer.in_channels, layer.in_size, layer.in_size};
    const Shape w_shape = {layer.out_channels, layer.in_channels, layer.kernel, layer.kernel};
    const Shape y_shape = {batch, layer.out_channels, out_size, out_size};
    // Forward, backward-data and backward-weight each do one multiply-add per (output element,
    // input channel, kernel tap).
    const double flops = 2.0 * static_cast<double>(loupe::shape_numel(y_shape)) * layer.in_channels * layer.kernel *
                         layer.kernel;

    Tensor x, w, g;
    auto conv_case = [&](const char* pass, std::function<void()> fn) {
      Case c;
      c.row.name = std::string("conv ") + layer.name + " " + pass;
      c.row.group = "conv";
      c.row.shape = shape_text({x_shape, w_shape});
      c.row.flops = flops;
      c.row.count = layer.count;
      c.setup = [&] { x = randn(x_shape, 11); w = randn(w_shape, 12); g = randn(y_shape, 13); };
      c.run = std::move(fn);
      c.teardown = [&] { x = Tensor(); w = Tensor(); g = Tensor(); };
      bench.run(std::move(c));
    };
    conv_case("fwd", [&] { Tensor y = ops::conv2d(x, w, Tensor(), params); });
    conv_case("bwd-data", [&] { Tensor dx = ops::conv2d_backward_input(g, w, x_shape, params); });
    conv_case("bwd-weight", [&] { Tensor dw = ops::conv2d_backward_weight(g, x, w_shape, params); });
  }
}

// --- A depthwise convolution (MobileNetV2's 3x3 depthwise layer at 56x56, 144 channels) -----------
// groups == channels: loupe's direct kernel (tensor/cpu/depthwise_conv.hpp). Group "conv-depthwise",
// so the rows stay out of the ResNet18 totals.
void depthwise_cases(Bench& bench) {
  const int64_t batch = bench.options().quick ? 1 : 8, channels = 144, size = 56;
  loupe::Conv2dParams params;
  params.stride = {1, 1};
  params.padding = {1, 1};
  params.groups = channels;
  const Shape x_shape = {batch, channels, size, size}, w_shape = {channels, 1, 3, 3};
  const Shape y_shape = {batch, channels, size, size};
  const double flops = 2.0 * static_cast<double>(loupe::shape_numel(y_shape)) * 9;
  Tensor x, w, g;
  auto depthwise_case = [&](const char* pass, std::function<void()> fn) {
    Case c;
    c.row.name = std::string("conv depthwise 3x3 144ch 56x56 ") + pass;
    c.row.group = "conv-depthwise";
    c.row.shape = shape_text({x_shape, w_shape});
    c.row.flops = flops;
    c.setup = [&] { x = randn(x_shape, 11); w = randn(w_shape, 12); g = randn(y_shape, 13); };
    c.run = std::move(fn);
    c.teardown = [&] { x = Tensor(); w = Tensor(); g = Tensor(); };
    bench.run(std::move(c));
  };
  depthwise_case("fwd", [&] { Tensor y = ops::conv2d(x, w, Tensor(), params); });
  depthwise_case("bwd-data", [&] { Tensor dx = ops::conv2d_backward_input(g, w, x_shape, params); });
  depthwise_case("bwd-weight", [&] { Tensor dw = ops::conv2d_backward_weight(g, x, w_shape, params); });
}

// --- Models ----------------------------------------------------------------------------------------
// Whole models (the same two cases are in bench_torch.py with torchvision's definitions):
//   "resnet18 train step"  batch 16, 3x224x224, 1000 classes: forward, cross-entropy loss,
//                          backward, one SGD step (momentum 0.9), in training mode.
//   "densenet121 forward"  batch 8, 3x224x224, eval mode, no gradient recording.
// FLOPs use the usual per-image counts (ResNet18 1.814 GMACs, DenseNet-121 2.865 GMACs at
// 224x224, 2 FLOPs per MAC) and "training = 3 x forward", so GFLOP/s is comparable across sides.
void model_cases(Bench& bench) {
  const int64_t train_batch = bench.options().quick ? 2 : 16;
  const int64_t eval_batch = bench.options().quick ? 1 : 8;
  std::shared_ptr<loupe::nn::Module> model;
  std::unique_ptr<loupe::nn::SGD> sgd;
  Tensor x, labels;
  {
    Case c;
    c.row.name = "resnet18 train step";
    c.row.group = "model";
    c.row.shape = shape_text({{train_batch, 3, 224, 224}});
    c.row.flops = 3.0 * 2.0 * 1.814e9 * static_cast<double>(train_batch);
    c.setup = [&] {
      loupe::Generator generator(7);
      model = loupe::nn::make_model("resnet18", 1000, 3, &generator);
      model->train();
      loupe::nn::SgdOptions options;
      options.lr = 0.01;
      options.momentum = 0.9;
      sgd = std::make_unique<loupe::nn::SGD>(model->parameters(), options);
      x = randn({train_batch, 3, 224, 224}, 8);
      labels = loupe::randint(0, 1000, {train_batch}, &generator);
    };
    c.run = [&] {
      sgd->zero_grad();
      const Tensor loss = loupe::cross_entropy((*model)(x), labels);
      loupe::backward(loss);
      sgd->step();
    };
    c.teardown = [&] {
      sgd.reset();
      model.reset();
      x = labels = Tensor();
    };
    bench.run(std::move(c));
  }
  {
    Case c;
    c.row.name = "densenet121 forward";
    c.row.group = "model";
    c.row.shape = shape_text({{eval_batch, 3, 224, 224}});
    c.row.flops = 2.0 * 2.865e9 * static_cast<double>(eval_batch);
    c.setup = [&] {
      loupe::Generator generator(9);
      model = loupe::nn::make_model("densenet121", 1000, 3, &generator);
      model->eval();
      x = randn({eval_batch, 3, 224, 224}, 10);
    };
    c.run = [&] {
      loupe::NoGradGuard no_grad;
      const Tensor logits = (*model)(x);
    };
    c.teardown = [&] {
      model.reset();
      x = Tensor();
    };
    bench.run(std::move(c));
  }
}

// --- Attribution (explain/) against Captum ----------------------------------------------------------
// ResNet18 (1000 classes) filled with the fixture formula on both sides, eval mode, one formula
// input of 3x224x224, target class 3, the logit explained, parameters not requiring gradients
// (Captum's torch.autograd.grad skips weight gradients by itself):
//   "explain/ig50 resnet18 224"          IntegratedGradients, 50 Gauss-Legendre steps, zero
//                                        baseline, internal batch 25 (two passes of 25 rows)
//   "explain/smoothgrad50 resnet18 224"  NoiseTunnel(Saliency) smoothgrad, 50 samples, stdev 0.15
//                                        (absolute), 25 samples per pass
//   "explain/guided resnet18 224"        GuidedBackprop, one row
//   "explain/deeplift resnet18 224"      DeepLift (rescale rule), zero baseline
//   each of these four also as "... folded-bn": loupe with the batch norms folded
//   "explain/occlusion resnet18 224 window 15 stride 8"  Occlusion, see the case below
//   "explain/kernelshap resnet18 224 1000 samples 8x8 grid"  KernelShap, 8x8 grid feature mask,
//                                        zero baseline, perturbations_per_eval 50
// --quick: 10 steps / samples in passes of 5, at 112x112; KernelSHAP 100 samples in passes of 25.
// KernelSHAP's FLOPs: one forward per sample.
// Counted FLOPs: per explained row, a forward and an input-gradient backward of the convolutions
// and the linear layer, 2 x 2 x multiply-adds (pooling, batch norm and ReLU not counted).
double resnet18_forward_flops(int64_t size) {
  double flops = 2.0 * 512 * 1000;  // fc
  for (const ConvLayer& layer : kResNet18Convs) {
    const int64_t in = layer.in_size * size / 224;
    const int64_t out = (in + 2 * layer.padding - layer.kernel) / layer.stride + 1;
    flops += 2.0 * layer.count * layer.out_channels * out * out * layer.in_channels * layer.kernel * layer.kernel;
  }
  return flops;
}

void explain_cases(Bench& bench) {
  namespace ex = loupe::explain;
  const bool quick = bench.options().quick;
  const int64_t size = quick ? 112 : 224, n = quick ? 10 : 50, chunk = quick ? 5 : 25;
  const Shape x_shape = {1, 3, size, size};
  std::shared_ptr<loupe::nn::Module> model;
  Tensor x;
  auto setup = [&] {
    model = loupe::nn::make_model("resnet18", 1000, 3);
    loupe::test::fill_with_formula(*model);
    model->eval();
    x = loupe::test::formula_input(x_shape);
  };
  auto teardown = [&] { model.reset(); x = Tensor(); };
  auto query = [&] { return ex::Query{ex::as_forward(*model), {x}, ex::Target(3), ex::Output::logit}; };

  // The gradient and rule-based methods, each also on the model with its batch norms folded into
  // the convolutions (nn/fold_batch_norm.hpp, `loupe explain --fold-batch-norm`): rows named
  // "... folded-bn", against the same Captum call (Captum has no such mode).
  auto gradient_case = [&](const std::string& name, double passes, std::function<void()> fn) {
    for (bool folded : {false, true}) {
      Case c;
      c.row.name = name + (folded ? " folded-bn" : "");
      c.row.group = "explain";
      c.row.shape = shape_text({x_shape});
      c.row.flops = passes * resnet18_forward_flops(size);
      c.setup = [&, folded] {
        setup();
        if (folded) (void)loupe::nn::fold_batch_norms(*model, x);
      };
      c.teardown = teardown;
      c.run = fn;
      bench.run(std::move(c));
    }
  };
  const std::string tail = " resnet18 " + std::to_string(size);
  gradient_case("explain/ig" + std::to_string(n) + tail, 2.0 * static_cast<double>(n), [&] {
    ex::Attribution a = ex::integrated_gradients(
        query(), {.n_steps = n, .method = ex::IntegrationRule::gauss_legendre, .internal_batch_size = chunk});
  });
  gradient_case("explain/smoothgrad" + std::to_string(n) + tail, 2.0 * static_cast<double>(n), [&] {
    ex::NoiseTunnelOptions options;
    options.type = ex::NoiseType::smoothgrad;
    options.n_samples = n;
    options.stdevs = {0.15};
    options.internal_batch_size = chunk;
    ex::Attribution a = ex::noise_tunnel(query(), [](const ex::Query& q) { return ex::saliency(q); }, options);
  });
  // One row: a forward and a backward with guided ReLU rules.
  gradient_case("explain/guided" + tail, 2.0, [&] { ex::Attribution a = ex::guided_backprop(query()); });
  // DeepLIFT (rescale), zero baseline: a forward and a backward of the doubled batch [x; x'].
  gradient_case("explain/deeplift" + tail, 4.0, [&] { ex::Attribution a = ex::deeplift(query()); });

  // "explain/occlusion resnet18 224 window 15 stride 8": window (3, 15, 15), strides (3, 8, 8),
  // zero baseline: 27 x 27 = 729 windows, evaluated in chunks of default_per_eval (111 copies of
  // 3x224x224 float32 in 64 MiB), which the Captum side uses as perturbations_per_eval; counted
  // FLOPs: 730 forwards (the windows and the clean row). One timed call (about a minute on two
  // threads); setup warms up with one forward of a chunk-sized batch on both sides, so first-touch
  // page faults of the activations stay outside the timing, as they would in the median of
  // repeated calls (loupe's host allocator then reuses its blocks; PyTorch's does not cache).
  // --quick: 112x112 with stride 15 (8 x 8 windows).
  const int64_t occ_size = quick ? 112 : 224, occ_stride = quick ? 15 : 8, occ_window = 15;
  const Shape occ_shape = {1, 3, occ_size, occ_size};
  const int64_t per_dim = (occ_size - occ_window + occ_stride - 1) / occ_stride + 1;
  Case occ;
  occ.row.name = "explain/occlusion resnet18 " + std::to_string(occ_size) + " window 15 stride " + std::to_string(occ_stride);
  occ.row.group = "explain";
  occ.row.shape = shape_text({occ_shape});
  occ.row.flops = static_cast<double>(per_dim * per_dim + 1) * resnet18_forward_flops(occ_size);
  occ.single_run = true;
  occ.setup = [&] {
    model = loupe::nn::make_model("resnet18", 1000, 3);
    loupe::test::fill_with_formula(*model);
    model->eval();
    x = loupe::test::formula_input(occ_shape);
    loupe::NoGradGuard no_grad;
    const int64_t chunk = std::min(per_dim * per_dim, ex::detail::default_per_eval({x}));
    (void)(*model)(loupe::zeros({chunk, 3, occ_size, occ_size}));
  };
  occ.teardown = teardown;
  occ.run = [&] {
    ex::Attribution a = ex::occlusion(query(), {.windows = {{3, occ_window, occ_window}}, .strides = {{3, occ_stride, occ_stride}}});
  };
  bench.run(std::move(occ));

  // KernelSHAP over an 8x8 grid of patches (64 features shared by the channels), zero baseline:
  // samples coalitions (1000; --quick: 100 at 112x112) evaluated in forward passes of 50 (25).
  const int64_t ks_n = quick ? 100 : 1000, ks_chunk = quick ? 25 : 50, grid = 8;
  Case ks;
  ks.row.name = "explain/kernelshap resnet18 " + std::to_string(size) + " " + std::to_string(ks_n) + " samples " +
                std::to_string(grid) + "x" + std::to_string(grid) + " grid";
  ks.row.group = "explain";
  ks.row.shape = shape_text({x_shape});
  ks.row.flops = static_cast<double>(ks_n) * resnet18_forward_flops(size);
  ks.setup = setup;
  ks.teardown = teardown;
  ks.run = [&] {
    const Tensor ids = ex::grid_feature_mask(size, size, grid, grid);  // (size, size), shared by the channels
    loupe::Generator gen(0);
    ex::KernelShapOptions options;
    options.feature_mask = {ids};
    options.n_samples = ks_n;
    options.perturbations_per_eval = ks_chunk;
    options.generator = &gen;
    ex::Attribution a = ex::kernel_shap(query(), options);
  };
  bench.run(std::move(ks));
}

// ---------------------------------------------------------------------------------------------
// Output

// The 1, 5 and 15 minute load averages (Linux), to judge how busy the machine was.
std::string load_average() {
  std::ifstream file("/proc/loadavg");
  double one = 0, five = 0, fifteen = 0;
  if (!(file >> one >> five >> fifteen)) return "null";
  std::ostringstream text;
  text << "[" << one << ", " << five << ", " << fifteen << "]";
  return text.str();
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out;
}

// One row as a JSON object (the form of write_json's rows and of a worker's answers).
std::string row_json(const Row& r) {
  char numbers[256];
  std::snprintf(numbers, sizeof numbers, "\"ms\": %.6f, \"min_ms\": %.6f, \"flops\": %.0f, \"bytes\": %.0f, \"count\": %d, \"reps\": %d",
                r.median_s * 1e3, r.min_s * 1e3, r.flops, r.bytes, r.count, r.reps);
  return "{\"case\": \"" + json_escape(r.name) + "\", \"group\": \"" + r.group + "\", \"shape\": \"" + json_escape(r.shape) +
         "\", " + numbers + ", \"single_run\": " + (r.single_run ? "true" : "false") + "}";
}

void write_json(const std::string& path, const Bench& bench, const std::string& load_before) {
  std::ofstream file(path);
  if (!file) throw std::runtime_error("bench_cpu: cannot write " + path);
  file << "{\n  \"side\": \"loupe\",\n  \"threads\": " << loupe::num_threads()
       << ",\n  \"quick\": " << (bench.options().quick ? "true" : "false") << ",\n  \"load_before\": " << load_before
       << ",\n  \"load_after\": " << load_average() << ",\n  \"rows\": [\n";
  const auto& rows = bench.rows();
  for (size_t i = 0; i < rows.size(); ++i) file << "    " << row_json(rows[i]) << (i + 1 < rows.size() ? "," : "") << "\n";
  file << "  ]\n}\n";
}

int parse_options(int argc, char** argv, Options& options) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("bench_cpu: " + arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--json") options.json_path = value();
    else if (arg == "--filter") options.filter = value();
    else if (arg == "--quick") options.quick = true;
    else if (arg == "--worker") options.worker = true;
    else if (arg == "--rounds") {
      options.rounds = std::atoi(value().c_str());
      if (options.rounds < 1) throw std::runtime_error("bench_cpu: --rounds must be a positive integer");
    }
    else if (arg == "--help" || arg == "-h") { std::cout << kUsage; return 0; }
    else throw std::runtime_error("bench_cpu: unknown option '" + arg + "' (try --help)");
  }
  return -1;
}

// Every case, in the table's order (what one pass over the cases runs, lists or picks from).
void all_cases(Bench& bench) {
  measure_peak(bench);
  memory_cases(bench);
  gemm_cases(bench);
  transformer_cases(bench);
  attention_cases(bench);
  conv_cases(bench);
  depthwise_cases(bench);
  model_cases(bench);
  explain_cases(bench);
}

// The worker loop of benchmarks/interleave.py: requests on stdin, one JSON line per answer on
// stdout (progress stays on stderr). Every "time CASE" sets the case up, times it with the
// worker's share of the budget and tears it down, so the driver can alternate with PyTorch.
int serve(Bench& bench) {
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line == "quit") break;
    if (line == "list") {
      bench.set_mode(BenchMode::list);
      all_cases(bench);
      for (const Row& r : bench.rows()) std::cout << row_json(r) << "\n";
      std::cout << "end" << std::endl;
    } else if (line.rfind("time ", 0) == 0) {
      const std::string name = line.substr(5);
      bench.set_mode(BenchMode::one, name);
      all_cases(bench);
      if (bench.rows().empty()) {
        std::cout << "{\"error\": \"no case named '" << json_escape(name) << "'\"}" << std::endl;
      } else {
        std::cout << row_json(bench.rows().front()) << std::endl;
      }
    } else {
      std::cout << "{\"error\": \"unknown request '" << json_escape(line) << "'\"}" << std::endl;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Options options;
    if (const int status = parse_options(argc, argv, options); status >= 0) return status;
    TimingPolicy policy = options.quick ? TimingPolicy{0.2, 3, 20} : TimingPolicy{1.0, 5, 100};
    if (options.worker) {
      // Each of the driver's rounds gets its share; the median over rounds is what is reported.
      const int r = options.rounds;
      policy = {policy.budget_s / r, std::max(2, (policy.min_reps + r - 1) / r), std::max(3, policy.max_reps / r)};
    }
    Bench bench(options, policy);
    if (options.worker) return serve(bench);
    const std::string load_before = load_average();

    std::fprintf(stderr, "bench_cpu: loupe, %d threads%s\n", loupe::num_threads(), options.quick ? ", quick" : "");
    all_cases(bench);

    for (const Row& r : bench.rows())
      std::printf("%-52s %10.3f ms %s\n", r.name.c_str(), r.median_s * 1e3, Bench::rate_str(r).c_str());
    if (!options.json_path.empty()) write_json(options.json_path, bench, load_before);
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s\n", error.what());
    return 1;
  }
}
