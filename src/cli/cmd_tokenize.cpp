// wick tokenize: text -> token ids with a model's tokenizer.json, as JSON. --jsonl maps {"text": ...} lines to
// {"ids": [...]} lines; --bench times encoding instead (the same measure as scripts/bench_tokenizer.py).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/hub_cache.h"
#include "core/input_file.h"
#include "cli/commands.h"
#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace wick::cli {

namespace {

struct TokenizeArgs {
  std::string model, tokenizer, text, jsonl;
  bool bench = false;
  double bench_mb = 1.0;
};

// The "text" of every line of a JSONL file; a bad line is an error naming the file and line.
std::vector<std::string> read_texts(const std::string& path) {
  std::ifstream f = open_input_file(path);
  std::vector<std::string> texts;
  std::string line;
  for (int n = 1; std::getline(f, line); n++) {
    const std::string where = path + ":" + std::to_string(n);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw Error(std::string("not a JSON object: ") + e.what(), where, "each line must be {\"text\": \"...\"}");
    }
    if (!j.is_object() || !j.contains("text") || !j.at("text").is_string())
      throw Error("expected an object with a string field \"text\"", where, "each line must be {\"text\": \"...\"}");
    texts.push_back(j.at("text").get<std::string>());
  }
  return texts;
}

void bench(const Tokenizer& tok, const std::vector<std::string>& texts, double mb) {
  // The texts joined by '\n', repeated whole until at least mb * 1e6 bytes (scripts/bench_tokenizer.py builds
  // the same string).
  std::string one;
  for (size_t i = 0; i < texts.size(); i++) one += (i ? "\n" : "") + texts[i];
  if (one.empty()) throw Error("nothing to encode", "--bench");
  std::string big;
  while (static_cast<double>(big.size()) < mb * 1e6) big += one;
  using clock = std::chrono::steady_clock;
  auto time_one = [&](size_t* n_tokens) {
    const auto t0 = clock::now();
    *n_tokens = tok.encode(big).size();
    return std::chrono::duration<double>(clock::now() - t0).count();
  };
  size_t n_tokens = 0;
  const double cold = time_one(&n_tokens);  // the word cache starts empty
  double best = cold, total = 0;
  int runs = 0;
  while (runs < 5 || (total < 2.0 && runs < 50)) {
    const double t = time_one(&n_tokens);
    best = std::min(best, t);
    total += t;
    runs++;
  }
  nlohmann::json out = {{"impl", "wick"},
                        {"mb_per_s", big.size() / 1e6 / best},
                        {"mb_per_s_cold", big.size() / 1e6 / cold},
                        {"bytes", big.size()},
                        {"tokens", n_tokens},
                        {"runs", runs}};
  std::printf("%s\n", out.dump().c_str());
}

void run(const TokenizeArgs& a) {
  const Tokenizer tok = a.model.empty() ? Tokenizer::from_file(a.tokenizer) : Tokenizer::from_model_dir(a.model);
  if (a.bench) {
    bench(tok, a.jsonl.empty() ? std::vector<std::string>{a.text} : read_texts(a.jsonl), a.bench_mb);
    return;
  }
  if (a.jsonl.empty()) {
    std::printf("%s\n", nlohmann::json(tok.encode(a.text)).dump().c_str());
    return;
  }
  // Each line is read, checked and encoded before anything is printed, so a bad line leaves no partial output.
  std::string out;
  for (const std::string& t : read_texts(a.jsonl)) out += nlohmann::json{{"ids", tok.encode(t)}}.dump() + "\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
}

}  // namespace

void register_tokenize(CLI::App& app) {
  auto a = std::make_shared<TokenizeArgs>();
  auto* cmd = app.add_subcommand("tokenize", "Encode text to token ids (JSON) with a model's tokenizer.json");
  auto* model = cmd->add_option("--model", a->model, "Model folder holding tokenizer.json, or a Hub id in the local Hugging Face cache");
  auto revision = std::make_shared<std::string>();
  cmd->add_option("--revision", *revision, "with a Hub id: the branch, tag or commit (default main)");
  auto* file = cmd->add_option("--tokenizer", a->tokenizer, "A tokenizer.json file")->check(CLI::ExistingFile);
  model->excludes(file);
  auto* text = cmd->add_option("--text", a->text, "Text to encode; prints [ids]");
  auto* jsonl = cmd->add_option("--jsonl", a->jsonl, "JSONL file of {\"text\": ...} lines; prints one {\"ids\": [...]} line each")
                    ->check(CLI::ExistingFile);
  text->excludes(jsonl);
  cmd->add_flag("--bench", a->bench, "Time encoding instead: the texts joined by newlines, repeated to --bench-mb MB; prints JSON");
  cmd->add_option("--bench-mb", a->bench_mb, "Size of the benchmark text in MB (default 1)")->check(CLI::PositiveNumber);
  cmd->callback([a, model, file, text, jsonl, revision] {
    if (given(model) + given(file) != 1) throw Error("give one of --model DIR or --tokenizer FILE", "wick tokenize");
    if (model->count()) a->model = resolve_model(a->model, *revision, "tokenizer.json", "--model").path;
    if (given(text) + given(jsonl) != 1) throw Error("give one of --text T or --jsonl FILE", "wick tokenize");
    run(*a);
  });
}

}  // namespace wick::cli
