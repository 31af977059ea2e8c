// Running the built `loupe` program from a test: where it is, and one call that runs a subcommand
// with its output captured in files. Used by the command tests of explain/ (test_report.cpp,
// test_activation_profiles.cpp).
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace loupe::test {

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// build/cli/loupe, next to this test program's build/tests/ (empty when not built).
inline std::string loupe_program() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  const std::filesystem::path program = self.parent_path().parent_path() / "cli" / "loupe";
  return std::filesystem::exists(program, ec) ? program.string() : "";
}

// Runs `program subcommand args` (args already quoted for the shell) with stdout and stderr in
// files of `dir`; returns its exit code (-1 when it did not exit normally, e.g. on a signal).
inline int run_loupe_command(const std::string& program, const std::string& subcommand, const std::string& args,
                             const std::filesystem::path& dir, std::string* out = nullptr, std::string* err = nullptr) {
  const std::filesystem::path out_file = dir / "stdout.txt", err_file = dir / "stderr.txt";
  const std::string command = "'" + program + "' " + subcommand + " " + args + " > '" + out_file.string() + "' 2> '" +
                              err_file.string() + "'";
  const int status = std::system(command.c_str());
  if (out) *out = read_text(out_file);
  if (err) *err = read_text(err_file);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace loupe::test
