#include "model/gguf_hparams.h"

namespace wick {

io::GgufModelHparams gguf_hparams(const ModelConfig& c) {
  io::GgufModelHparams h;
  h.model_type = c.model_type;
  h.block_count = c.num_layers;
  h.context_length = c.max_position_embeddings;
  h.embedding_length = c.hidden_size;
  h.feed_forward_length = c.intermediate_size;
  h.head_count = c.num_heads;
  h.head_count_kv = c.num_kv_heads;
  h.vocab_size = c.vocab_size;
  h.rope_freq_base = c.rope_theta;
  h.rms_norm_eps = c.rms_norm_eps;
  return h;
}

}  // namespace wick
