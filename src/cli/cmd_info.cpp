// wick info: the machine (CPU, GPUs, CUDA versions, BLAS); with --model, the model folder.
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include <cblas.h>

#include "cli/commands.h"
#include "core/device.h"
#ifdef WICK_CUDA
#include "ops/cuda/runtime.h"
#endif

namespace wick::cli {

static std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      if (p != std::string::npos) return line.substr(p + 2);
    }
  return "unknown CPU";
}

void print_machine_info() {
  std::printf("wick 0.1.0\n");
  std::printf("cpu: %s, %u threads\n", cpu_model().c_str(), std::thread::hardware_concurrency());
  std::printf("blas: OpenBLAS %s (%d threads; %s)\n", openblas_get_config(), openblas_get_num_threads(),
              openblas_get_corename());
#ifdef WICK_CUDA
  const int n = cuda_device_count();
  const int rt = cuda::runtime_version(), drv = cuda::driver_version();
  std::printf("cuda: compiled in; runtime %d.%d, driver %d.%d, %d device(s)\n", rt / 1000, (rt % 1000) / 10,
              drv / 1000, (drv % 1000) / 10, n);
  for (int i = 0; i < n; i++) {
    const auto d = cuda::device_info(i);
    std::printf("  cuda:%d %s, %.1f GiB, compute capability %d.%d, %d SMs\n", i, d.name.c_str(),
                d.total_memory / 1073741824.0, d.cc_major, d.cc_minor, d.sm_count);
  }
#else
  std::printf("cuda: not compiled in (nvcc was not found when this wick was configured)\n");
#endif
}

void register_info(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Print the machine (CPU, GPUs, CUDA, BLAS) and, with --model, a model folder");
  cmd->callback([] { print_machine_info(); });
}

}  // namespace wick::cli
