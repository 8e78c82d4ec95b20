// safetensors files: the header (JSON, offsets, dtypes, shapes) and the data, through the mmap reader;
// every tensor read back and converted to f32 when float.
#include "fuzz/fuzz_util.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = wick::fuzz::write_input("t.safetensors", data, size);
  wick::fuzz::expect_clean([&] {
    const auto f = wick::io::SafeTensorsFile::open(path);
    for (const auto& ti : f->tensors()) {
      wick::fuzz::expect_clean([&] {
        const wick::Tensor t = f->get(ti.name);
        if (wick::dtype_is_float(t.dtype()) && t.numel() < (1 << 20)) (void)t.to_f32_vector();
      });
    }
  });
  return 0;
}
