// segmented_lora_add on CUDA beyond the op cases (tests/common/op_cases.cpp runs it against the CPU): a row's
// result does not depend on the batch it is in. Each adapter's rows computed alone (a batch of just those rows)
// equal, bit for bit, the same rows computed inside a batch of eight adapters with other rows between them, in
// f32 and bf16; this is what lets `wick serve` give a request the same tokens alone and in a mixed batch.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "common/testutil.h"
#include "core/rng.h"
#include "ops/segmented_lora.h"

using namespace wick;

TEST(SegmentedLoraCuda, ARowGivesTheSameBitsAloneAndInAMixedBatch) {
  WICK_REQUIRE_CUDA();
  const Device dev = Device::cuda();
  for (DType dt : {DType::F32, DType::BF16}) {
    for (const auto& [in, out] : std::vector<std::pair<int64_t, int64_t>>{{896, 4864}, {4864, 896}, {129, 300}}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " in " + std::to_string(in) + " out " + std::to_string(out));
      Rng rng(77 + static_cast<uint64_t>(in));
      const int64_t nseg = 8;
      std::vector<Tensor> A, B;
      std::vector<LoraSegment> segs;
      int64_t row = 0;
      for (int64_t s = 0; s < nseg; s++) {
        const int64_t r = s % 2 ? 16 : 8, rows = 1 + s % 3;
        A.push_back(test::randn({r, in}, rng).to(dev));
        B.push_back(test::randn({out, r}, rng).to(dev));
        row += s % 2;  // rows with no adapter between some segments
        segs.push_back({row, rows, nullptr, nullptr, 0.5f * static_cast<float>(1 + s)});
        row += rows;
      }
      for (int64_t s = 0; s < nseg; s++) segs[static_cast<size_t>(s)].A = &A[static_cast<size_t>(s)], segs[static_cast<size_t>(s)].B = &B[static_cast<size_t>(s)];
      const int64_t M = row + 1;
      const Tensor x = test::randn({M, in}, rng).to(dt).to(dev);
      const Tensor y0 = test::randn({M, out}, rng).to(dt).to(dev);
      Tensor y = y0.clone();
      segmented_lora_add(x, segs, y);
      const std::vector<float> batched = y.to_f32_vector(), before = y0.to_f32_vector();
      for (int64_t s = 0; s < nseg; s++) {
        const LoraSegment& sg = segs[static_cast<size_t>(s)];
        Tensor ya = y0.narrow0(sg.row0, sg.rows).clone();
        segmented_lora_add(x.narrow0(sg.row0, sg.rows).clone(), {{0, sg.rows, sg.A, sg.B, sg.scale}}, ya);
        const std::vector<float> alone = ya.to_f32_vector();
        const std::vector<float> in_batch(batched.begin() + sg.row0 * out, batched.begin() + (sg.row0 + sg.rows) * out);
        EXPECT_EQ(alone, in_batch) << "segment " << s;
      }
      // Rows outside every segment are untouched; rows inside changed.
      std::vector<bool> covered(static_cast<size_t>(M), false);
      for (const LoraSegment& sg : segs)
        for (int64_t i = 0; i < sg.rows; i++) covered[static_cast<size_t>(sg.row0 + i)] = true;
      for (int64_t i = 0; i < M; i++) {
        const bool same = std::equal(batched.begin() + i * out, batched.begin() + (i + 1) * out, before.begin() + i * out);
        EXPECT_EQ(same, !covered[static_cast<size_t>(i)]) << "row " << i;
      }
    }
  }
}
