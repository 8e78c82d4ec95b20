// The safetensors reader: maps the file and validates it exactly as the reference reader does
// (formats.md §1.2), in the same order, plus duplicate names; all size arithmetic is checked 64-bit.
#include "io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <numeric>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "io/json_util.h"
#include "io/safetensors_dtype.h"

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian; wick assumes a little-endian host");

namespace wick::io {

using ojson = nlohmann::ordered_json;
static constexpr uint64_t kMaxHeader = 100'000'000;

std::shared_ptr<SafeTensorsFile> SafeTensorsFile::open(const std::string& path) {
  std::shared_ptr<SafeTensorsFile> f(new SafeTensorsFile());
  f->self_ = f;
  f->path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(std::string("cannot open safetensors file: ") + std::strerror(errno), path);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error("not a regular file", path, "expected a .safetensors file");
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    throw Error("file is too small to be safetensors: " + std::to_string(size) +
                    " bytes, but the 8-byte header length alone needs 8",
                path);
  }
  // Private, writable mapping of a read-only file: the file is never modified, and a caller that
  // writes into a borrowed tensor gets a private copy of the page instead of a crash.
  void* m = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);
  if (m == MAP_FAILED) throw Error(std::string("cannot map the file: ") + std::strerror(map_errno), path);
  f->map_ = m;
  f->size_ = size;
  f->parse_header();
  return f;
}

SafeTensorsFile::~SafeTensorsFile() {
  if (map_) ::munmap(map_, size_);
}

// A non-negative JSON integer that fits in 64 bits (what serde reads as usize), else nullopt.
static std::optional<uint64_t> json_u64(const ojson& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
  return std::nullopt;
}

static std::string dims_str(const std::vector<uint64_t>& d) {
  std::string r = "[";
  for (size_t i = 0; i < d.size(); i++) r += (i ? ", " : "") + std::to_string(d[i]);
  return r + "]";
}

namespace {
struct Entry {
  std::string name;
  const SafetensorsDtype* dt = nullptr;
  std::vector<uint64_t> dims;
  uint64_t begin = 0, end = 0;
};
}  // namespace

static Entry parse_entry(const std::string& name, const ojson& v, const std::string& path) {
  const std::string what = "tensor '" + name + "'";
  if (!v.is_object()) throw Error(what + ": header entry must be an object {dtype, shape, data_offsets}, got " + json_brief(v), path);
  Entry e;
  e.name = name;
  auto dt = v.find("dtype");
  if (dt == v.end() || !dt->is_string()) throw Error(what + ": missing or non-string \"dtype\"", path);
  e.dt = find_safetensors_dtype(dt->get<std::string>());
  if (!e.dt)
    throw Error(what + ": unknown dtype " + json_brief(*dt), path, "safetensors dtypes are " + safetensors_dtype_names());
  auto sh = v.find("shape");
  if (sh == v.end() || !sh->is_array()) throw Error(what + ": missing \"shape\" or it is not a list", path);
  for (const ojson& d : *sh) {
    const auto u = json_u64(d);
    if (!u) throw Error(what + ": shape " + json_brief(*sh) + " must hold non-negative integers", path);
    e.dims.push_back(*u);
  }
  auto off = v.find("data_offsets");
  if (off == v.end() || !off->is_array() || off->size() != 2)
    throw Error(what + ": \"data_offsets\" must be a list [begin, end]", path);
  const auto b = json_u64((*off)[0]), en = json_u64((*off)[1]);
  if (!b || !en) throw Error(what + ": data_offsets " + json_brief(*off) + " must be non-negative integers", path);
  e.begin = *b;
  e.end = *en;
  return e;
}

void SafeTensorsFile::parse_header() {
  const auto* base = static_cast<const unsigned char*>(map_);
  uint64_t n = 0;
  std::memcpy(&n, base, 8);
  if (n > kMaxHeader)
    throw Error("header length " + std::to_string(n) + " is over the 100,000,000-byte limit", path_,
                "not a safetensors file, or a corrupt one");
  const uint64_t avail = size_ - 8;
  if (n > avail)
    throw Error("header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(size_) +
                    " bytes)",
                path_, "the file is truncated or not safetensors");
  const std::string_view text(reinterpret_cast<const char*>(base + 8), n);
  ojson j;
  try {
    j = parse_json_strict_ordered(text, path_);
  } catch (const Error& e) {
    throw Error("bad header: " + e.what_msg(), path_, e.hint());
  }
  if (!j.is_object()) throw Error("bad header: must be a JSON object, got " + json_brief(j), path_);

  std::vector<Entry> entries;
  for (const auto& [key, v] : j.items()) {
    if (key == "__metadata__") {
      if (v.is_null()) continue;
      if (!v.is_object()) throw Error("bad header: __metadata__ must be an object of strings, got " + json_brief(v), path_);
      for (const auto& [mk, mv] : v.items()) {
        if (!mv.is_string())
          throw Error("bad header: __metadata__ value for '" + mk + "' must be a string, got " + json_brief(mv), path_);
        metadata_[mk] = mv.get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(key, v, path_));
  }

  // Walk the entries in offset order: each must start where the previous ended (no gaps, overlaps or
  // aliases) and hold exactly numel * bits / 8 bytes.
  std::vector<size_t> order(entries.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::pair(entries[a].begin, entries[a].end) < std::pair(entries[b].begin, entries[b].end);
  });
  uint64_t pos = 0;
  std::string prev = "";
  for (size_t i : order) {
    const Entry& e = entries[i];
    const std::string what = "tensor '" + e.name + "'";
    const std::string offs = "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "]";
    if (e.end < e.begin) throw Error(what + ": invalid " + offs + " (end before begin)", path_);
    if (e.begin > pos)
      throw Error(what + ": " + offs + " leave a gap of " + std::to_string(e.begin - pos) + " bytes after " +
                      (prev.empty() ? std::string("the start of the data") : "tensor '" + prev + "'"),
                  path_, "tensor data must be packed contiguously from offset 0");
    if (e.begin < pos)
      throw Error(what + ": " + offs + " overlap " +
                      (prev.empty() ? std::string("another tensor") : "tensor '" + prev + "'") + ", which ends at " +
                      std::to_string(pos),
                  path_, "tensors may not share or overlap bytes");
    pos = e.end;
    prev = e.name;
    uint64_t numel = 1, nbits = 0;
    for (uint64_t d : e.dims)
      if (__builtin_mul_overflow(numel, d, &numel))
        throw Error(what + ": shape " + dims_str(e.dims) + " overflows 64 bits", path_);
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(e.dt->bits), &nbits))
      throw Error(what + ": shape " + dims_str(e.dims) + " of " + e.dt->name + " overflows 64 bits", path_);
    if (nbits % 8 != 0)
      throw Error(what + ": shape " + dims_str(e.dims) + " of " + e.dt->name + " is not a whole number of bytes", path_);
    if (e.end - e.begin != nbits / 8)
      throw Error(what + ": " + offs + " hold " + std::to_string(e.end - e.begin) + " bytes, but shape " +
                      dims_str(e.dims) + " of " + e.dt->name + " needs " + std::to_string(nbits / 8),
                  path_, "shape x dtype size mismatch");
  }
  const uint64_t data_bytes = avail - n;
  if (pos > data_bytes)
    throw Error("tensor '" + prev + "': data_offsets end at " + std::to_string(pos) +
                    ", past the end of the file (the data buffer holds " + std::to_string(data_bytes) + " bytes)",
                path_, "the file is truncated or its offsets are out of range");
  if (pos < data_bytes)
    throw Error(std::to_string(data_bytes - pos) + " trailing bytes after the last tensor's data", path_,
                "a safetensors file must end where its last tensor ends");

  data_start_ = 8 + n;
  for (const Entry& e : entries) {
    TensorInfo ti;
    ti.name = e.name;
    ti.dtype_str = e.dt->name;
    ti.supported = e.dt->wick.has_value();
    ti.dtype = e.dt->wick.value_or(DType::F32);
    for (uint64_t d : e.dims) {
      if (d > static_cast<uint64_t>(INT64_MAX))
        throw Error("tensor '" + e.name + "': dimension " + std::to_string(d) + " is too large", path_);
      ti.shape.push_back(static_cast<int64_t>(d));
    }
    ti.begin = e.begin;
    ti.end = e.end;
    index_[e.name] = infos_.size();
    infos_.push_back(std::move(ti));
  }
}

bool SafeTensorsFile::has(const std::string& name) const { return index_.count(name) != 0; }

const TensorInfo& SafeTensorsFile::info(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end())
    throw Error("tensor '" + name + "' not found", path_,
                "the file holds " + std::to_string(infos_.size()) + " tensors" +
                    (infos_.empty() ? std::string() : ", e.g. '" + infos_.front().name + "'"));
  return infos_[it->second];
}

Tensor SafeTensorsFile::get(const std::string& name) const {
  const TensorInfo& ti = info(name);
  if (!ti.supported)
    throw Error("tensor '" + name + "' has dtype " + ti.dtype_str + ", which wick cannot load", path_,
                "wick loads F32, BF16, F16, I32 and I64 tensors");
  const size_t nbytes = static_cast<size_t>(ti.end - ti.begin);
  char* p = static_cast<char*>(map_) + data_start_ + ti.begin;
  if (nbytes == 0) return Tensor::empty(ti.shape, ti.dtype);
  if (reinterpret_cast<uintptr_t>(p) % dtype_size(ti.dtype) != 0) {
    // Third-party writers may leave data unaligned for its element type: copy instead of borrowing.
    Tensor t = Tensor::empty(ti.shape, ti.dtype);
    std::memcpy(t.raw(), p, nbytes);
    return t;
  }
  return Tensor::borrow(p, ti.shape, ti.dtype, Device::cpu(), self_.lock());
}

}  // namespace wick::io
