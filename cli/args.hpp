// A small command-line option parser shared by the subcommands: --name value, --flag, --help.
// Unknown options and missing values are errors that name the option.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace loupe::cli {

struct OptionSpec {
  std::string name;     // without the leading dashes
  std::string value;    // placeholder shown in --help ("N", "FILE"); empty for a flag
  std::string fallback; // default value
  std::string help;
};

class Args {
 public:
  // Parses argv[first..]; throws loupe::Error on unknown options or missing values.
  Args(const std::vector<OptionSpec>& specs, int argc, char** argv, int first);

  bool help() const { return help_; }
  std::string get(const std::string& name) const;
  int64_t get_int(const std::string& name) const;
  double get_double(const std::string& name) const;
  bool flag(const std::string& name) const;

 private:
  std::map<std::string, std::string> values_;
  bool help_ = false;
};

std::string usage(const std::string& command, const std::string& summary, const std::vector<OptionSpec>& specs);

}  // namespace loupe::cli
