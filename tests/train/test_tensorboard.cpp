// TensorBoard event files (src/train/tensorboard.h). Debian packages no TensorBoard, so the reader here is
// written from the format: TFRecord framing (lengths and masked CRC-32C checked) and the Event / Summary /
// Value protobufs decoded field by field. CRC-32C against its published check values (RFC 3720 B.4).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>

#include "core/rng.h"
#include "io/safetensors.h"
#include "train/tensorboard.h"

namespace fs = std::filesystem;

namespace wick {
namespace {

TEST(TensorBoard, Crc32cKnownAnswers) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  const std::string zeros(32, '\0'), ones(32, '\xff');
  std::string inc(32, 0), dec(32, 0);
  for (int i = 0; i < 32; i++) inc[i] = static_cast<char>(i), dec[i] = static_cast<char>(31 - i);
  EXPECT_EQ(crc32c(zeros.data(), 32), 0x8A9136AAu);
  EXPECT_EQ(crc32c(ones.data(), 32), 0x62A8AB43u);
  EXPECT_EQ(crc32c(inc.data(), 32), 0x46DD794Eu);
  EXPECT_EQ(crc32c(dec.data(), 32), 0x113FDB5Cu);
  // Chained over pieces = over the whole.
  EXPECT_EQ(crc32c("6789", 4, crc32c("12345", 5)), 0xE3069283u);
}

// ---- a reader written from the format ----
struct Reader {
  const std::string& b;
  size_t p = 0;
  uint64_t varint() {
    uint64_t v = 0;
    for (int s = 0;; s += 7) {
      const uint8_t c = static_cast<uint8_t>(b.at(p++));
      v |= static_cast<uint64_t>(c & 0x7f) << s;
      if (!(c & 0x80)) return v;
    }
  }
  template <class T>
  T fixed() {
    T v;
    std::memcpy(&v, b.data() + p, sizeof v);
    p += sizeof v;
    return v;
  }
  std::string bytes() {
    const size_t n = varint();
    std::string s = b.substr(p, n);
    p += n;
    return s;
  }
};

struct Scalar {
  int64_t step;
  std::string tag;
  float value;
};

// All records of an event file; fails the test on a bad length or CRC.
std::vector<std::string> records(const std::string& file) {
  std::vector<std::string> out;
  size_t p = 0;
  while (p < file.size()) {
    EXPECT_LE(p + 12, file.size());
    uint64_t len;
    uint32_t lcrc, dcrc;
    std::memcpy(&len, file.data() + p, 8);
    std::memcpy(&lcrc, file.data() + p + 8, 4);
    EXPECT_EQ(lcrc, masked_crc32c(file.data() + p, 8));
    const std::string data = file.substr(p + 12, len);
    std::memcpy(&dcrc, file.data() + p + 12 + len, 4);
    EXPECT_EQ(dcrc, masked_crc32c(data.data(), data.size()));
    out.push_back(data);
    p += 12 + len + 4;
  }
  return out;
}

// Event -> (wall_time, step, file_version, scalars)
void decode_event(const std::string& e, double& wall, int64_t& step, std::string& version, std::vector<Scalar>& out) {
  Reader r{e};
  step = 0;
  while (r.p < e.size()) {
    const uint64_t k = r.varint();
    const int field = static_cast<int>(k >> 3), wire = static_cast<int>(k & 7);
    if (field == 1 && wire == 1) wall = r.fixed<double>();
    else if (field == 2 && wire == 0) step = static_cast<int64_t>(r.varint());
    else if (field == 3 && wire == 2) version = r.bytes();
    else if (field == 5 && wire == 2) {
      const std::string summary = r.bytes();
      Reader s{summary};
      while (s.p < summary.size()) {
        ASSERT_EQ(s.varint(), (1u << 3) | 2);
        const std::string value = s.bytes();
        Reader v{value};
        Scalar sc{step, "", 0};
        while (v.p < value.size()) {
          const uint64_t vk = v.varint();
          if (vk == ((1u << 3) | 2)) sc.tag = v.bytes();
          else if (vk == ((2u << 3) | 5)) sc.value = v.fixed<float>();
          else FAIL() << "unexpected Value field " << vk;
        }
        out.push_back(sc);
      }
    } else {
      FAIL() << "unexpected Event field " << field << " wire " << wire;
    }
  }
}

TEST(TensorBoard, WrittenScalarsReadBack) {
  const fs::path dir = fs::temp_directory_path() / ("wick_tb_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  Rng rng(5);
  std::vector<Scalar> want;
  std::string path;
  {
    TensorBoardWriter w(dir.string());
    path = w.path();
    for (int64_t step = 1; step <= 40; step++) {
      // steps past 127 and 2^14 exercise multi-byte varints
      const int64_t s = step * 997;
      for (const char* tag : {"train/loss", "train/learning_rate", "eval/loss"}) {
        const float v = (rng.uniform() - 0.3f) * 100.0f;
        w.scalar(tag, v, s);
        want.push_back({s, tag, v});
      }
    }
  }
  EXPECT_EQ(fs::path(path).parent_path(), dir);
  EXPECT_EQ(fs::path(path).filename().string().rfind("events.out.tfevents.", 0), 0u);
  const std::vector<std::string> recs = records(io::read_file(path));
  ASSERT_EQ(recs.size(), want.size() + 1);
  double wall = 0;
  int64_t step = -1;
  std::string version;
  std::vector<Scalar> got;
  decode_event(recs[0], wall, step, version, got);
  EXPECT_EQ(version, "brain.Event:2");
  EXPECT_GT(wall, 1.6e9);
  EXPECT_TRUE(got.empty());
  for (size_t i = 1; i < recs.size(); i++) {
    std::string v;
    decode_event(recs[i], wall, step, v, got);
    EXPECT_TRUE(v.empty());
  }
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); i++) {
    EXPECT_EQ(got[i].step, want[i].step);
    EXPECT_EQ(got[i].tag, want[i].tag);
    EXPECT_EQ(got[i].value, want[i].value);
  }
  fs::remove_all(dir);
}

// A flipped byte anywhere in a record fails its CRC check (what TensorBoard's reader does with it).
TEST(TensorBoard, CorruptionIsDetectedByTheMaskedCrc) {
  const std::string rec = tfrecord(tb_scalar_event("train/loss", 1.5f, 7, 1.7e9));
  Rng rng(9);
  for (int trial = 0; trial < 50; trial++) {
    std::string bad = rec;
    const size_t i = 12 + rng.below(rec.size() - 16);  // inside the data
    bad[i] = static_cast<char>(bad[i] ^ (1 + rng.below(255)));
    const std::string data = bad.substr(12, bad.size() - 16);
    uint32_t dcrc;
    std::memcpy(&dcrc, bad.data() + bad.size() - 4, 4);
    EXPECT_NE(dcrc, masked_crc32c(data.data(), data.size())) << "byte " << i;
  }
}

}  // namespace
}  // namespace wick
