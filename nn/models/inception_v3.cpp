// Inception-v3. See inception_v3.hpp. Block layouts follow torchvision's inception.py; shapes in
// comments are for a 299x299 input.
#include "nn/models/inception_v3.hpp"

#include "nn/init.hpp"

namespace loupe::nn {

namespace {

using Pair = std::array<int64_t, 2>;

std::shared_ptr<ConvBnRelu> basic(int64_t in, int64_t out, Pair k, Pair stride, Pair padding, Generator* gen) {
  return std::make_shared<ConvBnRelu>(in, out, k, stride, padding, 0.001, gen);
}
std::shared_ptr<ConvBnRelu> basic(int64_t in, int64_t out, int64_t k, Generator* gen, int64_t stride = 1,
                                  int64_t padding = 0) {
  return basic(in, out, {k, k}, {stride, stride}, {padding, padding}, gen);
}

Pool2dParams pool(int64_t k, int64_t stride, int64_t padding) {
  Pool2dParams p;
  p.kernel = {k, k};
  p.stride = {stride, stride};
  p.padding = {padding, padding};
  return p;
}

// A module whose children are called in a block-specific forward. Children are looked up by
// the names torchvision gives them.
class Block : public Module {
 protected:
  std::shared_ptr<Module> add(const std::string& name, std::shared_ptr<Module> m) { return register_module(name, m); }
};

class InceptionA : public Block {
 public:
  InceptionA(int64_t in, int64_t pool_features, Generator* g) {
    b1x1_ = add("branch1x1", basic(in, 64, 1, g));
    b5x5_1_ = add("branch5x5_1", basic(in, 48, 1, g));
    b5x5_2_ = add("branch5x5_2", basic(48, 64, 5, g, 1, 2));
    b3dbl_1_ = add("branch3x3dbl_1", basic(in, 64, 1, g));
    b3dbl_2_ = add("branch3x3dbl_2", basic(64, 96, 3, g, 1, 1));
    b3dbl_3_ = add("branch3x3dbl_3", basic(96, 96, 3, g, 1, 1));
    bpool_ = add("branch_pool", basic(in, pool_features, 1, g));
  }
  Tensor forward(const Tensor& x) override {
    return cat({(*b1x1_)(x), (*b5x5_2_)((*b5x5_1_)(x)), (*b3dbl_3_)((*b3dbl_2_)((*b3dbl_1_)(x))),
                (*bpool_)(avg_pool2d(x, pool(3, 1, 1)))},
               1);
  }
  std::string type_name() const override { return "InceptionA"; }

 private:
  std::shared_ptr<Module> b1x1_, b5x5_1_, b5x5_2_, b3dbl_1_, b3dbl_2_, b3dbl_3_, bpool_;
};

class InceptionB : public Block {
 public:
  InceptionB(int64_t in, Generator* g) {
    b3x3_ = add("branch3x3", basic(in, 384, 3, g, 2));
    b3dbl_1_ = add("branch3x3dbl_1", basic(in, 64, 1, g));
    b3dbl_2_ = add("branch3x3dbl_2", basic(64, 96, 3, g, 1, 1));
    b3dbl_3_ = add("branch3x3dbl_3", basic(96, 96, 3, g, 2));
  }
  Tensor forward(const Tensor& x) override {
    return cat({(*b3x3_)(x), (*b3dbl_3_)((*b3dbl_2_)((*b3dbl_1_)(x))), max_pool2d(x, pool(3, 2, 0))}, 1);
  }
  std::string type_name() const override { return "InceptionB"; }

 private:
  std::shared_ptr<Module> b3x3_, b3dbl_1_, b3dbl_2_, b3dbl_3_;
};

class InceptionC : public Block {
 public:
  InceptionC(int64_t in, int64_t c7, Generator* g) {
    b1x1_ = add("branch1x1", basic(in, 192, 1, g));
    b7_[0] = add("branch7x7_1", basic(in, c7, 1, g));
    b7_[1] = add("branch7x7_2", basic(c7, c7, {1, 7}, {1, 1}, {0, 3}, g));
    b7_[2] = add("branch7x7_3", basic(c7, 192, {7, 1}, {1, 1}, {3, 0}, g));
    b7dbl_[0] = add("branch7x7dbl_1", basic(in, c7, 1, g));
    b7dbl_[1] = add("branch7x7dbl_2", basic(c7, c7, {7, 1}, {1, 1}, {3, 0}, g));
    b7dbl_[2] = add("branch7x7dbl_3", basic(c7, c7, {1, 7}, {1, 1}, {0, 3}, g));
    b7dbl_[3] = add("branch7x7dbl_4", basic(c7, c7, {7, 1}, {1, 1}, {3, 0}, g));
    b7dbl_[4] = add("branch7x7dbl_5", basic(c7, 192, {1, 7}, {1, 1}, {0, 3}, g));
    bpool_ = add("branch_pool", basic(in, 192, 1, g));
  }
  Tensor forward(const Tensor& x) override {
    Tensor b7 = x, b7dbl = x;
    for (auto& m : b7_) b7 = (*m)(b7);
    for (auto& m : b7dbl_) b7dbl = (*m)(b7dbl);
    return cat({(*b1x1_)(x), b7, b7dbl, (*bpool_)(avg_pool2d(x, pool(3, 1, 1)))}, 1);
  }
  std::string type_name() const override { return "InceptionC"; }

 private:
  std::shared_ptr<Module> b1x1_, b7_[3], b7dbl_[5], bpool_;
};

class InceptionD : public Block {
 public:
  InceptionD(int64_t in, Generator* g) {
    b3_[0] = add("branch3x3_1", basic(in, 192, 1, g));
    b3_[1] = add("branch3x3_2", basic(192, 320, 3, g, 2));
    b7_[0] = add("branch7x7x3_1", basic(in, 192, 1, g));
    b7_[1] = add("branch7x7x3_2", basic(192, 192, {1, 7}, {1, 1}, {0, 3}, g));
    b7_[2] = add("branch7x7x3_3", basic(192, 192, {7, 1}, {1, 1}, {3, 0}, g));
    b7_[3] = add("branch7x7x3_4", basic(192, 192, 3, g, 2));
  }
  Tensor forward(const Tensor& x) override {
    Tensor b3 = (*b3_[1])((*b3_[0])(x)), b7 = x;
    for (auto& m : b7_) b7 = (*m)(b7);
    return cat({b3, b7, max_pool2d(x, pool(3, 2, 0))}, 1);
  }
  std::string type_name() const override { return "InceptionD"; }

 private:
  std::shared_ptr<Module> b3_[2], b7_[4];
};

class InceptionE : public Block {
 public:
  InceptionE(int64_t in, Generator* g) {
    b1x1_ = add("branch1x1", basic(in, 320, 1, g));
    b3_1_ = add("branch3x3_1", basic(in, 384, 1, g));
    b3_2a_ = add("branch3x3_2a", basic(384, 384, {1, 3}, {1, 1}, {0, 1}, g));
    b3_2b_ = add("branch3x3_2b", basic(384, 384, {3, 1}, {1, 1}, {1, 0}, g));
    b3dbl_1_ = add("branch3x3dbl_1", basic(in, 448, 1, g));
    b3dbl_2_ = add("branch3x3dbl_2", basic(448, 384, 3, g, 1, 1));
    b3dbl_3a_ = add("branch3x3dbl_3a", basic(384, 384, {1, 3}, {1, 1}, {0, 1}, g));
    b3dbl_3b_ = add("branch3x3dbl_3b", basic(384, 384, {3, 1}, {1, 1}, {1, 0}, g));
    bpool_ = add("branch_pool", basic(in, 192, 1, g));
  }
  Tensor forward(const Tensor& x) override {
    Tensor b3 = (*b3_1_)(x);
    b3 = cat({(*b3_2a_)(b3), (*b3_2b_)(b3)}, 1);  // (N, 768, H, W)
    Tensor b3dbl = (*b3dbl_2_)((*b3dbl_1_)(x));
    b3dbl = cat({(*b3dbl_3a_)(b3dbl), (*b3dbl_3b_)(b3dbl)}, 1);  // (N, 768, H, W)
    return cat({(*b1x1_)(x), b3, b3dbl, (*bpool_)(avg_pool2d(x, pool(3, 1, 1)))}, 1);
  }
  std::string type_name() const override { return "InceptionE"; }

 private:
  std::shared_ptr<Module> b1x1_, b3_1_, b3_2a_, b3_2b_, b3dbl_1_, b3dbl_2_, b3dbl_3a_, b3dbl_3b_, bpool_;
};

class InceptionAux : public Block {
 public:
  InceptionAux(int64_t in, int64_t num_classes, Generator* g) {
    conv0 = std::static_pointer_cast<ConvBnRelu>(add("conv0", basic(in, 128, 1, g)));
    conv1 = std::static_pointer_cast<ConvBnRelu>(add("conv1", basic(128, 768, 5, g)));
    fc = std::static_pointer_cast<Linear>(add("fc", std::make_shared<Linear>(768, num_classes, true, g)));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = avg_pool2d(x, pool(5, 3, 0));   // (N, 768, 5, 5)
    h = (*conv1)((*conv0)(h));                 // (N, 768, 1, 1)
    h = flatten(adaptive_avg_pool2d(h, {1, 1}), 1);
    return (*fc)(h);                           // (N, num_classes)
  }
  std::string type_name() const override { return "InceptionAux"; }

  std::shared_ptr<ConvBnRelu> conv0, conv1;
  std::shared_ptr<Linear> fc;
};

}  // namespace

InceptionV3::InceptionV3(const ModelOptions& options, const InceptionV3Options& v3) {
  check_model_options(options, "InceptionV3");
  Generator* g = options.generator;
  stem_[0] = register_module("Conv2d_1a_3x3", basic(options.in_channels, 32, 3, g, 2));
  stem_[1] = register_module("Conv2d_2a_3x3", basic(32, 32, 3, g));
  stem_[2] = register_module("Conv2d_2b_3x3", basic(32, 64, 3, g, 1, 1));
  // maxpool1 (3, stride 2) is functional: torchvision's module has no parameters.
  stem_[3] = register_module("Conv2d_3b_1x1", basic(64, 80, 1, g));
  stem_[4] = register_module("Conv2d_4a_3x3", basic(80, 192, 3, g));
  mixed_[0] = register_module("Mixed_5b", std::make_shared<InceptionA>(192, 32, g));
  mixed_[1] = register_module("Mixed_5c", std::make_shared<InceptionA>(256, 64, g));
  mixed_[2] = register_module("Mixed_5d", std::make_shared<InceptionA>(288, 64, g));
  mixed_[3] = register_module("Mixed_6a", std::make_shared<InceptionB>(288, g));
  mixed_[4] = register_module("Mixed_6b", std::make_shared<InceptionC>(768, 128, g));
  mixed_[5] = register_module("Mixed_6c", std::make_shared<InceptionC>(768, 160, g));
  mixed_[6] = register_module("Mixed_6d", std::make_shared<InceptionC>(768, 160, g));
  mixed_[7] = register_module("Mixed_6e", std::make_shared<InceptionC>(768, 192, g));
  std::shared_ptr<InceptionAux> aux;
  if (v3.aux_logits) aux_ = aux = register_module("AuxLogits", std::make_shared<InceptionAux>(768, options.num_classes, g));
  mixed_[8] = register_module("Mixed_7a", std::make_shared<InceptionD>(768, g));
  mixed_[9] = register_module("Mixed_7b", std::make_shared<InceptionE>(1280, g));
  mixed_[10] = register_module("Mixed_7c", std::make_shared<InceptionE>(2048, g));
  dropout_ = register_module("dropout", std::make_shared<Dropout>(v3.dropout, g));
  fc_ = register_module("fc", std::make_shared<Linear>(2048, options.num_classes, true, g));

  // torchvision's Inception3.__init__ initialisation (init_weights=True).
  for (auto& [name, m] : named_modules()) {
    const double std = (aux && m == aux->conv1->conv.get()) ? 0.01 : (aux && m == aux->fc.get()) ? 0.001 : 0.1;
    if (auto* c = dynamic_cast<Conv2d*>(m)) {
      init::trunc_normal_(c->weight, 0.0, std, -2.0, 2.0, g);
    } else if (auto* l = dynamic_cast<Linear*>(m)) {
      init::trunc_normal_(l->weight, 0.0, std, -2.0, 2.0, g);
    } else if (auto* bn = dynamic_cast<BatchNorm2d*>(m)) {
      init::ones_(bn->weight);
      init::zeros_(bn->bias);
    }
  }
}

std::pair<Tensor, Tensor> InceptionV3::forward_with_aux(const Tensor& x) {
  Tensor h = (*stem_[2])((*stem_[1])((*stem_[0])(x)));  // (N, 64, 147, 147)
  h = max_pool2d(h, pool(3, 2, 0));                      // (N, 64, 73, 73)
  h = (*stem_[4])((*stem_[3])(h));                       // (N, 192, 71, 71)
  h = max_pool2d(h, pool(3, 2, 0));                      // (N, 192, 35, 35)
  for (int i = 0; i < 8; ++i) h = (*mixed_[i])(h);       // (N, 768, 17, 17)
  Tensor aux;
  if (aux_ && is_training()) aux = (*aux_)(h);           // (N, num_classes)
  for (int i = 8; i < 11; ++i) h = (*mixed_[i])(h);      // (N, 2048, 8, 8)
  h = adaptive_avg_pool2d(h, {1, 1});
  h = flatten((*dropout_)(h), 1);                        // (N, 2048)
  return {(*fc_)(h), aux};
}

Tensor InceptionV3::forward(const Tensor& x) { return forward_with_aux(x).first; }

std::shared_ptr<InceptionV3> inception_v3(const ModelOptions& options, const InceptionV3Options& v3) {
  return std::make_shared<InceptionV3>(options, v3);
}

}  // namespace loupe::nn
