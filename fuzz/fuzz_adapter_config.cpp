// adapter_config.json -> LoraConfig, its module matching (list, regex, exclusions, layers_to_transform) on
// every projection of a Qwen2 model, and the written config read back.
#include "fuzz/fuzz_util.h"
#include "io/peft_adapter.h"
#include "lora/lora.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  wick::fuzz::expect_clean([&] {
    const wick::io::LoraConfig c = wick::io::LoraConfig::from_json_string(text, "adapter_config.json");
    (void)c.scale();
    wick::ModelConfig mc;
    mc.num_layers = 3;
    for (const std::string& p : wick::lora_module_paths(mc)) (void)c.targets(p);
    (void)c.targets("lm_head");
    wick::fuzz::expect_clean([&] { wick::check_targets(c, mc, "adapter_config.json"); });
    const wick::io::LoraConfig back = wick::io::LoraConfig::from_json_string(c.to_json(), "written");
    if (back.r != c.r || back.use_rslora != c.use_rslora || back.target_modules != c.target_modules ||
        back.target_regex != c.target_regex || back.layers_to_transform != c.layers_to_transform) {
      std::fprintf(stderr, "fuzz: adapter_config.json does not round-trip\n");
      std::abort();
    }
  });
  return 0;
}
