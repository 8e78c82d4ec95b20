// Sampling one token from a Qwen2.5-sized vocabulary (V = 151936) on the CPU: the per-token cost that
// generation adds after the logits are on the host.
#include <string>
#include <vector>

#include "bench_util.h"
#include "infer/sampler.h"

namespace wick::bench {

void register_sampler_benchmarks() {
  struct Setting {
    const char* name;
    SamplingParams p;
  };
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  SamplingParams qwen;  // Qwen2.5-Instruct generation_config.json
  qwen.temperature = 0.7f;
  qwen.top_k = 20;
  qwen.top_p = 0.8f;
  qwen.repetition_penalty = 1.05f;
  SamplingParams top_p;
  top_p.top_p = 0.9f;
  SamplingParams plain;
  const Setting settings[] = {
      {"greedy", greedy}, {"qwen2.5_defaults", qwen}, {"top_p_0.9", top_p}, {"temperature_1", plain}};
  for (const Setting& s : settings) {
    const std::string name = std::string("sampler/") + s.name + "_v151936/cpu";
    benchmark::RegisterBenchmark(name.c_str(), [s](benchmark::State& st) {
          const int64_t V = 151936;
          Rng rng(9);
          std::vector<float> logits(V);
          for (float& v : logits) v = 3.0f * rng.normal();
          std::vector<int32_t> history(384);  // a 256-token prompt + 128 generated
          for (int32_t& id : history) id = static_cast<int32_t>(rng.below(V));
          SamplingParams p = s.p;
          p.seed = 1;
          Sampler sampler(p);
          timed_loop(st, Device::cpu(), [&] { benchmark::DoNotOptimize(sampler.sample(logits.data(), V, history)); });
        })
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace wick::bench
