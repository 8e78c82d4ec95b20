// ggml type codecs: the exact bytes ggml (and gguf-py's numpy port) produce for F32, F16, BF16 and Q8_0.
#include "io/gguf_types.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"

namespace wick::io {

const char* ggml_type_name(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return "F32";
    case GgmlType::F16: return "F16";
    case GgmlType::Q8_0: return "Q8_0";
    case GgmlType::BF16: return "BF16";
  }
  return "?";
}

bool ggml_row_fits(GgmlType t, int64_t n) { return t != GgmlType::Q8_0 || n % kQ8BlockSize == 0; }

int64_t ggml_row_bytes(GgmlType t, int64_t n) {
  switch (t) {
    case GgmlType::F32: return 4 * n;
    case GgmlType::F16:
    case GgmlType::BF16: return 2 * n;
    case GgmlType::Q8_0:
      if (n % kQ8BlockSize != 0)
        throw Error("a Q8_0 row must hold a multiple of 32 values, not " + std::to_string(n), "gguf");
      return n / kQ8BlockSize * kQ8BlockBytes;
  }
  return 0;
}

namespace {

void put16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v & 0xff));
  out.push_back(static_cast<char>(v >> 8));
}
uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

// ggml's Q8_0 reference quantizer, one block of 32.
void q8_block(const float* x, std::string& out) {
  float amax = 0.0f;
  for (int64_t j = 0; j < kQ8BlockSize; j++) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put16(out, f32_to_f16(d));
  for (int64_t j = 0; j < kQ8BlockSize; j++) {
    const float v = x[j] * id;  // a separate multiply: no fused rounding
    out.push_back(static_cast<char>(static_cast<int8_t>(std::round(v))));  // std::round: half away from zero
  }
}

}  // namespace

void ggml_encode(GgmlType t, const float* x, int64_t n, std::string& out) {
  switch (t) {
    case GgmlType::F32: {
      const size_t at = out.size();
      out.resize(at + 4 * static_cast<size_t>(n));
      std::memcpy(out.data() + at, x, 4 * static_cast<size_t>(n));  // little-endian hosts only (wick's)
      return;
    }
    case GgmlType::F16:
      for (int64_t i = 0; i < n; i++) put16(out, f32_to_f16(x[i]));
      return;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; i++) put16(out, f32_to_bf16(x[i]));
      return;
    case GgmlType::Q8_0:
      ggml_row_bytes(t, n);  // checks the block size
      for (int64_t b = 0; b < n; b += kQ8BlockSize) q8_block(x + b, out);
      return;
  }
}

std::vector<float> ggml_decode(GgmlType t, const uint8_t* p, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  switch (t) {
    case GgmlType::F32: std::memcpy(v.data(), p, 4 * static_cast<size_t>(n)); break;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; i++) v[i] = f16_to_f32(get16(p + 2 * i));
      break;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; i++) v[i] = bf16_to_f32(get16(p + 2 * i));
      break;
    case GgmlType::Q8_0:
      ggml_row_bytes(t, n);
      for (int64_t b = 0; b < n / kQ8BlockSize; b++) {
        const uint8_t* blk = p + b * kQ8BlockBytes;
        const float d = f16_to_f32(get16(blk));
        for (int64_t j = 0; j < kQ8BlockSize; j++)
          v[b * kQ8BlockSize + j] = d * static_cast<float>(static_cast<int8_t>(blk[2 + j]));
      }
      break;
  }
  return v;
}

}  // namespace wick::io
