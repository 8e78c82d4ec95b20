// Tensor: a dense, contiguous, row-major array with a dtype and a device, sharing reference-counted
// storage. Views (reshape, narrow along dim 0) share the storage; nothing here allocates behind the
// caller's back except empty()/to()/clone(). Strides are implicit: wick keeps every tensor contiguous.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"

namespace wick {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);  // "[2, 3]"
int64_t shape_numel(const Shape& s);     // checked product; throws on negative dims or overflow

// Owning (or borrowed, when deleter is null) block of bytes on one device.
class Storage {
 public:
  Storage(Device dev, size_t nbytes);                   // allocates
  Storage(Device dev, void* ptr, size_t nbytes, std::shared_ptr<void> keepalive);  // borrows
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* ptr() const { return ptr_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  Device device_;
  void* ptr_ = nullptr;
  size_t nbytes_ = 0;
  bool owned_ = false;
  std::shared_ptr<void> keepalive_;  // e.g. an mmap that borrowed bytes point into
};

template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<int32_t>() { return DType::I32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::I64; }

class Tensor {
 public:
  Tensor() = default;

  static Tensor empty(const Shape& shape, DType dtype, Device dev = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype, Device dev = Device::cpu());
  // Borrow external bytes (e.g. an mmap); keepalive is held for as long as any view lives.
  static Tensor borrow(void* ptr, const Shape& shape, DType dtype, Device dev, std::shared_ptr<void> keepalive);
  // Host f32/i32/i64 tensor holding a copy of the values, then moved to dev (and cast for floats).
  static Tensor from_f32(const std::vector<float>& v, const Shape& shape, Device dev = Device::cpu(),
                         DType dtype = DType::F32);
  static Tensor from_i32(const std::vector<int32_t>& v, const Shape& shape, Device dev = Device::cpu());
  static Tensor from_i64(const std::vector<int64_t>& v, const Shape& shape, Device dev = Device::cpu());

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const;  // negative i counts from the end
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device() : Device::cpu(); }
  std::string str() const;  // "bf16[2, 3] cuda:0"

  void* raw() const { return static_cast<char*>(storage_->ptr()) + offset_; }
  template <typename T> T* data() const {
    check_dtype(dtype_of<T>());
    return static_cast<T*>(raw());
  }
  uint16_t* data_u16() const;  // bf16 / f16 bits

  // Views sharing storage.
  Tensor view(const Shape& shape) const;              // same numel; one dim may be -1
  Tensor narrow0(int64_t begin, int64_t len) const;  // rows [begin, begin+len) of dim 0
  Tensor flatten_to_2d() const;                      // [prod(leading), last]

  // Copies.
  Tensor to(Device dev) const;
  Tensor to(DType dtype) const;  // host conversion for CPU tensors; CUDA casts on the device
  Tensor clone() const;
  void copy_from(const Tensor& src);  // same shape and dtype; any devices
  void zero_();
  std::vector<float> to_f32_vector() const;  // any float dtype, any device
  std::vector<int64_t> to_i64_vector() const;  // any integer dtype, any device

  bool same_shape(const Tensor& o) const { return shape_ == o.shape_; }

 private:
  void check_dtype(DType want) const;
  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;
  Shape shape_;
  int64_t numel_ = 0;
  DType dtype_ = DType::F32;
};

// Casting between dtypes on a device (dst preallocated, same shape). CPU: exact RNE conversions.
void cast_into(const Tensor& src, Tensor& dst);

}  // namespace wick
