// Atomic text output. See files.hpp.
#include "report/files.hpp"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "tensor/error.hpp"

namespace loupe::report {

void write_text_atomic(const std::string& path, const std::string& text) {
  // Renaming over a device or a folder would replace it (as root, even /dev/full): refuse.
  std::error_code status_error;
  const auto status = std::filesystem::status(path, status_error);
  LOUPE_CHECK(!std::filesystem::exists(status) || std::filesystem::is_regular_file(status), "write: '", path,
              "' exists and is not a regular file");
  const std::string temp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    LOUPE_CHECK(out.good(), "write: cannot create '", temp, "'");
    out << text;
    out.flush();
    if (!out.good()) {
      out.close();
      std::remove(temp.c_str());
      throw Error("write: failed while writing '" + temp + "' (disk full?)");
    }
  }
  std::error_code error;
  std::filesystem::rename(temp, path, error);
  if (error) {
    std::remove(temp.c_str());
    throw Error("write: cannot move '" + temp + "' to '" + path + "': " + error.message());
  }
}

}  // namespace loupe::report
