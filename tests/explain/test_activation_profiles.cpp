// Tests of explain/activation_profiles.hpp and of `loupe profile`:
//   - group expressions (NAME, NAME-NAME2, none, all, indices, labels containing '-') and membership;
//   - forward hooks (nn/module.hpp) leave outputs and gradients unchanged and go away with their handle;
//   - on a hand-made model (a 1x1 convolution with known weights, then ReLU) over four 2x2 images
//     whose maps are worked out by hand: dead maps and their share, group means, the normalised
//     profile, scores, ranking and each group's top maps, and the group mean maps;
//   - errors: unknown layer names (listing the valid ones), a module run twice, an empty group;
//   - the command, run as a program (build/cli/loupe) on a small checkpoint and a CSV of PNGs.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "explain/activation_profiles.hpp"
#include "nn/checkpoint.hpp"
#include "nn/data/image.hpp"
#include "nn/layers/layers.hpp"
#include "nn/models/zoo.hpp"
#include "tensor/ops.hpp"
#include "tests/cli_test_util.hpp"
#include "tests/support.hpp"

using namespace loupe;
using namespace loupe::explain;
namespace fs = std::filesystem;
using loupe::test::values;
using loupe::test::loupe_program;
using loupe::test::read_text;
using loupe::test::run_loupe_command;

namespace {

// conv (1 -> 4 maps, 1x1 kernel) -> relu -> pool (global average) -> flat -> fc (4 -> 2).
// The maps after the ReLU: map0 = relu(x), map1 = 0 (dead), map2 = relu(1 - 2x), map3 = 0.3 (dead:
// constant on every image).
std::shared_ptr<nn::Sequential> hand_model() {
  auto model = std::make_shared<nn::Sequential>();
  auto conv = std::make_shared<nn::Conv2d>(1, 4, 1);
  model->push_back("conv", conv);
  model->push_back("relu", std::make_shared<nn::ReLU>());
  model->push_back("pool", std::make_shared<nn::AdaptiveAvgPool2d>(1));
  model->push_back("flat", std::make_shared<nn::Flatten>());
  auto fc = std::make_shared<nn::Linear>(4, 2);
  model->push_back("fc", fc);
  nn::StateDict state = model->state_dict();
  state["conv.weight"] = from_values(std::vector<double>{1, 0, -2, 0}, {4, 1, 1, 1});
  state["conv.bias"] = from_values(std::vector<double>{0, 0, 1, 0.3}, {4});
  state["fc.weight"] = from_values(std::vector<double>{1, 2, 3, 4, -1, 0.5, 2, 1}, {2, 4});
  state["fc.bias"] = from_values(std::vector<double>{0.1, -0.2}, {2});
  model->load_state_dict(state);
  model->eval();
  return model;
}

// Four 2x2 grey images (N, 1, 2, 2), row-major pixels.
Tensor hand_images() {
  return from_values(std::vector<double>{0.5, 0.5, 0.5, 0.5,  // img0
                                         0, 1, 0, 1,          // img1
                                         1, 1, 1, 0,          // img2
                                         0, 0, 0, 0.2},       // img3
                     {4, 1, 2, 2});
}

// Labels a, b (multi-hot): img0 {a}, img1 {a, b}, img2 {b}, img3 {}.
Tensor hand_labels() { return from_values(std::vector<double>{1, 0, 1, 1, 0, 1, 0, 0}, {4, 2}); }

// A module that calls its child twice (like a ResNet block's shared ReLU).
class Twice : public nn::Module {
 public:
  Twice() { relu_ = register_module("relu", std::make_shared<nn::ReLU>()); }
  Tensor forward(const Tensor& x) override { return (*relu_)((*relu_)(x)); }

 private:
  std::shared_ptr<nn::ReLU> relu_;
};

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("activation profiles: group expressions and membership") {
  const std::vector<std::string> labels = {"covid19", "pneumonia", "no_finding"};
  const ImageGroup g = parse_group("pneumonia-covid19", labels);
  CHECK(g.with == std::vector<int64_t>{1});
  CHECK(g.without == std::vector<int64_t>{0});
  CHECK(parse_group("1", labels).with == std::vector<int64_t>{1});
  CHECK(parse_group("pneumonia-0-no_finding", labels).without == std::vector<int64_t>{0, 2});
  CHECK(parse_group("none", labels).none);
  CHECK(parse_group("all", labels).with.empty());
  CHECK(parse_group("all-covid19", labels).without == std::vector<int64_t>{0});
  CHECK(g.contains({false, true, false}));
  CHECK(!g.contains({true, true, false}));
  CHECK(!g.contains({false, false, true}));
  CHECK(parse_group("none", labels).contains({false, false, false}));
  CHECK(!parse_group("none", labels).contains({false, false, true}));
  // Labels that contain '-' are found whole; the split takes the longest label first.
  const std::vector<std::string> clothes = {"T-shirt/top", "Trouser", "top", "T"};
  CHECK(parse_group("T-shirt/top", clothes).with == std::vector<int64_t>{0});
  const ImageGroup tt = parse_group("T-shirt/top-Trouser", clothes);
  CHECK(tt.with == std::vector<int64_t>{0});
  CHECK(tt.without == std::vector<int64_t>{1});
  CHECK(parse_group("T-top", clothes).without == std::vector<int64_t>{2});
  for (const char* bad : {"zebra", "pneumonia-zebra", "pneumonia-", "-covid19", "3", ""})
    CHECK_THROWS_WITH_AS(parse_group(bad, labels), doctest::Contains("covid19, pneumonia, no_finding"), Error);
  CHECK_THROWS_WITH_AS(parse_group("pneumonia-pneumonia", labels), doctest::Contains("both"), Error);
  // Lists: defaults, duplicates.
  const auto defaults = parse_groups("", labels, true);
  REQUIRE(defaults.size() == 4);
  CHECK(defaults[3].name == "none");
  CHECK(parse_groups("", labels, false).size() == 3);
  CHECK(parse_groups("covid19,pneumonia-covid19,none", labels, true).size() == 3);
  CHECK_THROWS_WITH_AS(parse_groups("covid19,covid19", labels, true), doctest::Contains("twice"), Error);
  // Membership from multi-hot labels and from class indices.
  const auto groups = parse_groups("covid19,pneumonia-covid19,none", labels, true);
  const Tensor multi = from_values(std::vector<double>{1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1}, {4, 3});
  CHECK(values(group_membership(groups, multi, 3)) == std::vector<double>{1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0});
  const Tensor classes = from_values(std::vector<int64_t>{0, 1, 2}, {3}, DType::i64);
  CHECK(values(group_membership(groups, classes, 3)) == std::vector<double>{1, 0, 0, 0, 1, 0, 0, 0, 0});
  CHECK_THROWS_WITH_AS(group_membership(groups, from_values(std::vector<int64_t>{5}, {1}, DType::i64), 3),
                       doctest::Contains("class 5"), Error);
  CHECK_THROWS_AS(group_membership(groups, zeros({2, 4}), 3), Error);
}

TEST_CASE("activation profiles: forward hooks see outputs and change neither outputs nor gradients") {
  auto model = hand_model();
  const Tensor x = test::random_tensor({3, 1, 2, 2}, DType::f32, 0.0, 1.0);
  auto run = [&]() {
    Tensor in = ops::contiguous(x);
    in.set_requires_grad(true);
    const Tensor out = (*model)(in);
    const Tensor g = grad({sum(out)}, {in})[0];
    return std::make_pair(values(out), values(g));
  };
  const auto plain = run();
  std::vector<Shape> seen;
  nn::Module* relu = nullptr;
  for (const auto& [name, m] : model->named_modules())
    if (name == "relu") relu = m;
  REQUIRE(relu != nullptr);
  {
    nn::ForwardHookHandle handle = relu->add_forward_hook([&](const Tensor& y) { seen.push_back(y.shape()); });
    CHECK(relu->forward_hook_count() == 1);
    const auto hooked = run();
    CHECK(hooked.first == plain.first);
    CHECK(hooked.second == plain.second);
    REQUIRE(seen.size() == 1);
    CHECK(seen[0] == Shape{3, 4, 2, 2});
    nn::ForwardHookHandle moved = std::move(handle);  // moving keeps the hook
    CHECK(relu->forward_hook_count() == 1);
  }
  CHECK(relu->forward_hook_count() == 0);  // gone with its handle
  run();
  CHECK(seen.size() == 1);
  {
    LayerRecorder recorder(*model, {"relu", "fc"});
    const auto hooked = run();
    CHECK(hooked.first == plain.first);
    const std::vector<Tensor> outputs = recorder.take();
    REQUIRE(outputs.size() == 2);
    CHECK(values(outputs[1]) == plain.first);
  }
  CHECK(relu->forward_hook_count() == 0);
}

TEST_CASE("activation profiles: hand-computed dead maps, group means, normalisation and ranking") {
  auto model = hand_model();
  model->train();  // activation_profiles runs in eval mode and restores the mode
  const std::vector<std::string> labels = {"a", "b"};
  const auto groups = parse_groups("a,b,a-b,none", labels, true);
  const Tensor membership = group_membership(groups, hand_labels(), 2);
  for (int64_t batch : {1, 3, 4}) {  // the batch size must not matter
    CAPTURE(batch);
    const ActivationProfiles p =
        activation_profiles(*model, {"relu", "fc"}, hand_images(), membership, {"a", "b", "a-b", "none"}, 8, batch);
    CHECK(model->is_training());
    CHECK(p.images == 4);
    CHECK(p.group_sizes == std::vector<int64_t>{2, 2, 1, 1});
    REQUIRE(p.layers.size() == 2);
    const LayerProfile& relu = p.layers[0];
    CHECK(relu.layer == "relu");
    CHECK(relu.maps == 4);
    CHECK(relu.height == 2);
    CHECK(relu.width == 2);
    // map1 is 0 and map3 is 0.3 everywhere: dead. map2 is constant on img0 but not on the others: alive.
    CHECK(relu.dead == std::vector<bool>{false, true, false, true});
    CHECK(relu.dead_share == doctest::Approx(0.5));
    // Spatial means per image: map0 = relu(x): 0.5, 0.5, 0.75, 0.05; map2 = relu(1 - 2x): 0, 0.5, 0.25, 0.9.
    // Groups a = {0, 1}, b = {1, 2}, a-b = {0}, none = {3}.
    const std::vector<std::vector<double>> means = {{0.5, 0.0, 0.25, 0.3},
                                                    {0.625, 0.0, 0.375, 0.3},
                                                    {0.5, 0.0, 0.0, 0.3},
                                                    {0.05, 0.0, 0.9, 0.3}};
    // Mean over groups: map0 0.41875, map2 0.38125; dead maps are not normalised (0).
    const std::vector<std::vector<double>> normalised = {{0.08125, 0, -0.13125, 0},
                                                         {0.20625, 0, -0.00625, 0},
                                                         {0.08125, 0, -0.38125, 0},
                                                         {-0.36875, 0, 0.51875, 0}};
    for (size_t g = 0; g < 4; ++g)
      for (size_t c = 0; c < 4; ++c) {
        CAPTURE(g);
        CAPTURE(c);
        CHECK(relu.group_means[g][c] == doctest::Approx(means[g][c]).epsilon(1e-6));
        CHECK(relu.normalised[g][c] == doctest::Approx(normalised[g][c]).epsilon(1e-6));
      }
    CHECK(relu.score[0] == doctest::Approx(0.184375).epsilon(1e-6));
    CHECK(relu.score[2] == doctest::Approx(0.259375).epsilon(1e-6));
    CHECK(relu.score[1] == 0.0);
    CHECK(relu.ranking == std::vector<int64_t>{2, 0});
    REQUIRE(relu.top.size() == 4);
    CHECK(relu.top[0] == std::vector<int64_t>{0, 2});
    CHECK(relu.top[1] == std::vector<int64_t>{0, 2});
    CHECK(relu.top[2] == std::vector<int64_t>{0, 2});
    CHECK(relu.top[3] == std::vector<int64_t>{2, 0});
    // The group mean maps: group "none" is img3 alone; group a's map2 is the mean of img0's and img1's.
    REQUIRE(relu.group_maps.shape() == Shape{4, 4, 2, 2});
    test::check_close(ops::select(ops::select(relu.group_maps, 0, 3), 0, 0),
                      from_values(std::vector<double>{0, 0, 0, 0.2}, {2, 2}, DType::f64), 1e-6, 0, "none map0");
    test::check_close(ops::select(ops::select(relu.group_maps, 0, 0), 0, 2),
                      from_values(std::vector<double>{0.5, 0, 0.5, 0}, {2, 2}, DType::f64), 1e-6, 0, "a map2");
    // fc gives (N, 2): 1x1 maps, alive because they differ between images.
    const LayerProfile& fc = p.layers[1];
    CHECK(fc.maps == 2);
    CHECK(fc.height == 1);
    CHECK(fc.dead == std::vector<bool>{false, false});
  }
  // top = 1 keeps the first of each group's order.
  const ActivationProfiles one = activation_profiles(*model, {"relu"}, hand_images(), membership, {"a", "b", "a-b", "none"}, 1);
  CHECK(one.layers[0].top[3] == std::vector<int64_t>{2});
  // The picture of a group's top maps: a row of tiles; JSON names layers, groups and dead maps.
  const Tensor strip = top_maps_image(one.layers[0], 3, 16);
  CHECK(strip.shape() == Shape{3, 16, 16});
  const Tensor two = top_maps_image(activation_profiles(*model, {"relu"}, hand_images(), membership,
                                                        {"a", "b", "a-b", "none"}).layers[0], 0, 16);
  CHECK(two.shape() == Shape{3, 16, 34});
  const std::string json = profiles_json(one);
  CHECK(contains(json, "\"layer\": \"relu\""));
  CHECK(contains(json, "\"dead\": [1, 3]"));
  CHECK(contains(json, "\"name\": \"a-b\", \"images\": 1"));
}

TEST_CASE("activation profiles: errors name the layer, the valid layers or the group") {
  auto model = hand_model();
  const Tensor membership = group_membership(parse_groups("a,b", {"a", "b"}, true), hand_labels(), 2);
  CHECK_THROWS_WITH_AS(activation_profiles(*model, {"layer9"}, hand_images(), membership, {"a", "b"}),
                       doctest::Contains("no layer 'layer9'; valid layers: conv, relu, pool, flat, fc"), Error);
  CHECK_THROWS_WITH_AS(activation_profiles(*model, {}, hand_images(), membership, {"a", "b"}),
                       doctest::Contains("valid layers: conv"), Error);
  CHECK_THROWS_WITH_AS(activation_profiles(*model, {"relu", "relu"}, hand_images(), membership, {"a", "b"}),
                       doctest::Contains("twice"), Error);
  // A group no image belongs to.
  const Tensor zero_group = ops::cat({membership, zeros({4, 1})}, 1);
  CHECK_THROWS_WITH_AS(activation_profiles(*model, {"relu"}, hand_images(), zero_group, {"a", "b", "c"}),
                       doctest::Contains("group 'c' has no image"), Error);
  // A module called twice in one forward has no single output.
  Twice twice;
  CHECK_THROWS_WITH_AS(activation_profiles(twice, {"relu"}, hand_images(), membership, {"a", "b"}),
                       doctest::Contains("ran 2 times"), Error);
  // (N, C, L) outputs are neither maps nor features.
  nn::Sequential seq;
  seq.push_back("flat", std::make_shared<nn::Flatten>(2));
  CHECK_THROWS_WITH_AS(activation_profiles(seq, {"flat"}, hand_images(), membership, {"a", "b"}),
                       doctest::Contains("(4, 1, 4)"), Error);
}

// --- the command ---

namespace {


// `loupe profile args` (tests/cli_test_util.hpp).
int run_profile(const std::string& program, const std::string& args, const fs::path& dir, std::string* out = nullptr,
               std::string* err = nullptr) {
  return run_loupe_command(program, "profile", args, dir, out, err);
}

}  // namespace

TEST_CASE("loupe profile: the command writes profiles for a checkpoint and a CSV, and rejects bad options") {
  const std::string program = loupe_program();
  if (program.empty()) {
    MESSAGE("build/cli/loupe not found next to the test program: command test skipped");
    return;
  }
  const fs::path dir = fs::temp_directory_path() / "loupe_test_profile_cli";
  fs::remove_all(dir);
  fs::create_directories(dir / "images");
  // A small multilabel ResNet18 (1 channel, 32x32, labels covid19, pneumonia, no_finding).
  Generator gen(5);
  auto model = nn::make_model("resnet18", 3, 1, &gen);
  nn::ModelInfo info;
  info.model = "resnet18";
  info.num_classes = 3;
  info.in_channels = 1;
  info.image_size = 32;
  info.labels = {"covid19", "pneumonia", "no_finding"};
  info.multilabel = true;
  info.mean = {0.5};
  info.std = {0.25};
  const std::string ckpt = (dir / "model.safetensors").string();
  nn::save_checkpoint(ckpt, *model, info);
  // Eight images and their labels: every group below has images.
  std::ofstream csv(dir / "labels.csv");
  csv << "file,split,covid19,pneumonia,no_finding\n";
  const int labels[8][3] = {{1, 1, 0}, {1, 1, 0}, {0, 1, 0}, {0, 1, 0}, {0, 0, 1}, {0, 0, 1}, {0, 0, 0}, {1, 0, 0}};
  for (int i = 0; i < 8; ++i) {
    const std::string name = "img" + std::to_string(i) + ".png";
    nn::save_png((dir / "images" / name).string(), test::random_tensor({1, 32, 32}, DType::f32, 0.0, 1.0, 20 + i));
    csv << name << ",test," << labels[i][0] << "," << labels[i][1] << "," << labels[i][2] << "\n";
  }
  csv.close();
  auto q = [](const fs::path& p) { return "'" + p.string() + "'"; };
  const fs::path out = dir / "out";
  const std::string good = "--model " + q(ckpt) + " --data " + q(dir / "labels.csv") +
                           " --layers layer3,layer4.1 --groups covid19,pneumonia,pneumonia-covid19,none --top 3 --batch-size 3 --out " +
                           q(out);
  std::string stdout_text, stderr_text;
  REQUIRE(run_profile(program, good + " --json", dir, &stdout_text, &stderr_text) == 0);
  for (const char* name : {"profiles.json", "profiles.html", "layer3_covid19.png", "layer4_1_pneumonia-covid19.png",
                           "layer4_1_none.png"})
    CHECK_MESSAGE(fs::exists(out / name), name);
  CHECK(stdout_text == read_text(out / "profiles.json"));
  CHECK(contains(stdout_text, "\"images\": 8"));
  CHECK(contains(stdout_text, "\"name\": \"pneumonia-covid19\", \"images\": 2"));
  CHECK(contains(stdout_text, "\"name\": \"none\", \"images\": 1"));
  CHECK(contains(read_text(out / "profiles.html"), "layer4_1_none.png"));
  const Tensor strip = nn::load_image((out / "layer3_covid19.png").string());
  CHECK(strip.shape()[1] == 64);
  CHECK(strip.shape()[2] == 3 * 66 - 2);

  REQUIRE(run_profile(program, good + " --limit 7", dir, &stdout_text) == 0);  // text summary
  CHECK(contains(stdout_text, "layer4.1"));
  CHECK(contains(stdout_text, "dead"));
  REQUIRE(run_profile(program, "--help", dir, &stdout_text) == 0);
  CHECK(contains(stdout_text, "--groups"));
  REQUIRE(run_profile(program, "--model " + q(ckpt) + " --list-layers", dir, &stdout_text) == 0);
  CHECK(contains(stdout_text, "layer4.1.conv2"));

  auto fails_with = [&](const std::string& args, const std::string& part) {
    CAPTURE(args);
    CHECK(run_profile(program, args, dir, nullptr, &stderr_text) == 1);
    CHECK_MESSAGE(contains(stderr_text, part), stderr_text);
  };
  fails_with(good + " --layers layer9", "valid layers: conv1, bn1, relu, maxpool, layer1");
  fails_with(good + " --layers layer1.0.relu", "ran 2 times");
  fails_with(good + " --groups pneumonia-zebra", "zebra");
  fails_with(good + " --limit 1", "has no image");  // img0 is in neither pneumonia-covid19 nor none
  fails_with(good + " --top 0", "--top");
  fails_with("--model " + q(ckpt) + " --data " + q(dir / "labels.csv") + " --layers layer3", "--out");
  fails_with("--model " + q(ckpt) + " --data " + q(dir / "labels.csv") + " --out " + q(out), "--layers");
  fs::remove_all(dir);
}
