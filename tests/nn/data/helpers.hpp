// Shared by the nn/data tests: a scratch folder removed at the end of a test, and where the shared
// chest X-ray data lives (LOUPE_DATA_DIR, else ../shared/data beside the source tree).
#pragma once

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "tests/nn/data/data_paths.hpp"

namespace loupe::test {

class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag) {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("loupe-test-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

inline void write_text(const std::string& path, const std::string& text) {
  write_bytes(path, std::vector<uint8_t>(text.begin(), text.end()));
}

// The chest X-ray folder (holding labels.csv and images/), or "" when it is not there.
// LOUPE_DATA_DIR names the data folder that holds cxr/ (or the cxr folder itself); without it the
// tests look in ../shared/data beside the source tree.
inline std::string cxr_dir() {
  std::filesystem::path data;
  if (const char* env = std::getenv("LOUPE_DATA_DIR"); env != nullptr && *env != '\0') {
    data = env;
  } else {
    data = std::filesystem::path(LOUPE_TEST_SOURCE_ROOT) / ".." / "shared" / "data";
  }
  std::error_code ec;
  for (const auto& cxr : {data / "cxr", data}) {
    if (std::filesystem::exists(cxr / "labels.csv", ec) && std::filesystem::is_directory(cxr / "images", ec)) {
      return cxr.lexically_normal().string();
    }
  }
  return std::string();
}

}  // namespace loupe::test
