#include "core/tensor.h"

#include <cstring>
#include <limits>

#include "core/device_cuda.h"
#include "core/error.h"

namespace wick {

std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); i++) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) throw Error("negative dimension in shape " + shape_str(s));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      throw Error("shape " + shape_str(s) + " has too many elements");
    n *= d;
  }
  return n;
}

Storage::Storage(Device dev, size_t nbytes) : device_(dev), nbytes_(nbytes), owned_(true) {
  ptr_ = device_alloc(dev, nbytes);
}
Storage::Storage(Device dev, void* ptr, size_t nbytes, std::shared_ptr<void> keepalive)
    : device_(dev), ptr_(ptr), nbytes_(nbytes), owned_(false), keepalive_(std::move(keepalive)) {}
Storage::~Storage() {
  if (owned_) device_free(device_, ptr_);
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device dev) {
  Tensor t;
  t.shape_ = shape;
  t.numel_ = shape_numel(shape);
  t.dtype_ = dtype;
  t.storage_ = std::make_shared<Storage>(dev, t.nbytes());
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device dev) {
  Tensor t = empty(shape, dtype, dev);
  t.zero_();
  return t;
}

Tensor Tensor::borrow(void* ptr, const Shape& shape, DType dtype, Device dev, std::shared_ptr<void> keepalive) {
  Tensor t;
  t.shape_ = shape;
  t.numel_ = shape_numel(shape);
  t.dtype_ = dtype;
  t.storage_ = std::make_shared<Storage>(dev, ptr, t.nbytes(), std::move(keepalive));
  return t;
}

Tensor Tensor::from_f32(const std::vector<float>& v, const Shape& shape, Device dev, DType dtype) {
  Tensor h = empty(shape, DType::F32);
  WICK_CHECK(static_cast<int64_t>(v.size()) == h.numel(), "from_f32: " << v.size() << " values for shape " << shape_str(shape));
  std::memcpy(h.raw(), v.data(), h.nbytes());
  if (dtype != DType::F32) h = h.to(dtype);
  return dev.is_cpu() ? h : h.to(dev);
}

Tensor Tensor::from_i32(const std::vector<int32_t>& v, const Shape& shape, Device dev) {
  Tensor h = empty(shape, DType::I32);
  WICK_CHECK(static_cast<int64_t>(v.size()) == h.numel());
  std::memcpy(h.raw(), v.data(), h.nbytes());
  return dev.is_cpu() ? h : h.to(dev);
}

Tensor Tensor::from_i64(const std::vector<int64_t>& v, const Shape& shape, Device dev) {
  Tensor h = empty(shape, DType::I64);
  WICK_CHECK(static_cast<int64_t>(v.size()) == h.numel());
  std::memcpy(h.raw(), v.data(), h.nbytes());
  return dev.is_cpu() ? h : h.to(dev);
}

int64_t Tensor::dim(int i) const {
  const int n = ndim();
  if (i < 0) i += n;
  WICK_CHECK(i >= 0 && i < n, "dim " << i << " of " << str());
  return shape_[i];
}

std::string Tensor::str() const {
  if (!defined()) return "<undefined tensor>";
  return std::string(dtype_name(dtype_)) + shape_str(shape_) + " " + device().str();
}

void Tensor::check_dtype(DType want) const {
  WICK_CHECK(defined(), "access to an undefined tensor");
  WICK_CHECK(dtype_ == want, "tensor " << str() << " accessed as " << dtype_name(want));
}

uint16_t* Tensor::data_u16() const {
  WICK_CHECK(dtype_ == DType::BF16 || dtype_ == DType::F16, "tensor " << str() << " accessed as 16-bit float");
  return static_cast<uint16_t*>(raw());
}

Tensor Tensor::view(const Shape& shape) const {
  Shape s = shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == -1) {
      WICK_CHECK(infer < 0, "view: more than one -1 in " << shape_str(shape));
      infer = static_cast<int>(i);
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    WICK_CHECK(known > 0 && numel_ % known == 0, "view " << shape_str(shape) << " of " << str());
    s[infer] = numel_ / known;
  }
  WICK_CHECK(shape_numel(s) == numel_, "view " << shape_str(shape) << " of " << str());
  Tensor t = *this;
  t.shape_ = s;
  return t;
}

Tensor Tensor::narrow0(int64_t begin, int64_t len) const {
  WICK_CHECK(ndim() >= 1 && begin >= 0 && len >= 0 && begin + len <= shape_[0],
             "narrow0(" << begin << ", " << len << ") of " << str());
  Tensor t = *this;
  const int64_t row = shape_[0] ? numel_ / shape_[0] : 0;
  t.offset_ += static_cast<size_t>(begin * row) * dtype_size(dtype_);
  t.shape_[0] = len;
  t.numel_ = row * len;
  return t;
}

Tensor Tensor::flatten_to_2d() const {
  WICK_CHECK(ndim() >= 1);
  const int64_t last = shape_.back();
  return view({last ? numel_ / last : 0, last});
}

Tensor Tensor::to(Device dev) const {
  if (dev == device()) return *this;
  Tensor t = empty(shape_, dtype_, dev);
  t.copy_from(*this);
  return t;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return *this;
  Tensor t = empty(shape_, dtype, device());
  cast_into(*this, t);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_, dtype_, device());
  t.copy_from(*this);
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  WICK_CHECK(src.shape_ == shape_ && src.dtype_ == dtype_, "copy_from " << src.str() << " into " << str());
  device_copy(raw(), device(), src.raw(), src.device(), nbytes());
}

void Tensor::zero_() { device_memset_zero(raw(), device(), nbytes()); }

std::vector<float> Tensor::to_f32_vector() const {
  Tensor h = to(Device::cpu()).to(DType::F32);
  const float* p = h.data<float>();
  return std::vector<float>(p, p + numel_);
}

std::vector<int64_t> Tensor::to_i64_vector() const {
  Tensor h = to(Device::cpu()).to(DType::I64);
  const int64_t* p = h.data<int64_t>();
  return std::vector<int64_t>(p, p + numel_);
}

// Host conversion: each element to double-free f32 then to the target (exact for every pair we support:
// integer <-> integer goes through int64 instead).
static float load_f(const void* p, DType t, int64_t i) {
  switch (t) {
    case DType::F32: return static_cast<const float*>(p)[i];
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::I32: return static_cast<float>(static_cast<const int32_t*>(p)[i]);
    case DType::I64: return static_cast<float>(static_cast<const int64_t*>(p)[i]);
  }
  return 0;
}

void cast_into(const Tensor& src, Tensor& dst) {
  WICK_CHECK(src.shape() == dst.shape(), "cast " << src.str() << " into " << dst.str());
  WICK_CHECK(src.device() == dst.device(), "cast across devices: " << src.str() << " into " << dst.str());
  if (src.dtype() == dst.dtype()) {
    dst.copy_from(src);
    return;
  }
  if (!src.device().is_cpu()) {
#ifdef WICK_CUDA
    cuda_cast(src, dst);
    return;
#else
    WICK_CHECK(false, "CUDA tensor in a build without CUDA");
#endif
  }
  const int64_t n = src.numel();
  const void* s = src.raw();
  const bool int_src = !dtype_is_float(src.dtype()), int_dst = !dtype_is_float(dst.dtype());
  if (int_src && int_dst) {
    for (int64_t i = 0; i < n; i++) {
      const int64_t v = src.dtype() == DType::I32 ? static_cast<const int32_t*>(s)[i] : static_cast<const int64_t*>(s)[i];
      if (dst.dtype() == DType::I32) static_cast<int32_t*>(dst.raw())[i] = static_cast<int32_t>(v);
      else static_cast<int64_t*>(dst.raw())[i] = v;
    }
    return;
  }
  for (int64_t i = 0; i < n; i++) {
    const float v = load_f(s, src.dtype(), i);
    switch (dst.dtype()) {
      case DType::F32: static_cast<float*>(dst.raw())[i] = v; break;
      case DType::BF16: static_cast<uint16_t*>(dst.raw())[i] = f32_to_bf16(v); break;
      case DType::F16: static_cast<uint16_t*>(dst.raw())[i] = f32_to_f16(v); break;
      case DType::I32: static_cast<int32_t*>(dst.raw())[i] = static_cast<int32_t>(v); break;
      case DType::I64: static_cast<int64_t*>(dst.raw())[i] = static_cast<int64_t>(v); break;
    }
  }
}

}  // namespace wick
