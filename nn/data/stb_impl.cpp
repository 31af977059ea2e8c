// The one translation unit that compiles stb_image's and stb_image_write's implementations.
// loupe uses only stb's headers from the system (or third_party/ on machines without them) and
// never links a prebuilt stb library, so the implementation lives here exactly once.
// Only the formats loupe documents (PNG, JPEG, BMP) are compiled in: images come from anywhere,
// and every other stb decoder (GIF, PSD, PIC, TGA, HDR, PNM) is attack surface nobody asked for.
// PNG keeps stb's zlib decoder, which gzip.cpp uses. The decoders are fuzzed (tests/fuzz/).
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
// stb_image 2.27 keeps its JPEG decoder state, Huffman tables included, in memory from malloc and
// fills a table only when a DHT segment defines it. A corrupt file whose scan names a table no DHT
// defined makes the decoder index its symbol arrays with whatever the heap held there: the image
// fuzzer found symbol indices of -1 and -16.7M (UBSan at stb's jpeg_huff_decode; a release build
// would read megabytes outside the table). Whether it happens depends on earlier allocations, so
// replaying the input alone did not show it; with the heap filled with 0xFF first it does
// (tests/fuzz/regressions/image/jpeg-progressive-*). Zeroed allocations make an undefined table an
// empty one: every lookup then stays inside the table (symbol 0, no bits consumed) and the decoder
// fails or returns garbage pixels of a corrupt file, never reading outside its arrays.
#include <cstdlib>
namespace {
void* stb_zeroed_malloc(size_t size) { return std::calloc(1, size); }
}  // namespace
#define STBI_MALLOC(size) stb_zeroed_malloc(size)
#define STBI_REALLOC(pointer, size) std::realloc(pointer, size)
#define STBI_FREE(pointer) std::free(pointer)
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#if defined(__clang__)
// Two memory-safe kinds of undefined behaviour in stb_image 2.27 (Debian 12's), both found by the
// image fuzzer: its JPEG bit reader shifts by out-of-range amounts on corrupt entropy-coded data
// (UBSan "shift exponent 34 is too large"; the bits are garbage and the decoder then fails; fixed
// in stb 2.28), and its PNG reader calls memcpy(NULL, src, 0) for an empty IDAT chunk (UBSan
// "null pointer passed as argument 1"; nothing is copied). The clang sanitizer and fuzz builds
// exempt stb's functions from these two UBSan checks only; ASan keeps watching every memory access,
// so the fuzzer goes on looking for real memory errors.
#pragma clang attribute push(__attribute__((no_sanitize("shift", "nonnull-attribute"))), apply_to = function)
#endif
#include <stb_image.h>
#include <stb_image_write.h>
#if defined(__clang__)
#pragma clang attribute pop
#endif
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
