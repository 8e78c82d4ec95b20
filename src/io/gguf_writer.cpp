// The GGUF v3 container: kv pairs and tensor infos encoded in memory, tensor data streamed to the file.
#include "io/gguf_writer.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "io/atomic_file.h"

namespace wick::io {

namespace {

template <typename T>
void put(std::string& out, T v) {  // little-endian hosts (wick's)
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}

void put_str(std::string& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out += s;
}

uint64_t pad_to(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace

bool GgufWriter::has_key(const std::string& key) const {
  return std::find(keys_.begin(), keys_.end(), key) != keys_.end();
}

void GgufWriter::key_header(const std::string& key, GgufValueType t) {
  WICK_CHECK(!has_key(key), "duplicate GGUF key " + key);
  keys_.push_back(key);
  kv_count_++;
  put_str(kv_, key);
  put<uint32_t>(kv_, static_cast<uint32_t>(t));
}

void GgufWriter::add_string(const std::string& key, const std::string& v) {
  key_header(key, GgufValueType::STRING);
  put_str(kv_, v);
}
void GgufWriter::add_u32(const std::string& key, uint32_t v) {
  key_header(key, GgufValueType::U32);
  put<uint32_t>(kv_, v);
}
void GgufWriter::add_i32(const std::string& key, int32_t v) {
  key_header(key, GgufValueType::I32);
  put<int32_t>(kv_, v);
}
void GgufWriter::add_f32(const std::string& key, float v) {
  key_header(key, GgufValueType::F32);
  put<float>(kv_, v);
}
void GgufWriter::add_bool(const std::string& key, bool v) {
  key_header(key, GgufValueType::BOOL);
  put<uint8_t>(kv_, v ? 1 : 0);
}
void GgufWriter::add_string_array(const std::string& key, const std::vector<std::string>& v) {
  key_header(key, GgufValueType::ARRAY);
  put<uint32_t>(kv_, static_cast<uint32_t>(GgufValueType::STRING));
  put<uint64_t>(kv_, v.size());
  for (const std::string& s : v) put_str(kv_, s);
}
void GgufWriter::add_i32_array(const std::string& key, const std::vector<int32_t>& v) {
  key_header(key, GgufValueType::ARRAY);
  put<uint32_t>(kv_, static_cast<uint32_t>(GgufValueType::I32));
  put<uint64_t>(kv_, v.size());
  for (int32_t x : v) put<int32_t>(kv_, x);
}

void GgufWriter::add_tensor(const std::string& name, const std::vector<int64_t>& shape, GgmlType type,
                            std::function<std::string()> produce) {
  for (const TensorEntry& t : tensors_) WICK_CHECK(t.name != name, "duplicate GGUF tensor " + name);
  WICK_CHECK(!shape.empty(), "GGUF tensor " + name + " has no dims");
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < shape.size(); i++) rows *= shape[i];
  TensorEntry e{name, shape, type, 0, data_size_};
  e.nbytes = static_cast<uint64_t>(rows * ggml_row_bytes(type, shape.back()));
  data_size_ += pad_to(e.nbytes, kGgufAlignment);
  tensors_.push_back(std::move(e));
  producers_.push_back(std::move(produce));
}

void GgufWriter::write(const std::string& path) const {
  std::string head;
  head += "GGUF";
  put<uint32_t>(head, kGgufVersion);
  put<uint64_t>(head, tensors_.size());
  put<uint64_t>(head, kv_count_);
  head += kv_;
  for (const TensorEntry& t : tensors_) {
    put_str(head, t.name);
    put<uint32_t>(head, static_cast<uint32_t>(t.shape.size()));
    for (size_t i = t.shape.size(); i-- > 0;) put<uint64_t>(head, static_cast<uint64_t>(t.shape[i]));
    put<uint32_t>(head, static_cast<uint32_t>(t.type));
    put<uint64_t>(head, t.offset);
  }
  head.resize(pad_to(head.size(), kGgufAlignment), '\0');
  AtomicFile f(path);
  f.write(head.data(), head.size());
  const std::string zeros(kGgufAlignment, '\0');
  for (size_t i = 0; i < tensors_.size(); i++) {
    const std::string bytes = producers_[i]();
    if (bytes.size() != tensors_[i].nbytes)
      throw Error("tensor " + tensors_[i].name + " produced " + std::to_string(bytes.size()) + " bytes, expected " +
                      std::to_string(tensors_[i].nbytes),
                  path);
    f.write(bytes.data(), bytes.size());
    f.write(zeros.data(), pad_to(bytes.size(), kGgufAlignment) - bytes.size());
  }
  f.commit();
}

}  // namespace wick::io
