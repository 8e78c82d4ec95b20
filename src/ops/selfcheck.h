// `wick selfcheck`: every op, forward and backward, on every device present, on small shapes:
// the CPU against the f64 reference (forward) and finite differences (backward), plus the += rule;
// each CUDA device against the CPU in f32 and bf16. Built on ops/opcheck.h; takes well under 5 s on a CPU.
#pragma once
#include <string>
#include <vector>

namespace wick {

struct SelfCheckResult {
  std::string op;      // the case: "rms_norm_N7_C64"
  std::string device;  // "cpu", "cuda:0"
  std::string check;   // "fwd f32", "bwd finite diff", "accumulate", "vs cpu bf16", ...
  bool pass = false;
  double err = 0, tol = 0;  // the worst check of the group (normalised error, its tolerance)
  std::string detail;       // per-check lines (always when verbose, else only on failure)
};

// filter: run only cases whose name contains it ("" = all).
std::vector<SelfCheckResult> run_selfcheck(bool verbose, const std::string& filter = "");

}  // namespace wick
