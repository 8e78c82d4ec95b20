// The FLOP count behind MFU, checked against an independent count of the 0.5B preset's matmul shapes.
#include <gtest/gtest.h>

#include "train/flops.h"

namespace wick {
namespace {

TEST(Flops, CountsEveryMatmulOfTheHalfBillionPreset) {
  // Qwen2.5-0.5B: hidden 896, intermediate 4864, 24 layers, 14 heads of 64, 2 kv heads, vocab 151936.
  ModelConfig c;
  c.hidden_size = 896, c.intermediate_size = 4864, c.num_layers = 24, c.num_heads = 14, c.num_kv_heads = 2;
  c.head_dim = 64, c.vocab_size = 151936;
  const double layer = 896.0 * 896 + 2 * 896.0 * 128 + 896.0 * 896 + 3 * 896.0 * 4864;  // q k v o gate up down
  const double params = 24 * layer + 896.0 * 151936;
  const double attention = 24 * 3.5 * 2.0 * 1024 * 896;
  EXPECT_DOUBLE_EQ(train_flops_per_token(c, 1024, 0, 0), 4 * params + attention);
  // An adapter adds 6·r·(in + out) per adapted projection and layer (forward, activation gradient, A/B
  // gradients): all seven at r 16 is ~2.5% more.
  const double in_out = (896 + 896) + 2 * (896 + 128) + (896 + 896) + 3 * (896 + 4864);
  const double with_lora = train_flops_per_token(c, 1024, 16, 7);
  EXPECT_NEAR(with_lora, 4 * params + attention + 24 * 6.0 * 16 * in_out, 1e-6 * with_lora);
  // Issue 8's yardstick: 170k tok/s on the 0.5B preset is ~45% of 790 TFLOP/s.
  EXPECT_NEAR(170000 * with_lora / peak_bf16_flops("NVIDIA H200"), 0.47, 0.01);
  EXPECT_EQ(peak_bf16_flops("cpu"), 0.0);
}

}  // namespace
}  // namespace wick
