// DType: the element types a Tensor may hold, and exact conversions between them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace wick {

enum class DType : uint8_t { F32, BF16, F16, I32, I64 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);        // "f32", "bf16", ...
DType dtype_from_name(const std::string& s);  // accepts "f32"/"float32", "bf16"/"bfloat16", ...; throws on others
bool dtype_is_float(DType t);

// Conversions bit-identical to PyTorch's casts: round to nearest, ties to even; NaN stays a quiet NaN
// (sign kept), overflow rounds to +-inf, f16 subnormals are produced exactly.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint16_t f32_to_f16(float f);
float f16_to_f32(uint16_t h);

// Round an f32 value through bf16 (what storing it in a bf16 tensor does).
inline float round_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }

}  // namespace wick
