// wick selfcheck: runs every op on every device present against the CPU reference; prints pass/fail.
#include <chrono>
#include <cstdio>

#include "cli/commands.h"
#include "core/device.h"
#include "core/error.h"
#include "ops/selfcheck.h"

namespace wick::cli {

void register_selfcheck(CLI::App& app) {
  auto* cmd = app.add_subcommand("selfcheck", "Run every op on every device present and report pass/fail");
  static bool verbose = false;
  static std::string filter;
  cmd->add_flag("-v,--verbose", verbose, "Print every comparison, not only the failing ones");
  cmd->add_option("--filter", filter, "Only cases whose name contains this text (e.g. attention)");
  cmd->callback([] {
    const auto t0 = std::chrono::steady_clock::now();
    std::printf("devices: cpu");
    for (int d = 0; d < cuda_device_count(); d++) std::printf(", %s", Device::cuda(d).str().c_str());
    std::printf("%s\n\n", cuda_compiled() ? "" : " (this build has no CUDA backend)");
    std::printf("%-46s %-7s %-19s %10s %9s  %s\n", "case", "device", "check", "err", "tol", "result");
    const auto results = run_selfcheck(verbose, filter);
    int failed = 0;
    for (const auto& r : results) {
      std::printf("%-46s %-7s %-19s %10.3g %9.3g  %s\n", r.op.c_str(), r.device.c_str(), r.check.c_str(), r.err, r.tol,
                  r.pass ? "ok" : "FAIL");
      if (!r.detail.empty()) std::printf("%s", r.detail.c_str());
      failed += !r.pass;
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("\n%zu checks, %d failed (%.2f s)\n", results.size(), failed, s);
    if (results.empty()) throw Error("selfcheck: no case matched --filter '" + filter + "'");
    if (failed) throw Error("selfcheck: " + std::to_string(failed) + " of " + std::to_string(results.size()) + " checks failed");
  });
}

}  // namespace wick::cli
