// safetensors: a validated, memory-mapped reader (formats.md §1.2, plus duplicate-name detection and
// checked 64-bit arithmetic), sharded checkpoints through model.safetensors.index.json, and an atomic
// writer (temp file + rename; {"format":"pt"} metadata; header padded to 8 bytes; tensors laid out in
// the reference order). Every problem is a wick::Error naming the file and the tensor or field.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/input_file.h"
#include "core/tensor.h"

namespace wick::io {

struct TensorInfo {
  std::string name;
  DType dtype;             // F32, BF16, F16, I32, I64 map to wick dtypes; for others it is meaningless
                           // (supported == false; dtype_str says what the file holds)
  std::string dtype_str;   // as written in the header ("F32", "BOOL", ...)
  Shape shape;
  uint64_t begin = 0, end = 0;  // data_offsets relative to the data buffer
  bool supported = true;   // false for valid safetensors dtypes wick cannot load (U8, F8_*, ...)
};

class SafeTensorsFile {
 public:
  // Maps and validates the whole header; throws wick::Error("<path>: ...") on any malformation.
  static std::shared_ptr<SafeTensorsFile> open(const std::string& path);
  const std::string& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return infos_; }  // in header order
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool has(const std::string& name) const;
  const TensorInfo& info(const std::string& name) const;  // throws naming the missing tensor and file
  // A host tensor viewing the mapped bytes (zero-copy; alive while any view lives). Throws for
  // unsupported dtypes. Unaligned data is copied. The mapping is private: writing into a view changes
  // only this process's copy of the page, never the file.
  Tensor get(const std::string& name) const;

  ~SafeTensorsFile();

 private:
  SafeTensorsFile() = default;
  void parse_header();  // validates the mapped bytes and fills infos_, index_, metadata_
  std::string path_;
  void* map_ = nullptr;
  size_t size_ = 0;
  size_t data_start_ = 0;
  std::vector<TensorInfo> infos_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
  std::weak_ptr<SafeTensorsFile> self_;
};

// A checkpoint: either <dir>/model.safetensors or the shards listed by <dir>/model.safetensors.index.json
// (or a single explicit .safetensors file).
class Checkpoint {
 public:
  static Checkpoint open(const std::string& dir_or_file);
  bool has(const std::string& name) const;
  const TensorInfo& info(const std::string& name) const;
  Tensor get(const std::string& name) const;  // host tensor, file dtype
  std::vector<std::string> names() const;
  const std::vector<std::shared_ptr<SafeTensorsFile>>& files() const { return files_; }
  std::string where(const std::string& name) const;  // the file that holds it (for error messages)

 private:
  std::vector<std::shared_ptr<SafeTensorsFile>> files_;
  std::map<std::string, size_t> owner_;
};

// Writes tensors (any device; copied to host) atomically to path. Names must be unique.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// Writes bytes to path atomically (temp file in the same folder, fsync, rename).
void write_file_atomic(const std::string& path, const std::string& bytes);
using wick::read_file;  // core/input_file.h: the whole file; wick::Error naming the path

}  // namespace wick::io
