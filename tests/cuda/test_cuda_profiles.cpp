// GPU case for neuron activation profiles (explain/activation_profiles.hpp): the statistics are
// accumulated on the model's device (float64 products and reductions), so a ResNet on the GPU must
// give the CPU's group means, dead maps, ranking and mean maps. Skipped without a GPU.
#include <doctest/doctest.h>

#include "explain/activation_profiles.hpp"
#include "nn/models/zoo.hpp"
#include "tests/cuda/cuda_test_util.hpp"
#include "tests/support.hpp"

namespace loupe::test {

TEST_CASE("cuda: activation profiles of a ResNet on the GPU match the CPU's" * doctest::skip(kNoGpu)) {
  Generator gen(9);
  auto model = nn::make_model("resnet18", 3, 1, &gen);
  model->eval();
  const Tensor images = random_tensor({10, 1, 32, 32}, DType::f32, -1.0, 1.0, 4);
  const Tensor labels = from_values(std::vector<double>{1, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0,
                                                        0, 0, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0},
                                    {10, 3});
  const auto groups = explain::parse_groups("a,b,c,a-b,none", {"a", "b", "c"}, true);
  const Tensor membership = explain::group_membership(groups, labels, 3);
  const std::vector<std::string> names = {"a", "b", "c", "a-b", "none"};
  const std::vector<std::string> layers = {"relu", "layer2", "layer4.1", "fc"};
  const explain::ActivationProfiles on_cpu = explain::activation_profiles(*model, layers, images, membership, names, 5, 4);
  model->to(kGpu);
  const explain::ActivationProfiles on_gpu = explain::activation_profiles(*model, layers, images, membership, names, 5, 4);
  REQUIRE(on_gpu.layers.size() == on_cpu.layers.size());
  CHECK(on_gpu.group_sizes == on_cpu.group_sizes);
  for (size_t l = 0; l < layers.size(); ++l) {
    const auto& a = on_gpu.layers[l];
    const auto& b = on_cpu.layers[l];
    CAPTURE(a.layer);
    CHECK(a.dead == b.dead);
    check_close(a.group_maps, b.group_maps, 1e-4, 1e-4, "group mean maps");
    for (size_t g = 0; g < names.size(); ++g)
      for (size_t c = 0; c < a.group_means[g].size(); ++c)
        CHECK(a.normalised[g][c] == doctest::Approx(b.normalised[g][c]).epsilon(1e-4).scale(1e-3));
    // Rankings agree except where scores tie within float noise; compare the top scores.
    REQUIRE(a.ranking.size() == b.ranking.size());
    for (size_t i = 0; i < a.ranking.size() && i < 5; ++i)
      CHECK(a.score[static_cast<size_t>(a.ranking[i])] ==
            doctest::Approx(b.score[static_cast<size_t>(b.ranking[i])]).epsilon(1e-4).scale(1e-3));
  }
}

}  // namespace loupe::test
