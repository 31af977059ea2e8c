// GPU benchmarks of the CUDA backend, the same cases as benchmarks/bench_gpu_torch.py so the two
// can be compared side by side on one GPU (benchmarks/gpu_check.sh prints the table). Every value
// is "higher is better":
//   sgemm_fp32 / _tf32 / _bf16   (n x n) @ (n x n), 2 n^3 flops                     -> TFLOP/s
//   add                          out = a + b over N floats, 12 N bytes               -> GB/s
//   softmax                      rows of 4096 floats along the last dim, 8 bytes/elt -> GB/s
//   copy_d2d                     a device-to-device cudaMemcpy of N floats, 8 N bytes: the ceiling
//   conv_fwd / conv_bwd          the convolutions of a ResNet18 training step at 224x224 (each
//                                distinct layer timed, weighted by how often it occurs; bwd =
//                                backward-data + backward-weight), fp32 without TF32  -> TFLOP/s
//   resnet18_train_fp32 / _tf32 / _bf16   one SGD step (momentum 0.9) of torchvision's ResNet18,
//                                1000 classes, NCHW, cross-entropy; fp32, TF32 convolutions and
//                                matmuls, bf16 autocast                               -> images/s
//                                (_find: fp32 with cuDNN's benchmark mode on both sides)
//   ig50 / smoothgrad50          integrated gradients (50 Gauss-Legendre steps) and SmoothGrad
//                                (50 samples) of one 3x224x224 input on ResNet18, one pass of 50
//                                rows                                                 -> explanations/s
//   guided / deeplift            guided backprop and DeepLIFT (zero baseline) of the same input
//   <each of those four>_folded  the same with the batch norms folded into the convolutions
//   kernelshap1000               KernelSHAP, 1000 coalitions of an 8x8 grid of patches, zero
//                                baseline, forward passes of 100 rows                 -> explanations/s
// Usage: bench_gpu [--quick] [--json FILE] [--filter S]
// Each case: 3 warm-up runs, then the median of 20 (each run synchronised). A case that fails
// (an op without a CUDA kernel, say) is reported and skipped; the others still run.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "autograd/autograd.hpp"
#include "explain/explain.hpp"
#include "nn/fold_batch_norm.hpp"
#include "nn/models/zoo.hpp"
#include "nn/optim/optimizer.hpp"
#include "tensor/cuda/backend.hpp"
#include "tensor/cuda/runtime.hpp"
#include "tensor/ops.hpp"
#include "tensor/ops/device.hpp"

using namespace loupe;

namespace {

const Device kGpu = Device::cuda(0);

// Median seconds of `reps` runs of f, each run synchronised.
double time_median(const std::function<void()>& f, int warmup = 3, int reps = 20) {
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
  double ms;  // the median time the value comes from
};

class Bench {
 public:
  Bench(bool quick, std::string filter) : quick_(quick), filter_(std::move(filter)) {}
  bool quick() const { return quick_; }
  bool wanted(const std::string& name) const { return filter_.empty() || name.find(filter_) != std::string::npos; }

  // Runs a case that measures itself: `measure` returns (value, ms). Errors skip the case.
  void run(const std::string& name, const std::string& unit, const std::function<std::pair<double, double>()>& measure) {
    if (!wanted(name)) return;
    try {
      const auto [value, ms] = measure();
      results_.push_back({name, value, unit, ms});
      std::printf("%-22s %10.2f %-10s (%.3f ms)\n", name.c_str(), value, unit.c_str(), ms);
    } catch (const Error& e) {
      std::printf("%-22s skipped: %s\n", name.c_str(), e.what());
    }
    std::fflush(stdout);
  }
  // The common case: `amount` units of work per call of f (flops / 1e12, bytes / 1e9, images ...).
  void rate(const std::string& name, const std::string& unit, double amount, const std::function<void()>& f,
            const std::function<void()>& setup = {}) {
    run(name, unit, [&] {
      if (setup) setup();
      const double s = time_median(f);
      return std::pair{amount / s, 1e3 * s};
    });
  }

  void write_json(const std::string& path) const {
    std::ofstream out(path);
    out << "{\n  \"device\": \"" << cuda::device_name(0) << "\",\n  \"results\": {";
    for (size_t i = 0; i < results_.size(); ++i) {
      out << (i ? "," : "") << "\n    \"" << results_[i].name << "\": {\"value\": " << results_[i].value
          << ", \"unit\": \"" << results_[i].unit << "\", \"ms\": " << results_[i].ms << "}";
    }
    out << "\n  }\n}\n";
  }

 private:
  bool quick_;
  std::string filter_;
  std::vector<Result> results_;
};

// --- matrix products, memory-bound ops ---

void gemm_cases(Bench& bench, Generator& gen) {
  const int64_t n = bench.quick() ? 2048 : 4096;
  const Tensor a = uniform({n, n}, -1, 1, DType::f32, &gen, kGpu), b = uniform({n, n}, -1, 1, DType::f32, &gen, kGpu);
  const double tflop = 2.0 * static_cast<double>(n) * n * n / 1e12;
  for (auto [name, precision] : {std::pair{"sgemm_fp32", cuda::MatmulPrecision::highest},
                                 std::pair{"sgemm_tf32", cuda::MatmulPrecision::tf32}}) {
    cuda::set_matmul_precision(precision);
    bench.rate(name, "TFLOP/s", tflop, [&] { (void)ops::matmul(a, b); });
  }
  cuda::set_matmul_precision(cuda::MatmulPrecision::highest);
  // bf16 operands and output, fp32 accumulation (what autocast runs).
  Tensor a16, b16;
  bench.rate("sgemm_bf16", "TFLOP/s", tflop, [&] { (void)ops::matmul(a16, b16); }, [&] {
    a16 = ops::to_dtype(a, DType::bf16);
    b16 = ops::to_dtype(b, DType::bf16);
  });
}

void memory_cases(Bench& bench, Generator& gen) {
  const int64_t count = bench.quick() ? (int64_t{1} << 24) : (int64_t{1} << 26);
  const Tensor x = uniform({count}, -1, 1, DType::f32, &gen, kGpu), y = uniform({count}, -1, 1, DType::f32, &gen, kGpu);
  const double gb = 4.0 * static_cast<double>(count) / 1e9;
  bench.rate("add", "GB/s", 3 * gb, [&] { (void)ops::add(x, y); });
  Tensor dst = Tensor::empty({count}, DType::f32, kGpu);
  bench.rate("copy_d2d", "GB/s", 2 * gb, [&] {
    LOUPE_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), x.raw_data(), static_cast<size_t>(gb * 1e9),
                                     cudaMemcpyDeviceToDevice, cuda::stream(0)));
  });
  const Tensor rows = ops::view(x, {count / 4096, 4096});
  bench.rate("softmax", "GB/s", 2 * gb, [&] { (void)ops::softmax(rows, -1); });
}

// --- ResNet18's convolutions ---

struct ConvLayer {
  int64_t in_channels, out_channels, kernel, stride, padding, in_size;
  int count;  // occurrences in ResNet18
};

// Every distinct convolution of ResNet18 at 224x224 (benchmarks/bench_cpu.cpp has the same list).
const ConvLayer kResNet18Convs[] = {
    {3, 64, 7, 2, 3, 224, 1},    {64, 64, 3, 1, 1, 56, 4},    {64, 128, 3, 2, 1, 56, 1},  {128, 128, 3, 1, 1, 28, 3},
    {64, 128, 1, 2, 0, 56, 1},   {128, 256, 3, 2, 1, 28, 1},  {256, 256, 3, 1, 1, 14, 3}, {128, 256, 1, 2, 0, 28, 1},
    {256, 512, 3, 2, 1, 14, 1},  {512, 512, 3, 1, 1, 7, 3},   {256, 512, 1, 2, 0, 14, 1},
};

void conv_cases(Bench& bench, Generator& gen) {
  const int64_t batch = bench.quick() ? 32 : 64;
  for (const bool backward : {false, true}) {
    bench.run(backward ? "conv_bwd" : "conv_fwd", "TFLOP/s", [&] {
      double seconds = 0, flops = 0;
      for (const ConvLayer& l : kResNet18Convs) {
        Conv2dParams p;
        p.stride = {l.stride, l.stride};
        p.padding = {l.padding, l.padding};
        const Tensor x = uniform({batch, l.in_channels, l.in_size, l.in_size}, -1, 1, DType::f32, &gen, kGpu);
        const Tensor w = uniform({l.out_channels, l.in_channels, l.kernel, l.kernel}, -0.1, 0.1, DType::f32, &gen, kGpu);
        const Tensor y = ops::conv2d(x, w, Tensor(), p);
        const double layer_flops = 2.0 * static_cast<double>(y.numel()) * l.in_channels * l.kernel * l.kernel;
        double s;
        if (backward) {
          s = time_median([&] {
            (void)ops::conv2d_backward_input(y, w, x.shape(), p);
            (void)ops::conv2d_backward_weight(y, x, w.shape(), p);
          });
        } else {
          s = time_median([&] { (void)ops::conv2d(x, w, Tensor(), p); });
        }
        seconds += l.count * s;
        flops += l.count * layer_flops * (backward ? 2 : 1);
      }
      return std::pair{flops / seconds / 1e12, 1e3 * seconds};
    });
  }
}

// --- ResNet18 training ---

// One precision of the training step: fp32, TF32 (convolutions and matmuls on tensor cores with
// fp32 storage) or bf16 autocast.
enum class TrainPrecision { fp32, tf32, bf16 };

void train_case(Bench& bench, const std::string& name, TrainPrecision precision, bool cudnn_benchmark = false) {
  const int64_t batch = bench.quick() ? 64 : 128;
  std::shared_ptr<nn::Module> model;
  std::unique_ptr<nn::SGD> sgd;
  Tensor x, labels;
  const auto setup = [&] {
    Generator gen(7);
    model = nn::make_model("resnet18", 1000, 3, &gen);
    model->to(kGpu);
    model->train();
    nn::SgdOptions options;
    options.lr = 0.01;
    options.momentum = 0.9;
    sgd = std::make_unique<nn::SGD>(model->parameters(), options);
    x = uniform({batch, 3, 224, 224}, -1, 1, DType::f32, &gen, kGpu);
    labels = ops::to_device(randint(0, 1000, {batch}, &gen), kGpu);
  };
  const auto step = [&] {
    sgd->zero_grad();
    Tensor loss;
    {
      // Like torch.autocast, the scope covers the forward pass; the backward follows its dtypes.
      std::optional<AutocastGuard> autocast;
      if (precision == TrainPrecision::bf16) autocast.emplace(DType::bf16);
      loss = cross_entropy((*model)(x), labels);
    }
    backward(loss);
    sgd->step();
  };
  cuda::set_matmul_precision(precision == TrainPrecision::tf32 ? cuda::MatmulPrecision::tf32
                                                               : cuda::MatmulPrecision::highest);
  cuda::set_cudnn_benchmark(cudnn_benchmark);
  bench.rate(name, "images/s", static_cast<double>(batch), step, setup);
  cuda::set_cudnn_benchmark(false);
  cuda::set_matmul_precision(cuda::MatmulPrecision::highest);
}

// --- attribution ---

void explain_cases(Bench& bench) {
  namespace ex = explain;
  const int64_t n = 50;
  std::shared_ptr<nn::Module> model;
  Tensor x;
  const auto setup = [&] {
    Generator gen(11);
    model = nn::make_model("resnet18", 1000, 3, &gen);
    for (Tensor& p : model->parameters()) p.set_requires_grad(false);  // input gradients only, as Captum
    model->to(kGpu);
    model->eval();
    x = uniform({1, 3, 224, 224}, -1, 1, DType::f32, &gen, kGpu);
  };
  const auto query = [&] { return ex::Query{ex::as_forward(*model), {x}, ex::Target(3), ex::Output::logit}; };
  // The gradient and rule-based methods, each also as "<name>_folded": the same explanation with
  // the batch norms folded into the convolutions (nn/fold_batch_norm.hpp) against the same Captum
  // call. Untested on a GPU so far: the folding itself is device-independent and tested on the CPU.
  const auto setup_folded = [&] {
    setup();
    (void)nn::fold_batch_norms(*model, x);
  };
  const auto gradient_case = [&](const std::string& name, const std::function<void()>& fn) {
    bench.rate(name, "expl/s", 1.0, fn, setup);
    bench.rate(name + "_folded", "expl/s", 1.0, fn, setup_folded);
  };
  gradient_case("ig50", [&] {
    (void)ex::integrated_gradients(query(), {.n_steps = n, .method = ex::IntegrationRule::gauss_legendre,
                                             .internal_batch_size = n});
  });
  gradient_case("smoothgrad50", [&] {
    ex::NoiseTunnelOptions options;
    options.type = ex::NoiseType::smoothgrad;
    options.n_samples = n;
    options.stdevs = {0.15};
    options.internal_batch_size = n;
    (void)ex::noise_tunnel(query(), [](const ex::Query& q) { return ex::saliency(q); }, options);
  });
  gradient_case("guided", [&] { (void)ex::guided_backprop(query()); });
  gradient_case("deeplift", [&] { (void)ex::deeplift(query()); });
  // Occlusion, window (3, 15, 15), strides (3, 8, 8): 729 windows in chunks of the default 111.
  bench.rate("occlusion_w15s8", "expl/s", 1.0, [&] {
    (void)ex::occlusion(query(), {.windows = {{3, 15, 15}}, .strides = {{3, 8, 8}}});
  }, setup);

  // KernelSHAP: 1000 coalitions of an 8x8 grid of 28x28 patches, forward passes of 100.
  bench.rate("kernelshap1000", "expl/s", 1.0, [&] {
    const Tensor ids = ex::grid_feature_mask(224, 224, 8, 8);  // (224, 224), shared by the channels
    Generator gen(0);
    ex::KernelShapOptions options;
    options.feature_mask = {ids};
    options.n_samples = 1000;
    options.perturbations_per_eval = 100;
    options.generator = &gen;
    (void)ex::kernel_shap(query(), options);
  }, setup);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string json, filter;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    else if (std::strcmp(argv[i], "--json") == 0 && i + 1 < argc) json = argv[++i];
    else if (std::strcmp(argv[i], "--filter") == 0 && i + 1 < argc) filter = argv[++i];
    else if (std::strcmp(argv[i], "--help") == 0) {
      std::printf("usage: bench_gpu [--quick] [--json FILE] [--filter S]\n");
      return 0;
    }
  }
  try {
    if (!cuda::is_available()) {
      std::fprintf(stderr, "bench_gpu: no CUDA GPU visible\n");
      return 2;
    }
    std::printf("device: %s\n", cuda::device_name(0).c_str());
    Bench bench(quick, filter);
    Generator gen(1);
    gemm_cases(bench, gen);
    memory_cases(bench, gen);
    conv_cases(bench, gen);
    train_case(bench, "resnet18_train_fp32", TrainPrecision::fp32);
    train_case(bench, "resnet18_train_tf32", TrainPrecision::tf32);
    train_case(bench, "resnet18_train_bf16", TrainPrecision::bf16);
    train_case(bench, "resnet18_train_fp32_find", TrainPrecision::fp32, /*cudnn_benchmark=*/true);
    explain_cases(bench);
    if (!json.empty()) bench.write_json(json);
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
