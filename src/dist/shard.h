// Which rank computes which micro-batch. A step's global batch is world × grad_accum micro-batches of
// --batch-size units each, numbered j = 0, 1, ... in the order the (seeded, deterministic) batcher makes
// them; every rank runs the same batcher, so the stream, and its (epoch, index) state in a checkpoint, is
// one for the whole job. Rank r computes micro-batches j = k × world + r for k = 0 .. grad_accum - 1.
// With world 1 that is every micro-batch: the single-GPU run with grad_accum × world accumulation steps
// sees the same global batch.
#pragma once
#include <cstdint>
#include <vector>

namespace wick::dist {

inline bool owns_micro_batch(int64_t j, int rank, int world) { return j % world == rank; }

// The micro-batch numbers (within a step) rank computes, ascending.
std::vector<int64_t> micro_batches_of_rank(int rank, int world, int64_t grad_accum);

// Optimizer steps in one epoch of batches_per_epoch micro-batches: ceil(batches / (grad_accum × world)).
int64_t steps_per_epoch(int64_t batches_per_epoch, int64_t grad_accum, int world);

}  // namespace wick::dist
