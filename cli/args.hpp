// A small command-line option parser shared by the subcommands: --name value, --flag, --help.
// Unknown options and missing values are errors that name the option; get_int and get_double
// refuse text that is not one whole number (and get_double NaN and infinities), naming the option.
// Tests: tests/nn/train/test_commands.cpp, tests/cli/test_bad_inputs.cpp
#pragma once

#include <map>
#include <set>
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
  // Whether the command line named the option (a default is not "given").
  bool given(const std::string& name) const { return given_.count(name) != 0; }
  // Replaces an option's value (e.g. with the one a resumed run's checkpoint stored).
  void set(const std::string& name, const std::string& value) { values_[name] = value; }

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> given_;
  bool help_ = false;
};

std::string usage(const std::string& command, const std::string& summary, const std::vector<OptionSpec>& specs);

}  // namespace loupe::cli
