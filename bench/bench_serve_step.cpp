// One batched step of `wick serve` (serve/batch_forward.h over the paged KV cache): S sequences that each hold
// 512 tokens decode one token each, in one BatchForward (issue 12's serving goal: 0.5B, 64 streams,
// >= 20,000 generated tok/s). Random weights with the preset's published config, bf16 on CUDA; every sequence's
// blocks are drawn from one pool (kv_pool.h) after the others', as a running server's are. Rows:
//   serve_step/qwen2.5-0.5b/S/cuda             the logits stay on the device (run_device: a device sampler's
//                                               step); steps_per_s, tok_per_s = S * steps_per_s
//   serve_step/qwen2.5-0.5b/64/host_logits/cuda  the same with the [S, V] f32 logits copied to the host (run():
//                                               today's host samplers)
//   serve_step/qwen2.5-0.5b/64+prefill512/cuda  63 decodes and a newcomer's 512-token prompt in one step (TTFT
//                                               under load: a 512-token prompt joins 63 streams)
//   serve_step/qwen2.5-0.5b/64/host_sampling/cuda  run() and SequenceDecoder::sample on every row with Qwen's
//                                               default settings: the scheduler's step before device sampling
//   serve_step/qwen2.5-0.5b/64/scheduler/{greedy,qwen_sampling}/cuda  the whole Scheduler::step() of 64
//                                               streams holding ~512 tokens: planning, the upload, the forward,
//                                               the device sampling (ops/sampling_pool.h), the copy of the 64
//                                               token ids and the host bookkeeping (what a served token costs)
// On the CPU the same rows run the tiny preset (a smoke test of the bench, not a measurement).
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "bench_util.h"
#include "core/error.h"
#include "model/causal_lm.h"
#include "model/presets.h"
#include "serve/batch_forward.h"
#include "serve/kv_pool.h"
#include "serve/scheduler.h"

namespace wick::bench {

namespace {

enum class Mode {
  kDeviceLogits,  // run_device()
  kHostLogits,    // run(): copy [S, V] f32 to the host
  kHostSampling,  // run() and SequenceDecoder::sample per row (Qwen's defaults)
  kSchedulerGreedy,
  kSchedulerQwen,  // Scheduler::step() with Qwen's default sampling
};

struct Variant {
  int64_t decodes;  // sequences decoding one token
  int64_t prefill;  // a newcomer's prompt tokens in the same step (0: none)
  Mode mode;
  std::string label;
};

// Qwen2.5-Instruct's generation_config.json: what `wick serve` samples with when a request sets nothing.
SamplingParams qwen_defaults(uint64_t seed) {
  SamplingParams p;
  p.temperature = 0.7f;
  p.top_k = 20;
  p.top_p = 0.8f;
  p.repetition_penalty = 1.05f;
  p.seed = seed;
  return p;
}

// Scheduler::step() of `decodes` streams, each past a 512-token prompt (prefilled first, 8192 tokens a step).
void scheduler_bench(benchmark::State& st, const char* preset, Device dev, const Variant& v) {
  const int64_t ctx = 512, room = 256;  // prompt; generated tokens it may reach (warm-up + iterations fit)
  const ModelConfig cfg = preset_config(preset);
  std::unique_ptr<CausalLM> m = CausalLM::random(cfg, dev, dev.is_cuda() ? DType::BF16 : DType::F32, 11);
  serve::SchedulerLimits lim;
  lim.max_batch = v.decodes;
  lim.max_queue = v.decodes;
  lim.max_step_tokens = 8192;
  lim.kv_cache_tokens = v.decodes * (ctx + room + serve::kKvBlockTokens);
  serve::Metrics metrics;
  serve::Scheduler s(*m, nullptr, lim, metrics);
  Rng rng(3);
  for (int64_t i = 0; i < v.decodes; i++) {
    auto r = std::make_shared<serve::Request>();
    for (int64_t t = 0; t < ctx; t++) r->prompt.push_back(static_cast<int32_t>(rng.below(static_cast<uint64_t>(cfg.vocab_size))));
    r->opt.gen.max_new_tokens = room;
    if (v.mode == Mode::kSchedulerGreedy) r->opt.gen.sampling.temperature = 0.0f;
    else r->opt.gen.sampling = qwen_defaults(100 + static_cast<uint64_t>(i));
    s.submit(r);
  }
  while (metrics.ttft.count() < static_cast<uint64_t>(v.decodes)) s.step();  // every prompt is in
  timed_loop(st, dev, [&] { s.step(); });
  if (s.running() != v.decodes) throw Error("bench: a stream ended early; raise `room`");
}

void forward_bench(benchmark::State& st, const char* preset, Device dev, const Variant& v) {
  const int64_t ctx = 512;  // tokens each decoding sequence holds before the step
  const ModelConfig cfg = preset_config(preset);
  std::unique_ptr<CausalLM> m = CausalLM::random(cfg, dev, dev.is_cuda() ? DType::BF16 : DType::F32, 11);
  serve::KvPool pool(*m, v.decodes * (ctx + serve::kKvBlockTokens) + v.prefill + serve::kKvBlockTokens);
  serve::BatchForward bf(*m, pool);
  Rng rng(3);
  const auto random_ids = [&](int64_t n) {
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (int32_t& id : ids) id = static_cast<int32_t>(rng.below(static_cast<uint64_t>(cfg.vocab_size)));
    return ids;
  };
  std::vector<serve::SeqBlocks> seqs(static_cast<size_t>(v.decodes + 1));
  std::vector<float> host;
  // The contexts, prefilled 8 sequences a forward.
  for (int64_t s0 = 0; s0 < v.decodes; s0 += 8) {
    std::vector<serve::SeqChunk> chunks;
    for (int64_t s = s0; s < std::min(v.decodes, s0 + 8); s++) {
      if (!pool.grow(seqs[static_cast<size_t>(s)], ctx + 1)) throw Error("bench: the KV pool is too small");
      chunks.push_back({&seqs[static_cast<size_t>(s)], random_ids(ctx), nullptr});
    }
    bf.run_device(chunks);
  }
  std::vector<serve::SeqChunk> step;
  for (int64_t s = 0; s < v.decodes; s++) step.push_back({&seqs[static_cast<size_t>(s)], random_ids(1), nullptr});
  serve::SeqBlocks& newcomer = seqs.back();
  if (v.prefill > 0) {
    if (!pool.grow(newcomer, v.prefill)) throw Error("bench: the KV pool is too small");
    step.push_back({&newcomer, random_ids(v.prefill), nullptr});
  }
  // host_sampling: one decoder a row, its history the context (as the scheduler's would hold it)
  std::vector<std::unique_ptr<serve::SequenceDecoder>> decoders;
  if (v.mode == Mode::kHostSampling)
    for (int64_t s = 0; s < v.decodes; s++) {
      serve::SequenceOptions o;
      o.gen.max_new_tokens = 1 << 20;
      o.gen.sampling = qwen_defaults(100 + static_cast<uint64_t>(s));
      decoders.push_back(std::make_unique<serve::SequenceDecoder>(random_ids(ctx), o, nullptr));
    }
  timed_loop(st, dev, [&] {
    if (v.mode == Mode::kDeviceLogits) bf.run_device(step);
    else bf.run(step, host);
    for (size_t s = 0; s < decoders.size(); s++)
      decoders[s]->sample(host.data() + static_cast<int64_t>(s) * cfg.vocab_size, cfg.vocab_size);
    for (int64_t s = 0; s < v.decodes; s++) seqs[static_cast<size_t>(s)].length = ctx;  // the same step again
    newcomer.length = 0;
  });
}

void step_bench(benchmark::State& st, const char* preset, Device dev, const Variant& v) {
  if (v.mode == Mode::kSchedulerGreedy || v.mode == Mode::kSchedulerQwen) {
    scheduler_bench(st, preset, dev, v);
  } else {
    forward_bench(st, preset, dev, v);
  }
  const double steps = 1e6 / st.counters["median_us"];
  st.counters["steps_per_s"] = steps;
  st.counters["tok_per_s"] = steps * static_cast<double>(v.decodes + (v.prefill > 0 ? 1 : 0));
}

}  // namespace

void register_serve_step_benchmarks(const std::vector<Device>& devices) {
  const std::vector<Variant> variants = {{1, 0, Mode::kDeviceLogits, "1"},
                                         {16, 0, Mode::kDeviceLogits, "16"},
                                         {64, 0, Mode::kDeviceLogits, "64"},
                                         {64, 0, Mode::kHostLogits, "64/host_logits"},
                                         {64, 0, Mode::kHostSampling, "64/host_sampling"},
                                         {64, 0, Mode::kSchedulerGreedy, "64/scheduler/greedy"},
                                         {64, 0, Mode::kSchedulerQwen, "64/scheduler/qwen_sampling"},
                                         {16, 0, Mode::kSchedulerQwen, "16/scheduler/qwen_sampling"},
                                         {63, 512, Mode::kDeviceLogits, "64+prefill512"}};
  for (Device dev : devices) {
    const char* preset = dev.is_cuda() ? "qwen2.5-0.5b" : "tiny";
    for (const Variant& v : variants) {
      if (dev.is_cpu() && v.decodes > 16) continue;  // the CPU rows only check that the bench runs
      const std::string name = std::string("serve_step/") + preset + "/" + v.label + dev_suffix(dev);
      benchmark::RegisterBenchmark(name.c_str(), [preset, dev, v](benchmark::State& st) { step_bench(st, preset, dev, v); })
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond)
          ->Iterations(dev.is_cuda() ? 50 : 5);
    }
  }
}

}  // namespace wick::bench
