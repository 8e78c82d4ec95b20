#include "io/safetensors_dtype.h"

#include "core/error.h"

namespace wick::io {

static const SafetensorsDtype kDtypes[] = {
    {"BOOL", 8, 0, std::nullopt},      {"F4", 4, 1, std::nullopt},
    {"F6_E2M3", 6, 2, std::nullopt},   {"F6_E3M2", 6, 3, std::nullopt},
    {"U8", 8, 4, std::nullopt},        {"I8", 8, 5, std::nullopt},
    {"F8_E5M2", 8, 6, std::nullopt},   {"F8_E4M3", 8, 7, std::nullopt},
    {"F8_E8M0", 8, 8, std::nullopt},   {"F8_E4M3FNUZ", 8, 9, std::nullopt},
    {"F8_E5M2FNUZ", 8, 10, std::nullopt}, {"I16", 16, 11, std::nullopt},
    {"U16", 16, 12, std::nullopt},     {"F16", 16, 13, DType::F16},
    {"BF16", 16, 14, DType::BF16},     {"I32", 32, 15, DType::I32},
    {"U32", 32, 16, std::nullopt},     {"F32", 32, 17, DType::F32},
    {"C64", 64, 18, std::nullopt},     {"F64", 64, 19, std::nullopt},
    {"I64", 64, 20, DType::I64},       {"U64", 64, 21, std::nullopt},
};

const SafetensorsDtype* find_safetensors_dtype(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

const SafetensorsDtype& safetensors_dtype_of(DType t) {
  for (const auto& d : kDtypes)
    if (d.wick && *d.wick == t) return d;
  WICK_CHECK(false, "no safetensors dtype for " << dtype_name(t));
  return kDtypes[0];
}

std::string safetensors_dtype_names() {
  std::string s;
  for (const auto& d : kDtypes) s += (s.empty() ? "" : ", ") + std::string(d.name);
  return s;
}

}  // namespace wick::io
