// config.json -> ModelConfig (every field's type and range; derived sizes).
#include "fuzz/fuzz_util.h"
#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  wick::fuzz::expect_clean([&] {
    const wick::ModelConfig c = wick::ModelConfig::from_json_string(text, "config.json");
    (void)c.num_parameters();
    (void)c.q_dim();
    (void)c.kv_dim();
  });
  return 0;
}
