// Switches wick reads from the environment (docs/guide.md, "Speed on an NVIDIA GPU"), all by one rule.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>

namespace wick {

// A debugging or profiling flag (WICK_STEP_PROFILE, WICK_ATTENTION_LOG), or an opt-in kernel path
// (WICK_CE_SINGLE_READ): on when set, non-empty and not "0". (A choice among numbered kernels, as
// WICK_LOW_RANK_KERNEL and WICK_WEIGHT_GRADS, is parsed by its op, which names the values it takes.)
bool env_flag(const char* name);

// A speed feature that is on by default (WICK_SMALL_M, WICK_CUDA_GRAPHS, WICK_DECODE_ATTENTION,
// WICK_ROPE_ATTENTION, WICK_GREEDY_SPLIT, WICK_GEMM_TUNE, WICK_GLU_K2, WICK_DECODE_EARLY_LOADS,
// WICK_EARLY_EPILOGUE, WICK_DECODE_AHEAD): off only when set to "0", to compare against or to rule it out while
// debugging.
// ops/cuda/pdl.cuh reads WICK_PDL by the same rule itself (header-only, so that dev/ harnesses build the very
// kernels wick runs).
bool env_default_on(const char* name);

// A choice wick makes itself unless told (WICK_ADAPTER_FOLD): unset or empty -> std::nullopt (wick's own rule),
// "0" -> false, anything else -> true.
std::optional<bool> env_override(const char* name);

// A number wick reads from the environment (WICK_LOSS_CHUNK, WICK_ATTENTION_DETERMINISTIC_MAX_MB, a launcher's
// world size): unset or empty -> std::nullopt (the caller's default); otherwise a whole decimal number from `lo` to
// `hi`, or a wick::Error naming the variable, what it holds and the range ("what" says what the number counts).
std::optional<int64_t> env_int(const char* name, int64_t lo, int64_t hi, const char* what);
// The same for a decimal fraction (WICK_DIST_TIMEOUT's seconds).
std::optional<double> env_number(const char* name, double lo, double hi, const char* what);

// A kernel path's switch that tests flip at run time (WICK_DECODE_EARLY_LOADS on by default, WICK_CE_SINGLE_READ
// opt-in): when first asked, env_default_on(name) or env_flag(name) by `default_on`; then what set() says (the
// tests' switch; it applies to launches and graph captures after it).
class KernelSwitch {
 public:
  constexpr KernelSwitch(const char* name, bool default_on) : name_(name), default_on_(default_on) {}
  bool on() const {
    int v = v_.load(std::memory_order_relaxed);
    if (v < 0) {
      v = (default_on_ ? env_default_on(name_) : env_flag(name_)) ? 1 : 0;
      v_.store(v, std::memory_order_relaxed);
    }
    return v == 1;
  }
  void set(bool on) { v_.store(on ? 1 : 0, std::memory_order_relaxed); }

 private:
  const char* name_;
  bool default_on_;
  mutable std::atomic<int> v_{-1};  // -1: not read from the environment yet
};

}  // namespace wick
