#include "train/tensorboard.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace wick {

namespace {

const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> t = [] {
    std::array<uint32_t, 256> a{};
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      a[i] = c;
    }
    return a;
  }();
  return t;
}

void varint(std::string& o, uint64_t v) {
  while (v >= 0x80) {
    o.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  o.push_back(static_cast<char>(v));
}
void key(std::string& o, int field, int wire) { varint(o, static_cast<uint64_t>(field) << 3 | wire); }
template <class T>
void fixed(std::string& o, T v) {  // little endian (x86 and ARM as wick runs them)
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  o.append(b, sizeof(T));
}
void bytes_field(std::string& o, int field, const std::string& s) {
  key(o, field, 2);
  varint(o, s.size());
  o += s;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

uint32_t crc32c(const void* data, size_t n, uint32_t crc) {
  const auto& t = crc_table();
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (size_t i = 0; i < n; i++) crc = t[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

std::string tb_version_event(double wall_time) {
  std::string e;
  key(e, 1, 1);
  fixed(e, wall_time);
  bytes_field(e, 3, "brain.Event:2");
  return e;
}

std::string tb_scalar_event(const std::string& tag, float value, int64_t step, double wall_time) {
  std::string v;
  bytes_field(v, 1, tag);
  key(v, 2, 5);
  fixed(v, value);
  std::string summary;
  bytes_field(summary, 1, v);
  std::string e;
  key(e, 1, 1);
  fixed(e, wall_time);
  key(e, 2, 0);
  varint(e, static_cast<uint64_t>(step));
  bytes_field(e, 5, summary);
  return e;
}

std::string tfrecord(const std::string& data) {
  std::string r;
  const uint64_t len = data.size();
  fixed(r, len);
  fixed(r, masked_crc32c(r.data(), 8));
  r += data;
  fixed(r, masked_crc32c(data.data(), data.size()));
  return r;
}

TensorBoardWriter::TensorBoardWriter(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  const double t = now_s();
  path_ = (fs::path(dir) / ("events.out.tfevents." + std::to_string(static_cast<int64_t>(t)) + "." + host + "." +
                            std::to_string(getpid()) + ".wick"))
              .string();
  f_ = std::fopen(path_.c_str(), "ab");
  if (!f_) throw Error("cannot create the TensorBoard event file", path_, "check permissions and free space");
  const std::string r = tfrecord(tb_version_event(t));
  std::fwrite(r.data(), 1, r.size(), f_);
  std::fflush(f_);
}

TensorBoardWriter::~TensorBoardWriter() {
  if (f_) std::fclose(f_);
}

void TensorBoardWriter::scalar(const std::string& tag, double value, int64_t step) {
  const std::string r = tfrecord(tb_scalar_event(tag, static_cast<float>(value), step, now_s()));
  std::fwrite(r.data(), 1, r.size(), f_);
  std::fflush(f_);
}

}  // namespace wick
