// Device parsing and printing. See device.hpp.
#include "tensor/device.hpp"

#include "tensor/error.hpp"

namespace loupe {

Device Device::parse(const std::string& text) {
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda(0);
  if (text.rfind("cuda:", 0) == 0) {
    const std::string index = text.substr(5);
    LOUPE_CHECK(!index.empty() && index.find_first_not_of("0123456789") == std::string::npos,
                "Device: cannot parse '", text, "' (expected cpu, cuda or cuda:N)");
    return cuda(std::stoi(index));
  }
  throw Error("Device: cannot parse '" + text + "' (expected cpu, cuda or cuda:N)");
}

std::string Device::str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }

std::ostream& operator<<(std::ostream& out, const Device& device) { return out << device.str(); }

}  // namespace loupe
