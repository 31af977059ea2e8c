// Op table entries: scaled_dot_product_attention (grouped KV heads, bool and additive masks, both
// causal alignments, rows with every key masked, tiles longer than the kernel's) and
// rotary_embedding. The references are plain loops in f64, independent of the engine's kernels.
// Extra cases: the fused CPU kernel against the reference path (forward and backward, float32 and
// float64, long causal rows), thread-count independence, fully masked rows, PyTorch's causal
// alignment, and errors.
#include <cmath>
#include <limits>
#include <sstream>

#include "tensor/cpu/attention.hpp"
#include "tests/op_table.hpp"
#include "tests/support.hpp"

namespace loupe::test {
namespace {


constexpr double kInf = std::numeric_limits<double>::infinity();

// Plain-loop attention over f64 values. mask: undefined, bool (true = may attend) or additive,
// broadcast to (B, H, Tq, Tk). Rows with no allowed key give zeros.
Tensor attention_ref(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, CausalMode causal,
                     double scale = -1.0) {
  const int64_t B = q.size(0), H = q.size(1), Tq = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), Tk = k.size(2), Dv = v.size(3);
  if (scale < 0) scale = 1.0 / std::sqrt(static_cast<double>(D));
  const auto qv = values(q), kv = values(k), vv = values(v);
  const std::vector<double> mv = mask.defined() ? values(mask) : std::vector<double>{};
  const bool is_bool = mask.defined() && mask.dtype() == DType::b8;
  const int64_t offset = causal == CausalMode::bottom_right ? Tk - Tq : 0;
  std::vector<double> out(static_cast<size_t>(B * H * Tq * Dv), 0.0);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      const int64_t hk = h / (H / Hkv);
      for (int64_t i = 0; i < Tq; ++i) {
        std::vector<double> s(static_cast<size_t>(Tk));
        for (int64_t j = 0; j < Tk; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) {
            dot += qv[static_cast<size_t>(((b * H + h) * Tq + i) * D + d)] *
                   kv[static_cast<size_t>(((b * Hkv + hk) * Tk + j) * D + d)];
          }
          double sj = scale * dot;
          if (mask.defined()) {
            const double m = ref::at_broadcast(mv, mask.shape(), {b, h, i, j});
            sj = is_bool ? (m != 0 ? sj : -kInf) : sj + m;
          }
          if (causal != CausalMode::none && j > i + offset) sj = -kInf;
          s[static_cast<size_t>(j)] = sj;
        }
        double mx = -kInf;
        for (double x : s) mx = std::max(mx, x);
        if (mx == -kInf) continue;  // no allowed key: zeros
        double total = 0;
        for (double& x : s) total += (x = std::exp(x - mx));
        for (int64_t j = 0; j < Tk; ++j) {
          for (int64_t d = 0; d < Dv; ++d) {
            out[static_cast<size_t>(((b * H + h) * Tq + i) * Dv + d)] +=
                s[static_cast<size_t>(j)] / total * vv[static_cast<size_t>(((b * Hkv + hk) * Tk + j) * Dv + d)];
          }
        }
      }
    }
  }
  return ref::make(out, {B, H, Tq, Dv});
}

struct AttnConfig {
  int64_t B, H, Hkv, Tq, Tk, D, Dv;
};

Inputs attention_inputs(const AttnConfig& c, DType dtype, uint64_t seed) {
  return {random_tensor({c.B, c.H, c.Tq, c.D}, dtype, -1.5, 1.5, seed),
          random_tensor({c.B, c.Hkv, c.Tk, c.D}, dtype, -1.5, 1.5, seed + 1),
          random_tensor({c.B, c.Hkv, c.Tk, c.Dv}, dtype, -1, 1, seed + 2)};
}

// A bool mask with roughly `keep` of the keys allowed; rows listed in `dead_rows` have none.
Tensor bool_mask(const Shape& shape, double keep, uint64_t seed, const std::vector<int64_t>& dead_rows = {}) {
  const auto u = values(random_tensor(shape, DType::f64, 0, 1, seed));
  std::vector<int64_t> bits(u.size());
  const int64_t tk = shape.back(), tq = shape[shape.size() - 2];
  for (size_t i = 0; i < u.size(); ++i) {
    const int64_t row = static_cast<int64_t>(i) / tk % tq;
    bool dead = false;
    for (int64_t r : dead_rows) dead = dead || r == row;
    bits[i] = !dead && u[i] < keep ? 1 : 0;
  }
  return ops::to_dtype(from_values(bits, shape), DType::b8);
}

// An additive mask: small values, with -inf on about a quarter of the entries.
Tensor additive_mask(const Shape& shape, uint64_t seed) {
  auto u = values(random_tensor(shape, DType::f64, -1, 1, seed));
  for (double& x : u) x = x > 0.5 ? -kInf : x;
  return ref::make(u, shape);
}

// An entry whose inputs are {q, k, v} (+ the mask when mask_as_input).
OpCase attention_case(const std::string& name, AttnConfig c, CausalMode causal, Tensor mask = Tensor(),
                      bool mask_as_input = false, double scale = -1.0) {
  OpCase e;
  e.name = name;
  e.make_inputs = [c, mask, mask_as_input](DType dtype) {
    Inputs in = attention_inputs(c, dtype, 61);
    if (mask_as_input) in.push_back(mask.dtype() == DType::b8 ? mask : ops::to_dtype(mask, dtype));
    return in;
  };
  e.op = [causal, mask, mask_as_input, scale](const Inputs& in) {
    AttentionOptions o;
    o.mask = mask_as_input ? in[3] : mask;
    o.causal = causal;
    o.scale = scale;
    return scaled_dot_product_attention(in[0], in[1], in[2], o);
  };
  e.reference = [causal, mask, mask_as_input, scale](const Inputs& in) {
    return attention_ref(in[0], in[1], in[2], mask_as_input ? in[3] : mask, causal, scale);
  };
  // A floating mask among the inputs would be differentiated by gradcheck; it is a constant.
  e.differentiable = !(mask_as_input && mask.dtype() != DType::b8);
  e.make_empty_inputs = [c](DType dtype) {
    AttnConfig z = c;
    z.B = 0;
    return attention_inputs(z, dtype, 61);
  };
  if (mask_as_input) e.make_empty_inputs = nullptr;
  return e;
}

// Plain-loop RoPE (half-split) in f64.
Tensor rotary_ref(const Tensor& x, const Tensor& positions, double theta) {
  const int64_t B = x.size(0), H = x.size(1), T = x.size(2), D = x.size(3), half = D / 2;
  const auto xv = values(x), pv = values(positions);
  std::vector<double> out(xv.size());
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t t = 0; t < T; ++t) {
        const double pos = pv[static_cast<size_t>(positions.dim() == 2 ? b * T + t : t)];
        const size_t base = static_cast<size_t>(((b * H + h) * T + t) * D);
        for (int64_t i = 0; i < half; ++i) {
          const double a = pos * std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(D));
          const double x1 = xv[base + static_cast<size_t>(i)], x2 = xv[base + static_cast<size_t>(i + half)];
          out[base + static_cast<size_t>(i)] = x1 * std::cos(a) - x2 * std::sin(a);
          out[base + static_cast<size_t>(i + half)] = x2 * std::cos(a) + x1 * std::sin(a);
        }
      }
    }
  }
  return ref::make(out, x.shape());
}

OpCase rotary_case(const std::string& name, Shape shape, Tensor positions, double theta) {
  OpCase e;
  e.name = name;
  e.make_inputs = [shape, positions](DType dtype) { return Inputs{random_tensor(shape, dtype, -1, 1, 71), positions}; };
  e.op = [theta](const Inputs& in) { return rotary_embedding(in[0], in[1], theta); };
  e.reference = [theta](const Inputs& in) { return rotary_ref(in[0], in[1], theta); };
  return e;
}

const bool registered = register_ops({
    attention_case("attention/mha", {2, 2, 2, 5, 5, 4, 4}, CausalMode::none),
    attention_case("attention/gqa_causal", {1, 4, 2, 6, 6, 3, 3}, CausalMode::top_left),
    attention_case("attention/mqa_value_dim", {2, 3, 1, 4, 6, 4, 5}, CausalMode::none, Tensor(), false, 0.7),
    attention_case("attention/causal_bottom_right", {1, 2, 1, 3, 7, 4, 4}, CausalMode::bottom_right),
    // Tq > Tk: bottom-right leaves the first rows with no key (zeros); top-left does not.
    attention_case("attention/causal_bottom_right_dead_rows", {1, 2, 2, 6, 4, 3, 3}, CausalMode::bottom_right),
    attention_case("attention/causal_top_left_tall", {1, 2, 2, 6, 4, 3, 3}, CausalMode::top_left),
    // A bool mask among the inputs (so its strides are exercised), rows 1 and 3 fully masked.
    attention_case("attention/bool_mask", {2, 2, 1, 5, 6, 4, 4}, CausalMode::none,
                   bool_mask({2, 1, 5, 6}, 0.6, 62, {1, 3}), true),
    attention_case("attention/bool_mask_causal", {1, 2, 2, 5, 5, 4, 4}, CausalMode::top_left,
                   bool_mask({5, 5}, 0.7, 63), true),
    attention_case("attention/additive_mask", {2, 2, 2, 4, 6, 4, 4}, CausalMode::none, additive_mask({1, 2, 4, 6}, 64),
                   true),
    attention_case("attention/additive_mask_grad", {2, 2, 1, 4, 6, 4, 4}, CausalMode::top_left,
                   additive_mask({4, 6}, 65)),
    // Longer than one query tile (64) and one key tile (256) of the fused kernel.
    attention_case("attention/long_rows", {1, 2, 1, 70, 300, 4, 3}, CausalMode::bottom_right),
    rotary_case("rotary_embedding/batch_positions", {2, 3, 5, 6}, random_indices({2, 5}, 0, 50, 72), 10000.0),
    rotary_case("rotary_embedding/shared_positions", {1, 2, 4, 8}, from_values(std::vector<int64_t>{3, 0, 7, 1}, {4}),
                500.0),
});

// --- the fused kernel against the reference path ---

struct Case {
  AttnConfig c;
  CausalMode causal;
  int mask;  // 0 none, 1 bool, 2 additive
};

void compare_kernels(const Case& k, DType dtype, double atol, double rtol) {
  const AttnConfig& c = k.c;
  const Inputs in = attention_inputs(c, dtype, 81);
  AttentionOptions o;
  o.causal = k.causal;
  if (k.mask == 1) o.mask = bool_mask({c.B, 1, c.Tq, c.Tk}, 0.8, 82, {2});
  if (k.mask == 2) o.mask = ops::to_dtype(additive_mask({c.Tq, c.Tk}, 83), dtype);
  std::ostringstream label;
  label << "B" << c.B << " H" << c.H << "/" << c.Hkv << " Tq" << c.Tq << " Tk" << c.Tk << " causal "
        << static_cast<int>(k.causal) << " mask " << k.mask << " " << dtype_name(dtype);
  const std::string where = label.str();
  const ops::AttentionForward fast = ops::attention_forward(in[0], in[1], in[2], o);
  const ops::AttentionForward ref = ops::attention_forward_reference(in[0], in[1], in[2], o);
  check_close(fast.out, ref.out, atol, rtol, where + " out");
  check_close(fast.lse, ref.lse, atol, rtol, where + " lse");
  const Tensor g = random_tensor(fast.out.shape(), dtype, -1, 1, 84);
  const ops::AttentionGrads fg = ops::attention_backward(g, in[0], in[1], in[2], fast.out, fast.lse, o);
  const ops::AttentionGrads rg = ops::attention_backward_reference(g, in[0], in[1], in[2], ref.out, ref.lse, o);
  check_close(fg.dq, rg.dq, atol, rtol, where + " dq");
  check_close(fg.dk, rg.dk, atol, rtol, where + " dk");
  check_close(fg.dv, rg.dv, atol, rtol, where + " dv");
}

TEST_CASE("attention: the fused CPU kernel matches the reference path, forward and backward") {
  const std::vector<Case> cases = {
      {{2, 4, 2, 130, 130, 16, 16}, CausalMode::top_left, 0},
      {{1, 2, 2, 64, 600, 32, 16}, CausalMode::none, 0},
      {{1, 4, 1, 100, 520, 8, 8}, CausalMode::bottom_right, 1},
      {{2, 2, 2, 300, 257, 8, 8}, CausalMode::top_left, 2},
      {{1, 3, 3, 1, 700, 64, 64}, CausalMode::bottom_right, 0},  // one decoding step
  };
  for (const Case& k : cases) {
    compare_kernels(k, DType::f64, 1e-11, 1e-9);
    compare_kernels(k, DType::f32, 2e-5, 1e-4);
  }
}

TEST_CASE("attention: results do not depend on the thread count") {
  const Inputs in = attention_inputs({2, 4, 2, 200, 300, 16, 16}, DType::f32, 85);
  AttentionOptions o;
  o.causal = CausalMode::bottom_right;
  const auto run = [&] {
    const ops::AttentionForward f = ops::attention_forward(in[0], in[1], in[2], o);
    const ops::AttentionGrads d = ops::attention_backward(f.out, in[0], in[1], in[2], f.out, f.lse, o);
    return std::vector<Tensor>{f.out, f.lse, d.dq, d.dk, d.dv};
  };
  const int threads = num_threads();
  set_num_threads(1);
  const auto serial = run();
  set_num_threads(std::max(threads, 2));
  const auto parallel = run();
  set_num_threads(threads);
  for (size_t i = 0; i < serial.size(); ++i) check_close(parallel[i], serial[i], 0, 0, "attention " + std::to_string(i));
}

TEST_CASE("attention: rows with every key masked give zeros, lse -inf and zero gradients") {
  const Inputs raw = attention_inputs({1, 2, 2, 4, 5, 3, 3}, DType::f64, 86);
  Tensor mask = bool_mask({4, 5}, 1.1, 87, {0, 2});  // rows 0 and 2 see nothing, the others everything
  for (bool fast : {true, false}) {
    Inputs in;
    for (const Tensor& t : raw) {
      Tensor leaf = t.detach();
      leaf.set_requires_grad(true);
      in.push_back(leaf);
    }
    AttentionOptions o;
    o.mask = mask;
    const ops::AttentionForward f =
        fast ? ops::attention_forward(in[0], in[1], in[2], o) : ops::attention_forward_reference(in[0], in[1], in[2], o);
    const auto out = values(f.out), lse = values(f.lse);
    for (int64_t h = 0; h < 2; ++h) {
      for (int64_t i : {0, 2}) {
        CHECK(lse[static_cast<size_t>(h * 4 + i)] == -kInf);
        for (int64_t d = 0; d < 3; ++d) CHECK(out[static_cast<size_t>((h * 4 + i) * 3 + d)] == 0.0);
      }
      CHECK(std::isfinite(lse[static_cast<size_t>(h * 4 + 1)]));
    }
    // A gradient only on the dead rows gives zero gradients everywhere.
    std::vector<double> gv(24, 0.0);
    for (int64_t h = 0; h < 2; ++h) gv[static_cast<size_t>((h * 4 + 2) * 3)] = 1.0;
    const Tensor g = ref::make(gv, {1, 2, 4, 3});
    const ops::AttentionGrads d = fast ? ops::attention_backward(g, in[0], in[1], in[2], f.out, f.lse, o)
                                       : ops::attention_backward_reference(g, in[0], in[1], in[2], f.out, f.lse, o);
    for (const Tensor& t : {d.dq, d.dk, d.dv}) check_close(t, zeros_like(t), 0, 0, "dead-row gradient");
  }
  // No keys at all (Tk = 0): every row is dead.
  const Inputs none = attention_inputs({1, 1, 1, 3, 0, 2, 2}, DType::f32, 88);
  const Tensor y = scaled_dot_product_attention(none[0], none[1], none[2]);
  check_close(y, zeros({1, 1, 3, 2}), 0, 0, "Tk = 0");
}

TEST_CASE("attention: causal alignments follow PyTorch (top-left) and the KV-cache convention (bottom-right)") {
  // Top-left with Tq = 2, Tk = 3: query 0 sees key 0 only, so its output is v[0].
  const Inputs in = attention_inputs({1, 1, 1, 2, 3, 2, 2}, DType::f64, 89);
  AttentionOptions o;
  o.causal = CausalMode::top_left;
  const auto y = values(scaled_dot_product_attention(in[0], in[1], in[2], o));
  const auto v = values(in[2]);
  CHECK(y[0] == doctest::Approx(v[0]).epsilon(1e-12));
  CHECK(y[1] == doctest::Approx(v[1]).epsilon(1e-12));
  // Bottom-right with Tq = 1 is no mask at all (the last query sees every key).
  o.causal = CausalMode::bottom_right;
  const Tensor last_q = ops::narrow(in[0], 2, 1, 1);
  check_close(scaled_dot_product_attention(last_q, in[1], in[2], o), scaled_dot_product_attention(last_q, in[1], in[2]),
              1e-14, 1e-12, "bottom-right, one query");
}

TEST_CASE("attention: bad arguments raise loupe::Error") {
  const Inputs in = attention_inputs({1, 4, 2, 3, 5, 4, 4}, DType::f32, 90);
  CHECK_THROWS_WITH_AS(scaled_dot_product_attention(ops::reshape(in[0], {4, 3, 4}), in[1], in[2]),
                       doctest::Contains("scaled_dot_product_attention: expected q (B, H, Tq, D)"), Error);
  CHECK_THROWS_WITH_AS(scaled_dot_product_attention(random_tensor({1, 3, 3, 4}), in[1], in[2]),
                       doctest::Contains("H must be a multiple of Hkv"), Error);
  CHECK_THROWS_AS(scaled_dot_product_attention(in[0], in[1], random_tensor({1, 2, 4, 4})), Error);
  CHECK_THROWS_WITH_AS(scaled_dot_product_attention(in[0], ops::to_dtype(in[1], DType::f64), in[2]),
                       doctest::Contains("one floating dtype"), Error);
  AttentionOptions o;
  o.mask = zeros({3, 4});
  CHECK_THROWS_WITH_AS(scaled_dot_product_attention(in[0], in[1], in[2], o), doctest::Contains("does not broadcast"),
                       Error);
  o.mask = zeros({3, 5}, DType::i64);
  CHECK_THROWS_WITH_AS(scaled_dot_product_attention(in[0], in[1], in[2], o), doctest::Contains("must be bool"), Error);
  CHECK_THROWS_WITH_AS(rotary_embedding(random_tensor({1, 2, 3, 5}), zeros({1, 3}, DType::i64)),
                       doctest::Contains("D even"), Error);
  CHECK_THROWS_WITH_AS(rotary_embedding(random_tensor({1, 2, 3, 4}), zeros({1, 3})), doctest::Contains("int64"), Error);
  CHECK_THROWS_WITH_AS(rotary_embedding(random_tensor({1, 2, 3, 4}), zeros({2, 3}, DType::i64)),
                       doctest::Contains("must be (B, T), (1, T) or (T)"), Error);
}

TEST_CASE("rotary_embedding: position 0 is the identity, the inverse undoes it, norms are kept") {
  const Tensor x = random_tensor({1, 2, 3, 8}, DType::f64, -1, 1, 91);
  check_close(rotary_embedding(x, zeros({1, 3}, DType::i64)), x, 1e-15, 0, "position 0");
  const Tensor pos = random_indices({1, 3}, 0, 1000, 92);
  const Tensor y = rotary_embedding(x, pos);
  check_close(ops::rotary_embedding(y, pos, 10000.0, true), x, 1e-12, 0, "inverse");
  check_close(ops::sum(ops::mul(y, y), {-1}), ops::sum(ops::mul(x, x), {-1}), 1e-12, 1e-12, "norms");
  // Relative positions: <rope(q, m), rope(k, n)> depends only on m - n.
  const Tensor q = random_tensor({1, 1, 1, 8}, DType::f64, -1, 1, 93), k = random_tensor({1, 1, 1, 8}, DType::f64, -1, 1, 94);
  const auto at = [](int64_t p) { return from_values(std::vector<int64_t>{p}, {1, 1}); };
  const double a = ops::sum(ops::mul(rotary_embedding(q, at(10)), rotary_embedding(k, at(3)))).item();
  const double b = ops::sum(ops::mul(rotary_embedding(q, at(107)), rotary_embedding(k, at(100)))).item();
  CHECK(a == doctest::Approx(b).epsilon(1e-10));
}

}  // namespace
}  // namespace loupe::test
