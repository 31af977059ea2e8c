// A one-line progress bar on stderr, drawn only when stderr is a terminal (logs and CI stay clean).
//   ProgressBar bar("epoch 1/5", batches);  bar.update(i + 1, "loss 0.42  1200 img/s");  bar.finish();
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace loupe::cli {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total);
  void update(int64_t done, const std::string& status = "");
  void finish();
  double elapsed_seconds() const;

 private:
  std::string label_;
  int64_t total_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace loupe::cli
