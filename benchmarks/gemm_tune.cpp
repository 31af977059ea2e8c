// gemm_tune: times every AVX-512 float register tile / prefetch candidate of the GEMM (and the
// named kernels gemm can select) on square row-major products, to choose the tile and blocking
// for a microarchitecture (docs/gemm.md, section 8). Not part of `./run bench cpu`: it is the
// tool behind the per-CPU choice in tensor/cpu/gemm.cpp, kept so the choice can be re-measured
// on a new CPU.
//
// usage: gemm_tune [--sizes 256,512,1024,2048] [--mc N] [--kc N] [--nc N] [--only NAME] [--reps N]
//   --mc/--kc/--nc override every candidate's blocking (0 or absent: the candidate's own);
//   --only NAME  only the candidate or kernel named NAME ("12x32+pf8", "avx512-intel", ...);
//   --reps N     rounds: each round times every candidate once per size, in turn (interleaved,
//                so that noise on a shared machine hits every candidate alike).
// Threads: LOUPE_NUM_THREADS (default all cores). Prints the CPU's vendor/family/model, the
// measured FMA peak of the same thread count, and per size the median GFLOP/s over the rounds.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <immintrin.h>

#include "tensor/cpu/gemm.hpp"
#include "tensor/cpu/gemm_kernels.hpp"
#include "tensor/parallel.hpp"

namespace {

namespace cpu = loupe::cpu;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// 12 independent FMA chains per thread on registers: the FLOP ceiling.
__attribute__((target("avx512f"))) float fma_chains(int64_t iterations) {
  __m512 acc[12];
  for (int c = 0; c < 12; ++c) acc[c] = _mm512_set1_ps(1.0f + 0.01f * c);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t i = 0; i < iterations; ++i)
    for (int c = 0; c < 12; ++c) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
  float lanes[16];
  __m512 sum = acc[0];
  for (int c = 1; c < 12; ++c) sum = _mm512_add_ps(sum, acc[c]);
  _mm512_storeu_ps(lanes, sum);
  return lanes[0];
}

double peak_gflops(int threads) {
  const int64_t iterations = 2'000'000;
  double best = 1e30;
  volatile float sink = 0;
  for (int attempt = 0; attempt < 20; ++attempt) {
    std::vector<float> out(static_cast<size_t>(threads));
    const double t0 = now_s();
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) workers.emplace_back([&, t] { out[static_cast<size_t>(t)] = fma_chains(iterations); });
    for (auto& w : workers) w.join();
    best = std::min(best, now_s() - t0);
    for (float v : out) sink = sink + v;
  }
  return 2.0 * 16 * 12 * static_cast<double>(iterations) * threads / best * 1e-9;
}

// One timed product of size n (the caller interleaves candidates and takes medians).
double seconds_of_product(int64_t n, const std::vector<float>& a, const std::vector<float>& b, std::vector<float>& c,
                          const cpu::gemm_detail::KernelSpec<float>& spec) {
  const double t0 = now_s();
  cpu::gemm_detail::gemm_with_spec<float>(spec, n, n, n, 1.0f, {a.data(), n, 1}, {b.data(), n, 1}, 0.0f,
                                          {c.data(), n, 1});
  return now_s() - t0;
}

std::vector<int64_t> parse_sizes(const char* s) {
  std::vector<int64_t> sizes;
  for (const char* p = s; *p != '\0';) {
    sizes.push_back(std::strtoll(p, nullptr, 10));
    p = std::strchr(p, ',');
    if (p == nullptr) break;
    ++p;
  }
  return sizes;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> sizes{256, 512, 1024, 2048};
  int64_t mc = 0, kc = 0, nc = 0;
  int reps = 9;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::printf("usage: gemm_tune [--sizes 256,512,1024,2048] [--mc N] [--kc N] [--nc N] [--only NAME] [--reps N]\n"
                  "Times every AVX-512 float GEMM tile candidate (docs/gemm.md, section 8).\n"
                  "Threads: LOUPE_NUM_THREADS.\n");
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "gemm_tune: %s needs a value (see --help)\n", arg.c_str());
      return 2;
    }
    const char* value = argv[++i];
    if (arg == "--sizes") sizes = parse_sizes(value);
    else if (arg == "--mc") mc = std::atoll(value);
    else if (arg == "--kc") kc = std::atoll(value);
    else if (arg == "--nc") nc = std::atoll(value);
    else if (arg == "--only") only = value;
    else if (arg == "--reps") reps = std::max(1, std::atoi(value));
    else {
      std::fprintf(stderr, "gemm_tune: unknown option %s (see --help)\n", arg.c_str());
      return 2;
    }
  }
  if (!cpu::gemm_kernel_available(cpu::GemmKernel::avx512)) {
    std::fprintf(stderr, "gemm_tune: this CPU has no AVX-512; nothing to tune\n");
    return 1;
  }
  const cpu::CpuModel model = cpu::cpu_model();
  const int threads = loupe::num_threads();
  std::printf("cpu %s family %d model %d, %d threads, best kernel %s, fma peak %.1f GFLOP/s\n", model.vendor,
              model.family, model.model, threads, cpu::gemm_kernel_name(cpu::gemm_best_kernel()), peak_gflops(threads));
  std::printf("%-16s %5s %5s %5s", "candidate", "mc", "kc", "nc");
  for (int64_t n : sizes) std::printf(" %8lld", static_cast<long long>(n));
  std::printf("   (GFLOP/s, median of %d interleaved rounds)\n", reps);

  const int64_t largest = *std::max_element(sizes.begin(), sizes.end());
  std::vector<float> a(static_cast<size_t>(largest * largest)), b = a, c = a;
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = static_cast<float>((i * 7919) % 1000) * 1e-3f - 0.5f;
    b[i] = static_cast<float>((i * 104729) % 1000) * 1e-3f - 0.5f;
  }
  // The rows: both named AVX-512 kernels, then every candidate (with the overrides).
  struct Entry {
    std::string name;
    cpu::gemm_detail::KernelSpec<float> spec;
  };
  std::vector<Entry> entries;
  for (cpu::GemmKernel kernel : {cpu::GemmKernel::avx512, cpu::GemmKernel::avx512_intel}) {
    entries.push_back({cpu::gemm_kernel_name(kernel), cpu::gemm_detail::kernel_spec<float>(kernel)});
  }
  for (cpu::gemm_detail::KernelSpec<float> spec : cpu::gemm_detail::avx512_candidates_f32()) {
    if (mc > 0) spec.mc = std::max<int64_t>(spec.mr, mc / spec.mr * spec.mr);
    if (kc > 0) spec.kc = kc;
    if (nc > 0) spec.nc = std::max<int64_t>(spec.nr, nc / spec.nr * spec.nr);
    entries.push_back({spec.name, spec});
  }
  if (!only.empty()) {
    std::erase_if(entries, [&](const Entry& e) { return e.name != only; });
  }
  // Rounds: every round times every entry once per size, so machine noise (other jobs, clock
  // changes) hits all entries alike; the table shows the median over rounds.
  std::vector<std::vector<std::vector<double>>> times(entries.size(), std::vector<std::vector<double>>(sizes.size()));
  for (int round = -1; round < reps; ++round) {  // round -1: warm-up (packing buffers, pages)
    for (size_t e = 0; e < entries.size(); ++e) {
      for (size_t s = 0; s < sizes.size(); ++s) {
        const double t = seconds_of_product(sizes[s], a, b, c, entries[e].spec);
        if (round >= 0) times[e][s].push_back(t);
      }
    }
  }
  for (size_t e = 0; e < entries.size(); ++e) {
    const auto& spec = entries[e].spec;
    std::printf("%-16s %5lld %5lld %5lld", entries[e].name.c_str(), static_cast<long long>(spec.mc),
                static_cast<long long>(spec.kc), static_cast<long long>(spec.nc));
    for (size_t s = 0; s < sizes.size(); ++s) {
      std::vector<double>& t = times[e][s];
      std::sort(t.begin(), t.end());
      const double n = static_cast<double>(sizes[s]);
      std::printf(" %8.1f", 2.0 * n * n * n / t[t.size() / 2] * 1e-9);
    }
    std::printf("\n");
  }
  return 0;
}
