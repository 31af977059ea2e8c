// Tensor printing: outputs pinned character for character against what PyTorch prints for the
// same values with its default print options (only the dtype suffix differs: "dtype=float64"
// where PyTorch writes "dtype=torch.float64").
#include <doctest/doctest.h>

#include <cstring>
#include <sstream>

#include "tests/support.hpp"

namespace loupe::test {

namespace {

Tensor f32(std::vector<double> v, const Shape& shape) { return from_values(v, shape, DType::f32); }
Tensor f32(std::vector<double> v) { return from_values(v, {static_cast<int64_t>(v.size())}, DType::f32); }

}  // namespace

TEST_CASE("print: floats use 4 decimals, aligned") {
  CHECK(f32({1, 2.5, 3, 4}, {2, 2}).str() ==
        "tensor([[1.0000, 2.5000],\n"
        "        [3.0000, 4.0000]])");
  CHECK(f32({-1.5, 2.25}).str() == "tensor([-1.5000,  2.2500])");
  CHECK(f32({1.5, NAN}).str() == "tensor([1.5000,    nan])");
  CHECK(f32({0.5, 123.456}).str() == "tensor([  0.5000, 123.4560])");
  CHECK(scalar_tensor(3.5).str() == "tensor(3.5000)");
}

TEST_CASE("print: integer-valued floats, zeros and nonfinite values") {
  CHECK(f32({1, 2, 3}).str() == "tensor([1., 2., 3.])");
  CHECK(f32({1, -20, 300}).str() == "tensor([  1., -20., 300.])");
  CHECK(f32({1, NAN, INFINITY, -INFINITY}).str() == "tensor([1., nan, inf, -inf])");
  CHECK(f32({-0.0, 0.0}).str() == "tensor([-0., 0.])");
  CHECK(scalar_tensor(2.0).str() == "tensor(2.)");
  CHECK(f32({NAN}).str() == "tensor([nan])");
}

TEST_CASE("print: scientific notation when the range demands") {
  CHECK(f32({1e-5, 1}).str() == "tensor([1.0000e-05, 1.0000e+00])");
  CHECK(f32({1e-5, -1}).str() == "tensor([ 1.0000e-05, -1.0000e+00])");
  CHECK(f32({1, 1e9}).str() == "tensor([1.0000e+00, 1.0000e+09])");     // integers above 1e8
  CHECK(f32({1, 2000}).str() == "tensor([1.0000e+00, 2.0000e+03])");    // max / min > 1000
  CHECK(f32({1, 1000}).str() == "tensor([   1., 1000.])");               // exactly 1000: not yet
  // min < 1e-4 turns scientific: 1e-4 rounded to float32 is just below 1e-4, in float64 it is not.
  CHECK(f32({0.05, 1e-4}).str() == "tensor([5.0000e-02, 1.0000e-04])");
  CHECK(from_values(std::vector<double>{0.05, 1e-4}, {2}, DType::f64).str() ==
        "tensor([0.0500, 0.0001], dtype=float64)");
}

TEST_CASE("print: ints and bools") {
  CHECK(arange(3).str() == "tensor([0, 1, 2])");
  CHECK(from_values(std::vector<int64_t>{-1, 10, 100}, {3}).str() == "tensor([ -1,  10, 100])");
  CHECK(ops::gt(f32({1, -1}), scalar_tensor(0.0)).str() == "tensor([ True, False])");
  CHECK(ops::gt(f32({1, -1}, {2, 1}), scalar_tensor(0.0)).str() == "tensor([[ True],\n        [False]])");
  CHECK(scalar_tensor(7, DType::i64).str() == "tensor(7)");
  CHECK(scalar_tensor(1, DType::b8).str() == "tensor(True)");
  // Any layout prints in logical order.
  CHECK(ops::transpose(from_values(std::vector<int64_t>{1, 2, 3, 4}, {2, 2}), 0, 1).str() ==
        "tensor([[1, 3],\n        [2, 4]])");
}

TEST_CASE("print: dtype suffixes and empty tensors") {
  CHECK(from_values(std::vector<double>{1, 2}, {2}, DType::f64).str() == "tensor([1., 2.], dtype=float64)");
  CHECK(zeros({0}).str() == "tensor([])");
  CHECK(zeros({0, 3}).str() == "tensor([], size=(0, 3))");
  CHECK(zeros({0}, DType::i64).str() == "tensor([], dtype=int64)");
  CHECK(zeros({2, 0, 1}, DType::b8).str() == "tensor([], size=(2, 0, 1), dtype=bool)");
  CHECK(scalar_tensor(1.0, DType::f64).str() == "tensor(1., dtype=float64)");
  // A suffix that would pass 80 columns goes on its own line.
  std::vector<double> eighths;
  for (int i = 0; i <= 8; ++i) eighths.push_back(i / 8.0);
  CHECK(from_values(eighths, {9}, DType::f64).str() ==
        "tensor([0.0000, 0.1250, 0.2500, 0.3750, 0.5000, 0.6250, 0.7500, 0.8750, 1.0000],\n"
        "       dtype=float64)");
  // f16 / bf16 print through float32.
  Tensor half = Tensor::empty({3}, DType::f16);
  const uint16_t half_bits[3] = {0x3C00, 0xC000, 0x0000};  // 1, -2, 0
  std::memcpy(half.raw_data(), half_bits, sizeof half_bits);
  CHECK(half.str() == "tensor([ 1., -2.,  0.], dtype=float16)");
  Tensor bf = Tensor::empty({2}, DType::bf16);
  const uint16_t bf_bits[2] = {0x3FC0, 0x4049};  // 1.5, 3.140625
  std::memcpy(bf.raw_data(), bf_bits, sizeof bf_bits);
  CHECK(bf.str() == "tensor([1.5000, 3.1406], dtype=bfloat16)");
}

TEST_CASE("print: rows wrap at 80 columns, higher dims get blank lines") {
  std::vector<double> v;
  for (int i = 0; i < 20; ++i) v.push_back(i / 19.0);
  CHECK(f32(v).str() ==
        "tensor([0.0000, 0.0526, 0.1053, 0.1579, 0.2105, 0.2632, 0.3158, 0.3684, 0.4211,\n"
        "        0.4737, 0.5263, 0.5789, 0.6316, 0.6842, 0.7368, 0.7895, 0.8421, 0.8947,\n"
        "        0.9474, 1.0000])");
  CHECK(arange(0, 8, 1, DType::f32).str() == "tensor([0., 1., 2., 3., 4., 5., 6., 7.])");
  CHECK(ops::view(arange(0, 8, 1, DType::f32), {2, 2, 2}).str() ==
        "tensor([[[0., 1.],\n"
        "         [2., 3.]],\n"
        "\n"
        "        [[4., 5.],\n"
        "         [6., 7.]]])");
}

TEST_CASE("print: more than 1000 elements are summarised with 3 edge items") {
  CHECK(arange(2000).str() == "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])");
  CHECK(ops::view(arange(2000), {2, 1000}).str() ==
        "tensor([[   0,    1,    2,  ...,  997,  998,  999],\n"
        "        [1000, 1001, 1002,  ..., 1997, 1998, 1999]])");
  CHECK(ops::view(arange(1100), {100, 11}).str() ==
        "tensor([[   0,    1,    2,  ...,    8,    9,   10],\n"
        "        [  11,   12,   13,  ...,   19,   20,   21],\n"
        "        [  22,   23,   24,  ...,   30,   31,   32],\n"
        "        ...,\n"
        "        [1067, 1068, 1069,  ..., 1075, 1076, 1077],\n"
        "        [1078, 1079, 1080,  ..., 1086, 1087, 1088],\n"
        "        [1089, 1090, 1091,  ..., 1097, 1098, 1099]])");
  CHECK(ops::view(arange(1050), {7, 1, 150}).str() ==
        "tensor([[[   0,    1,    2,  ...,  147,  148,  149]],\n"
        "\n"
        "        [[ 150,  151,  152,  ...,  297,  298,  299]],\n"
        "\n"
        "        [[ 300,  301,  302,  ...,  447,  448,  449]],\n"
        "\n"
        "        ...,\n"
        "\n"
        "        [[ 600,  601,  602,  ...,  747,  748,  749]],\n"
        "\n"
        "        [[ 750,  751,  752,  ...,  897,  898,  899]],\n"
        "\n"
        "        [[ 900,  901,  902,  ..., 1047, 1048, 1049]]])");
  // The width comes from the shown elements only: the hidden middle (up to 1e6) does not widen.
  Tensor t = ops::mul(arange(0, 1001, 1, DType::f32), 1.0);
  ops::fill_(ops::slice(t, 0, 500, 501), 1e6);
  CHECK(t.str() == "tensor([   0.,    1.,    2.,  ...,  998.,  999., 1000.])");
  // Exactly 1000 elements are printed in full.
  CHECK(arange(1000).str().find("...") == std::string::npos);
}

TEST_CASE("print: operator<< writes str()") {
  std::ostringstream out;
  out << f32({1, 2});
  CHECK(out.str() == "tensor([1., 2.])");
  CHECK(Tensor().str() == "tensor(undefined)");
}

}  // namespace loupe::test
