#include "model/presets.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "io/output_folder.h"
#include "io/safetensors.h"
#include "model/family.h"

namespace fs = std::filesystem;

namespace wick {

namespace {
// Each preset is a published config.json (the fields that matter), read by ModelConfig::from_json_string
// like any model folder's, so its family fills in what it derives.
struct Preset {
  const char* name;
  const char* config;  // JSON
  float embed_std;     // transformers' init uses 0.02
};
#define WICK_QWEN25(H, I, L, NH, KV, V, TIE)                                                                   \
  "{\"model_type\": \"qwen2\", \"hidden_size\": " #H ", \"intermediate_size\": " #I                          \
  ", \"num_hidden_layers\": " #L ", \"num_attention_heads\": " #NH ", \"num_key_value_heads\": " #KV          \
  ", \"vocab_size\": " #V ", \"tie_word_embeddings\": " #TIE ", \"rope_theta\": 1000000.0, \"rms_norm_eps\": 1e-6, " \
  "\"max_position_embeddings\": 32768, \"torch_dtype\": \"bfloat16\", \"bos_token_id\": 151643, \"eos_token_id\": 151645}"
const Preset kPresets[] = {
    {"qwen2.5-0.5b", WICK_QWEN25(896, 4864, 24, 14, 2, 151936, true), 0.02f},
    {"qwen2.5-1.5b", WICK_QWEN25(1536, 8960, 28, 12, 2, 151936, true), 0.02f},
    {"qwen2.5-3b", WICK_QWEN25(2048, 11008, 36, 16, 2, 151936, true), 0.02f},
    {"qwen2.5-7b", WICK_QWEN25(3584, 18944, 28, 28, 4, 152064, false), 0.02f},
    // Small enough to train on a laptop CPU, with the full Qwen vocabulary so the real tokenizer works.
    // Tied logits are bounded by |embedding row| x |normed hidden| ~ std * C: with 0.02 a 128-wide model
    // could never be confident (loss >= ~7), so its rows are larger and a LoRA can teach it a behaviour.
    {"tiny", WICK_QWEN25(128, 352, 2, 4, 2, 151936, true), 0.15f},
    {"qwen3-0.6b",
     R"({"model_type": "qwen3", "hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28,
         "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151936,
         "tie_word_embeddings": true, "attention_bias": false, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
         "max_position_embeddings": 40960, "torch_dtype": "bfloat16", "bos_token_id": 151643, "eos_token_id": 151645})",
     0.02f},
    {"llama3.2-1b",
     R"({"model_type": "llama", "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
         "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64, "vocab_size": 128256,
         "tie_word_embeddings": true, "attention_bias": false, "mlp_bias": false, "rope_theta": 500000.0,
         "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                          "original_max_position_embeddings": 8192},
         "rms_norm_eps": 1e-5, "max_position_embeddings": 131072, "torch_dtype": "bfloat16",
         "bos_token_id": 128000, "eos_token_id": 128001})",
     0.02f},
    {"mistral-7b",  // Mistral-7B-v0.3
     R"({"model_type": "mistral", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
         "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 32768,
         "tie_word_embeddings": false, "rope_theta": 1000000.0, "rms_norm_eps": 1e-5, "sliding_window": null,
         "max_position_embeddings": 32768, "torch_dtype": "bfloat16", "bos_token_id": 1, "eos_token_id": 2})",
     0.02f},
    {"gemma3-1b",  // google/gemma-3-1b-it (the -pt config differs only in eos_token_id 1)
     R"({"model_type": "gemma3_text", "hidden_size": 1152, "intermediate_size": 6912, "num_hidden_layers": 26,
         "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256, "query_pre_attn_scalar": 256,
         "sliding_window": 512, "sliding_window_pattern": 6, "vocab_size": 262144, "hidden_activation": "gelu_pytorch_tanh",
         "attention_bias": false, "attn_logit_softcapping": null, "final_logit_softcapping": null,
         "rope_theta": 1000000, "rope_local_base_freq": 10000, "rope_scaling": null, "rms_norm_eps": 1e-6,
         "max_position_embeddings": 32768, "torch_dtype": "bfloat16", "bos_token_id": 2, "eos_token_id": [1, 106]})",
     0.02f},
};
#undef WICK_QWEN25
}  // namespace

std::vector<std::string> preset_names() {
  std::vector<std::string> n;
  for (const auto& g : kPresets) n.push_back(g.name);
  return n;
}

float preset_embed_std(const std::string& name) {
  for (const auto& g : kPresets)
    if (name == g.name) return g.embed_std;
  return 0.02f;
}

ModelConfig preset_config(const std::string& name) {
  for (const auto& g : kPresets)
    if (name == g.name) return ModelConfig::from_json_string(g.config, "preset " + name);
  std::string all;
  for (const auto& n : preset_names()) all += (all.empty() ? "" : "|") + n;
  throw Error("unknown preset '" + name + "'", "--preset", "use one of " + all);
}

static constexpr const char* kTokenizerFiles[] = {"tokenizer.json", "tokenizer_config.json"};

void write_random_model(const ModelConfig& c, const std::string& out_dir, uint64_t seed, DType dtype,
                        const std::string& tokenizer_dir, float embed_std, bool replace) {
  if (dtype != DType::F32 && dtype != DType::BF16 && dtype != DType::F16)
    throw Error("weights dtype must be f32, bf16 or f16", "--dtype");
  // Everything that can fail is checked before the first byte is written: a missing tokenizer used to
  // surface after the weights were on disk, leaving a folder that looked like a model but had no tokenizer.
  if (!tokenizer_dir.empty())
    for (const char* f : kTokenizerFiles)
      if (!fs::exists(fs::path(tokenizer_dir) / f))
        throw Error(std::string("missing ") + f, tokenizer_dir, "run scripts/fetch_tokenizer.sh (or setup) first");
  if (replace && fs::is_directory(out_dir)) io::remove_model_files(out_dir);  // no old shard or index beside the new weights
  fs::create_directories(out_dir);
  Rng rng(seed);
  std::vector<std::pair<std::string, Tensor>> tensors;
  // One normal (two u32 draws) per element in order; chunks run in parallel from the jumped-ahead state, so
  // the weights are those of one sequential pass (a 7B model in seconds instead of minutes).
  auto add = [&](const std::string& name, const Shape& s, float mean, float std) {
    Tensor h = Tensor::empty(s, DType::F32);
    float* p = h.data<float>();
    const int64_t n = h.numel();
    constexpr int64_t kChunk = int64_t{1} << 20;
    const Rng start = rng;
#pragma omp parallel for schedule(dynamic) if (n > kChunk)
    for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
      Rng r = start;
      r.advance(2 * static_cast<uint64_t>(c0));
      const int64_t c1 = std::min(n, c0 + kChunk);
      for (int64_t i = c0; i < c1; i++) p[i] = mean + std * r.normal();
    }
    rng.advance(2 * static_cast<uint64_t>(n));
    tensors.emplace_back(name, h.to(dtype));
  };
  // The family's table in checkpoint order: embeddings N(0, embed_std), norms near 1 (near 0 where they are
  // offsets from 1: Gemma), the rest N(0, 0.02).
  const float norm_mean = c.norm_plus_one ? 0.0f : 1.0f;
  for (const WeightSpec& w : c.family().weights(c)) {
    if (w.role == WeightRole::Embedding) add(w.name, w.shape, 0, embed_std);
    else if (w.role == WeightRole::Norm) add(w.name, w.shape, norm_mean, 0.05f);
    else add(w.name, w.shape, 0, 0.02f);
  }
  io::save_safetensors((fs::path(out_dir) / "model.safetensors").string(), tensors);

  ModelConfig cc = c;
  cc.torch_dtype = dtype == DType::BF16 ? "bfloat16" : dtype == DType::F16 ? "float16" : "float32";
  io::write_file_atomic((fs::path(out_dir) / "config.json").string(), cc.to_json());
  // As the Hub's generation_config.json: stop at eos or bos (Qwen's <|endoftext|>), pad with bos.
  const int64_t bos = c.bos_token_ids.empty() ? 151643 : c.bos_token_ids[0];
  nlohmann::json eos = nlohmann::json::array();
  for (int64_t id : c.eos_token_ids) eos.push_back(id);
  if (eos.empty()) eos.push_back(151645);
  eos.push_back(bos);
  nlohmann::json gen = {{"bos_token_id", bos}, {"eos_token_id", eos}, {"pad_token_id", bos},
                        {"do_sample", false}, {"transformers_version", "4.43.1"}};
  io::write_file_atomic((fs::path(out_dir) / "generation_config.json").string(), gen.dump(2));
  if (!tokenizer_dir.empty())
    for (const char* f : kTokenizerFiles)
      io::write_file_atomic((fs::path(out_dir) / f).string(), io::read_file((fs::path(tokenizer_dir) / f).string()));
}

}  // namespace wick
