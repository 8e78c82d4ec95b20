// The arithmetic a LoRA training step costs, for MFU (model FLOPs utilisation) beside tokens/s.
//
// Counted as FLOPs per trained token, matmuls only (norms, softmax and the optimizer are noise next to
// them), for a decoder whose frozen weights get no gradient:
//   frozen matmuls   2·P forward + 2·P for the activation gradients = 4·P, where P counts every matmul
//                    weight a token passes through (q, k, v, o, gate, up, down per layer, and the lm_head);
//   LoRA adapters    3 × (2·r·(in + out)) per adapted projection: forward, activation gradient, A/B grads;
//   attention        causal scores and the weighted sum: forward 2 matmuls × 2 FLOP × (T/2 keys on
//                    average) × H·D per layer = 2·T·H·D; backward recomputes the scores and does 4 more
//                    products (dV, dP, dQ, dK), 2.5× forward; so 3.5 × 2·T·H·D per layer.
// This is the convention of issue 8 ("about 4 × matmul parameters per token plus attention"); activation
// checkpointing's recomputation is not counted (MFU counts the model's work, not the engine's).
#pragma once
#include <cstdint>
#include <string>

#include "model/config.h"

namespace wick {

// lora_targets: how many of the seven projections carry an adapter of rank r (0 = no adapter).
double train_flops_per_token(const ModelConfig& c, int64_t seq_len, int64_t lora_rank, int lora_projections);

// The bf16 dense matrix rate MFU is reported against, in FLOP/s, for a device name as the runtime reports
// it; 0 when unknown (then no MFU is printed). Hopper (H100/H200): 790 TFLOP/s, the rate measured on these
// cards with an 8192³ bf16 GEMM on random data (docs/benchmarks.md), not the datasheet's 989.
double peak_bf16_flops(const std::string& device_name);

}  // namespace wick
