// The loupe command-line program: one binary with subcommands.
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  const std::string command = argc > 1 ? argv[1] : "--help";
  std::cout << "usage: loupe <command> [options]\n";
  return command == "--help" ? 0 : 2;
}
