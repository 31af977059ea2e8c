// The bad-input corpus through the program: `loupe train | evaluate | predict | explain` run as a
// child process on missing, empty, truncated, bit-flipped and oversized-header files (checkpoints,
// .npy, PNG, CSV, IDX/gzip), checkpoints of another model, inputs with the wrong channel count,
// nonsense numeric options (0, negative, NaN, infinite, huge), bad environment variables,
// unwritable output folders, /dev/full and a full disk (a file-size limit, so writes fail).
// Every case must: exit with status 1 or 2, print exactly one "loupe <command>: ..." line on
// stderr that names the file, option or variable at fault, not die by a signal, not hang
// (a time limit per case), and leave every good file of the run byte for byte as it was (no
// partial file replaces it, no temporary file is left behind).
// The corpus is built here from one small good run; the files the fuzzers start from are in
// tests/fuzz/corpus/.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "nn/checkpoint.hpp"
#include "tensor/io/npy.hpp"
#include "tensor/io/safetensors.hpp"
#include "tests/cli/bad_input_util.hpp"
#include "tests/nn/data/helpers.hpp"

namespace loupe::test {

namespace {

namespace fs = std::filesystem;

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

std::string flip(std::string bytes, size_t at, unsigned char mask) {
  bytes.at(at) = static_cast<char>(static_cast<unsigned char>(bytes.at(at)) ^ mask);
  return bytes;
}

uint32_t crc32(const std::string& data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char byte : data) {
    crc ^= byte;
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
  }
  return crc ^ 0xFFFFFFFFu;
}

std::string le32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
  return s;
}

std::string be32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>((v >> (8 * (3 - i))) & 0xFF);
  return s;
}

// A gzip file holding `data` in stored (uncompressed) deflate blocks; `size_field` replaces the
// trailer's size when given.
std::string gzip_stored(const std::string& data, int64_t size_field = -1) {
  std::string out("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 10);
  size_t pos = 0;
  do {
    const size_t n = std::min<size_t>(65535, data.size() - pos);
    const bool last = pos + n == data.size();
    out += static_cast<char>(last ? 1 : 0);
    out += static_cast<char>(n & 0xFF);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(~n & 0xFF);
    out += static_cast<char>((~n >> 8) & 0xFF);
    out += data.substr(pos, n);
    pos += n;
  } while (pos < data.size());
  out += le32(crc32(data));
  out += le32(size_field >= 0 ? static_cast<uint32_t>(size_field) : static_cast<uint32_t>(data.size()));
  return out;
}

std::string idx_header(const std::vector<uint32_t>& dims) {
  std::string out("\x00\x00\x08", 3);
  out += static_cast<char>(dims.size());
  for (uint32_t d : dims) out += be32(d);
  return out;
}

// The files of a good run (and the JSON a good evaluate wrote) with their bytes.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) files[entry.path().string()] = read_bytes(entry.path());
  }
  return files;
}

struct Case {
  std::string args;      // "train --data ..." (the command first)
  std::string names;     // what the message must name (a file, an option, a variable)
  std::string prefix;    // environment / limits for the shell
};

void expect_refusal(const std::string& program, const fs::path& dir, const Case& c,
                    const std::map<std::string, std::string>& good_files, const fs::path& guarded) {
  const std::string command = c.args.substr(0, c.args.find(' '));
  const Outcome outcome = run_program(program, c.args, dir, c.prefix, 240);
  INFO("case: ", c.prefix, " loupe ", c.args);
  INFO("stderr: ", outcome.err);
  CHECK_FALSE(outcome.crashed());
  CHECK_FALSE(outcome.timed_out());
  CHECK((outcome.code == 1 || outcome.code == 2));
  // Exactly one line of the program's own error format.
  int64_t lines = 0;
  std::istringstream err(outcome.err);
  for (std::string line; std::getline(err, line);) {
    if (line.rfind("loupe " + command + ": ", 0) == 0 || line.rfind("loupe: ", 0) == 0) ++lines;
  }
  CHECK(lines == 1);
  CHECK(outcome.err.find(c.names) != std::string::npos);
  CHECK(outcome.err.find("terminate called") == std::string::npos);
  // No good file replaced or touched, no temporary left beside them.
  const auto now = snapshot(guarded);
  CHECK(now.size() == good_files.size());
  for (const auto& file : good_files) {  // not a structured binding: doctest's INFO captures it
    const std::string& path = file.first;
    const std::string& bytes = file.second;
    INFO("file: ", path);
    auto it = now.find(path);
    REQUIRE(it != now.end());
    CHECK(it->second == bytes);
  }
}

}  // namespace

TEST_CASE("bad inputs through loupe train, evaluate, predict and explain: one clear message, no crash, no hang, "
          "no partial file") {
  const std::string program = loupe_program();
  if (program.empty()) {
    MESSAGE("skipped: build/cli/loupe is not built");
    return;
  }
  ScratchDir scratch("bad-inputs");
  const fs::path dir = scratch.path();
  write_image_folder((dir / "data").string());
  fs::create_directories(dir / "bad");
  save_npy((dir / "bad/good.npy").string(), full({1, 16, 16}, 0.5));

  // The good run and the good outputs the bad cases must not replace.
  Outcome good = run_program(program, "train " + tiny_train_options("data", "guarded/run", 1), dir);
  INFO("good run stderr: ", good.err);
  REQUIRE(good.code == 0);
  good = run_program(program, "evaluate --model guarded/run/last.safetensors --data data --json guarded/eval.json", dir);
  REQUIRE(good.code == 0);
  good = run_program(program,
                     "explain --model guarded/run/last.safetensors --input bad/good.npy --method saliency --out "
                     "guarded/explain",
                     dir);
  REQUIRE(good.code == 0);
  const std::string checkpoint = read_bytes(dir / "guarded/run/last.safetensors");
  REQUIRE(checkpoint.size() > 64);

  // Checkpoints.
  write_bytes(dir / "bad/empty.safetensors", "");
  write_bytes(dir / "bad/truncated.safetensors", checkpoint.substr(0, checkpoint.size() / 2));
  write_bytes(dir / "bad/flipped-length.safetensors", flip(checkpoint, 0, 0x40));
  write_bytes(dir / "bad/flipped-brace.safetensors", flip(checkpoint, 8, 0x01));
  const size_t shape_at = checkpoint.find("\"shape\":[") + 9;
  write_bytes(dir / "bad/flipped-shape.safetensors", flip(checkpoint, shape_at, 0x01));
  write_bytes(dir / "bad/oversized-header.safetensors", std::string(7, '\xff') + '\x7f' + checkpoint.substr(8));
  {
    std::string header = R"({"x":{"dtype":"F32","shape":[1000000,1000000],"data_offsets":[0,4000000000000]}})";
    std::string length(8, '\0');
    for (int i = 0; i < 8; ++i) length[i] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
    write_bytes(dir / "bad/huge-tensor.safetensors", length + header);
  }
  save_safetensors((dir / "bad/not-a-checkpoint.safetensors").string(), {{"x", ones({2, 2})}});
  {
    const nn::Checkpoint good_checkpoint = nn::read_checkpoint((dir / "guarded/run/last.safetensors").string());
    auto metadata = good_checkpoint.metadata;
    metadata["loupe.model"] = "densenet121";
    save_safetensors((dir / "bad/wrong-model.safetensors").string(), good_checkpoint.tensors, metadata);
    metadata = good_checkpoint.metadata;
    metadata["loupe.num_classes"] = "99999999999";
    save_safetensors((dir / "bad/huge-classes.safetensors").string(), good_checkpoint.tensors, metadata);
  }
  // Images and .npy inputs.
  const std::string png = read_bytes(dir / "data/test/dark/0.png");
  write_bytes(dir / "bad/empty.png", "");
  write_bytes(dir / "bad/truncated.png", png.substr(0, png.size() / 2));
  write_bytes(dir / "bad/flipped-signature.png", flip(png, 1, 0x01));
  write_bytes(dir / "bad/text.png", "this is not an image\n");
  const std::string npy = read_bytes(dir / "bad/good.npy");
  save_npy((dir / "bad/four-channels.npy").string(), full({4, 16, 16}, 0.5));
  write_bytes(dir / "bad/empty.npy", "");
  write_bytes(dir / "bad/truncated.npy", npy.substr(0, npy.size() - 7));
  write_bytes(dir / "bad/flipped-magic.npy", flip(npy, 1, 0x20));
  write_bytes(dir / "bad/oversized-header.npy", std::string("\x93NUMPY\x02\x00\xf0\xff\xff\xff", 12) + npy.substr(10));
  {
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 100000), }";
    header.append(118 - header.size(), ' ');
    header += '\n';
    write_bytes(dir / "bad/huge-shape.npy", std::string("\x93NUMPY\x01\x00", 8) + char(header.size() & 0xFF) +
                                                 char(header.size() >> 8) + header + std::string(64, '\0'));
  }
  // CSV data sets.
  write_bytes(dir / "bad/empty.csv", "");
  write_bytes(dir / "bad/unterminated.csv", "file,split,bright\n\"a.png,train,1\n");
  write_bytes(dir / "bad/missing-image.csv", "file,split,bright,dark\nnope.png,train,1,0\nnope.png,test,0,1\n");
  write_bytes(dir / "bad/binary.csv", std::string("\x00\xff\xfe\x01,\n\x00\x00\"", 10));
  // Fashion-MNIST folders with bad IDX / gzip files (the labels files are good).
  const std::string labels_idx = idx_header({4}) + std::string("\x00\x01\x02\x03", 4);
  const std::string images_idx = idx_header({4, 28, 28}) + std::string(4 * 28 * 28, '\x10');
  for (const std::string name : {"fm-truncated", "fm-crc", "fm-bomb", "fm-huge-idx", "fm-not-gzip"}) {
    write_bytes(dir / "bad" / name / "train-labels-idx1-ubyte.gz", gzip_stored(labels_idx));
    write_bytes(dir / "bad" / name / "t10k-labels-idx1-ubyte.gz", gzip_stored(labels_idx));
    write_bytes(dir / "bad" / name / "t10k-images-idx3-ubyte.gz", gzip_stored(images_idx));
  }
  const std::string images_gz = gzip_stored(images_idx);
  write_bytes(dir / "bad/fm-truncated/train-images-idx3-ubyte.gz", images_gz.substr(0, images_gz.size() / 2));
  write_bytes(dir / "bad/fm-crc/train-images-idx3-ubyte.gz", flip(images_gz, 100, 0x04));
  write_bytes(dir / "bad/fm-bomb/train-images-idx3-ubyte.gz", gzip_stored(images_idx, 0xFFFFFFF0u));
  write_bytes(dir / "bad/fm-huge-idx/train-images-idx3-ubyte.gz", gzip_stored(idx_header({60000, 100000, 100000})));
  write_bytes(dir / "bad/fm-not-gzip/train-images-idx3-ubyte.gz", images_idx);
  write_bytes(dir / "bad/a-file", "x");

  const std::string train = "train " + tiny_train_options("data", "out/run", 1);
  const std::string resume = "train --resume guarded/run/last.safetensors --out out/resumed";
  const std::string evaluate = "evaluate --data data --model ";
  const std::string predict = "predict --input data/test/dark/0.png --model ";
  const std::string explain_good = "explain --model guarded/run/last.safetensors --method saliency --out out/explain ";
  const std::string good_ckpt = "guarded/run/last.safetensors";
  std::vector<Case> cases = {
      // Checkpoints, through every command that reads one.
      {resume.substr(0, 15) + "bad/missing.safetensors --out out/r", "bad/missing.safetensors", ""},
      {"train --resume bad/empty.safetensors --out out/r", "bad/empty.safetensors", ""},
      {"train --resume bad/truncated.safetensors --out out/r", "bad/truncated.safetensors", ""},
      {"train --resume bad/flipped-length.safetensors --out out/r", "bad/flipped-length.safetensors", ""},
      {"train --resume bad/oversized-header.safetensors --out out/r", "bad/oversized-header.safetensors", ""},
      {"train --resume bad/not-a-checkpoint.safetensors " + tiny_train_options("data", "out/r", 1),
       "bad/not-a-checkpoint.safetensors", ""},
      {resume + " --optimizer sgd", "--optimizer", ""},
      {resume + " --lr 0.5", "--lr", ""},
      {evaluate + "bad/missing.safetensors", "bad/missing.safetensors", ""},
      {evaluate + "bad/empty.safetensors", "bad/empty.safetensors", ""},
      {evaluate + "bad/truncated.safetensors", "bad/truncated.safetensors", ""},
      {evaluate + "bad/flipped-length.safetensors", "bad/flipped-length.safetensors", ""},
      {evaluate + "bad/flipped-brace.safetensors", "bad/flipped-brace.safetensors", ""},
      {evaluate + "bad/flipped-shape.safetensors", "bad/flipped-shape.safetensors", ""},
      {evaluate + "bad/oversized-header.safetensors", "bad/oversized-header.safetensors", ""},
      {evaluate + "bad/huge-tensor.safetensors", "bad/huge-tensor.safetensors", ""},
      {evaluate + good_ckpt, "LOUPE_MAX_TENSOR_BYTES", "LOUPE_MAX_TENSOR_BYTES=1K"},
      {evaluate + "bad/not-a-checkpoint.safetensors", "bad/not-a-checkpoint.safetensors", ""},
      {evaluate + "bad/wrong-model.safetensors", "bad/wrong-model.safetensors", ""},
      {evaluate + "bad/huge-classes.safetensors", "loupe.num_classes", ""},
      {evaluate + "bad", "bad", ""},
      {predict + "bad/truncated.safetensors", "bad/truncated.safetensors", ""},
      {predict + "bad/flipped-shape.safetensors", "bad/flipped-shape.safetensors", ""},
      {predict + "bad/wrong-model.safetensors", "bad/wrong-model.safetensors", ""},
      {predict + "bad/huge-tensor.safetensors", "bad/huge-tensor.safetensors", ""},
      {"explain --input bad/good.npy --out out/explain --model bad/truncated.safetensors", "bad/truncated.safetensors", ""},
      {"explain --input bad/good.npy --out out/explain --model bad/oversized-header.safetensors",
       "bad/oversized-header.safetensors", ""},
      {"explain --input bad/good.npy --out out/explain --model bad/wrong-model.safetensors",
       "bad/wrong-model.safetensors", ""},
      // Images.
      {"predict --model " + good_ckpt + " --input bad/missing.png", "bad/missing.png", ""},
      {"predict --model " + good_ckpt + " --input bad/empty.png", "bad/empty.png", ""},
      {"predict --model " + good_ckpt + " --input bad/truncated.png", "bad/truncated.png", ""},
      {"predict --model " + good_ckpt + " --input bad/flipped-signature.png", "bad/flipped-signature.png", ""},
      {"predict --model " + good_ckpt + " --input bad/text.png", "bad/text.png", ""},
      {"predict --model " + good_ckpt + " --input data/test/dark/0.png", "LOUPE_MAX_TENSOR_BYTES",
       "LOUPE_MAX_TENSOR_BYTES=100"},
      {explain_good + "--input bad/truncated.png", "bad/truncated.png", ""},
      // .npy inputs and baselines; the wrong channel count.
      {explain_good + "--input bad/missing.npy", "bad/missing.npy", ""},
      {explain_good + "--input bad/empty.npy", "bad/empty.npy", ""},
      {explain_good + "--input bad/truncated.npy", "bad/truncated.npy", ""},
      {explain_good + "--input bad/flipped-magic.npy", "bad/flipped-magic.npy", ""},
      {explain_good + "--input bad/oversized-header.npy", "bad/oversized-header.npy", ""},
      {explain_good + "--input bad/huge-shape.npy", "bad/huge-shape.npy", ""},
      {explain_good + "--input bad/good.npy", "LOUPE_MAX_TENSOR_BYTES", "LOUPE_MAX_TENSOR_BYTES=1000"},
      {explain_good + "--input bad/four-channels.npy", "bad/four-channels.npy", ""},
      {explain_good + "--input bad/good.npy --baseline bad/truncated.npy", "bad/truncated.npy", ""},
      // Data sets: CSV, image folders, IDX / gzip.
      {"train " + tiny_train_options("bad/missing-folder", "out/r", 1), "bad/missing-folder", ""},
      {"train " + tiny_train_options("bad/empty.csv", "out/r", 1) + " --label-columns bright,dark", "bad/empty.csv", ""},
      {"train " + tiny_train_options("bad/unterminated.csv", "out/r", 1) + " --label-columns bright,dark",
       "bad/unterminated.csv", ""},
      {"train " + tiny_train_options("bad/missing-image.csv", "out/r", 1) + " --label-columns bright,dark", "nope.png", ""},
      {"train " + tiny_train_options("bad/binary.csv", "out/r", 1) + " --label-columns bright,dark", "bad/binary.csv", ""},
      {evaluate.substr(0, 9) + "--data bad/unterminated.csv --model " + good_ckpt, "bad/unterminated.csv", ""},
      {"train " + tiny_train_options("fashion-mnist", "out/r", 1) + " --fashion-mnist-dir bad/fm-truncated",
       "bad/fm-truncated/train-images-idx3-ubyte.gz", ""},
      {"train " + tiny_train_options("fashion-mnist", "out/r", 1) + " --fashion-mnist-dir bad/fm-crc",
       "bad/fm-crc/train-images-idx3-ubyte.gz", ""},
      {"train " + tiny_train_options("fashion-mnist", "out/r", 1) + " --fashion-mnist-dir bad/fm-bomb",
       "bad/fm-bomb/train-images-idx3-ubyte.gz", ""},
      {"train " + tiny_train_options("fashion-mnist", "out/r", 1) + " --fashion-mnist-dir bad/fm-huge-idx",
       "bad/fm-huge-idx/train-images-idx3-ubyte.gz", ""},
      {"train " + tiny_train_options("fashion-mnist", "out/r", 1) + " --fashion-mnist-dir bad/fm-crc",
       "LOUPE_MAX_TENSOR_BYTES", "LOUPE_MAX_TENSOR_BYTES=1000"},
      {"train " + tiny_train_options("fashion-mnist", "out/r", 1) + " --fashion-mnist-dir bad/fm-not-gzip",
       "bad/fm-not-gzip/train-images-idx3-ubyte.gz", ""},
      {"train " + tiny_train_options("fashion-mnist", "out/r", 1) + " --fashion-mnist-dir bad/missing-folder",
       "bad/missing-folder", ""},
      // Nonsense numbers.
      {train + " --epochs 0", "--epochs", ""},
      {train + " --epochs -3", "--epochs", ""},
      {train + " --epochs nan", "--epochs", ""},
      {train + " --epochs 99999999999999999999", "--epochs", ""},
      {train + " --epochs 10000000000", "--epochs", ""},
      {train + " --batch-size 0", "--batch-size", ""},
      {train + " --batch-size 1000000000000", "--batch-size", ""},
      {train + " --lr nan", "--lr", ""},
      {train + " --lr -1", "--lr", ""},
      {train + " --lr inf", "--lr", ""},
      {train + " --lr 1e999", "--lr", ""},
      {train + " --width 0", "--width", ""},
      {train + " --width 100000", "--width", ""},
      {train + " --image-size -5", "--image-size", ""},
      {train + " --image-size 100000", "--image-size", ""},
      {train + " --workers -1", "--workers", ""},
      {train + " --threshold 2", "--threshold", ""},
      {train + " --momentum nan", "--momentum", ""},
      {train + " --seed -1", "--seed", ""},
      {train + " --checkpoint-every -2", "--checkpoint-every", ""},
      {evaluate + good_ckpt + " --batch-size 0", "--batch-size", ""},
      {evaluate + good_ckpt + " --batch-size nan", "--batch-size", ""},
      {evaluate + good_ckpt + " --threshold nan", "--threshold", ""},
      {predict + good_ckpt + " --threshold nan", "--threshold", ""},
      {explain_good + "--input bad/good.npy --steps 0", "--steps", ""},
      {explain_good + "--input bad/good.npy --steps -1", "--steps", ""},
      {explain_good + "--input bad/good.npy --steps 100000000", "--steps", ""},
      {explain_good + "--input bad/good.npy --samples 10000000000", "--samples", ""},
      {explain_good + "--input bad/good.npy --samples nan", "--samples", ""},
      {explain_good + "--input bad/good.npy --noise nan", "--noise", ""},
      {explain_good + "--input bad/good.npy --clip nan", "--clip", ""},
      // The environment.
      {train, "LOUPE_NUM_THREADS", "LOUPE_NUM_THREADS=0"},
      {train, "LOUPE_NUM_THREADS", "LOUPE_NUM_THREADS=abc"},
      {train, "LOUPE_NUM_THREADS", "LOUPE_NUM_THREADS=-4"},
      {train, "LOUPE_NUM_THREADS", "LOUPE_NUM_THREADS=100000"},
      {evaluate + good_ckpt, "LOUPE_NUM_THREADS", "LOUPE_NUM_THREADS=2x"},
      {evaluate + good_ckpt, "LOUPE_MAX_TENSOR_BYTES", "LOUPE_MAX_TENSOR_BYTES=lots"},
      // Outputs that cannot be written.
      {"train " + tiny_train_options("data", "/dev/full/run", 1), "/dev/full/run", ""},
      {"train " + tiny_train_options("data", "bad/a-file", 1), "bad/a-file", ""},
      {evaluate + good_ckpt + " --json /dev/full", "/dev/full", ""},
      {evaluate + good_ckpt + " --json bad/no-such-folder/eval.json", "bad/no-such-folder/eval.json", ""},
      {"explain --model " + good_ckpt + " --input bad/good.npy --method saliency --out /dev/full/explain",
       "/dev/full/explain", ""},
      // A full disk: the file-size limit makes the checkpoint write fail after the epoch; the
      // run's last.safetensors must stay the good one, with no temporary left beside it.
      {"train --resume guarded/run/last.safetensors --epochs 2", "last.safetensors", "ulimit -f 16;"},
      // The same for explain's outputs (its .npy of 1 KiB + 128 bytes no longer fits).
      {"explain --model guarded/run/last.safetensors --input bad/good.npy --method saliency --out guarded/explain",
       "guarded/explain", "ulimit -f 1;"},
  };
  // The full-disk cases write into guarded/: their snapshot is taken with everything else.
  const auto good_files = snapshot(dir / "guarded");
  for (const Case& c : cases) expect_refusal(program, dir, c, good_files, dir / "guarded");
  MESSAGE(cases.size(), " bad-input cases checked");
}

}  // namespace loupe::test
