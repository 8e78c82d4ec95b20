#include "train/flops.h"

namespace wick {

double train_flops_per_token(const ModelConfig& c, int64_t seq_len, int64_t lora_rank, int lora_projections) {
  const double h = static_cast<double>(c.hidden_size), inter = static_cast<double>(c.intermediate_size);
  const double q = static_cast<double>(c.q_dim()), kv = static_cast<double>(c.kv_dim());
  // in × out of each projection a token passes through, per layer
  const double per_layer = h * q + 2 * h * kv + q * h + 3 * h * inter;
  const double params = static_cast<double>(c.num_layers) * per_layer + h * static_cast<double>(c.vocab_size);
  double flops = 4.0 * params;
  if (lora_rank > 0 && lora_projections > 0) {
    // mean (in + out) over the adapted projections, approximated by the seven projections' mean
    const double in_out[7] = {h + q, h + kv, h + kv, q + h, h + inter, h + inter, inter + h};
    double sum = 0;
    for (double v : in_out) sum += v;
    const double mean = sum / 7.0;
    flops += static_cast<double>(c.num_layers) * lora_projections * 3.0 * 2.0 * static_cast<double>(lora_rank) * mean;
  }
  const double attention_fwd = 2.0 * static_cast<double>(seq_len) * q;  // 2·T·H·D per layer
  flops += static_cast<double>(c.num_layers) * 3.5 * attention_fwd;
  return flops;
}

double peak_bf16_flops(const std::string& name) {
  if (name.find("H100") != std::string::npos || name.find("H200") != std::string::npos) return 790e12;
  return 0.0;
}

}  // namespace wick
