// Philox known answers, the random ops (uniform, normal, bernoulli, randint, permutation) and
// dropout: reproducibility, independence from the thread count, statistics and error cases.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "tensor/cpu/fast_elementwise.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {

// Restores the thread count when a test ends, even when it fails.
struct ThreadCountGuard {
  int saved = num_threads();
  ~ThreadCountGuard() { set_num_threads(saved); }
};

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

double variance_of(const std::vector<double>& v) {
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return s / static_cast<double>(v.size());
}

}  // namespace

TEST_CASE("philox4x32-10 matches the Random123 known-answer vectors") {
  // Random123 tests/kat_vectors: counter words (c0 c1 c2 c3), key words (k0 k1) -> output.
  using Words = std::array<uint32_t, 4>;
  CHECK(philox4x32(0, 0, 0) == Words{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
  CHECK(philox4x32(~0ull, ~0ull, ~0ull) == Words{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
  // counter 243f6a88 85a308d3 13198a2e 03707344, key a4093822 299f31d0 (digits of pi)
  CHECK(philox4x32(0x299f31d0a4093822ull, 0x85a308d3243f6a88ull, 0x0370734413198a2eull) ==
        Words{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
}

TEST_CASE("random: element i uses counter block first + i / 4, word i % 4") {
  Generator g(1234);
  g.reserve(5);  // start at a non-zero offset
  Tensor t = uniform({10}, 0.0, 1.0, DType::f32, &g);
  CHECK(g.offset() == 5 + 3);  // ceil(10 / 4) blocks reserved
  const auto v = values(t);
  for (int64_t i = 0; i < 10; ++i) {
    const uint32_t word = philox4x32(1234, 5 + static_cast<uint64_t>(i) / 4)[static_cast<size_t>(i % 4)];
    CHECK(v[static_cast<size_t>(i)] == static_cast<double>(word >> 8) * 0x1.0p-24);
  }
  // f64 uses two words (high word first) and 53 bits.
  Generator h(99);
  Tensor d = uniform({3}, 0.0, 1.0, DType::f64, &h);
  CHECK(h.offset() == 2);
  const auto block0 = philox4x32(99, 0), block1 = philox4x32(99, 1);
  const auto top53 = [](uint32_t hi, uint32_t lo) {
    return static_cast<double>(((static_cast<uint64_t>(hi) << 32) | lo) >> 11) * 0x1.0p-53;
  };
  CHECK(values(d)[0] == top53(block0[0], block0[1]));
  CHECK(values(d)[1] == top53(block0[2], block0[3]));
  CHECK(values(d)[2] == top53(block1[0], block1[1]));
}

TEST_CASE("random: same seed reproduces, consecutive calls differ, manual_seed resets") {
  Generator a(7), b(7);
  CHECK(values(normal({100}, 0, 1, DType::f32, &a)) == values(normal({100}, 0, 1, DType::f32, &b)));
  CHECK(values(uniform({100}, 0, 1, DType::f32, &a)) != values(uniform({100}, 0, 1, DType::f32, &a)));
  Generator c(8);
  CHECK(values(randint(0, 1000, {50}, &c)) != values(randint(0, 1000, {50}, &b)));

  manual_seed(42);
  const auto first = values(uniform({20}));
  const auto second = values(uniform({20}));
  manual_seed(42);
  CHECK(values(uniform({20})) == first);
  CHECK(values(uniform({20})) == second);
  CHECK(first != second);

  // set_state restores a checkpointed stream exactly.
  Generator g(3);
  uniform({9}, 0, 1, DType::f32, &g);
  const uint64_t offset = g.offset();
  const auto next = values(normal({9}, 0, 1, DType::f64, &g));
  g.set_state(3, offset);
  CHECK(values(normal({9}, 0, 1, DType::f64, &g)) == next);
}

TEST_CASE("random: results do not depend on the thread count") {
  ThreadCountGuard guard;
  const int64_t n = 200'003;  // several parallel chunks, not a multiple of 4
  auto draw_all = [&] {
    Generator g(2024);
    std::vector<std::vector<double>> out;
    out.push_back(values(uniform({n}, -2, 3, DType::f32, &g)));
    out.push_back(values(uniform({n}, -2, 3, DType::f64, &g)));
    out.push_back(values(normal({n}, 1, 2, DType::f32, &g)));
    out.push_back(values(normal({n}, 1, 2, DType::f64, &g)));
    out.push_back(values(bernoulli({n}, 0.3, DType::f32, &g)));
    out.push_back(values(randint(-5, 17, {n}, &g)));
    out.push_back(values(permutation(n, &g)));
    return out;
  };
  set_num_threads(1);
  const auto one = draw_all();
  for (int threads : {2, 4}) {
    set_num_threads(threads);
    const auto many = draw_all();
    for (size_t k = 0; k < one.size(); ++k) CHECK_MESSAGE(many[k] == one[k], "op ", k, " threads ", threads);
  }
}

TEST_CASE("normal float32: the vectorised Box-Muller stays within a few ulp of the float64 formula") {
  // The fast path (cpu::fast::box_muller) against the reference kernels' float64 C-library
  // formula, on the same words: the error is measured in units of 2^-24 (std + |z|), the size
  // of a float32 ulp at the value, over enough draws to reach the tails (|z| up to 5.8).
  const int64_t n = 400'003;
  Generator a(77), b(77);
  const std::vector<double> fast = values(normal({n}, 0.25, 1.5, DType::f32, &a));
  cpu::fast::use_reference_kernels(true);
  const std::vector<double> exact = values(normal({n}, 0.25, 1.5, DType::f32, &b));
  cpu::fast::use_reference_kernels(false);
  CHECK(a.offset() == b.offset());
  double worst = 0, largest = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double scale = (1.5 + std::abs(exact[i] - 0.25)) * 0x1p-24;
    worst = std::max(worst, std::abs(fast[i] - exact[i]) / scale);
    largest = std::max(largest, std::abs(exact[i] - 0.25) / 1.5);
  }
  MESSAGE("normal f32 fast vs float64 formula: " << worst << " units; largest |z| " << largest);
  CHECK(worst <= 4.0);  // measured 2.98
  CHECK(largest > 4.0);
}

TEST_CASE("uniform and normal: range and moments") {
  Generator g(11);
  const int64_t n = 400'000;
  for (DType dtype : {DType::f32, DType::f64}) {
    CAPTURE(dtype);
    const auto u = values(uniform({n}, -1.0, 3.0, dtype, &g));
    CHECK(*std::min_element(u.begin(), u.end()) >= -1.0);
    CHECK(*std::max_element(u.begin(), u.end()) < 3.0);
    CHECK(mean_of(u) == doctest::Approx(1.0).epsilon(0.01));
    CHECK(variance_of(u) == doctest::Approx(16.0 / 12.0).epsilon(0.01));  // (b - a)^2 / 12

    const auto z = values(normal({n}, 2.0, 0.5, dtype, &g));
    CHECK(std::abs(mean_of(z) - 2.0) < 0.005);  // standard error 0.5 / sqrt(n) ~ 0.0008
    CHECK(variance_of(z) == doctest::Approx(0.25).epsilon(0.01));
    // About 95.45% of a normal lies within two standard deviations.
    const double inside = static_cast<double>(std::count_if(z.begin(), z.end(), [](double x) {
                            return std::abs(x - 2.0) < 1.0;
                          })) / static_cast<double>(n);
    CHECK(inside == doctest::Approx(0.9545).epsilon(0.005));
  }
  // The interval is half-open even when rounding to float would land on high.
  const auto narrow = values(uniform({100'000}, 1.0, 1.0 + 1e-7, DType::f32, &g));
  for (double x : narrow) REQUIRE(x < static_cast<double>(static_cast<float>(1.0 + 1e-7)));
  CHECK(values(uniform({3}, 2.0, 2.0, DType::f32, &g)) == std::vector<double>{2, 2, 2});
  CHECK(uniform({2, 0, 3}).shape() == Shape{2, 0, 3});
  CHECK(normal({}, 0, 1).dim() == 0);
}

TEST_CASE("bernoulli: frequency, dtypes, tensor probabilities") {
  Generator g(5);
  const int64_t n = 200'000;
  const auto b = values(bernoulli({n}, 0.25, DType::f64, &g));
  CHECK(std::all_of(b.begin(), b.end(), [](double x) { return x == 0 || x == 1; }));
  CHECK(mean_of(b) == doctest::Approx(0.25).epsilon(0.02));
  CHECK(bernoulli({4}, 0.5, DType::b8, &g).dtype() == DType::b8);
  CHECK(bernoulli({4}, 0.5, DType::i64, &g).dtype() == DType::i64);
  CHECK(values(bernoulli({100}, 0.0, DType::f32, &g)) == std::vector<double>(100, 0.0));
  CHECK(values(bernoulli({100}, 1.0, DType::f32, &g)) == std::vector<double>(100, 1.0));
  // The mask does not depend on the dtype: 32-bit comparison for all of them.
  Generator g1(9), g2(9);
  CHECK(values(bernoulli({50}, 0.4, DType::f32, &g1)) == values(bernoulli({50}, 0.4, DType::b8, &g2)));

  // Per-element probabilities, read through any layout.
  Tensor p = ops::expand(from_values(std::vector<double>{0.0, 0.9, 1.0}, {3, 1}, DType::f64), {3, 20000});
  Tensor draws = bernoulli(p, &g);
  CHECK(draws.shape() == Shape{3, 20000});
  CHECK(draws.dtype() == DType::f64);
  const auto d = values(draws);
  CHECK(mean_of({d.begin(), d.begin() + 20000}) == 0.0);
  CHECK(mean_of({d.begin() + 20000, d.begin() + 40000}) == doctest::Approx(0.9).epsilon(0.01));
  CHECK(mean_of({d.begin() + 40000, d.end()}) == 1.0);
}

TEST_CASE("randint covers its range; permutation is a permutation") {
  Generator g(17);
  const auto r = values(randint(-3, 4, {10000}, &g));
  std::set<double> seen(r.begin(), r.end());
  CHECK(seen == std::set<double>{-3, -2, -1, 0, 1, 2, 3});
  CHECK(randint(0, 1, {5}, &g).dtype() == DType::i64);
  CHECK(values(randint(0, 1, {5}, &g)) == std::vector<double>(5, 0.0));
  // A range wider than int64 can hold.
  const auto wide = to_vector<int64_t>(randint(INT64_MIN, INT64_MAX, {1000}, &g));
  CHECK(std::count_if(wide.begin(), wide.end(), [](int64_t x) { return x < 0; }) > 400);
  CHECK(std::count_if(wide.begin(), wide.end(), [](int64_t x) { return x > 0; }) > 400);

  for (int64_t n : {0, 1, 2, 10, 1000}) {
    auto p = to_vector<int64_t>(permutation(n, &g));
    REQUIRE(p.size() == static_cast<size_t>(n));
    std::sort(p.begin(), p.end());
    for (int64_t i = 0; i < n; ++i) CHECK(p[static_cast<size_t>(i)] == i);
  }
  // Shuffled: not the identity, and each position takes many values across draws.
  const auto p = to_vector<int64_t>(permutation(1000, &g));
  int64_t fixed_points = 0;
  for (int64_t i = 0; i < 1000; ++i) fixed_points += p[static_cast<size_t>(i)] == i;
  CHECK(fixed_points < 10);  // expected 1
  std::vector<int64_t> first_counts(5, 0);
  for (int k = 0; k < 5000; ++k) ++first_counts[static_cast<size_t>(to_vector<int64_t>(permutation(5, &g))[0])];
  for (int64_t c : first_counts) CHECK(c == doctest::Approx(1000).epsilon(0.1));
}

TEST_CASE("random ops: errors name the op") {
  CHECK_THROWS_WITH_AS(uniform({2}, 3.0, 1.0), doctest::Contains("uniform: expected low <= high"), Error);
  CHECK_THROWS_AS(uniform({2}, 0, INFINITY), Error);
  CHECK_THROWS_WITH_AS(uniform({2}, 0, 1, DType::i64), doctest::Contains("uniform"), Error);
  CHECK_THROWS_WITH_AS(uniform({2, -1}), doctest::Contains("uniform: negative size in shape"), Error);
  CHECK_THROWS_AS(normal({2}, 0, -1), Error);
  CHECK_THROWS_AS(normal({2}, 0, 1, DType::b8), Error);
  CHECK_THROWS_AS(normal({2}, NAN, 1), Error);
  CHECK_THROWS_AS(bernoulli({2}, 1.5), Error);
  CHECK_THROWS_AS(bernoulli({2}, NAN), Error);
  CHECK_THROWS_WITH_AS(bernoulli(from_values(std::vector<double>{0.5, -0.1}, {2})),
                       doctest::Contains("bernoulli: expected every p in [0, 1]"), Error);
  CHECK_THROWS_AS(bernoulli(arange(3)), Error);
  CHECK_THROWS_WITH_AS(randint(5, 5, {2}), doctest::Contains("randint: expected low < high"), Error);
  CHECK_THROWS_AS(permutation(-1), Error);
}

TEST_CASE("dropout: mask, scale, gradient, reproducibility") {
  const int64_t n = 100'000;
  Tensor x = ops::add(zeros({n}, DType::f64), 2.0).set_requires_grad();
  Generator g(31);
  Tensor y = dropout(x, 0.3, true, &g);
  REQUIRE(y.grad_fn() != nullptr);
  CHECK(y.grad_fn()->kind() == autograd::OpKind::dropout);
  const auto v = values(y);
  const double kept_value = 2.0 / 0.7;
  int64_t kept = 0;
  for (double e : v) {
    REQUIRE((e == 0.0 || std::abs(e - kept_value) < 1e-12));
    kept += e != 0.0;
  }
  CHECK(static_cast<double>(kept) / n == doctest::Approx(0.7).epsilon(0.01));

  // The gradient is the mask times the scale: exactly y / x here.
  Tensor up = random_tensor({n}, DType::f64, -1, 1, 3);
  backward(y, up);
  const auto grad = values(x.grad());
  const auto u = values(up);
  for (size_t i = 0; i < v.size(); ++i) {
    REQUIRE(grad[i] == doctest::Approx(v[i] == 0.0 ? 0.0 : u[i] / 0.7));
  }

  // A seeded generator reproduces the mask; f32 input works too; layouts are respected.
  Generator g1(5), g2(5);
  CHECK(values(dropout(x.detach(), 0.5, true, &g1)) == values(dropout(x.detach(), 0.5, true, &g2)));
  Tensor x32 = random_tensor({4, 6}, DType::f32, 1, 2);
  Generator g3(6), g4(6);
  Tensor strided = dropout(noncontiguous_copy(x32), 0.5, true, &g3);
  check_close(strided, dropout(x32, 0.5, true, &g4), 0, 0, "dropout strided");
  CHECK(strided.dtype() == DType::f32);
}

TEST_CASE("dropout: eval, p = 0, p = 1 and errors") {
  Tensor x = random_tensor({3, 4}, DType::f64).set_requires_grad();
  CHECK(values(dropout(x, 0.5, false)) == values(x));
  CHECK(values(dropout(x, 0.0, true)) == values(x));
  Generator g(1);
  const uint64_t before = g.offset();
  dropout(x, 0.5, false, &g);
  CHECK(g.offset() == before);  // eval draws nothing

  Tensor y = dropout(x, 1.0, true, &g);
  CHECK(values(y) == std::vector<double>(12, 0.0));
  backward(sum(y));
  CHECK(values(x.grad()) == std::vector<double>(12, 0.0));

  CHECK_THROWS_WITH_AS(dropout(x, 1.5, true), doctest::Contains("dropout: expected 0 <= p <= 1"), Error);
  CHECK_THROWS_AS(dropout(x, -0.1, false), Error);
  CHECK_THROWS_AS(dropout(x, NAN, true), Error);
  CHECK_THROWS_AS(dropout(arange(4), 0.5, true), Error);
}

TEST_CASE("dropout: gradcheck with a fixed mask") {
  Tensor x = random_tensor({3, 5}, DType::f64).set_requires_grad();
  auto f = [](const std::vector<Tensor>& in) {
    Generator g(77);  // the same mask on every evaluation
    return dropout(in[0], 0.4, true, &g);
  };
  CHECK(gradcheck(f, {x}).ok);
}

}  // namespace loupe::test
