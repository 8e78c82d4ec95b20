// One decode step's attention alone (issue 12): rope_cache_attention with one query a head over a KV cache whose
// first `keys` positions are filled, the capacity 1,024 and the positions on the device, as a replayed decode step
// launches it (ops/cuda/decode_attention.cu: ONE launch on CUDA). The heads, head dim and RoPE base of each
// Qwen2.5 size, bf16, random values. Each call is timed by CUDA events around it, so a row is the kernel's warm
// cost plus the host's launch work (a few us; ncu gives the kernel alone). With dev/attention/decode_stamps.patch
// the rows also report the kernel's phases in cycles (docs/benchmarks.md section 10, session 22).
// WICK_BENCH_PROFILE=1 brackets the timed loop for `ncu --profile-from-start off` (bench_util.h).
//   decode_attention/qwen2.5-0.5b/384/cuda
#include <cmath>
#include <string>
#include <vector>

#include "bench_util.h"
#include "model/presets.h"
#include "ops/attention.h"
#include "ops/rope.h"

namespace wick::bench {

void register_decode_attention_benchmarks(const std::vector<Device>& devices) {
  for (Device dev : devices) {
    if (!dev.is_cuda()) continue;  // the one-launch decode kernel is CUDA's
    for (const char* preset : {"qwen2.5-0.5b", "qwen2.5-1.5b", "qwen2.5-7b"})
      for (int64_t keys : {128, 384, 1024}) {
        const std::string name =
            std::string("decode_attention/") + preset + "/" + std::to_string(keys) + dev_suffix(dev);
        benchmark::RegisterBenchmark(name.c_str(), [preset, keys, dev](benchmark::State& st) {
          const ModelConfig c = preset_config(preset);
          const int64_t H = c.num_heads, Hkv = c.num_kv_heads, D = c.head_dim, cap = 1024;
          Rng rng(21);
          auto random = [&](const Shape& s) { return randn(s, rng, dev).to(DType::BF16); };
          Tensor q = random({1, 1, H, D}), k = random({1, 1, Hkv, D}), v = random({1, 1, Hkv, D});
          Tensor k_cache = random({1, cap, Hkv * D}), v_cache = random({1, cap, Hkv * D});
          Tensor out = Tensor::empty({1, 1, H, D}, DType::BF16, dev);
          const Tensor positions = Tensor::from_i32({static_cast<int32_t>(keys - 1)}, {1, 1}, dev);
          AttentionArgs args;
          args.scale = 1.0f / std::sqrt(static_cast<float>(D));
          args.kv_len = cap;
          args.positions = &positions;
          const RopeFreqs rope(static_cast<float>(c.rope_theta));
          // Each call rotates q in place again and rewrites the same cache row: the same work every time.
          timed_loop(st, dev, [&] { rope_cache_attention(q, k, v, positions, rope, k_cache, v_cache, args, out, nullptr); });
        })->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(200);
      }
  }
}

}  // namespace wick::bench
