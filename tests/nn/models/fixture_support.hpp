// Helpers for the model tests: where the fixture files are, the deterministic fill formula that
// tests/fixtures/make_fixtures.py also uses (documented there and in tests/fixtures/README.md),
// and the key-list files.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "nn/module.hpp"

namespace loupe::test {

// tests/fixtures, found from this source file's path (as the compiler saw it) or by walking up
// from the working directory; LOUPE_FIXTURES_DIR overrides both.
inline std::string fixtures_dir() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("LOUPE_FIXTURES_DIR")) return env;
  std::vector<fs::path> candidates;
  const fs::path here = fs::path(__FILE__).parent_path();  // tests/nn/models
  candidates.push_back(here / ".." / ".." / "fixtures");
  for (fs::path dir = fs::current_path(); !dir.empty(); dir = dir.parent_path()) {
    candidates.push_back(dir / "tests" / "fixtures");
    candidates.push_back(dir / ".." / "tests" / "fixtures");
    if (dir == dir.parent_path()) break;
  }
  for (const fs::path& c : candidates) {
    std::error_code ec;
    if (fs::exists(c / "make_fixtures.py", ec)) return c.lexically_normal().string();
  }
  FAIL("tests/fixtures not found (set LOUPE_FIXTURES_DIR)");
  return "";
}

inline std::string fixture_path(const std::string& name) { return fixtures_dir() + "/" + name; }

// --- the fill formula of make_fixtures.py ---

inline uint32_t fnv1a32(const std::string& text) {
  uint32_t h = 2166136261u;
  for (unsigned char c : text) h = (h ^ c) * 16777619u;
  return h;
}

inline std::vector<double> formula_values(const std::string& name, int64_t n, double offset, double scale) {
  const uint32_t h = fnv1a32(name);
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    uint32_t x = h ^ static_cast<uint32_t>(static_cast<uint64_t>(i) * 0x9E3779B1u);
    x ^= x >> 16;
    x *= 0x85EBCA6Bu;
    x ^= x >> 13;
    x *= 0xC2B2AE35u;
    x ^= x >> 16;
    const double u = static_cast<double>(x) / 4294967296.0;
    out[static_cast<size_t>(i)] = offset + scale * (2.0 * u - 1.0);
  }
  return out;
}

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The value every state tensor gets (see make_fixtures.py's formula_tensor).
inline Tensor formula_tensor(const std::string& name, const Tensor& like) {
  const Shape& s = like.shape();
  if (ends_with(name, "num_batches_tracked")) return zeros(s, like.dtype());
  double offset = 0.0, scale = 0.2;
  if (s.size() == 4) {
    scale = std::sqrt(6.0 / static_cast<double>(s[1] * s[2] * s[3]));
  } else if (s.size() == 2) {
    scale = 1.0 / std::sqrt(static_cast<double>(s[1]));
  } else if (s.size() == 1 && ends_with(name, "running_var")) {
    offset = 1.0, scale = 0.5;
  } else if (s.size() == 1 && ends_with(name, "weight")) {
    offset = 1.0, scale = 0.2;
  }
  return from_values(formula_values(name, like.numel(), offset, scale), s, like.dtype());
}

inline void fill_with_formula(nn::Module& model) {
  nn::StateDict state;
  for (const auto& [name, t] : model.named_state()) state[name] = formula_tensor(name, t);
  model.load_state_dict(state);
}

inline Tensor formula_input(const Shape& shape, DType dtype = DType::f32) {
  return from_values(formula_values("input", shape_numel(shape), 0.0, 1.0), shape, dtype);
}

// --- key lists: one "name dtype d0,d1,..." line per state-dict entry, in PyTorch's order ---

struct KeyEntry {
  std::string name, dtype;
  Shape shape;
};

inline std::vector<KeyEntry> load_keys(const std::string& file) {
  std::ifstream in(fixture_path(file));
  REQUIRE_MESSAGE(in.good(), "cannot open fixture ", file);
  std::vector<KeyEntry> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream fields(line);
    KeyEntry e;
    std::string dims;
    fields >> e.name >> e.dtype >> dims;
    std::istringstream ds(dims);
    for (std::string d; std::getline(ds, d, ',');) e.shape.push_back(std::stoll(d));
    out.push_back(e);
  }
  return out;
}

inline std::string dtype_tag(DType d) { return d == DType::i64 ? "i64" : d == DType::f32 ? "f32" : dtype_name(d); }

}  // namespace loupe::test
