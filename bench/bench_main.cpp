// wick_bench: Google Benchmark suites. CUDA rows are registered only when a GPU is usable.
//   ./build/bench/wick_bench                                   # everything
//   ./build/bench/wick_bench --benchmark_filter='/cuda(/|$)' --benchmark_format=json --benchmark_out=cuda.json
#include <benchmark/benchmark.h>

#include <cstdio>

#include "bench_util.h"

int main(int argc, char** argv) {
  std::vector<wick::Device> devices = {wick::Device::cpu()};
  if (wick::cuda_available()) devices.push_back(wick::Device::cuda(0));
  else std::fprintf(stderr, "wick_bench: no usable GPU (%s); CPU rows only\n",
                    wick::cuda_compiled() ? "CUDA built, no device" : "built without CUDA");
  wick::bench::register_seed_benchmarks(devices);
  wick::bench::register_sampler_benchmarks(devices);
  wick::bench::register_linear_benchmarks(devices);
  wick::bench::register_prefill_benchmarks(devices);
  wick::bench::register_serve_step_benchmarks(devices);
  wick::bench::register_gemm_strided_benchmarks(devices);
  wick::bench::register_chat_template_benchmarks(devices);
  wick::bench::register_decode_attention_benchmarks(devices);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
