// The generic checks over the op table (see op_table.hpp).
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "tests/op_table.hpp"
#include "tests/support.hpp"

namespace loupe::test {

std::vector<OpCase>& op_table() {
  static std::vector<OpCase> table;
  return table;
}

bool register_ops(std::vector<OpCase> cases) {
  for (auto& c : cases) op_table().push_back(std::move(c));
  return true;
}

namespace {

Inputs as_f64(const Inputs& inputs) {
  Inputs out;
  for (const Tensor& t : inputs) out.push_back(t.defined() && is_floating(t.dtype()) ? ops::to_dtype(t, DType::f64) : t);
  return out;
}

}  // namespace

TEST_CASE("op table: every entry has a name, inputs, an op and a reference") {
  CHECK(op_table().size() > 0);
  std::set<std::string> ops;
  for (const OpCase& c : op_table()) ops.insert(c.name.substr(0, c.name.find('/')));
  MESSAGE(op_table().size() << " op-table entries covering " << ops.size() << " ops");
  for (const OpCase& c : op_table()) {
    INFO(c.name);
    CHECK(!c.name.empty());
    CHECK(c.make_inputs);
    CHECK(c.op);
    CHECK(c.reference);
  }
}

TEST_CASE("op table: forward matches the f64 reference in float32 and float64") {
  for (const OpCase& c : op_table()) {
    for (DType dtype : {DType::f32, DType::f64}) {
      const Inputs inputs = c.make_inputs(dtype);
      const Tensor expected = c.reference(as_f64(inputs));
      const Tensor actual = c.op(inputs);
      const bool f32 = dtype == DType::f32;
      check_close(actual, expected, f32 ? c.atol_f32 : c.atol_f64, f32 ? c.rtol_f32 : c.rtol_f64,
                  c.name + " forward " + dtype_name(dtype));
    }
  }
}

TEST_CASE("op table: non-contiguous inputs give the same result as contiguous ones") {
  for (const OpCase& c : op_table()) {
    if (!c.check_noncontiguous) continue;
    const Inputs inputs = c.make_inputs(DType::f64);
    Inputs strided;
    for (const Tensor& t : inputs) strided.push_back(t.defined() ? noncontiguous_copy(t) : t);
    check_close(c.op(strided), c.op(inputs), 1e-12, 1e-12, c.name + " non-contiguous");
  }
}

TEST_CASE("op table: zero-size inputs") {
  for (const OpCase& c : op_table()) {
    if (!c.make_empty_inputs) continue;
    const Inputs inputs = c.make_empty_inputs(DType::f64);
    check_close(c.op(inputs), c.reference(inputs), 0, 0, c.name + " zero-size");
  }
}

TEST_CASE("op table: f64 gradcheck of every differentiable entry") {
  for (const OpCase& c : op_table()) {
    if (!c.differentiable) continue;
    GradcheckOptions options;
    options.atol = c.gradcheck_atol;
    options.rtol = c.gradcheck_rtol;
    const GradcheckResult result = gradcheck(c.op, c.make_inputs(DType::f64), options);
    INFO(c.name << ": " << result.message);
    CHECK(result.ok);
  }
}

}  // namespace loupe::test
