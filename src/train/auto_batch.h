// The micro-batch size `wick train` picks when none is given: as many sequences as fit the device's free
// memory (CUDA), or 1-4 by sequence length (CPU, where a bigger batch only helps GEMM efficiency up to a
// point). Pure arithmetic over the model geometry, so it is testable without a GPU.
#pragma once
#include <cstdint>
#include <string>

#include "core/device.h"
#include "core/dtype.h"
#include "model/config.h"
#include "model/causal_lm.h"
#include "train/dataset.h"
#include "train/trainer.h"

namespace wick {

struct BatchChoice {
  int64_t batch_size = 1;
  std::string reason;  // for the user, after "batch N: ": what it was chosen from
};

// Bytes of training activations per token of a micro-batch (what LossAndGrads keeps per layer plus the
// one-layer gradient buffers), for a model computing in `dtype` with LoRA rank r on `targets` projections.
// checkpointing: only each layer's input (and the adapters' products) per layer, one layer's full set once.
int64_t activation_bytes_per_token(const ModelConfig& c, DType dtype, int64_t r, int64_t targets,
                                   bool checkpointing = false);
// Bytes that do not grow with the batch: the loss's logits chunk (chunk rows x vocab in the compute dtype).
int64_t fixed_training_bytes(const ModelConfig& c, DType dtype, int64_t loss_chunk_rows);

// Bytes of the folded weights training makes (model/linear.h's folded groups: per layer, each q k v and gate up
// projection with an adapter as [out, C + the group's ranks] in the compute dtype); 0 where training does not
// fold (fold false: not adapter_fold_default, or checkpointing, as resolve_batch_size works it out; or a layer
// code that does not fold).
int64_t folded_weight_bytes(CausalLM& m, const io::LoraConfig& lora, bool fold);

// seq_len: the longest example after truncation (what a padded batch costs per row).
// free_bytes: device memory still free with the model loaded (ignored on the CPU).
// examples: the dataset size (a batch never exceeds it).
// folded_bytes: folded_weight_bytes of the run (memory the batch cannot use).
BatchChoice choose_batch_size(const ModelConfig& c, Device dev, DType dtype, int64_t seq_len, int64_t r,
                              int64_t targets, int64_t free_bytes, int64_t examples, bool checkpointing = false,
                              int64_t folded_bytes = 0);

// The batch size for a run whose t.batch_size is 0 ("choose"): the one in the trainer_state.json of the run
// being resumed (a resumed run must batch as the original did), else choose_batch_size for this model and
// dataset. A given batch size (> 0) is returned as is; a negative one is a wick::Error.
BatchChoice resolve_batch_size(const TrainOptions& t, CausalLM& m, const Dataset& d);

// Free bytes on a CUDA device now (cudaMemGetInfo); -1 on the CPU or without CUDA.
int64_t device_free_bytes(Device dev);

}  // namespace wick
