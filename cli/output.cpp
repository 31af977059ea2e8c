// Atomic text output. See output.hpp.
#include "cli/output.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "tensor/error.hpp"

namespace loupe::cli {

void write_text_atomic(const std::string& path, const std::string& text) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    LOUPE_CHECK(out.good(), "write: cannot create '", temp, "'");
    out << text;
    out.flush();
    if (!out.good()) {
      out.close();
      std::remove(temp.c_str());
      throw Error("write: failed while writing '" + temp + "'");
    }
  }
  std::error_code error;
  std::filesystem::rename(temp, path, error);
  if (error) {
    std::remove(temp.c_str());
    throw Error("write: cannot move '" + temp + "' to '" + path + "': " + error.message());
  }
}

}  // namespace loupe::cli
