// GgufWriter: the GGUF v3 container (ggml docs/gguf.md), written streaming and atomically.
// File = "GGUF" | u32 version 3 | u64 tensor count | u64 kv count | kv pairs | tensor infos | zero padding
// to the alignment | tensor data, each tensor padded to the alignment (the last one too, as gguf-py does).
// A kv pair is a string key, a u32 value type and the value; a string is a u64 byte length and the bytes
// (no terminator). A tensor info is its name, u32 n_dims, the dims innermost first (ggml's ne[]: the
// reverse of the row-major shape), u32 ggml type and the u64 offset of its data from the data start.
// Keys and tensors are written in the order they were added. Alignment is 32 (gguf's default; no
// general.alignment key is written, as llama.cpp's converter does not write one).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "io/gguf_types.h"

namespace wick::io {

// gguf_type values of the spec.
enum class GgufValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9,
  U64 = 10, I64 = 11, F64 = 12
};

constexpr uint32_t kGgufVersion = 3;
constexpr uint64_t kGgufAlignment = 32;

class GgufWriter {
 public:
  void add_string(const std::string& key, const std::string& v);
  void add_u32(const std::string& key, uint32_t v);
  void add_i32(const std::string& key, int32_t v);
  void add_f32(const std::string& key, float v);
  void add_bool(const std::string& key, bool v);
  void add_string_array(const std::string& key, const std::vector<std::string>& v);
  void add_i32_array(const std::string& key, const std::vector<int32_t>& v);
  bool has_key(const std::string& key) const;

  // shape is row-major (outermost first, as PyTorch / safetensors); produce() is called once, while
  // writing, and must return exactly ggml_row_bytes(type, shape.back()) * rows bytes.
  void add_tensor(const std::string& name, const std::vector<int64_t>& shape, GgmlType type,
                  std::function<std::string()> produce);

  struct TensorEntry {
    std::string name;
    std::vector<int64_t> shape;  // row-major
    GgmlType type;
    uint64_t nbytes = 0;
    uint64_t offset = 0;  // from the start of the data section
  };
  const std::vector<TensorEntry>& tensors() const { return tensors_; }
  size_t kv_count() const { return kv_count_; }

  // Writes the file atomically (temp file + rename); throws wick::Error naming path.
  void write(const std::string& path) const;

 private:
  void key_header(const std::string& key, GgufValueType t);
  std::string kv_;  // the encoded kv pairs, in order
  size_t kv_count_ = 0;
  std::vector<std::string> keys_;
  std::vector<TensorEntry> tensors_;
  std::vector<std::function<std::string()>> producers_;
  uint64_t data_size_ = 0;
};

}  // namespace wick::io
