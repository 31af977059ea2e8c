// One libFuzzer program per target (LOUPE_FUZZ_TARGET names it at compile time; tests/fuzz/
// meson.build builds them in fuzz builds: ./run fuzz). loupe::Error is the readers' refusal and
// is fine; any other exception escapes and libFuzzer reports it as a crash.
#include <cstddef>
#include <cstdint>

#include "tensor/error.hpp"
#include "tests/fuzz/targets.hpp"

#define LOUPE_STRINGIFY_(x) #x
#define LOUPE_STRINGIFY(x) LOUPE_STRINGIFY_(x)

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  loupe::fuzz::init_fuzzing(LOUPE_STRINGIFY(LOUPE_FUZZ_TARGET));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    loupe::fuzz::run_target(LOUPE_STRINGIFY(LOUPE_FUZZ_TARGET), data, size);
  } catch (const loupe::Error&) {
  }
  return 0;
}
