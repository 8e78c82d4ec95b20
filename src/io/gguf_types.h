// The ggml tensor types wick writes into GGUF files, their byte sizes, and f32 <-> type row codecs.
// Layouts as ggml defines them (ggml.h / ggml-quants.c):
//  - F32, F16 (IEEE half), BF16: one element after the other, little-endian.
//  - Q8_0: blocks of 32 elements along a row, each { f16 d; int8 qs[32] } (34 bytes) with
//    d = max|x| / 127 (computed in f32, stored as f16), qs = round-half-away-from-zero(x * (1/d)),
//    qs = 0 when d = 0. Row lengths must be a multiple of 32.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace wick::io {

// Values are ggml's enum ggml_type (written into the file).
enum class GgmlType : uint32_t { F32 = 0, F16 = 1, Q8_0 = 8, BF16 = 30 };

constexpr int64_t kQ8BlockSize = 32;
constexpr int64_t kQ8BlockBytes = 34;

const char* ggml_type_name(GgmlType t);  // "F32", "F16", "Q8_0", "BF16"
// Bytes of one row of n elements; throws wick::Error when n does not fit the type's block size.
int64_t ggml_row_bytes(GgmlType t, int64_t n);
bool ggml_row_fits(GgmlType t, int64_t n);  // n is a whole number of blocks

// Encodes n f32 values (n a multiple of the block size for Q8_0) and appends the bytes to out.
void ggml_encode(GgmlType t, const float* x, int64_t n, std::string& out);
// Decodes n values of type t from bytes (which must hold ggml_row_bytes(t, n) bytes).
std::vector<float> ggml_decode(GgmlType t, const uint8_t* bytes, int64_t n);

}  // namespace wick::io
