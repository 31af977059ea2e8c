// GPU benchmarks of the CUDA backend, the same cases as benchmarks/bench_gpu_torch.py so the two
// can be compared side by side on one GPU (benchmarks/gpu_check.sh prints the table):
//   sgemm fp32 / tf32   (n x n) @ (n x n), 2 n^3 flops          -> TFLOP/s
//   add                 out = a + b over N floats, 12 N bytes    -> GB/s
//   softmax             rows x cols floats along the last dim, 8 bytes per element -> GB/s
//   copy                a device-to-device cudaMemcpy of N floats, 8 N bytes: the bandwidth ceiling
// Usage: bench_gpu [--quick] [--json FILE]   Each case: 3 warm-up runs, then the median of 10.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "tensor/cuda/backend.hpp"
#include "tensor/cuda/runtime.hpp"
#include "tensor/ops.hpp"
#include "tensor/ops/device.hpp"

using namespace loupe;

namespace {

const Device kGpu = Device::cuda(0);

// Median seconds of `reps` runs of f, each run synchronised.
double time_median(const std::function<void()>& f, int warmup = 3, int reps = 10) {
  for (int i = 0; i < warmup; ++i) f();
  cuda::synchronize(0);
  std::vector<double> seconds;
  for (int i = 0; i < reps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    f();
    cuda::synchronize(0);
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  return seconds[seconds.size() / 2];
}

struct Result {
  std::string name;
  double value;
  std::string unit;
};

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string json;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    if (std::strcmp(argv[i], "--json") == 0 && i + 1 < argc) json = argv[++i];
  }
  try {
    if (!cuda::is_available()) {
      std::fprintf(stderr, "bench_gpu: no CUDA GPU visible\n");
      return 2;
    }
    std::printf("device: %s\n", cuda::device_name(0).c_str());
    std::vector<Result> results;
    Generator gen(1);

    const int64_t n = quick ? 2048 : 4096;
    const Tensor a = uniform({n, n}, -1, 1, DType::f32, &gen, kGpu), b = uniform({n, n}, -1, 1, DType::f32, &gen, kGpu);
    for (auto [name, precision] : {std::pair{"sgemm_fp32", cuda::MatmulPrecision::highest},
                                   std::pair{"sgemm_tf32", cuda::MatmulPrecision::tf32}}) {
      cuda::set_matmul_precision(precision);
      const double s = time_median([&] { (void)ops::matmul(a, b); });
      results.push_back({name, 2.0 * static_cast<double>(n) * n * n / s / 1e12, "TFLOP/s"});
    }
    cuda::set_matmul_precision(cuda::MatmulPrecision::highest);

    const int64_t count = quick ? (int64_t{1} << 24) : (int64_t{1} << 26);
    const Tensor x = uniform({count}, -1, 1, DType::f32, &gen, kGpu), y = uniform({count}, -1, 1, DType::f32, &gen, kGpu);
    const double bytes = 4.0 * static_cast<double>(count);
    results.push_back({"add", 3 * bytes / time_median([&] { (void)ops::add(x, y); }) / 1e9, "GB/s"});
    Tensor dst = Tensor::empty({count}, DType::f32, kGpu);
    const double copy_s = time_median([&] {
      LOUPE_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), x.raw_data(), static_cast<size_t>(bytes),
                                       cudaMemcpyDeviceToDevice, cuda::stream(0)));
    });
    results.push_back({"copy_d2d", 2 * bytes / copy_s / 1e9, "GB/s"});
    const Tensor rows = ops::view(x, {count / 4096, 4096});
    results.push_back({"softmax", 2 * bytes / time_median([&] { (void)ops::softmax(rows, -1); }) / 1e9, "GB/s"});

    for (const Result& r : results) std::printf("%-12s %10.2f %s\n", r.name.c_str(), r.value, r.unit.c_str());
    if (!json.empty()) {
      std::ofstream out(json);
      out << "{\n  \"device\": \"" << cuda::device_name(0) << "\",\n  \"results\": {";
      for (size_t i = 0; i < results.size(); ++i) {
        out << (i ? "," : "") << "\n    \"" << results[i].name << "\": {\"value\": " << results[i].value
            << ", \"unit\": \"" << results[i].unit << "\"}";
      }
      out << "\n  }\n}\n";
    }
    const cuda::MemoryStats m = cuda::memory_stats(0);
    std::printf("allocator: peak allocated %.1f MiB, reserved %.1f MiB, %lld cudaMalloc calls, %lld cache hits\n",
                static_cast<double>(m.peak_allocated) / (1 << 20), static_cast<double>(m.reserved) / (1 << 20),
                static_cast<long long>(m.driver_allocations), static_cast<long long>(m.cache_hits));
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_gpu: %s\n", e.what());
    return 1;
  }
  return 0;
}
