// The one translation unit that compiles stb_image's and stb_image_write's implementations.
// loupe uses only stb's headers from the system (or third_party/ on machines without them) and
// never links a prebuilt stb library, so the implementation lives here exactly once.
// Only the formats loupe documents (PNG, JPEG, BMP) are compiled in: images come from anywhere,
// and every other stb decoder (GIF, PSD, PIC, TGA, HDR, PNM) is attack surface nobody asked for.
// PNG keeps stb's zlib decoder, which gzip.cpp uses. The decoders are fuzzed (tests/fuzz/).
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
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
// stb_image 2.27 (Debian 12's) shifts by out-of-range amounts while decoding a corrupt JPEG's
// entropy-coded data (UBSan "shift exponent 34 is too large", found by the image fuzzer; fixed in
// stb 2.28): the bits decoded are garbage and the decoder then fails, no memory is touched amiss
// (ASan keeps watching every access). The clang sanitizer and fuzz builds exempt stb's functions
// from UBSan's shift check only, so that the fuzzer can go on looking for memory errors.
#pragma clang attribute push(__attribute__((no_sanitize("shift"))), apply_to = function)
#endif
#include <stb_image.h>
#include <stb_image_write.h>
#if defined(__clang__)
#pragma clang attribute pop
#endif
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
