// Image files <-> float tensors. Decoding uses stb_image (PNG, JPEG and BMP only: stb_impl.cpp
// leaves its other decoders out); PNG writing uses stb_image_write. Both implementations are
// compiled once, in stb_impl.cpp. A decoded size above LOUPE_MAX_TENSOR_BYTES (tensor/io/limits.hpp)
// is refused from the file's header, before the pixels are allocated.
//
// Tensors are (C, H, W) float32 with values in [0, 1] (8-bit samples / 255, 16-bit PNG / 65535).
// C is 1 (grey) or 3 (RGB): an alpha channel is dropped, and grey <-> RGB conversions use the
// ITU-R 601-2 luma L = 0.299 R + 0.587 G + 0.114 B (as Pillow's convert("L") and to_grey in
// transforms.hpp).
// Tests: tests/nn/data/test_image.cpp
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.hpp"

namespace loupe::nn {

// How many channels a decoded image gets.
enum class ImageChannels {
  as_stored,  // 1 for grey (and grey + alpha) files, 3 for colour (and colour + alpha) files
  grey,       // always 1 (colour files through the luma formula)
  rgb,        // always 3 (grey files repeated)
};

// Decodes the file at `path` into a (C, H, W) f32 tensor in [0, 1]. A missing, unreadable or
// corrupt file raises loupe::Error naming the file and the reason (stb's reason for bad data).
Tensor load_image(const std::string& path, ImageChannels channels = ImageChannels::as_stored);
// The same from bytes already in memory; `name` is used in error messages.
Tensor decode_image(const std::vector<uint8_t>& bytes, const std::string& name,
                    ImageChannels channels = ImageChannels::as_stored);

// Writes a (C, H, W) image with C in {1, 3, 4} (or an (H, W) grey image), values in [0, 1]
// (clamped, then rounded to 8 bits), as an 8-bit PNG. The file appears atomically: a temporary
// file beside it is renamed over the target, so no half-written PNG is ever left behind.
void save_png(const std::string& path, const Tensor& image);
// The PNG bytes save_png would write.
std::vector<uint8_t> encode_png(const Tensor& image);

enum class ImageFormat { png, bmp, jpeg };
// The image encoded as PNG, BMP or JPEG (quality 1..100; JPEG and BMP take 1 or 3 channels, or 4
// for BMP), with the same rules as encode_png.
std::vector<uint8_t> encode_image(const Tensor& image, ImageFormat format, int jpeg_quality = 95);
// Writes atomically like save_png, the format chosen by the file name's ending (.png, .bmp,
// .jpg or .jpeg, in any case).
void save_image(const std::string& path, const Tensor& image, int jpeg_quality = 95);

}  // namespace loupe::nn
