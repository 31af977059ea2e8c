// Tensor printing, following PyTorch's torch/_tensor_str.py with its default print options
// (precision 4, threshold 1000, edge items 3, line width 80):
//
//   tensor([[1.0000, 2.5000],          floats: 4 decimals, right-aligned to the widest element
//           [3.0000, 4.0000]])
//   tensor([1., 2.])                   all integer-valued floats: "1." style
//   tensor([1.0000e-05, 1.0000e+00])   scientific when max/min > 1000, max > 1e8 or min < 1e-4
//   tensor([ True, False])             bools; ints print as integers
//   tensor([0, 1, 2,  ..., 7, 8, 9])   more than 1000 elements: 3 edge items per dim and "..."
//   tensor([1., 2.], dtype=float64)    a dtype suffix unless float32, int64 or bool
//   tensor([], size=(0, 3))            empty tensors show their size unless 1-d
//
// The format (fixed, integer or scientific) and the width are decided once from all the elements
// that will be shown (nonzero finite ones only), so columns line up. Nonfinite values print as
// nan / inf / -inf. f16 and bf16 print through float32 as PyTorch does.
// Tests: tests/tensor/test_print.cpp
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "tensor/tensor.hpp"

namespace loupe {

namespace {

constexpr int kPrecision = 4;
constexpr int64_t kThreshold = 1000;
constexpr int64_t kEdgeItems = 3;
constexpr int64_t kLineWidth = 80;

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exponent = (h >> 10) & 0x1F;
  const uint32_t mantissa = h & 0x3FF;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24
    const float v = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -v : v;
  }
  if (exponent == 31) return std::bit_cast<float>(sign | 0x7F800000u | (mantissa << 13));  // inf / nan
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

float bfloat16_to_float(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

// One element, read as whichever of the three kinds the dtype is.
struct Element {
  double real = 0;   // floating dtypes
  int64_t whole = 0;  // int64 and bool
};

Element read_element(const char* base, int64_t offset, DType dtype) {
  Element e;
  switch (dtype) {
    case DType::f32: e.real = reinterpret_cast<const float*>(base)[offset]; break;
    case DType::f64: e.real = reinterpret_cast<const double*>(base)[offset]; break;
    case DType::i64: e.whole = reinterpret_cast<const int64_t*>(base)[offset]; break;
    case DType::b8: e.whole = reinterpret_cast<const bool*>(base)[offset] ? 1 : 0; break;
    case DType::f16: e.real = half_to_float(reinterpret_cast<const uint16_t*>(base)[offset]); break;
    case DType::bf16: e.real = bfloat16_to_float(reinterpret_cast<const uint16_t*>(base)[offset]); break;
  }
  return e;
}

// printf-style formatting with Python's spelling of nonfinite values ("nan", never "-nan").
std::string format_double(const char* format, double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buffer[512];
  std::snprintf(buffer, sizeof(buffer), format, kPrecision, v);
  return buffer;
}

// Decides how every element is written (PyTorch's _Formatter).
class Formatter {
 public:
  Formatter(DType dtype, const std::vector<Element>& shown) : dtype_(dtype) {
    if (dtype == DType::i64 || dtype == DType::b8) {
      for (const Element& e : shown) width_ = std::max(width_, format_plain(e).size());
      return;
    }
    std::vector<double> finite;  // nonzero finite values decide the mode
    for (const Element& e : shown) {
      if (std::isfinite(e.real) && e.real != 0) finite.push_back(e.real);
    }
    if (finite.empty()) return;
    double min_abs = INFINITY, max_abs = 0;
    for (double v : finite) {
      min_abs = std::min(min_abs, std::abs(v));
      max_abs = std::max(max_abs, std::abs(v));
      if (v != std::ceil(v)) int_mode_ = false;
    }
    const bool wide_range = max_abs / min_abs > 1000.0 || max_abs > 1.0e8;
    sci_mode_ = int_mode_ ? wide_range : wide_range || min_abs < 1.0e-4;
    for (double v : finite) {
      // An integer-mode value gets a "." appended.
      const size_t size = sci_mode_ ? format_double("%.*e", v).size()
                          : int_mode_ ? format_double("%.0f", v).size() + 1
                                      : format_double("%.*f", v).size();
      width_ = std::max(width_, size);
    }
  }

  size_t width() const { return width_; }

  std::string format(const Element& e) const {
    std::string s = format_plain(e);
    if (s.size() < width_) s.insert(0, width_ - s.size(), ' ');
    return s;
  }

 private:
  std::string format_plain(const Element& e) const {
    if (dtype_ == DType::b8) return e.whole ? "True" : "False";
    if (dtype_ == DType::i64) return std::to_string(e.whole);
    if (sci_mode_) return format_double("%.*e", e.real);
    if (int_mode_) return format_double("%.0f", e.real) + (std::isfinite(e.real) ? "." : "");
    return format_double("%.*f", e.real);
  }

  DType dtype_;
  bool int_mode_ = true;
  bool sci_mode_ = false;
  size_t width_ = 1;
};

// Walks the tensor the way PyTorch's printer does, with "..." where a summarised dim is cut.
class Printer {
 public:
  explicit Printer(const Tensor& t)
      : t_(t), base_(static_cast<const char*>(t.storage()->data())), summarize_(t.numel() > kThreshold) {}

  std::string str() {
    std::vector<Element> shown;
    collect(0, t_.offset(), shown);
    formatter_ = std::make_unique<Formatter>(t_.dtype(), shown);
    return block(0, t_.offset(), /*indent=*/7);  // strlen("tensor(")
  }

 private:
  // The indices shown along a dim of this size: all, or the edges with -1 marking "...".
  std::vector<int64_t> shown_indices(int64_t size) const {
    std::vector<int64_t> indices;
    if (summarize_ && size > 2 * kEdgeItems) {
      for (int64_t i = 0; i < kEdgeItems; ++i) indices.push_back(i);
      indices.push_back(-1);
      for (int64_t i = size - kEdgeItems; i < size; ++i) indices.push_back(i);
    } else {
      for (int64_t i = 0; i < size; ++i) indices.push_back(i);
    }
    return indices;
  }

  void collect(int64_t d, int64_t offset, std::vector<Element>& out) const {
    if (d == t_.dim()) {
      out.push_back(read_element(base_, offset, t_.dtype()));
      return;
    }
    for (int64_t i : shown_indices(t_.shape()[d])) {
      if (i >= 0) collect(d + 1, offset + i * t_.strides()[d], out);
    }
  }

  std::string block(int64_t d, int64_t offset, int64_t indent) const {
    const int64_t ndim = t_.dim();
    if (ndim == 0) return formatter_->format(read_element(base_, offset, t_.dtype()));
    std::vector<std::string> parts;
    for (int64_t i : shown_indices(t_.shape()[d])) {
      if (i < 0) {
        parts.push_back(d == ndim - 1 ? " ..." : "...");
      } else if (d == ndim - 1) {
        parts.push_back(formatter_->format(read_element(base_, offset + i * t_.strides()[d], t_.dtype())));
      } else {
        parts.push_back(block(d + 1, offset + i * t_.strides()[d], indent + 1));
      }
    }
    std::string out = "[";
    if (d == ndim - 1) {  // a row of elements, wrapped to the line width
      const int64_t element_length = static_cast<int64_t>(formatter_->width()) + 2;
      const int64_t per_line = std::max<int64_t>(1, (kLineWidth - indent) / element_length);
      for (size_t i = 0; i < parts.size(); ++i) {
        if (i > 0) out += i % per_line == 0 ? ",\n" + std::string(indent + 1, ' ') : ", ";
        out += parts[i];
      }
    } else {  // sub-blocks, one blank line more per extra dim
      const std::string separator = "," + std::string(ndim - d - 1, '\n') + std::string(indent + 1, ' ');
      for (size_t i = 0; i < parts.size(); ++i) out += (i > 0 ? separator : "") + parts[i];
    }
    return out + "]";
  }

  const Tensor& t_;
  const char* base_;
  bool summarize_;
  std::unique_ptr<Formatter> formatter_;
};

std::string shape_tuple(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

// Appends ", suffix" pieces, starting a new line when one would pass the line width.
std::string add_suffixes(const std::string& body, const std::vector<std::string>& suffixes) {
  std::string out = body;
  const size_t newline = body.rfind('\n');
  int64_t last_line = static_cast<int64_t>(body.size()) -
                      (newline == std::string::npos ? -1 : static_cast<int64_t>(newline)) + 1;
  for (const std::string& suffix : suffixes) {
    const int64_t length = static_cast<int64_t>(suffix.size());
    if (last_line + length + 2 > kLineWidth) {
      out += ",\n" + std::string(7, ' ') + suffix;
      last_line = 7 + length;
    } else {
      out += ", " + suffix;
      last_line += length + 2;
    }
  }
  return out + ")";
}

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  LOUPE_CHECK(device().is_cpu(), "str: tensor is on ", device().str(), "; copy it to the CPU to print it");
  std::vector<std::string> suffixes;
  std::string body;
  if (numel() == 0) {
    // No elements to show the dtype by, so any non-default dtype is named.
    if (dim() != 1) suffixes.push_back("size=" + shape_tuple(shape()));
    if (dtype() != DType::f32) suffixes.push_back(std::string("dtype=") + dtype_name(dtype()));
    body = "[]";
  } else {
    if (dtype() != DType::f32 && dtype() != DType::i64 && dtype() != DType::b8) {
      suffixes.push_back(std::string("dtype=") + dtype_name(dtype()));
    }
    body = Printer(*this).str();
  }
  return add_suffixes("tensor(" + body, suffixes);
}

std::ostream& operator<<(std::ostream& out, const Tensor& tensor) { return out << tensor.str(); }

}  // namespace loupe
