// Gemma 3 text's config.json: the published gemma-3-1b-it config (Hub style) and the transformers-5 style
// (rope_parameters keyed by layer type, explicit layer_types) read to the same model; its weight table;
// every refusal names the field.
#include <functional>

#include <nlohmann/json.hpp>

#include "common/testutil.h"
#include "io/io_testutil.h"
#include "model/config.h"
#include "model/family.h"
#include "model/layer.h"
#include "model/presets.h"

namespace wick {
namespace {

using nlohmann::json;

ModelConfig parse(const json& j) { return ModelConfig::from_json_string(j.dump(), "config.json"); }

TEST(Gemma3Config, PublishedOneBillion) {
  const ModelConfig c = preset_config("gemma3-1b");
  EXPECT_EQ(c.model_type, "gemma3_text");
  EXPECT_EQ(c.family().architecture, std::string("Gemma3ForCausalLM"));
  EXPECT_EQ(c.head_dim, 256);
  EXPECT_EQ(c.q_dim(), 1024);  // not hidden_size: head_dim is its own field
  EXPECT_EQ(c.kv_dim(), 256);
  EXPECT_TRUE(c.qk_norm && c.norm_plus_one && c.sandwich_norms && c.embed_scaled && c.gelu_mlp);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_TRUE(c.tie_word_embeddings);  // absent from the file: the class default is tied
  EXPECT_EQ(c.attention_scale(), 1.0f / 16.0f);
  EXPECT_EQ(c.rope_theta, 1e6);
  EXPECT_EQ(c.rope_local_theta, 1e4);
  EXPECT_EQ(c.rope_scaling.factor, 0.0);
  EXPECT_EQ(c.max_position_embeddings, 32768);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{1, 106}));
  // sliding_window_pattern 6: layers 5, 11, 17, 23 are full, the other 22 slide over 512 positions.
  ASSERT_EQ(c.sliding_layers.size(), 26u);
  for (int64_t l = 0; l < 26; l++) {
    SCOPED_TRACE(l);
    const bool full = (l + 1) % 6 == 0;
    EXPECT_EQ(c.is_sliding(l), !full);
    EXPECT_EQ(c.attention_window(l), full ? 0 : 512);
    EXPECT_EQ(layer_rope(c, l).theta, full ? 1e6f : 1e4f);
    EXPECT_EQ(layer_attention_args(c, l).window, full ? 0 : 512);
  }
  EXPECT_EQ(c.num_parameters(), 999885952);  // Gemma 3 1B, tied
}

TEST(Gemma3Config, TransformersFiveStyleIsTheSameModel) {
  json hub = json::parse(preset_config("gemma3-1b").to_json());
  json t5 = hub;
  for (const char* k : {"rope_theta", "rope_local_base_freq", "rope_scaling", "tie_word_embeddings", "torch_dtype"})
    t5.erase(k);
  t5["dtype"] = "bfloat16";
  t5["rope_parameters"] = {{"full_attention", {{"rope_type", "default"}, {"rope_theta", 1000000.0}}},
                           {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 10000.0}}}};
  ASSERT_TRUE(t5.contains("layer_types"));  // to_json spells them out
  EXPECT_EQ(parse(t5).to_json(), parse(hub).to_json());
  // The pattern and the explicit list agree.
  json pattern = hub;
  pattern.erase("layer_types");
  pattern["sliding_window_pattern"] = 6;
  EXPECT_EQ(parse(pattern).to_json(), parse(hub).to_json());
}

TEST(Gemma3Config, LinearRopeScalingOnTheFullLayersOnly) {
  json j = json::parse(preset_config("gemma3-1b").to_json());
  j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 8.0}};  // Gemma 3 4B+ (Hub style)
  const ModelConfig a = parse(j);
  j.erase("rope_scaling");
  j.erase("rope_theta");
  j.erase("rope_local_base_freq");
  j["rope_parameters"] = {{"full_attention", {{"rope_type", "linear"}, {"factor", 8.0}, {"rope_theta", 1e6}}},
                          {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 1e4}}}};
  const ModelConfig b = parse(j);
  for (const ModelConfig* c : {&a, &b}) {
    EXPECT_TRUE(c->rope_scaling.linear);
    EXPECT_EQ(c->rope_scaling.factor, 8.0);
    const RopeFreqs full = layer_rope(*c, 5), sliding = layer_rope(*c, 0);
    EXPECT_TRUE(full.scaled() && full.linear);
    EXPECT_FALSE(sliding.scaled());
    const std::vector<float> plain = rope_inv_freq(1e6f, 256), scaled = rope_inv_freq(full, 256);
    for (size_t i = 0; i < plain.size(); i++) EXPECT_EQ(scaled[i], plain[i] / 8.0f) << i;
  }
  EXPECT_EQ(a.to_json(), b.to_json());
  EXPECT_EQ(parse(json::parse(a.to_json())).to_json(), a.to_json());  // round trip keeps the scaling
}

TEST(Gemma3Config, WeightTableHasFourNormsPerLayerAndSevenLoraTargets) {
  ModelConfig c = preset_config("gemma3-1b");
  c.num_layers = 1;
  std::vector<std::string> names;
  for (const WeightSpec& w : c.family().weights(c)) names.push_back(w.name);
  const std::vector<std::string> want = {
      "model.embed_tokens.weight",
      "model.layers.0.input_layernorm.weight",
      "model.layers.0.post_attention_layernorm.weight",
      "model.layers.0.pre_feedforward_layernorm.weight",
      "model.layers.0.post_feedforward_layernorm.weight",
      "model.layers.0.self_attn.q_norm.weight",
      "model.layers.0.self_attn.k_norm.weight",
      "model.layers.0.self_attn.q_proj.weight",
      "model.layers.0.self_attn.k_proj.weight",
      "model.layers.0.self_attn.v_proj.weight",
      "model.layers.0.self_attn.o_proj.weight",
      "model.layers.0.mlp.gate_proj.weight",
      "model.layers.0.mlp.up_proj.weight",
      "model.layers.0.mlp.down_proj.weight",
      "model.norm.weight"};
  EXPECT_EQ(names, want);
  EXPECT_EQ(lora_target_names(c),
            (std::vector<std::string>{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}));
  const auto shape = lora_linear_shape(c, "model.layers.0.self_attn.o_proj");
  ASSERT_TRUE(shape.has_value());
  EXPECT_EQ(*shape, (std::pair<int64_t, int64_t>{1152, 1024}));
}

TEST(Gemma3Config, Refusals) {
  const json base = json::parse(preset_config("gemma3-1b").to_json());
  struct Case {
    std::function<void(json&)> edit;
    std::vector<std::string> needles;
  };
  const std::vector<Case> cases = {
      {[](json& j) { j["final_logit_softcapping"] = 30.0; }, {"final_logit_softcapping", "soft-capping"}},
      {[](json& j) { j["attn_logit_softcapping"] = 50.0; }, {"attn_logit_softcapping"}},
      {[](json& j) { j["hidden_activation"] = "gelu"; }, {"hidden_activation", "gelu_pytorch_tanh"}},
      {[](json& j) { j["hidden_act"] = "silu"; }, {"hidden_act", "gelu_pytorch_tanh"}},
      {[](json& j) { j["use_bidirectional_attention"] = true; }, {"use_bidirectional_attention"}},
      {[](json& j) { j["layer_types"] = {"sliding_attention"}; }, {"layer_types", "26"}},
      {[](json& j) { j["layer_types"][3] = "chunked_attention"; }, {"layer_types", "entry 3", "chunked_attention"}},
      {[](json& j) { j["sliding_window"] = 0; }, {"sliding_window", "positive"}},
      {[](json& j) { j["query_pre_attn_scalar"] = 0; }, {"query_pre_attn_scalar", "positive"}},
      {[](json& j) { j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}}; }, {"rope_scaling", "yarn", "linear"}},
      {[](json& j) { j["rope_scaling"] = {{"rope_type", "linear"}}; }, {"linear RoPE", "factor"}},
      {[](json& j) { j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1e6}}; },
       {"rope_parameters", "keyed by layer type"}},
      {[](json& j) { j["rope_parameters"] = {{"sliding_attention", {{"rope_type", "linear"}, {"factor", 2.0}}}}; },
       {"rope_parameters.sliding_attention", "linear", "sliding-window"}},
      {[](json& j) { j["rope_parameters"] = {{"full_attention", {{"rope_theta", 5e5}}}}; },
       {"rope_theta", "disagrees", "rope_parameters.full_attention"}},
      {[](json& j) { j["rope_parameters"] = {{"chunked", json::object()}}; }, {"rope_parameters", "keyed by layer type"}},
      {[](json& j) { j["model_type"] = "gemma3"; }, {"gemma3", "multimodal", "text model", "gemma3_text"}},
  };
  for (size_t i = 0; i < cases.size(); i++) {
    SCOPED_TRACE("case " + std::to_string(i));
    json j = base;
    cases[i].edit(j);
    const std::string msg = test::error_message([&] { parse(j); });
    for (const std::string& n : cases[i].needles) EXPECT_NE(msg.find(n), std::string::npos) << msg << "\nshould mention: " << n;
  }
}

}  // namespace
}  // namespace wick
