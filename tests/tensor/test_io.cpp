// Tensor files: .npy and safetensors round trips, a byte-exact .npy, corrupt and truncated files
// (each must raise loupe::Error naming the file) and atomic writes.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <unistd.h>

#include "tensor/io/json.hpp"
#include "tensor/io/npy.hpp"
#include "tensor/io/safetensors.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {

namespace fs = std::filesystem;

// A fresh empty directory under the system temp folder, removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() / ("loupe_test_io_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
  // Names of everything in the folder (to spot leftover temporary files).
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(path)) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void check_same(const Tensor& actual, const Tensor& expected, const std::string& context) {
  CHECK_MESSAGE(actual.dtype() == expected.dtype(), context);
  CHECK_MESSAGE(actual.shape() == expected.shape(), context);
  CHECK_MESSAGE(actual.is_contiguous(), context);
  CHECK_MESSAGE(values(actual) == values(expected), context);
}

// Sample tensors of every supported dtype and several shapes, including 0-d, zero-size and
// non-contiguous ones.
std::vector<std::pair<std::string, Tensor>> samples() {
  std::vector<std::pair<std::string, Tensor>> out;
  for (DType dtype : {DType::f32, DType::f64}) {
    const std::string n = dtype_name(dtype);
    out.push_back({n + "_2x3", random_tensor({2, 3}, dtype)});
    out.push_back({n + "_scalar", scalar_tensor(-2.5, dtype)});
    out.push_back({n + "_empty", zeros({0, 4}, dtype)});
    out.push_back({n + "_strided", noncontiguous_copy(random_tensor({3, 4, 5}, dtype, -3, 3, 9))});
  }
  out.push_back({"int64_vector", from_values(std::vector<int64_t>{-7, 0, 1LL << 40, INT64_MIN, INT64_MAX}, {5})});
  out.push_back({"int64_transposed", ops::transpose(random_indices({4, 3}, -100, 100), 0, 1)});
  out.push_back({"bool_2x2x2", ops::gt(random_tensor({2, 2, 2}), scalar_tensor(0.0))});
  out.push_back({"bool_scalar", scalar_tensor(1.0, DType::b8)});
  out.push_back({"int64_empty", zeros({0}, DType::i64)});
  return out;
}

// A .npy file from its parts: version, raw header text (padded here), raw data.
std::string npy_file(const std::string& header, const std::string& data, int major = 1) {
  std::string h = header;
  const size_t preamble = major == 1 ? 10 : 12;
  while ((preamble + h.size() + 1) % 64 != 0) h += ' ';
  h += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += '\0';
  for (size_t i = 0; i < preamble - 8; ++i) out += static_cast<char>((h.size() >> (8 * i)) & 0xFF);
  return out + h + data;
}

std::string le64(uint64_t v) {
  std::string s;
  for (int i = 0; i < 8; ++i) s += static_cast<char>((v >> (8 * i)) & 0xFF);
  return s;
}

// A safetensors file from a header text and a data buffer.
std::string safetensors_file(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}

std::string float_bytes(std::initializer_list<float> values) {
  std::string s;
  for (float v : values) s.append(reinterpret_cast<const char*>(&v), sizeof v);
  return s;
}

}  // namespace

TEST_CASE("npy: round trips for every dtype and shape") {
  TempDir dir;
  for (const auto& [name, t] : samples()) {
    const std::string path = dir.file(name + ".npy");
    save_npy(path, t);
    check_same(load_npy(path), t, name);
  }
}

TEST_CASE("npy: byte-exact file format") {
  TempDir dir;
  const std::string path = dir.file("exact.npy");
  save_npy(path, from_values(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3}, DType::f32));
  const std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  std::string expected = "\x93NUMPY\x01";
  expected += '\0';
  REQUIRE(header.size() == 59);  // 10 + 59 + 1 bytes, padded to 128
  expected += static_cast<char>(128 - 10);  // header length, little-endian uint16
  expected += '\0';
  expected += header + std::string(128 - 10 - header.size() - 1, ' ') + "\n";
  expected += float_bytes({1, 2, 3, 4, 5, 6});
  CHECK(read_bytes(path) == expected);

  // 1-d shapes are written as Python 1-tuples, 0-d as ().
  save_npy(path, arange(3));
  CHECK(read_bytes(path).find("'descr': '<i8', 'fortran_order': False, 'shape': (3,), }") != std::string::npos);
  save_npy(path, scalar_tensor(1, DType::b8));
  const std::string scalar = read_bytes(path);
  CHECK(scalar.find("'descr': '|b1', 'fortran_order': False, 'shape': (), }") != std::string::npos);
  CHECK(scalar.size() == 129);
  CHECK(scalar.back() == '\1');
}

TEST_CASE("npy: reads what numpy writes: versions 2.0/3.0, Fortran order, double quotes") {
  TempDir dir;
  const std::string path = dir.file("a.npy");
  const std::string data = float_bytes({1, 2, 3, 4, 5, 6});
  for (int major : {1, 2, 3}) {
    write_bytes(path, npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", data, major));
    check_same(load_npy(path), from_values(std::vector<double>{1, 2, 3, 4, 5, 6}, {3, 2}), "version");
  }
  // Fortran order: column-major bytes become a C-contiguous tensor of the same values.
  write_bytes(path, npy_file("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", data));
  check_same(load_npy(path), from_values(std::vector<double>{1, 3, 5, 2, 4, 6}, {2, 3}), "fortran");
  // Key order and spacing are free; Python 2 long integers ("3L") are accepted.
  write_bytes(path, npy_file("{\"shape\":(3L,2L),\"fortran_order\":False,\"descr\":\"<f4\"}", data));
  check_same(load_npy(path), from_values(std::vector<double>{1, 2, 3, 4, 5, 6}, {3, 2}), "python2");
  // Bool bytes other than 0/1 read as true.
  write_bytes(path, npy_file("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", std::string("\0\1\7", 3)));
  CHECK(values(load_npy(path)) == std::vector<double>{0, 1, 1});
  // Zero-size arrays need no data bytes.
  write_bytes(path, npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': (0, 5), }", ""));
  CHECK(load_npy(path).shape() == Shape{0, 5});
}

TEST_CASE("npy: corrupt files raise loupe::Error naming the file and the problem") {
  TempDir dir;
  const std::string path = dir.file("bad.npy");
  const std::string good_header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  const std::string data = float_bytes({1, 2});
  struct Case {
    std::string bytes;
    std::string message;
  };
  std::string bad_magic = npy_file(good_header, data);
  bad_magic[1] = 'X';
  std::string bad_version = npy_file(good_header, data);
  bad_version[6] = 4;
  std::string long_header = npy_file(good_header, data);
  long_header[8] = '\xff';  // header length beyond the file
  const std::vector<Case> cases = {
      {"", "truncated"},
      {"\x93NUM", "truncated"},
      {bad_magic, "bad magic"},
      {bad_version, "unsupported .npy format version 4.0"},
      {long_header, "truncated"},
      {npy_file(good_header, float_bytes({1})), "file is truncated"},
      {npy_file(good_header, float_bytes({1, 2, 3})), "unexpected bytes after the data"},
      {npy_file("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", data), "big-endian dtype '>f4'"},
      {npy_file("{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", data), "unsupported dtype '<f2'"},
      {npy_file("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", data), "unsupported dtype '<i4'"},
      {npy_file("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", data), "structured"},
      {npy_file("{'descr': '<f4', 'fortran_order': False}", data), "lacks 'shape'"},
      {npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", data), "unexpected key 'x'"},
      {npy_file("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", data), "repeats"},
      {npy_file("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", data), "True or False"},
      {npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", data), "non-negative integer"},
      {npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2,) ", data), "malformed header"},
      {npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", data), "overflows"},
      {npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", data), "too large"},
      {npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,), }", data), "truncated"},
  };
  for (const Case& c : cases) {
    write_bytes(path, c.bytes);
    CAPTURE(c.message);
    CHECK_THROWS_WITH_AS(load_npy(path), doctest::Contains(c.message.c_str()), Error);
    CHECK_THROWS_WITH_AS(load_npy(path), doctest::Contains(("load_npy: '" + path + "'").c_str()), Error);
  }
  CHECK_THROWS_WITH_AS(load_npy(dir.file("missing.npy")), doctest::Contains("cannot open"), Error);
  CHECK_THROWS_WITH_AS(load_npy(dir.path.string()), doctest::Contains("is a directory"), Error);
}

TEST_CASE("npy: writes are atomic and unsupported tensors are refused") {
  TempDir dir;
  const std::string path = dir.file("keep.npy");
  save_npy(path, arange(4));
  const std::string before = read_bytes(path);
  // Overwriting replaces the file whole.
  save_npy(path, arange(5));
  CHECK(values(load_npy(path)).size() == 5);
  save_npy(path, arange(4));
  // A refused tensor leaves the old file untouched.
  CHECK_THROWS_WITH_AS(save_npy(path, Tensor::empty({2}, DType::f16)), doctest::Contains("save_npy"), Error);
  CHECK(read_bytes(path) == before);
  // A failing rename (the target is a directory) removes the temporary file.
  fs::create_directory(dir.path / "taken");
  CHECK_THROWS_WITH_AS(save_npy(dir.file("taken"), arange(3)), doctest::Contains("cannot replace"), Error);
  CHECK(dir.listing() == std::vector<std::string>{"keep.npy", "taken"});
  CHECK_THROWS_AS(save_npy(dir.file("no/such/folder/x.npy"), arange(3)), Error);
  CHECK(dir.listing() == std::vector<std::string>{"keep.npy", "taken"});
}

TEST_CASE("safetensors: round trip of many tensors with metadata") {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  std::map<std::string, Tensor> tensors;
  for (const auto& [name, t] : samples()) tensors[name] = t;
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"note", "quote \" and \\ and \n"}};
  save_safetensors(path, tensors, metadata);
  const auto loaded = load_safetensors(path);
  REQUIRE(loaded.size() == tensors.size());
  for (const auto& [name, t] : tensors) {
    REQUIRE(loaded.count(name) == 1);
    check_same(loaded.at(name), t, name);
  }
  CHECK(load_safetensors_metadata(path) == metadata);

  // Data starts 8-byte aligned and every tensor is aligned to its element size.
  const std::string bytes = read_bytes(path);
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  CHECK(header_len % 8 == 0);

  // f16 / bf16 travel as raw bits.
  Tensor half = Tensor::empty({3}, DType::bf16);
  const uint16_t bits[3] = {0x3F80, 0xC000, 0x0000};  // 1, -2, 0
  std::memcpy(half.raw_data(), bits, sizeof bits);
  save_safetensors(path, {{"h", half}});
  const Tensor back = load_safetensors(path).at("h");
  CHECK(back.dtype() == DType::bf16);
  CHECK(std::memcmp(back.raw_data(), bits, sizeof bits) == 0);

  // No tensors at all is a valid file.
  save_safetensors(path, {});
  CHECK(load_safetensors(path).empty());
  CHECK(load_safetensors_metadata(path).empty());
}

TEST_CASE("safetensors: SafetensorsReader gives what load_safetensors and load_safetensors_metadata give") {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  std::map<std::string, Tensor> tensors;
  for (const auto& [name, t] : samples()) tensors[name] = t;
  const std::map<std::string, std::string> metadata = {{"model", "resnet18"}, {"epoch", "3"}};
  save_safetensors(path, tensors, metadata);
  SafetensorsReader reader(path);
  CHECK(reader.metadata() == load_safetensors_metadata(path));
  const auto read = reader.read_tensors();
  REQUIRE(read.size() == tensors.size());
  for (const auto& [name, t] : tensors) check_same(read.at(name), t, name);
  // A bad header is refused when the reader opens the file, before anything else is asked of it.
  write_bytes(path, safetensors_file("{\"a\":1,\"a\":2}", ""));
  CHECK_THROWS_WITH_AS(SafetensorsReader{path}, doctest::Contains("duplicate key \"a\""), Error);
}

TEST_CASE("json: a repeated key is found among many, and the message points at its second occurrence") {
  // Objects are checked for repeated keys by sorting them; this checks the sort finds the earliest
  // repeat in file order, wherever it is, and reports the byte just after it as a linear scan did.
  std::string text = "{";
  for (int i = 0; i < 200; ++i) text += "\"key" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  const std::string unique = text.substr(0, text.size() - 1) + "}";
  CHECK(json::parse(unique).members.size() == 200);
  text += "\"key150\":0,\"key7\":1}";
  const size_t after_repeat = text.find("\"key150\":0") + std::string("\"key150\"").size();
  const std::string expected = "invalid JSON at byte " + std::to_string(after_repeat) + ": duplicate key \"key150\"";
  CHECK_THROWS_WITH_AS(json::parse(text), doctest::Contains(expected.c_str()), Error);
  // Escaped spellings of the same key are the same key.
  CHECK_THROWS_WITH_AS(json::parse("{\"ab\":1,\"a\\u0062\":2}"), doctest::Contains("duplicate key \"ab\""), Error);
}

TEST_CASE("safetensors: reads a hand-made file with unicode names and padding") {
  TempDir dir;
  const std::string path = dir.file("hand.safetensors");
  const std::string header =
      "{\"b\u00e9\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
      "\"\\u00e9t\\ud83d\\ude00\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]},"
      "\"__metadata__\":{\"k\":\"v\"}}   ";
  int64_t seven = 7;
  const std::string data = std::string(reinterpret_cast<const char*>(&seven), 8) + float_bytes({1.5f, -2});
  write_bytes(path, safetensors_file(header, data));
  const auto t = load_safetensors(path);
  REQUIRE(t.size() == 2);
  CHECK(values(t.at("b\u00e9")) == std::vector<double>{1.5, -2});
  CHECK(t.at("\u00e9t\U0001F600").item() == 7);
  CHECK(load_safetensors_metadata(path).at("k") == "v");
}

TEST_CASE("safetensors: corrupt files raise loupe::Error naming the file and the problem") {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  const std::string data = float_bytes({1, 2, 3, 4});
  auto entry = [](const std::string& name, const std::string& dtype, const std::string& shape,
                  const std::string& offsets) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
  };
  // "{" + entries joined by "," + "}" (append keeps GCC 12's -Wrestrict false positive away).
  auto object = [](const std::vector<std::string>& entries) {
    std::string out = "{";
    for (size_t i = 0; i < entries.size(); ++i) out.append(i ? "," : "").append(entries[i]);
    return out.append("}");
  };
  const std::string a = entry("a", "F32", "[2]", "[0,8]");
  const std::string b = entry("b", "F32", "[2]", "[8,16]");
  struct Case {
    std::string bytes;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"", "truncated"},
      {"\x05\0\0", "truncated"},
      {le64(1000) + "{}", "file is truncated: header length 1000"},
      {le64(1ull << 40) + "{}", "100 MB limit"},
      {safetensors_file("", ""), "does not start with '{'"},
      {safetensors_file("[1]", ""), "does not start with '{'"},
      {safetensors_file("{" + a + "," + b, data), "bad JSON header"},
      {safetensors_file("{" + a + "," + b + "}x", data), "unexpected text after the value"},
      {safetensors_file("{" + a + "," + a + "}", data), "duplicate key"},
      {safetensors_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", data), "data_offsets"},
      {safetensors_file("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", data), "missing string 'dtype'"},
      {safetensors_file("{\"a\":[]}", data), "not an object"},
      {safetensors_file(object({entry("a", "I32", "[4]", "[0,16]")}), data), "unsupported dtype 'I32'"},
      {safetensors_file(object({entry("a", "F32", "[3]", "[0,16]")}), data), "needs 12 bytes"},
      {safetensors_file(object({entry("a", "F32", "[-4]", "[0,16]")}), data), "non-negative integers"},
      {safetensors_file(object({entry("a", "F32", "[2.0,2]", "[0,16]")}), data), "non-negative integers"},
      {safetensors_file(object({entry("a", "F32", "[4294967296,4294967296]", "[0,16]")}), data), "overflows"},
      {safetensors_file(object({entry("a", "F32", "[4]", "[16,0]")}), data), "end before they begin"},
      {safetensors_file(object({entry("a", "F32", "[4]", "[0,16,3]")}), data), "data_offsets"},
      {safetensors_file("{" + a + "," + entry("b", "F32", "[2]", "[4,12]") + "}", data), "overlap"},
      {safetensors_file("{" + a + "," + entry("b", "F32", "[1]", "[12,16]") + "}", data), "gap"},
      {safetensors_file("{" + a + "}", data), "data buffer has 16 bytes but the tensors cover 8"},
      {safetensors_file("{" + a + "," + b + "}", data.substr(0, 12)), "file is truncated: tensor 'b'"},
      {safetensors_file("{" + a + "," + entry("b", "F32", "[2]", "[8,18446744073709551615]") + "}", data), "needs 8"},
      {safetensors_file("{\"__metadata__\":{\"k\":1}," + a + "," + b + "}", data), "metadata 'k' is not a string"},
      {safetensors_file("{\"__metadata__\":[]}", ""), "'__metadata__' is not an object"},
      {safetensors_file("{\"a\":\"\\ud800\"}", ""), "unpaired surrogate"},
      {safetensors_file(std::string(200, '[') , ""), "does not start"},
      {safetensors_file("{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}", ""), "too deep"},
  };
  for (const Case& c : cases) {
    write_bytes(path, c.bytes);
    CAPTURE(c.message);
    CHECK_THROWS_WITH_AS(load_safetensors(path), doctest::Contains(c.message.c_str()), Error);
    CHECK_THROWS_WITH_AS(load_safetensors(path), doctest::Contains(("load_safetensors: '" + path + "'").c_str()), Error);
  }
  CHECK_THROWS_WITH_AS(load_safetensors(dir.file("missing.safetensors")), doctest::Contains("cannot open"), Error);
}

TEST_CASE("safetensors: writes are atomic and bad input is refused before writing") {
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  save_safetensors(path, {{"x", arange(3)}});
  const std::string before = read_bytes(path);
  CHECK_THROWS_WITH_AS(save_safetensors(path, {{"__metadata__", arange(3)}}), doctest::Contains("reserved"), Error);
  CHECK_THROWS_WITH_AS(save_safetensors(path, {{"y", Tensor()}}), doctest::Contains("undefined"), Error);
  CHECK(read_bytes(path) == before);
  fs::create_directory(dir.path / "taken");
  CHECK_THROWS_AS(save_safetensors(dir.file("taken"), {{"x", arange(3)}}), Error);
  CHECK(dir.listing() == std::vector<std::string>{"taken", "w.safetensors"});
}

}  // namespace loupe::test
