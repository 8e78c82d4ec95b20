// Sampling one token from a Qwen2.5-sized vocabulary (V = 151936): on the CPU, the per-token cost that
// generation adds after the logits are on the host (infer's Sampler); on CUDA, sample_tokens (ops/sampling.h)
// over 1 row (a decode step) and 64 rows (a serving batch), each with a 384-token history mask.
#include <string>
#include <vector>

#include "bench_util.h"
#include "infer/sampler.h"
#include "ops/sampling.h"

namespace wick::bench {

void register_sampler_benchmarks(const std::vector<Device>& devices) {
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
  SamplingParams every;  // every processor, each pass of the GPU kernel
  every.temperature = 0.8f;
  every.top_k = 1000;
  every.top_p = 0.95f;
  every.min_p = 0.02f;
  every.repetition_penalty = 1.1f;
  const Setting settings[] = {{"greedy", greedy},       {"qwen2.5_defaults", qwen}, {"top_p_0.9", top_p},
                              {"temperature_1", plain}, {"every_processor", every}};
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
  for (Device dev : devices) {
    if (!dev.is_cuda()) continue;
    for (const Setting& s : settings) {
      for (int64_t R : {1, 64}) {
        const std::string name =
            std::string("sample_tokens/") + s.name + "_v151936_rows" + std::to_string(R) + dev_suffix(dev);
        benchmark::RegisterBenchmark(name.c_str(), [s, R, dev](benchmark::State& st) {
              const int64_t V = 151936;
              Rng rng(9);
              Tensor logits = randn({R, V}, rng, dev, 3.0f);
              Tensor seen_h = Tensor::zeros({R, V}, DType::I32, Device::cpu());
              for (int64_t r = 0; r < R; r++)
                for (int i = 0; i < 384; i++) seen_h.data<int32_t>()[r * V + rng.below(V)] = 1;
              Tensor seen = seen_h.to(dev);
              std::vector<SampleRow> rows;
              for (int64_t r = 0; r < R; r++) {
                SamplingParams p = s.p;
                p.seed = 1 + static_cast<uint64_t>(r);
                rows.push_back(to_sample_row(p));
              }
              Tensor params = sample_rows_tensor(rows, dev), ids = Tensor::empty({R}, DType::I32, dev);
              timed_loop(st, dev, [&] { sample_tokens(logits, &seen, params, ids); });
            })
            ->UseManualTime()
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
}

}  // namespace wick::bench
