// The safetensors dtype table (formats.md §1.1): names exactly as written in headers, bit widths, and
// the enum rank the reference writer sorts by (larger rank = larger alignment = written first).
#pragma once
#include <optional>
#include <string>

#include "core/dtype.h"

namespace wick::io {

struct SafetensorsDtype {
  const char* name;
  int bits;
  int rank;                   // position in the reference enum
  std::optional<DType> wick;  // the wick dtype it loads as, if any
};

const SafetensorsDtype* find_safetensors_dtype(const std::string& name);  // nullptr when unknown
const SafetensorsDtype& safetensors_dtype_of(DType t);
std::string safetensors_dtype_names();  // "BOOL, F4, ..." for error messages

}  // namespace wick::io
