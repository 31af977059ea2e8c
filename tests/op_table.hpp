// The op table: every op of the catalogue registered once, with sample inputs and an independent
// f64 reference. tests/test_op_table.cpp runs the generic checks over every entry:
//   forward (float32 and float64) against the reference, contiguous vs non-contiguous inputs,
//   zero-size inputs where the entry gives them, and f64 gradcheck of differentiable entries.
// Adding an op = one OpCase in the family's tests/op_table_<family>.cpp.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "tensor/tensor.hpp"

namespace loupe::test {

using Inputs = std::vector<Tensor>;
using OpFn = std::function<Tensor(const Inputs&)>;

struct OpCase {
  std::string name;                               // "add/broadcast"
  std::function<Inputs(DType)> make_inputs;       // sample inputs; floating ones in the given dtype
  OpFn op;                                        // the differentiable loupe op under test
  OpFn reference;                                 // independent implementation on f64 inputs
  bool differentiable = true;                     // run gradcheck
  double atol_f32 = 1e-5, rtol_f32 = 1e-4;        // forward tolerance in float32
  double atol_f64 = 1e-10, rtol_f64 = 1e-9;       // forward tolerance in float64
  std::function<Inputs(DType)> make_empty_inputs; // optional zero-size sample
  bool check_noncontiguous = true;
  double gradcheck_atol = 1e-6, gradcheck_rtol = 1e-4;
};

std::vector<OpCase>& op_table();

// Registers cases at static-initialisation time: static const bool r = register_ops({...});
bool register_ops(std::vector<OpCase> cases);

}  // namespace loupe::test
