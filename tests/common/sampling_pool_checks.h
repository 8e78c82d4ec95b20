// The pooled token choice of a server's batch (ops/sampling_pool.h) checked on one device: sample_tokens_pooled
// against sample_tokens on the history rows gathered by hand (token for token, pool for pool, counter for
// counter), over several steps whose rows land on shuffled pool rows (some without history); mark_tokens and
// subtract_at against their definition.
#pragma once
#include <cstdint>

#include "core/device.h"

namespace wick::test {

// R logits rows of V over a pool of S >= R history rows, `steps` steps.
void check_sample_tokens_pooled(Device dev, int64_t R, int64_t S, int64_t V, int steps, uint64_t seed);

}  // namespace wick::test
