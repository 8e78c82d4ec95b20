// A Qwen2 model or a LoRA adapter as a GGUF file llama.cpp loads, with the metadata keys, tensor names,
// shapes and types llama.cpp's convert_hf_to_gguf.py / convert_lora_to_gguf.py write.
//  - Model: general.architecture qwen2, general.type model, general.name (the folder name), size_label,
//    qwen2.* hyperparameters, general.file_type, the tokenizer (io/gguf_vocab.h), quantization_version 2;
//    tensors in the order of their Hugging Face names, "output.weight" absent when the embeddings are tied.
//  - LoRA: general.type adapter, adapter.type lora, adapter.lora.alpha; tensors blk.N.<proj>.weight.lora_a
//    (PEFT's A, [r, in] row-major: ggml ne = {in, r}) and .lora_b (PEFT's B, [out, r]: ne = {r, out}).
//    llama.cpp scales by alpha / r, so an rsLoRA adapter (alpha / sqrt(r)) is written with alpha * sqrt(r).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/gguf_names.h"
#include "io/gguf_writer.h"
#include "io/peft_adapter.h"

namespace wick::io {

// A model tensor read on demand (host, any float dtype), so a large model never sits in memory whole.
struct LazyTensor {
  std::string name;  // Hugging Face name
  Shape shape;
  DType dtype;  // of what get() returns
  std::function<Tensor()> get;
};

// What a model file's header records of the architecture (llama.cpp's <arch>.* keys), as config.json gives
// it; model/gguf_hparams.h fills it from a ModelConfig.
struct GgufModelHparams {
  std::string model_type;  // config.json's model_type; only "qwen2" is exported
  int64_t block_count = 0, context_length = 0, embedding_length = 0, feed_forward_length = 0;
  int64_t head_count = 0, head_count_kv = 0, vocab_size = 0;
  double rope_freq_base = 0, rms_norm_eps = 0;
};

struct GgufExportSummary {
  std::vector<GgufWriter::TensorEntry> tensors;
  size_t kv_count = 0;
};

// model_dir supplies tokenizer.json, tokenizer_config.json, config.json (and chat_template.jinja);
// name is general.name. Throws wick::Error for a tensor the converter would not map.
GgufExportSummary write_model_gguf(const std::string& model_dir, const GgufModelHparams& hp,
                                   const std::vector<LazyTensor>& tensors, GgufFileType ft, const std::string& out,
                                   const std::string& name);

GgufExportSummary write_lora_gguf(const AdapterFiles& adapter, GgufFileType ft, const std::string& out,
                                  const std::string& name);

}  // namespace wick::io
