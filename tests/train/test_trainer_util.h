// Helpers for the Trainer tests: a tiny random Qwen2 config, random pre-tokenized datasets (JSONL on disk),
// a Trainer run that can be stopped after a given step, metrics.jsonl records and raw file bytes.
#pragma once
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/testutil.h"
#include "core/rng.h"
#include "io/io_testutil.h"
#include "io/safetensors.h"
#include "model/causal_lm.h"
#include "train/checkpoint_dir.h"
#include "train/dataset.h"
#include "train/trainer.h"

namespace wick::test {

// 2 layers, GQA (4 heads / 2 kv heads), untied lm_head: small enough that a step takes milliseconds.
inline ModelConfig tiny_config(int64_t vocab_size = 97) {
  ModelConfig c;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 8;
  c.vocab_size = vocab_size;
  c.max_position_embeddings = 64;
  c.tie_word_embeddings = false;
  return c;
}

// One example: random ids, labels = ids with a masked prefix (a "prompt") of `masked` tokens.
inline Example random_example(Rng& rng, int64_t len, int64_t masked, int64_t vocab) {
  Example e;
  for (int64_t t = 0; t < len; t++) e.ids.push_back(static_cast<int32_t>(rng.below(vocab)));
  e.labels = e.ids;
  for (int64_t t = 0; t < masked && t < len; t++) e.labels[t] = -100;
  return e;
}

// n examples of length in [lo, hi] with a random masked prefix; every example counts >= 1 label.
inline std::vector<Example> random_examples(Rng& rng, int64_t n, int64_t lo, int64_t hi, int64_t vocab) {
  std::vector<Example> out;
  for (int64_t i = 0; i < n; i++) {
    const int64_t len = lo + static_cast<int64_t>(rng.below(hi - lo + 1));
    out.push_back(random_example(rng, len, static_cast<int64_t>(rng.below(len - 1)), vocab));
  }
  return out;
}

inline std::string example_json(const Example& e) {
  return nlohmann::json{{"input_ids", e.ids}, {"labels", e.labels}}.dump();
}

// Writes the examples as pre-tokenized JSONL and loads them back through the real loader.
inline Dataset write_and_load(const std::vector<Example>& ex, const std::string& path, int64_t vocab) {
  std::string text;
  for (const Example& e : ex) text += example_json(e) + "\n";
  write_bytes(path, text);
  DatasetOptions o;
  o.vocab_size = vocab;
  return load_pretokenized_jsonl(path, o);
}

// Runs the trainer; when stop_after >= 0, raises the stop flag once step stop_after is done (0: before the
// first step). Returns run()'s result (false = stopped).
inline bool run_trainer(Trainer& t, int64_t stop_after = -1) {
  std::atomic<bool> stop{stop_after == 0};
  return t.run([&](const StepReport& r) { if (r.step == stop_after) stop.store(true); }, &stop);
}

inline std::vector<nlohmann::json> read_metrics(const std::string& dir) {
  std::vector<nlohmann::json> out;
  std::ifstream f(std::filesystem::path(dir) / "metrics.jsonl");
  std::string line;
  while (std::getline(f, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

// The deterministic fields of a metrics record (drops the timings).
inline nlohmann::json metrics_core(nlohmann::json r) {
  r.erase("tokens_per_s");
  r.erase("elapsed_s");
  return r;
}

inline std::string file_bytes(const std::string& path) { return io::read_file(path); }

// The latest complete checkpoint folder of a run (run/checkpoint-<step>), or run/<none> when there is none.
inline std::string ckpt(const std::string& run) { return latest_checkpoint(run).value_or(run + "/<none>"); }

inline std::string param_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = std::filesystem::path(info.param).filename().string();
  for (char& c : n)
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  return n + "_" + std::to_string(info.index);
}

// Examples of the given lengths with ids in [0, vocab) and about a `masked` fraction of labels -100.
inline Dataset random_dataset(const std::vector<int>& lengths, int64_t vocab, uint64_t seed, float masked) {
  Rng rng(seed);
  Dataset d;
  d.path = "random";
  for (int L : lengths) {
    Example e;
    for (int t = 0; t < L; t++) {
      e.ids.push_back(static_cast<int32_t>(rng.below(vocab)));
      e.labels.push_back(rng.uniform() < masked ? -100 : static_cast<int32_t>(rng.below(vocab)));
    }
    d.examples.push_back(std::move(e));
  }
  return d;
}

}  // namespace wick::test
