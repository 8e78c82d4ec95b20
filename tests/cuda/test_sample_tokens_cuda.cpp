// sample_tokens on CUDA (ops/sampling.h) against its CPU twin, token for token: the device draws exactly what the
// host's Sampler draws from the same logits, settings, seed and draw number (tests/common/sampling_checks.h).
#include <gtest/gtest.h>

#include "common/sampling_checks.h"
#include "common/testutil.h"

namespace wick::test {
namespace {

TEST(SampleTokensCuda, EqualsTheCpuTwinOnSmallVocabularies) {
  WICK_REQUIRE_CUDA();
  // V <= 1024: every row takes the kernel's compact path; V = 3000: rows without a small top-k take the full one
  for (uint64_t seed : {51, 52, 53}) check_sample_tokens(Device::cuda(), 90, 1000, 3, seed);
  for (uint64_t seed : {56, 57, 58}) check_sample_tokens(Device::cuda(), 80, 3000, 3, seed);
  check_sample_tokens(Device::cuda(), 36, 37, 4, 54);  // V below the block's thread count
}

TEST(SampleTokensCuda, GreedyRowsSplitOverBlocksAtEveryChunkEdge) {
  WICK_REQUIRE_CUDA();
  // Greedy rows' first pass runs over blocks of 2,048 ids (sample_tokens.cu's kSplitChunk): one block exactly
  // full, a last block of one id, of one step short of full; the planted ties of kind 7 fall in different blocks.
  for (int64_t V : {2048, 2049, 4095, 6145}) check_sample_tokens(Device::cuda(), 40, V, 2, 60 + V);
}

TEST(SampleTokensCuda, EqualsTheCpuTwinOnAQwenSizedVocabulary) {
  WICK_REQUIRE_CUDA();
  check_sample_tokens(Device::cuda(), 40, 151936, 2, 55);  // the history as a shared-memory bitmap
  check_sample_tokens(Device::cuda(), 20, 200003, 1, 59);  // too large for it: the passes read the mask
}

TEST(SampleTokensCuda, AReportKeepsTheCodesAndFeedsZero) {
  WICK_REQUIRE_CUDA();
  check_sample_tokens_report(Device::cuda(), 60, 300, 2, 83);       // the compact path
  check_sample_tokens_report(Device::cuda(), 40, 151936, 2, 84);  // the greedy split over blocks, the full path
}

}  // namespace
}  // namespace wick::test
