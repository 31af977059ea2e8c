// Philox4x32-10 and the default generator. See random.hpp.
//
// One Philox round multiplies two of the four counter words by fixed odd constants, keeps the
// 64-bit products' high and low halves, and mixes the high halves with the other two words and
// the key. Ten rounds, with the key bumped by the Weyl constants (golden ratio, sqrt(3) - 1)
// between them, pass BigCrush (Salmon et al. 2011). Constants as in Random123, cuRAND and PyTorch.
// Tests: tests/tensor/test_random.cpp (Random123 known-answer vectors)
#include "tensor/random.hpp"

namespace loupe {

namespace {

constexpr uint32_t kMultiplier0 = 0xD2511F53u;
constexpr uint32_t kMultiplier1 = 0xCD9E8D57u;
constexpr uint32_t kWeyl0 = 0x9E3779B9u;
constexpr uint32_t kWeyl1 = 0xBB67AE85u;
constexpr int kRounds = 10;

using Words = std::array<uint32_t, 4>;

Words philox_round(const Words& c, uint32_t k0, uint32_t k1) {
  const uint64_t p0 = static_cast<uint64_t>(kMultiplier0) * c[0];
  const uint64_t p1 = static_cast<uint64_t>(kMultiplier1) * c[2];
  const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
  const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
  return {hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0};
}

}  // namespace

// The 128-bit counter is (counter_lo, counter_hi) split into four little-endian 32-bit words;
// the 64-bit key is split the same way.
std::array<uint32_t, 4> philox4x32(uint64_t key, uint64_t counter_lo, uint64_t counter_hi) {
  Words c = {static_cast<uint32_t>(counter_lo), static_cast<uint32_t>(counter_lo >> 32),
             static_cast<uint32_t>(counter_hi), static_cast<uint32_t>(counter_hi >> 32)};
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < kRounds; ++round) {
    if (round > 0) {
      k0 += kWeyl0;
      k1 += kWeyl1;
    }
    c = philox_round(c, k0, k1);
  }
  return c;
}

Generator& default_generator() {
  static Generator generator(0);
  return generator;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace loupe
