// The Captum fixtures of tests/fixtures/explain (written by make_explain_fixtures.py and
// make_perturbation_fixtures.py): finding the folder, loading a model's weights and arrays, and
// the two fixture networks rebuilt functionally from loupe ops with the weights loaded by their
// PyTorch names. Used by tests/explain/test_captum.cpp and test_captum_perturbation.cpp.
#pragma once

#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <string>

#include "tensor/io/npy.hpp"
#include "tensor/io/safetensors.hpp"
#include "tests/explain/explain_test_util.hpp"

namespace loupe::test::captum_fixture {

using namespace explain_util;
namespace fs = std::filesystem;

// tests/fixtures/explain, found above the working directory (the repository root or the build dir
// below it), above the test program itself (build/tests/loupe_tests), or from this file's path.
inline fs::path fixture_dir() {
  const fs::path relative = fs::path("tests") / "fixtures" / "explain";
  std::vector<fs::path> starts = {fs::current_path(), fs::path(__FILE__).parent_path().parent_path().parent_path()};
  std::error_code error;
  const fs::path self = fs::read_symlink("/proc/self/exe", error);  // Linux; skipped elsewhere
  if (!error) starts.push_back(self.parent_path());
  for (fs::path start : starts) {
    for (int up = 0; up < 4 && !start.empty(); ++up, start = start.parent_path()) {
      if (fs::exists(start / relative / "cnn_input.npy")) return start / relative;
      if (start == start.parent_path()) break;
    }
  }
  return {};
}

struct Fixture {
  std::string prefix;
  fs::path dir;
  std::map<std::string, Tensor> weights;
  Tensor npy(const std::string& name) const { return load_npy((dir / (prefix + "_" + name + ".npy")).string()); }
  // Any other array of the folder, by its full name (without .npy).
  Tensor array(const std::string& name) const { return load_npy((dir / (name + ".npy")).string()); }
  const Tensor& w(const std::string& name) const {
    auto it = weights.find(name);
    REQUIRE_MESSAGE(it != weights.end(), "missing weight " << name);
    return it->second;
  }
};

inline Fixture load_fixture(const std::string& prefix) {
  Fixture f;
  f.prefix = prefix;
  f.dir = fixture_dir();
  REQUIRE_MESSAGE(!f.dir.empty(), "tests/fixtures/explain not found (run the tests from the repository or build dir)");
  f.weights = load_safetensors((f.dir / (prefix + "_weights.safetensors")).string());
  return f;
}

inline Tensor bn_eval(const Fixture& f, const std::string& name, const Tensor& x) {
  return batch_norm(x, f.w(name + ".running_mean"), f.w(name + ".running_var"), f.w(name + ".weight"),
                    f.w(name + ".bias"), /*training=*/false, 0.1, 1e-5);
}

inline Conv2dParams padding1() {
  Conv2dParams p;
  p.padding = {1, 1};
  return p;
}

// conv - bn(eval) - relu - maxpool(2) - conv - relu - adaptive avg pool - flatten - linear.
inline ForwardFn small_cnn(const Fixture& f) {
  return [&f](const std::vector<Tensor>& in) {
    Pool2dParams pool;
    pool.kernel = {2, 2};
    Tensor h = conv2d(in[0], f.w("conv1.weight"), f.w("conv1.bias"), padding1());
    h = max_pool2d(relu(bn_eval(f, "bn1", h)), pool);
    h = relu(conv2d(h, f.w("conv2.weight"), f.w("conv2.bias"), padding1()));
    return linear(flatten(adaptive_avg_pool2d(h, {1, 1}), 1), f.w("fc.weight"), f.w("fc.bias"));
  };
}

// conv - relu - [conv - bn - relu - conv - bn] + identity - relu - adaptive avg pool - linear.
inline ForwardFn small_resnet(const Fixture& f) {
  return [&f](const std::vector<Tensor>& in) {
    const Tensor x = relu(conv2d(in[0], f.w("stem.weight"), f.w("stem.bias"), padding1()));
    Tensor y = relu(bn_eval(f, "bn1", conv2d(x, f.w("conv1.weight"), Tensor(), padding1())));
    y = bn_eval(f, "bn2", conv2d(y, f.w("conv2.weight"), Tensor(), padding1()));
    const Tensor h = relu(add(x, y));
    return linear(flatten(adaptive_avg_pool2d(h, {1, 1}), 1), f.w("fc.weight"), f.w("fc.bias"));
  };
}

// The same fixture with its weights on `device` (the networks above then run there).
inline Fixture on_device(Fixture f, Device device) {
  for (auto& [name, w] : f.weights) w = ops::to_device(w, device);
  return f;
}

}  // namespace loupe::test::captum_fixture
