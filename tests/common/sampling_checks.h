// sample_tokens (ops/sampling.h) checked on one device against the host rule, over many random rows: every
// setting (greedy, temperature, top-k below, at and above V, top-p from 0 to 0.99, min-p, repetition penalty and
// all of them together), logits with planted ties (bf16-rounded rows), masked (-inf) tokens, NaN / +inf rows and
// all -inf rows; several steps, so the draw counters and the history masks evolve on the device.
#pragma once
#include <cstdint>

#include "core/device.h"

namespace wick::test {

// R rows of V logits, `steps` calls of sample_tokens on dev against the same calls of the CPU twin, and each CPU
// token against infer's Sampler (the same seed and draw number, the history as a list). Token for token,
// mask for mask, counter for counter; the ids sit between guard elements that must stay untouched.
void check_sample_tokens(Device dev, int64_t R, int64_t V, int steps, uint64_t seed);

// sample_tokens with a report (what a decode step queued ahead reads) against the same calls without one, on dev,
// the same rows and settings as above: report[r] = {the plain call's token or code, the bits of the NaN / +inf
// logit a code names, else 0}; ids[r] = the token, or 0 for a code; the same masks and counters. The report sits
// between guard elements.
void check_sample_tokens_report(Device dev, int64_t R, int64_t V, int steps, uint64_t seed);

}  // namespace wick::test
