// Shared test helpers: random tensors (never zeros), error norms, fixture discovery, CUDA skip.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "model/config.h"

namespace wick::test {

// Host f32 tensor with N(0, scale^2) entries.
Tensor randn(const Shape& shape, Rng& rng, float scale = 1.0f);
// Host f32 tensor with U(lo, hi) entries.
Tensor randu(const Shape& shape, Rng& rng, float lo, float hi);

// ||a - b||_2 / max(||b||_2, tiny), any float dtypes/devices (compared in f64 on the host).
double rel_err(const Tensor& a, const Tensor& b);
double max_abs_diff(const Tensor& a, const Tensor& b);
// max |a - b| / max |b|
double max_abs_rel(const Tensor& a, const Tensor& b);

// Writes n training rows {"input_ids": [...]} to path (JSONL): random ids in [100, 1000), 8 to 15 a row, from
// seed. Returns path.
std::string write_random_ids_jsonl(const std::string& path, int n, uint64_t seed);

// Fixture folders: tests/fixtures/<prefix>* (sorted) plus every folder in $WICK_EXTRA_FIXTURES
// (':'-separated) whose name starts with prefix or that contains the file `marker`.
std::vector<std::string> fixture_dirs(const std::string& prefix, const std::string& marker);
std::string source_dir();  // the repository root

// A family preset's config (Qwen3's q/k norms, Llama 3's RoPE, Gemma 3's layers...) at test size: hidden 64,
// intermediate 96, 2 layers of 4 heads (2 kv heads) of dim 16. Gemma 3 gets a 4-token window on its first
// layer (longer prompts outgrow it) and full attention on the second.
ModelConfig small_family_config(const char* preset, int64_t vocab_size);

// Why CUDA tests cannot run here ("" when they can).
std::string cuda_skip_reason();

// The message of the wick::Error that f throws ("" when it throws none; other exceptions propagate).
std::string error_of(const std::function<void()>& f);

}  // namespace wick::test

#define WICK_REQUIRE_CUDA()                                              \
  do {                                                                   \
    const std::string wick_why_ = ::wick::test::cuda_skip_reason();      \
    if (!wick_why_.empty()) GTEST_SKIP() << wick_why_;                   \
  } while (0)
