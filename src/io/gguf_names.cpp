// Qwen2 tensor names and types in GGUF, and the file-type and size labels.
#include "io/gguf_names.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <regex>

#include "core/error.h"

namespace wick::io {

GgufFileType parse_gguf_file_type(const std::string& s) {
  if (s == "f32") return GgufFileType::F32;
  if (s == "f16") return GgufFileType::F16;
  if (s == "bf16") return GgufFileType::BF16;
  if (s == "q8_0") return GgufFileType::Q8_0;
  throw Error("unknown GGUF type \"" + s + "\"", "--type", "use f16, bf16, q8_0 or f32");
}

uint32_t gguf_llama_ftype(GgufFileType t) {
  switch (t) {
    case GgufFileType::F32: return 0;   // LLAMA_FTYPE_ALL_F32
    case GgufFileType::F16: return 1;   // LLAMA_FTYPE_MOSTLY_F16
    case GgufFileType::BF16: return 32; // LLAMA_FTYPE_MOSTLY_BF16
    case GgufFileType::Q8_0: return 7;  // LLAMA_FTYPE_MOSTLY_Q8_0
  }
  return 0;
}

std::string gguf_tensor_name(const std::string& hf) {
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  static const std::regex layer(R"(model\.layers\.(\d+)\.(.+)\.(weight|bias))");
  std::smatch m;
  if (!std::regex_match(hf, m, layer)) return "";
  static const std::pair<const char*, const char*> kMap[] = {
      {"input_layernorm", "attn_norm"},        {"post_attention_layernorm", "ffn_norm"},
      {"self_attn.q_proj", "attn_q"},          {"self_attn.k_proj", "attn_k"},
      {"self_attn.v_proj", "attn_v"},          {"self_attn.o_proj", "attn_output"},
      {"mlp.gate_proj", "ffn_gate"},           {"mlp.up_proj", "ffn_up"},
      {"mlp.down_proj", "ffn_down"},
  };
  for (const auto& [from, to] : kMap)
    if (m[2] == from) return "blk." + m[1].str() + "." + to + "." + m[3].str();
  return "";
}

GgmlType gguf_tensor_type(const std::string& name, const std::vector<int64_t>& shape, GgufFileType ft) {
  auto ends = [&](const char* s) {
    const std::string e(s);
    return name.size() >= e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0;
  };
  if (shape.size() <= 1 || ends("_norm.weight") || !(ends(".weight") || ends(".lora_a") || ends(".lora_b")))
    return GgmlType::F32;
  switch (ft) {
    case GgufFileType::F32: return GgmlType::F32;
    case GgufFileType::F16: return GgmlType::F16;
    case GgufFileType::BF16: return GgmlType::BF16;
    case GgufFileType::Q8_0: return ggml_row_fits(GgmlType::Q8_0, shape.back()) ? GgmlType::Q8_0 : GgmlType::F16;
  }
  return GgmlType::F32;
}

std::string gguf_size_label(int64_t params) {
  const double n = static_cast<double>(params);
  double scaled;
  const char* suffix;
  if (n > 1e12) scaled = n * 1e-12, suffix = "T";
  else if (n > 1e9) scaled = n * 1e-9, suffix = "B";
  else if (n > 1e6) scaled = n * 1e-6, suffix = "M";
  else scaled = n * 1e-3, suffix = "K";
  // Digits after the point so that at least two significant digits show (round() ties to even, as Python).
  std::string whole = std::to_string(static_cast<int64_t>(std::nearbyint(scaled)));
  whole.erase(0, whole.find_first_not_of('0'));
  const int fix = std::max(2 - static_cast<int>(whole.size()), 0);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f%s", fix, scaled, suffix);
  return buf;
}

}  // namespace wick::io
