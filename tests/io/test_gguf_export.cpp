// wick export-gguf checked by readers wick did not write:
//  - Hugging Face's @huggingface/gguf (npm, run with node: tests/io/gguf_dump.cjs) parses each file; its
//    metadata (keys in order, GGUF value types, values) and tensor list (names, ggml shapes, types, offsets)
//    must be what llama.cpp's convert_hf_to_gguf.py / convert_lora_to_gguf.py write for the same folder,
//    spelled out here from the converter's rules (not from wick's tables);
//  - a reader of the GGUF spec written in this file reads the tensor data back: F32, F16 and BF16 exactly
//    the merged weights rounded to the type, Q8_0 within half a quantisation step of every block, with the
//    block scale ggml computes.
// The model is random (bf16, the real Qwen tokenizer, untied rows not multiples of 32 so Q8_0 falls back
// to F16 where the converter does) with a random LoRA adapter on every projection, merged in.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>

#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "core/rng.h"
#include "io/gguf_export.h"
#include "io/io_testutil.h"
#include "io/json_util.h"
#include "io/peft_adapter.h"
#include "io/safetensors.h"
#include "lora/merge_folder.h"
#include "model/gguf_hparams.h"
#include "model/presets.h"
#include "tokenizer/tokenizer_testutil.h"

namespace wick::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string gguf_js_modules() { return source_dir() + "/third_party/npm/gguf-js/node_modules"; }

// Why the @huggingface/gguf check cannot run here ("" when it can).
std::string node_skip_reason() {
  if (std::system("command -v node > /dev/null 2>&1") != 0) return "no node on PATH (scripts/setup.sh installs npm/node)";
  if (!fs::exists(gguf_js_modules() + "/@huggingface/gguf/package.json"))
    return "no @huggingface/gguf at " + gguf_js_modules() + " (run scripts/fetch_gguf_js.sh)";
  if (!fs::exists(qwen_tokenizer_dir() + "/tokenizer.json")) return "no Qwen tokenizer (scripts/fetch_tokenizer.sh)";
  return "";
}

std::string run_capture(const std::string& cmd) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return "";
  std::string out;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  EXPECT_EQ(::pclose(p), 0) << cmd;
  return out;
}

// Output and exit status ignored: for commands expected to fail.
std::string run_capture_status(const std::string& cmd) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return "";
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

std::string file_bytes(const std::string& path) { return io::read_file(path); }

json parse_with_hf_gguf(const std::string& file) {
  const std::string out =
      run_capture("node '" + source_dir() + "/tests/io/gguf_dump.cjs' '" + gguf_js_modules() + "' '" + file + "'");
  return json::parse(out);
}

// ---- a reader of the GGUF v3 spec, written for this test ----
struct SpecTensor {
  std::vector<uint64_t> ne;
  uint32_t type = 0;
  uint64_t offset = 0;
};
struct SpecFile {
  std::string bytes;
  std::map<std::string, SpecTensor> tensors;
  uint64_t data_start = 0;
};

SpecFile read_spec(const std::string& path) {
  SpecFile f;
  f.bytes = file_bytes(path);
  size_t p = 0;
  auto u32 = [&] { uint32_t v; std::memcpy(&v, f.bytes.data() + p, 4); p += 4; return v; };
  auto u64 = [&] { uint64_t v; std::memcpy(&v, f.bytes.data() + p, 8); p += 8; return v; };
  auto str = [&] { const uint64_t n = u64(); std::string s = f.bytes.substr(p, n); p += n; return s; };
  EXPECT_EQ(f.bytes.substr(0, 4), "GGUF");
  p = 4;
  EXPECT_EQ(u32(), 3u);
  const uint64_t n_tensors = u64(), n_kv = u64();
  const size_t scalar_size[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
  std::function<void(uint32_t)> skip = [&](uint32_t t) {
    if (t == 8) str();
    else if (t == 9) {
      const uint32_t et = u32();
      const uint64_t n = u64();
      for (uint64_t i = 0; i < n; i++) skip(et);
    } else p += scalar_size[t];
  };
  for (uint64_t i = 0; i < n_kv; i++) {
    str();
    skip(u32());
  }
  for (uint64_t i = 0; i < n_tensors; i++) {
    const std::string name = str();
    SpecTensor t;
    const uint32_t nd = u32();
    for (uint32_t d = 0; d < nd; d++) t.ne.push_back(u64());
    t.type = u32();
    t.offset = u64();
    f.tensors[name] = t;
  }
  f.data_start = (p + 31) / 32 * 32;
  return f;
}

float half(const uint8_t* b) { return f16_to_f32(static_cast<uint16_t>(b[0] | (b[1] << 8))); }

// Compares the stored data of one tensor against the f32 values it was made from.
void check_data(const SpecFile& f, const std::string& name, const std::vector<float>& x) {
  const SpecTensor& t = f.tensors.at(name);
  const uint8_t* d = reinterpret_cast<const uint8_t*>(f.bytes.data() + f.data_start + t.offset);
  const size_t n = x.size();
  size_t bad = 0;
  if (t.type == 0) {  // F32
    for (size_t i = 0; i < n; i++) {
      float v;
      std::memcpy(&v, d + 4 * i, 4);
      bad += v != x[i];
    }
  } else if (t.type == 1) {  // F16: the value rounded to half
    for (size_t i = 0; i < n; i++) bad += half(d + 2 * i) != f16_to_f32(f32_to_f16(x[i]));
  } else if (t.type == 30) {  // BF16: the top 16 bits, rounded
    for (size_t i = 0; i < n; i++) bad += bf16_to_f32(static_cast<uint16_t>(d[2 * i] | (d[2 * i + 1] << 8))) != round_bf16(x[i]);
  } else if (t.type == 8) {  // Q8_0: {f16 d, int8 q[32]} blocks, d = amax / 127
    for (size_t b = 0; b < n / 32; b++) {
      const uint8_t* blk = d + 34 * b;
      float amax = 0;
      for (size_t j = 0; j < 32; j++) amax = std::max(amax, std::fabs(x[32 * b + j]));
      const float scale = half(blk);
      bad += scale != f16_to_f32(f32_to_f16(amax / 127.0f));
      for (size_t j = 0; j < 32; j++) {
        const int8_t q = static_cast<int8_t>(blk[2 + j]);
        // Half a step of the f32 scale, plus what rounding the scale to f16 moves the grid (|q| <= 127).
        const float exact = amax / 127.0f, tol = 0.5f * exact + 127.0f * std::fabs(scale - exact) + 1e-7f;
        bad += q == -128 || std::fabs(x[32 * b + j] - scale * q) > tol;
      }
    }
    EXPECT_EQ(n % 32, 0u) << name;
  } else {
    ADD_FAILURE() << name << ": unexpected ggml type " << t.type;
  }
  EXPECT_EQ(bad, 0u) << name << " (ggml type " << t.type << "): values not round-tripped";
}

std::vector<float> f32_values(const Tensor& t) {
  const Tensor f = t.to(DType::F32);
  return std::vector<float>(f.data<float>(), f.data<float>() + f.numel());
}

// ---- the model folder and adapter ----
constexpr int64_t kHidden = 64, kInter = 176, kLayers = 2, kHeads = 2, kKv = 1, kVocab = 151936, kRank = 4;

ModelConfig test_config(bool tied) {
  ModelConfig c;
  c.hidden_size = kHidden;
  c.intermediate_size = kInter;  // 176 = 5.5 blocks: ffn_down rows cannot be Q8_0
  c.num_layers = kLayers;
  c.num_heads = kHeads;
  c.num_kv_heads = kKv;
  c.head_dim = kHidden / kHeads;
  c.vocab_size = kVocab;
  c.tie_word_embeddings = tied;
  c.rope_theta = 1000000.0;
  c.rms_norm_eps = 1e-6;
  c.max_position_embeddings = 32768;
  c.bos_token_ids = {151643};
  c.eos_token_ids = {151645};
  return c;
}

std::string make_adapter(const std::string& dir, const ModelConfig& c, bool rslora) {
  io::LoraConfig cfg;
  cfg.r = kRank;
  cfg.alpha = 8;
  cfg.use_rslora = rslora;
  cfg.target_modules = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  Rng rng(5);
  std::map<std::string, io::LoraPair> mods;
  const std::pair<const char*, std::pair<int64_t, int64_t>> projs[] = {
      {"self_attn.q_proj", {c.q_dim(), kHidden}},  {"self_attn.k_proj", {c.kv_dim(), kHidden}},
      {"self_attn.v_proj", {c.kv_dim(), kHidden}}, {"self_attn.o_proj", {kHidden, c.q_dim()}},
      {"mlp.gate_proj", {kInter, kHidden}},        {"mlp.up_proj", {kInter, kHidden}},
      {"mlp.down_proj", {kHidden, kInter}}};
  for (int64_t l = 0; l < kLayers; l++)
    for (const auto& [p, oi] : projs)
      mods["model.layers." + std::to_string(l) + "." + p] = {randn({kRank, oi.second}, rng, 0.1f),
                                                             randn({oi.first, kRank}, rng, 0.1f)};
  io::save_peft_adapter(dir, cfg, mods);
  return dir;
}

struct Folder {
  TempDir tmp;
  std::string model, adapter;
  ModelConfig cfg;
};

Folder make_folder(bool tied) {
  Folder f;
  f.cfg = test_config(tied);
  f.model = f.tmp.file("my-model");
  write_random_model(f.cfg, f.model, 3, DType::BF16, qwen_tokenizer_dir(), 0.05f);
  f.adapter = make_adapter(f.tmp.file("my-adapter"), f.cfg, false);
  return f;
}

// ---- what the converter writes, from its rules ----
struct Expected {
  std::string name;
  std::vector<std::string> ne;  // ggml order, as decimal strings (the dump's BigInts)
  int type;
  std::string hf;  // the source tensor
};

// The converter maps Hugging Face names (sorted, as safetensors lists them) to llama.cpp's and keeps
// 1-D tensors, norms and biases in F32; other tensors take the file type, Q8_0 falling back to F16 when a
// row is not a whole number of 32-blocks.
std::vector<Expected> expected_tensors(const ModelConfig& c, int ftype_ggml) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> hf = {{"model.embed_tokens.weight", {kVocab, kHidden}},
                                                                  {"model.norm.weight", {kHidden}}};
  if (!c.tie_word_embeddings) hf.push_back({"lm_head.weight", {kVocab, kHidden}});
  for (int64_t l = 0; l < kLayers; l++) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    for (auto [n, s] : std::vector<std::pair<std::string, std::vector<int64_t>>>{
             {"input_layernorm.weight", {kHidden}},          {"post_attention_layernorm.weight", {kHidden}},
             {"self_attn.q_proj.weight", {c.q_dim(), kHidden}}, {"self_attn.q_proj.bias", {c.q_dim()}},
             {"self_attn.k_proj.weight", {c.kv_dim(), kHidden}}, {"self_attn.k_proj.bias", {c.kv_dim()}},
             {"self_attn.v_proj.weight", {c.kv_dim(), kHidden}}, {"self_attn.v_proj.bias", {c.kv_dim()}},
             {"self_attn.o_proj.weight", {kHidden, c.q_dim()}}, {"mlp.gate_proj.weight", {kInter, kHidden}},
             {"mlp.up_proj.weight", {kInter, kHidden}},       {"mlp.down_proj.weight", {kHidden, kInter}}})
      hf.push_back({p + n, s});
  }
  std::sort(hf.begin(), hf.end());
  const std::map<std::string, std::string> part = {
      {"input_layernorm", "attn_norm"}, {"post_attention_layernorm", "ffn_norm"}, {"self_attn.q_proj", "attn_q"},
      {"self_attn.k_proj", "attn_k"},   {"self_attn.v_proj", "attn_v"},          {"self_attn.o_proj", "attn_output"},
      {"mlp.gate_proj", "ffn_gate"},    {"mlp.up_proj", "ffn_up"},               {"mlp.down_proj", "ffn_down"}};
  std::vector<Expected> out;
  for (const auto& [name, shape] : hf) {
    std::string g;
    if (name == "model.embed_tokens.weight") g = "token_embd.weight";
    else if (name == "model.norm.weight") g = "output_norm.weight";
    else if (name == "lm_head.weight") g = "output.weight";
    else {
      const size_t a = std::strlen("model.layers."), b = name.find('.', a), e = name.rfind('.');
      g = "blk." + name.substr(a, b - a) + "." + part.at(name.substr(b + 1, e - b - 1)) + name.substr(e);
    }
    const bool is_bias = name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    int type = ftype_ggml;
    if (shape.size() == 1 || is_bias || g.find("_norm.weight") != std::string::npos) type = 0;
    else if (type == 8 && shape.back() % 32 != 0) type = 1;
    std::vector<std::string> ne;
    for (auto it = shape.rbegin(); it != shape.rend(); ++it) ne.push_back(std::to_string(*it));
    out.push_back({g, ne, type, name});
  }
  return out;
}

uint64_t type_bytes(int type, uint64_t n) {
  return type == 0 ? 4 * n : type == 8 ? n / 32 * 34 : 2 * n;
}

// Checks the tensor list @huggingface/gguf read: names, ggml shapes, types and offsets in order.
void expect_tensor_list(const json& dump, const std::vector<Expected>& want) {
  const json& got = dump.at("tensors");
  ASSERT_EQ(got.size(), want.size());
  uint64_t offset = 0;
  for (size_t i = 0; i < want.size(); i++) {
    EXPECT_EQ(got[i].at("name"), want[i].name) << i;
    EXPECT_EQ(got[i].at("shape").get<std::vector<std::string>>(), want[i].ne) << want[i].name;
    EXPECT_EQ(got[i].at("dtype"), want[i].type) << want[i].name;
    EXPECT_EQ(got[i].at("offset"), std::to_string(offset)) << want[i].name;
    uint64_t n = 1;
    for (const std::string& d : want[i].ne) n *= std::stoull(d);
    offset += (type_bytes(want[i].type, n) + 31) / 32 * 32;
  }
}

const json& meta(const json& dump, const std::string& key) {
  for (const json& m : dump.at("metadata"))
    if (m.at("key") == key) return m;
  static const json none;
  ADD_FAILURE() << "no metadata key " << key;
  return none;
}

class GgufExport : public ::testing::TestWithParam<std::string> {};

TEST_P(GgufExport, MergedModelReadsAsTheConverterWritesIt) {
  const std::string why = node_skip_reason();
  if (!why.empty()) GTEST_SKIP() << why;
  const std::string type = GetParam();
  const int ggml = type == "f32" ? 0 : type == "f16" ? 1 : type == "bf16" ? 30 : 8;
  const uint32_t llama_ftype = type == "f32" ? 0 : type == "f16" ? 1 : type == "bf16" ? 32 : 7;
  Folder f = make_folder(type != "f32");  // the f32 run has an untied lm_head (the output tensor)
  const std::string out = f.tmp.file("model.gguf");
  const std::vector<io::LazyTensor> merged = merged_model_tensors(f.model, f.adapter);
  io::write_model_gguf(f.model, gguf_hparams(f.cfg), merged, io::parse_gguf_file_type(type), out, "my-model");
  const json dump = parse_with_hf_gguf(out);

  // Metadata: the converter's keys, in its order, with its GGUF value types (4 u32, 6 f32, 7 bool, 8 string, 9 array).
  const std::vector<std::pair<std::string, int>> keys = {
      {"version", 4}, {"tensor_count", 10}, {"kv_count", 10},
      {"general.architecture", 8}, {"general.type", 8}, {"general.name", 8}, {"general.size_label", 8},
      {"qwen2.block_count", 4}, {"qwen2.context_length", 4}, {"qwen2.embedding_length", 4},
      {"qwen2.feed_forward_length", 4}, {"qwen2.attention.head_count", 4}, {"qwen2.attention.head_count_kv", 4},
      {"qwen2.rope.freq_base", 6}, {"qwen2.attention.layer_norm_rms_epsilon", 6}, {"general.file_type", 4},
      {"tokenizer.ggml.model", 8}, {"tokenizer.ggml.pre", 8}, {"tokenizer.ggml.tokens", 9},
      {"tokenizer.ggml.token_type", 9}, {"tokenizer.ggml.merges", 9}, {"tokenizer.ggml.eos_token_id", 4},
      {"tokenizer.ggml.padding_token_id", 4}, {"tokenizer.ggml.bos_token_id", 4},
      {"tokenizer.ggml.add_bos_token", 7}, {"tokenizer.chat_template", 8}, {"general.quantization_version", 4}};
  const json& md = dump.at("metadata");
  ASSERT_EQ(md.size(), keys.size());
  for (size_t i = 0; i < keys.size(); i++) {
    EXPECT_EQ(md[i].at("key"), keys[i].first) << i;
    EXPECT_EQ(md[i].at("type"), keys[i].second) << keys[i].first;
  }
  EXPECT_EQ(meta(dump, "version").at("value"), 3);
  EXPECT_EQ(meta(dump, "general.architecture").at("value"), "qwen2");
  EXPECT_EQ(meta(dump, "general.type").at("value"), "model");
  EXPECT_EQ(meta(dump, "general.name").at("value"), "my-model");
  EXPECT_EQ(meta(dump, "qwen2.block_count").at("value"), kLayers);
  EXPECT_EQ(meta(dump, "qwen2.context_length").at("value"), 32768);
  EXPECT_EQ(meta(dump, "qwen2.embedding_length").at("value"), kHidden);
  EXPECT_EQ(meta(dump, "qwen2.feed_forward_length").at("value"), kInter);
  EXPECT_EQ(meta(dump, "qwen2.attention.head_count").at("value"), kHeads);
  EXPECT_EQ(meta(dump, "qwen2.attention.head_count_kv").at("value"), kKv);
  EXPECT_EQ(meta(dump, "qwen2.rope.freq_base").at("value").get<double>(), 1e6);
  EXPECT_EQ(meta(dump, "qwen2.attention.layer_norm_rms_epsilon").at("value").get<double>(), static_cast<double>(1e-6f));
  EXPECT_EQ(meta(dump, "general.file_type").at("value"), llama_ftype);
  EXPECT_EQ(meta(dump, "general.quantization_version").at("value"), 2);
  // size_label: the parameter count in gguf-py's notation (~10M here: "10M" style, two significant digits).
  int64_t params = 0;
  for (const io::LazyTensor& t : merged) params += shape_numel(t.shape);
  const std::string label = meta(dump, "general.size_label").at("value");
  EXPECT_EQ(label, std::to_string(static_cast<int64_t>(std::nearbyint(params * 1e-6))) + "M") << params;

  // The tokenizer: tokenizer.json's strings by id, [PAD<i>] holes up to config's vocab_size, types
  // (1 normal, 3 control, 4 user-defined, 5 unused), merges verbatim ("a b"), special ids, the template.
  const json tj = io::read_json_file(f.model + "/tokenizer.json");
  const json tc = io::read_json_file(f.model + "/tokenizer_config.json");
  const auto tokens = meta(dump, "tokenizer.ggml.tokens").at("value").get<std::vector<std::string>>();
  const auto types = meta(dump, "tokenizer.ggml.token_type").at("value").get<std::vector<int>>();
  ASSERT_EQ(tokens.size(), static_cast<size_t>(kVocab));
  ASSERT_EQ(types.size(), static_cast<size_t>(kVocab));
  EXPECT_EQ(meta(dump, "tokenizer.ggml.token_type").at("subType"), 5);  // int32
  std::vector<int> want_types(kVocab, 5);
  std::vector<std::string> want_tokens(kVocab);
  for (int64_t i = 0; i < kVocab; i++) want_tokens[i] = "[PAD" + std::to_string(i) + "]";
  for (const auto& [tok, id] : tj.at("model").at("vocab").items()) want_tokens[id.get<int64_t>()] = tok, want_types[id.get<int64_t>()] = 1;
  for (const json& a : tj.at("added_tokens")) {
    const std::string c = a.at("content");
    const bool looks = c.size() > 4 && c.rfind("<|", 0) == 0 && c.compare(c.size() - 2, 2, "|>") == 0;
    want_tokens[a.at("id").get<int64_t>()] = c;
    want_types[a.at("id").get<int64_t>()] = a.at("special").get<bool>() || looks ? 3 : 4;
  }
  EXPECT_TRUE(tokens == want_tokens);
  EXPECT_TRUE(types == want_types);
  EXPECT_EQ(types[151643], 3);  // <|endoftext|>
  EXPECT_EQ(types[151657], 4);  // <tool_call>: not special, not <|...|>
  EXPECT_EQ(types[151659], 3);  // <|fim_prefix|>: not special, looks special
  EXPECT_EQ(tokens[151935], "[PAD151935]");
  std::vector<std::string> want_merges;
  for (const json& m : tj.at("model").at("merges"))
    want_merges.push_back(m.is_string() ? m.get<std::string>() : m[0].get<std::string>() + " " + m[1].get<std::string>());
  EXPECT_TRUE(meta(dump, "tokenizer.ggml.merges").at("value").get<std::vector<std::string>>() == want_merges);
  EXPECT_EQ(meta(dump, "tokenizer.ggml.eos_token_id").at("value"), 151645);      // tokenizer_config eos_token <|im_end|>
  EXPECT_EQ(meta(dump, "tokenizer.ggml.padding_token_id").at("value"), 151643);  // pad_token <|endoftext|>
  EXPECT_EQ(meta(dump, "tokenizer.ggml.bos_token_id").at("value"), 151643);      // config.json bos_token_id
  EXPECT_EQ(meta(dump, "tokenizer.ggml.add_bos_token").at("value"), false);
  EXPECT_EQ(meta(dump, "tokenizer.chat_template").at("value"), tc.at("chat_template"));

  const std::vector<Expected> want = expected_tensors(f.cfg, ggml);
  expect_tensor_list(dump, want);

  // The data, read back by this file's spec reader, against the merged weights.
  const SpecFile sf = read_spec(out);
  EXPECT_EQ(sf.data_start, std::stoull(dump.at("tensorDataOffset").get<std::string>()));
  std::map<std::string, const io::LazyTensor*> by_name;
  for (const io::LazyTensor& t : merged) by_name[t.name] = &t;
  for (const Expected& e : want) check_data(sf, e.name, f32_values(by_name.at(e.hf)->get()));
  EXPECT_EQ(sf.bytes.size() % 32, 0u);
}

INSTANTIATE_TEST_SUITE_P(Types, GgufExport, ::testing::Values("f32", "f16", "bf16", "q8_0"));

// The merged tensors are W + (alpha / r) B A rounded once to W's dtype (computed here in double).
TEST(GgufExport, MergedTensorsFoldTheAdapterIn) {
  if (!fs::exists(qwen_tokenizer_dir() + "/tokenizer.json")) GTEST_SKIP() << "no Qwen tokenizer";
  Folder f = make_folder(true);
  const io::AdapterFiles ad = io::load_peft_adapter(f.adapter);
  const io::Checkpoint ck = io::Checkpoint::open(f.model);
  size_t adapted = 0;
  for (const io::LazyTensor& t : merged_model_tensors(f.model, f.adapter)) {
    const Tensor got = t.get();
    EXPECT_EQ(got.dtype(), DType::BF16) << t.name;
    const std::string module = t.name.substr(0, t.name.rfind('.'));
    auto it = ad.modules.find(module);
    if (it == ad.modules.end() || t.name.compare(t.name.size() - 7, 7, ".weight") != 0) {
      EXPECT_EQ(f32_values(got), f32_values(ck.get(t.name))) << t.name << " untouched";
      continue;
    }
    adapted++;
    const std::vector<float> w = f32_values(ck.get(t.name)), a = f32_values(it->second.A), b = f32_values(it->second.B),
                             g = f32_values(got);
    const int64_t out = t.shape[0], in = t.shape[1];
    size_t bad = 0;
    for (int64_t o = 0; o < out; o++)
      for (int64_t i = 0; i < in; i++) {
        double s = 0;
        for (int64_t k = 0; k < kRank; k++) s += static_cast<double>(b[o * kRank + k]) * a[k * in + i];
        const double want = w[o * in + i] + 2.0 * s;  // alpha 8 / r 4
        bad += std::fabs(g[o * in + i] - want) > std::fabs(want) * (1.0 / 128) + 1e-6;  // one bf16 rounding
      }
    EXPECT_EQ(bad, 0u) << t.name;
  }
  EXPECT_EQ(adapted, ad.modules.size());
}

// --lora-only: llama.cpp's LoRA GGUF. lora_a is PEFT's A [r, in] (ggml ne {in, r}), lora_b is B [out, r]
// (ne {r, out}); general.type adapter, adapter.type lora, adapter.lora.alpha (alpha * sqrt(r) for rsLoRA,
// since llama.cpp scales by alpha / r). The f32 data is the adapter's, bit for bit.
TEST(GgufExport, LoraOnlyIsLlamaCppsAdapterForm) {
  const std::string why = node_skip_reason();
  if (!why.empty()) GTEST_SKIP() << why;
  Folder f = make_folder(true);
  for (bool rslora : {false, true}) {
    const std::string adir = make_adapter(f.tmp.file(rslora ? "rs-adapter" : "adapter2"), f.cfg, rslora);
    const std::string out = f.tmp.file(rslora ? "rs.gguf" : "lora.gguf");
    const io::AdapterFiles ad = io::load_peft_adapter(adir);
    io::write_lora_gguf(ad, io::GgufFileType::F32, out, "adapter2");
    const json dump = parse_with_hf_gguf(out);
    std::vector<std::string> keys;
    for (const json& m : dump.at("metadata")) keys.push_back(m.at("key"));
    EXPECT_EQ(keys, (std::vector<std::string>{"version", "tensor_count", "kv_count", "general.architecture", "general.type",
                                              "adapter.type", "general.name", "adapter.lora.alpha",
                                              "general.quantization_version"}));
    EXPECT_EQ(meta(dump, "general.architecture").at("value"), "qwen2");
    EXPECT_EQ(meta(dump, "general.type").at("value"), "adapter");
    EXPECT_EQ(meta(dump, "adapter.type").at("value"), "lora");
    EXPECT_EQ(meta(dump, "adapter.lora.alpha").at("type"), 6);
    EXPECT_FLOAT_EQ(meta(dump, "adapter.lora.alpha").at("value").get<float>(), rslora ? 8.0f * 2.0f : 8.0f);

    std::vector<Expected> want;
    for (const Expected& e : expected_tensors(f.cfg, 0)) {
      const std::string m = e.hf.substr(0, e.hf.rfind('.'));
      auto it = ad.modules.find(m);
      if (it == ad.modules.end() || e.hf.compare(e.hf.size() - 7, 7, ".weight") != 0) continue;
      const int64_t out_dim = it->second.B.shape()[0], in_dim = it->second.A.shape()[1];
      want.push_back({e.name + ".lora_a", {std::to_string(in_dim), std::to_string(kRank)}, 0, m + "#A"});
      want.push_back({e.name + ".lora_b", {std::to_string(kRank), std::to_string(out_dim)}, 0, m + "#B"});
    }
    ASSERT_EQ(want.size(), 2 * ad.modules.size());
    expect_tensor_list(dump, want);
    const SpecFile sf = read_spec(out);
    for (const Expected& e : want) {
      const io::LoraPair& p = ad.modules.at(e.hf.substr(0, e.hf.size() - 2));
      check_data(sf, e.name, f32_values(e.hf.back() == 'A' ? p.A : p.B));
    }
  }
}

// The command writes the same bytes as the library call, and refuses what it cannot convert.
TEST(GgufExport, CommandLineWritesTheSameFile) {
  if (!fs::exists(qwen_tokenizer_dir() + "/tokenizer.json")) GTEST_SKIP() << "no Qwen tokenizer";
  Folder f = make_folder(true);
  const std::string lib = f.tmp.file("lib.gguf"), cli = f.tmp.file("cli.gguf");
  io::write_model_gguf(f.model, gguf_hparams(f.cfg), merged_model_tensors(f.model, f.adapter), io::GgufFileType::Q8_0, lib, "my-model");
  const std::string cmd = std::string(WICK_BINARY) + " export-gguf --model '" + f.model + "' --adapter '" + f.adapter +
                          "' --out '" + cli + "' --type q8_0 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  EXPECT_TRUE(file_bytes(lib) == file_bytes(cli));
  const std::string bad = std::string(WICK_BINARY) + " export-gguf --model '" + f.model + "' --out '" +
                          f.tmp.file("x.gguf") + "' --type q4_k 2>&1";
  EXPECT_NE(run_capture_status(bad).find("unknown GGUF type"), std::string::npos);
  // An existing --out is refused, untouched, unless --overwrite: then it is replaced by the new file.
  const std::string other = f.tmp.file("other.gguf");
  const std::string again = std::string(WICK_BINARY) + " export-gguf --model '" + f.model + "' --adapter '" + f.adapter +
                            "' --out '" + cli + "' --type f16 2>&1";
  const std::string refused = run_capture_status(again);
  EXPECT_NE(refused.find("the output file exists"), std::string::npos) << refused;
  EXPECT_NE(refused.find("--overwrite"), std::string::npos) << refused;
  EXPECT_TRUE(file_bytes(lib) == file_bytes(cli)) << "a refused export leaves the file as it was";
  ASSERT_EQ(std::system((std::string(WICK_BINARY) + " export-gguf --model '" + f.model + "' --adapter '" + f.adapter +
                         "' --out '" + other + "' --type f16 2>/dev/null").c_str()), 0);
  ASSERT_EQ(std::system((again + " --overwrite > /dev/null").c_str()), 0);
  EXPECT_TRUE(file_bytes(cli) == file_bytes(other)) << "--overwrite replaced it with the f16 export";
}

}  // namespace
}  // namespace wick::test

namespace wick::test {
namespace {

// Gemma 3 is not exported (llama.cpp's gemma3 layout, with its norms stored as 1 + w, is not written): the
// model and --lora-only both refuse, naming the architecture, and write nothing.
TEST(GgufExport, RefusesGemma3) {
  TempDir tmp;
  ModelConfig c = preset_config("gemma3-1b");
  c.hidden_size = 64;
  c.intermediate_size = 96;
  c.num_layers = 2;
  c.num_heads = 4;
  c.head_dim = 16;
  c.vocab_size = 300;
  const std::string model = tmp.file("gemma"), out = tmp.file("x.gguf");
  write_random_model(c, model, 3, DType::F32, "");
  // The architecture is refused before the adapter is read: any folder (not the one --out lies in) will do.
  const std::string adapter = tmp.file("adapter");
  fs::create_directories(adapter);
  for (const std::string& extra : {std::string(), " --adapter '" + adapter + "' --lora-only"}) {
    SCOPED_TRACE(extra);
    const std::string got = run_capture_status(std::string(WICK_BINARY) + " export-gguf --model '" + model +
                                               "' --out '" + out + "'" + extra + " 2>&1");
    EXPECT_NE(got.find("qwen2 architecture only"), std::string::npos) << got;
    EXPECT_NE(got.find("gemma3_text"), std::string::npos) << got;
    EXPECT_FALSE(fs::exists(out));
  }
}

}  // namespace
}  // namespace wick::test
