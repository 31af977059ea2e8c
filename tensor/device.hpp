// Device: where a tensor's storage lives. cpu, or cuda:N once the CUDA backend is built.
// Tests: tests/tensor/test_tensor.cpp
#pragma once

#include <ostream>
#include <string>

namespace loupe {

enum class DeviceType { cpu, cuda };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;

  static Device cpu() { return {DeviceType::cpu, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::cuda, index}; }
  static Device parse(const std::string& text);  // "cpu", "cuda", "cuda:1"

  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  bool operator==(const Device& other) const = default;
  std::string str() const;
};

std::ostream& operator<<(std::ostream& out, const Device& device);

}  // namespace loupe
