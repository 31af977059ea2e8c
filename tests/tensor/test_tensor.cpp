// Tensor basics: shapes, strides, views sharing storage, dtype promotion, creation, copies.
#include <doctest/doctest.h>

#include "tests/support.hpp"

namespace loupe::test {

TEST_CASE("tensor: contiguous strides, numel, item") {
  Tensor t = zeros({2, 3, 4});
  CHECK(t.strides() == Strides{12, 4, 1});
  CHECK(t.numel() == 24);
  CHECK(t.is_contiguous());
  CHECK(scalar_tensor(2.5).item() == 2.5);
  CHECK_THROWS_AS(t.item(), Error);
}

TEST_CASE("tensor: storage is 64-byte aligned") {
  for (int64_t n : {1, 3, 17, 1000}) {
    Tensor t = zeros({n});
    CHECK(reinterpret_cast<uintptr_t>(t.storage()->data()) % 64 == 0);
  }
}

TEST_CASE("dtype promotion follows PyTorch") {
  CHECK(promote_types(DType::f32, DType::f64) == DType::f64);
  CHECK(promote_types(DType::i64, DType::f32) == DType::f32);
  CHECK(promote_types(DType::b8, DType::i64) == DType::i64);
  CHECK(promote_types(DType::f16, DType::bf16) == DType::f32);
  CHECK(promote_with_scalar(DType::i64, true) == DType::f32);
  CHECK(promote_with_scalar(DType::f32, true) == DType::f32);
  CHECK(ops::add(arange(3), scalar_tensor(0.5, DType::f32)).dtype() == DType::f32);
  CHECK(ops::div(arange(3), arange(1, 4, 1)).dtype() == DType::f32);
  CHECK(ops::add(arange(3), 1.0).dtype() == DType::i64);
  CHECK(ops::add(arange(3), 1.5).dtype() == DType::f32);
}

TEST_CASE("views share storage and write through") {
  Tensor base = arange(0, 12, 1, DType::f32);
  Tensor m = ops::view(base, {3, 4});
  Tensor t = ops::transpose(m, 0, 1);
  CHECK(t.shape() == Shape{4, 3});
  CHECK(!t.is_contiguous());
  CHECK(t.storage() == base.storage());
  Tensor column = ops::select(m, 1, 2);  // elements 2, 6, 10
  CHECK(values(column) == std::vector<double>{2, 6, 10});
  ops::fill_(column, -1.0);
  CHECK(values(base)[6] == -1.0);
  Tensor stepped = ops::slice(base, 0, 1, 12, 4);  // 1, 5, 9
  CHECK(values(stepped) == std::vector<double>{1, 5, 9});
  Tensor neg_slice = ops::slice(arange(0, 12, 1, DType::f32), 0, -3, 12);
  CHECK(values(neg_slice) == std::vector<double>{9, 10, 11});
}

TEST_CASE("reshape views when it can and copies when it must") {
  Tensor m = ops::view(arange(0, 6, 1, DType::f32), {2, 3});
  Tensor r = ops::reshape(m, {3, 2});
  CHECK(r.storage() == m.storage());
  Tensor t = ops::transpose(m, 0, 1);  // (3, 2), non-contiguous
  CHECK_THROWS_AS(ops::view(t, {6}), Error);
  Tensor flat = ops::reshape(t, {6});
  CHECK(flat.storage() != m.storage());
  CHECK(values(flat) == std::vector<double>{0, 3, 1, 4, 2, 5});
  CHECK(ops::reshape(m, {-1}).shape() == Shape{6});
  CHECK_THROWS_AS(ops::reshape(m, {4, -1}), Error);
  // A view over split dims of a permuted tensor: (2, 3) -> transpose -> unsqueeze keeps sharing.
  CHECK(ops::unsqueeze(t, 1).shape() == Shape{3, 1, 2});
}

TEST_CASE("expand and broadcasting use stride 0") {
  Tensor row = from_values(std::vector<double>{1, 2, 3}, {1, 3});
  Tensor e = ops::expand(row, {4, 3});
  CHECK(e.strides() == Strides{0, 1});
  CHECK(values(ops::sum(e, {0})) == std::vector<double>{4, 8, 12});
  CHECK_THROWS_AS(ops::expand(row, {4, 2}), Error);
  CHECK_THROWS_AS(ops::add(zeros({2, 3}), zeros({3, 2})), Error);
}

TEST_CASE("squeeze, unsqueeze, flatten, permute") {
  Tensor t = zeros({2, 1, 3, 1});
  CHECK(ops::squeeze(t).shape() == Shape{2, 3});
  CHECK(ops::squeeze(t, 1).shape() == Shape{2, 3, 1});
  CHECK(ops::squeeze(t, 0).shape() == Shape{2, 1, 3, 1});
  CHECK(ops::unsqueeze(zeros({2, 3}), -1).shape() == Shape{2, 3, 1});
  CHECK(ops::flatten(zeros({2, 3, 4}), 1).shape() == Shape{2, 12});
  CHECK(ops::permute(zeros({2, 3, 4}), {2, 0, 1}).shape() == Shape{4, 2, 3});
  CHECK_THROWS_AS(ops::permute(zeros({2, 3}), {0, 0}), Error);
}

TEST_CASE("creation: arange, linspace, eye, full") {
  CHECK(values(arange(5)) == std::vector<double>{0, 1, 2, 3, 4});
  CHECK(values(arange(1, 2, 0.25, DType::f64)) == std::vector<double>{1, 1.25, 1.5, 1.75});
  auto l = values(linspace(0, 1, 5, DType::f64));
  CHECK(l == std::vector<double>{0, 0.25, 0.5, 0.75, 1});
  CHECK(values(eye(2, 3)) == std::vector<double>{1, 0, 0, 0, 1, 0});
  CHECK(values(full({2}, 7.0, DType::i64)) == std::vector<double>{7, 7});
}

TEST_CASE("copies convert dtypes and materialise views") {
  Tensor f = from_values(std::vector<double>{1.7, -2.2, 0.0}, {3}, DType::f64);
  CHECK(values(ops::to_dtype(f, DType::i64)) == std::vector<double>{1, -2, 0});
  CHECK(values(ops::to_dtype(f, DType::b8)) == std::vector<double>{1, 1, 0});
  Tensor t = ops::transpose(ops::view(arange(0, 6, 1, DType::f32), {2, 3}), 0, 1);
  Tensor c = ops::contiguous(t);
  CHECK(c.is_contiguous());
  CHECK(values(c) == values(t));
}

TEST_CASE("parallel_for covers the range exactly once") {
  std::vector<int> hits(100000, 0);
  parallel_for(0, 100000, 1000, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) ++hits[static_cast<size_t>(i)];
  });
  CHECK(std::all_of(hits.begin(), hits.end(), [](int h) { return h == 1; }));
}

}  // namespace loupe::test

#include "tensor/cpu/host_allocator.hpp"

namespace loupe::test {

TEST_CASE("host allocator: large blocks are reused, small ones are plain and aligned") {
  cpu::host_cache_clear();
  const auto before = cpu::host_cache_stats();
  void* first = nullptr;
  {
    Tensor big = Tensor::empty({1 << 20}, DType::f32);  // 4 MiB
    first = big.storage()->data();
    CHECK(reinterpret_cast<uintptr_t>(first) % 64 == 0);
  }
  CHECK(cpu::host_cache_stats().cached_bytes >= (size_t(4) << 20));
  Tensor again = Tensor::empty({1 << 20}, DType::f32);
  CHECK(again.storage()->data() == first);  // the freed block came back
  CHECK(cpu::host_cache_stats().hits == before.hits + 1);
  // Values written through a reused block are the new tensor's own.
  ops::fill_(again, 3.0);
  CHECK(values(ops::sum(again))[0] == doctest::Approx(3.0 * (1 << 20)));
}

}  // namespace loupe::test
