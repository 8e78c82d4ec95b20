// Warm prefill of a prompt into a fresh KV cache (issue 12's prefill goal: 0.5B, 4,096 tokens): one
// CausalLM::forward over the whole prompt with the logits of its last position only, as `wick generate`
// prefills. Random weights with the preset's published config (they cost what real ones do). CUDA, bf16; the
// plan caches and workspaces are warm (timed_loop's untimed calls), the cache is reset before each call.
//   prefill/qwen2.5-0.5b/4096/cuda   (tokens/s = 4096 / median_us; the `tok_per_s` counter)
#include <memory>
#include <string>
#include <vector>

#include "bench_util.h"
#include "model/causal_lm.h"
#include "model/presets.h"

namespace wick::bench {

void register_prefill_benchmarks(const std::vector<Device>& devices) {
  for (Device dev : devices) {
    if (!dev.is_cuda()) continue;  // a 0.5B model over 4,096 tokens: GPU rows only
    for (const char* preset : {"qwen2.5-0.5b"}) {
      const int64_t T = 4096;
      const std::string name = std::string("prefill/") + preset + "/" + std::to_string(T) + dev_suffix(dev);
      benchmark::RegisterBenchmark(name.c_str(), [preset, T, dev](benchmark::State& st) {
        const ModelConfig cfg = preset_config(preset);
        std::unique_ptr<CausalLM> m = CausalLM::random(cfg, dev, DType::BF16, 11);
        Rng rng(3);
        std::vector<int32_t> ids(static_cast<size_t>(T));
        for (int32_t& id : ids) id = static_cast<int32_t>(rng.next_u32() % static_cast<uint32_t>(cfg.vocab_size));
        const Tensor prompt = Tensor::from_i32(ids, {1, T}, dev);
        KVCache cache(*m, 1, T);
        timed_loop(st, dev, [&] {
          cache.reset();
          m->forward(prompt, &cache, /*last_only*/ true);
        }, /*warmup*/ 2);
        st.counters["tok_per_s"] = static_cast<double>(T) / (st.counters["median_us"] * 1e-6);
      })->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(10);
    }
  }
}

}  // namespace wick::bench
