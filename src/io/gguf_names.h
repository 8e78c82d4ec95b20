// How llama.cpp's converter names and types the tensors of a Qwen2 model (gguf-py tensor_mapping.py,
// convert_hf_to_gguf.py prepare_tensors), and the file-level labels it writes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/gguf_types.h"

namespace wick::io {

// The --type of export-gguf, as llama.cpp's --outtype (general.file_type = llama_ftype).
enum class GgufFileType { F32, F16, BF16, Q8_0 };
GgufFileType parse_gguf_file_type(const std::string& s);  // "f32", "f16", "bf16", "q8_0"; wick::Error otherwise
uint32_t gguf_llama_ftype(GgufFileType t);                 // 0, 1, 32, 7

// "model.layers.3.self_attn.q_proj.weight" -> "blk.3.attn_q.weight"; "model.embed_tokens.weight" ->
// "token_embd.weight"; "lm_head.weight" -> "output.weight"; "model.norm.weight" -> "output_norm.weight".
// Empty for a name the converter does not map (a wick::Error is the caller's choice).
std::string gguf_tensor_name(const std::string& hf_name);

// The stored type of a tensor, as the converter chooses: F32 for 1-D tensors, norms and anything not ending
// in .weight/.lora_a/.lora_b (biases); otherwise the file type, with F16 for Q8_0 rows that are not a
// whole number of 32-blocks (the converter's "falling back to F16").
GgmlType gguf_tensor_type(const std::string& gguf_name, const std::vector<int64_t>& shape, GgufFileType ft);

// general.size_label from a parameter count: "494M", "1.5B", "20M" (gguf-py utility.py's rounding).
std::string gguf_size_label(int64_t params);

}  // namespace wick::io
