// Checks of the paged KV cache ops (ops/paged_attention.h), shared by the CPU tests (tests/ops/test_paged_attention.cpp)
// and the CUDA tests (tests/cuda/test_paged_attention_cuda.cpp).
#pragma once
#include "core/device.h"
#include "core/dtype.h"

namespace wick::test {

// CPU: paged_attention_forward over random data and random, shuffled block tables (unused blocks hold NaN) against
// a plain double-precision reference (1e-5), and bit for bit against attention_forward over each sequence's keys
// gathered into a contiguous cache; over prefill chunks, decodes, block-boundary crossings, GQA groups of 1, 4
// and 7, head dims 64 and 128, block sizes 16 and 5, with and without a sliding window.
void check_paged_attention_cpu();
// dev (CUDA) against the CPU twin on the same inputs (rounded to dt): out between guard rows that must stay.
// Tolerances: f32 2e-5 (another order of sums; decodes of few sequences split their keys), bf16 2e-2 of the
// largest |out| (one bf16 rounding of out).
void check_paged_attention_device(Device dev, DType dt);
// paged_kv_write on dev: the rows land at their shuffled slots, exactly; every other row of the pools stays.
void check_paged_kv_write(Device dev, DType dt);

}  // namespace wick::test
