#include "dist/shard.h"

#include "core/error.h"

namespace wick::dist {

std::vector<int64_t> micro_batches_of_rank(int rank, int world, int64_t grad_accum) {
  WICK_CHECK(world >= 1 && rank >= 0 && rank < world && grad_accum >= 1);
  std::vector<int64_t> out;
  for (int64_t k = 0; k < grad_accum; k++) out.push_back(k * world + rank);
  return out;
}

int64_t steps_per_epoch(int64_t batches_per_epoch, int64_t grad_accum, int world) {
  WICK_CHECK(world >= 1 && grad_accum >= 1 && batches_per_epoch >= 0);
  const int64_t global = grad_accum * world;
  return (batches_per_epoch + global - 1) / global;
}

}  // namespace wick::dist
