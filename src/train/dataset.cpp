// The JSONL loader: format per file, per-line errors with file:line, truncation, checks, eval split.
#include "train/dataset.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <optional>
#include <stdexcept>

#include "core/error.h"
#include "core/input_file.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "model/generation_config.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/dataset_formats.h"

namespace wick {

using nlohmann::json;
namespace fs = std::filesystem;

DatasetFormat parse_dataset_format(std::string_view name) {
  if (name == "auto" || name.empty()) return DatasetFormat::Auto;
  if (name == "text") return DatasetFormat::Text;
  if (name == "prompt-completion") return DatasetFormat::PromptCompletion;
  if (name == "messages") return DatasetFormat::Messages;
  if (name == "tokens") return DatasetFormat::Tokens;
  if (name == "sharegpt") return DatasetFormat::ShareGpt;
  if (name == "alpaca") return DatasetFormat::Alpaca;
  throw Error("unknown dataset format \"" + std::string(name) + "\"", "--format",
              "use auto, text, prompt-completion, messages, sharegpt, alpaca or tokens");
}

const char* dataset_format_name(DatasetFormat f) {
  switch (f) {
    case DatasetFormat::Auto: return "auto";
    case DatasetFormat::Text: return "text";
    case DatasetFormat::PromptCompletion: return "prompt-completion";
    case DatasetFormat::Messages: return "messages";
    case DatasetFormat::Tokens: return "tokens";
    case DatasetFormat::ShareGpt: return "sharegpt";
    case DatasetFormat::Alpaca: return "alpaca";
  }
  return "?";
}

int64_t Dataset::counted_tokens() const {
  int64_t n = 0;
  for (const Example& e : examples)
    for (size_t t = 1; t < e.labels.size(); t++) n += e.labels[t] != -100;  // labels[0] never counts (shift)
  return n;
}

namespace {

// The reason alone: a wick::Error from below (tokenizer, template) without its own where/hint.
std::string reason(const std::exception& e) {
  if (const auto* we = dynamic_cast<const Error*>(&e)) return we->what_msg();
  return e.what();
}

json parse_json(const std::string& line) {
  try {
    return json::parse(line);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number too large for a double
    throw std::runtime_error(std::string("invalid JSON: ") + e.what());
  }
}

// What a format needs from the caller; a wick::Error naming the file when it is missing.
void require_inputs(DatasetFormat f, const Tokenizer* tok, const ChatTemplate* tmpl, const std::string& where) {
  if (f == DatasetFormat::Tokens || f == DatasetFormat::Auto) return;
  if (!tok)
    throw Error(std::string("the ") + dataset_format_name(f) + " format needs the model's tokenizer, and there is none",
                where, "put tokenizer.json in the model folder, or give pre-tokenized {\"input_ids\": [...]} lines");
  const bool chat = f == DatasetFormat::Messages || f == DatasetFormat::ShareGpt || f == DatasetFormat::Alpaca;
  if (chat && (!tmpl || !tmpl->available())) {
    if (tmpl) tmpl->kind();  // throws the template's own reason
    throw Error(std::string("the ") + dataset_format_name(f) + " format needs the model's chat template, and there is none",
                where, "pass --chat-template qwen2.5 or qwen3");
  }
}

// chat: the template's rules for the chat formats (non-null whenever tok and tmpl are), one per dataset.
Example example_of(const json& j, DatasetFormat f, const DatasetOptions& opt, const Tokenizer* tok,
                   const ChatTemplate* tmpl, dataset_detail::ChatRules* chat) {
  using namespace dataset_detail;
  require_inputs(f, tok, tmpl, "");
  Example e;
  switch (f) {
    case DatasetFormat::Text: e = text_example(j, *tok, opt.eos_id); break;
    case DatasetFormat::PromptCompletion:
      if (is_conversational_prompt(j)) {
        require_inputs(DatasetFormat::Messages, tok, tmpl, "");
        e = conversational_prompt_completion_example(j, *chat, opt.train_on_inputs);
      } else {
        e = prompt_completion_example(j, *tok, opt.eos_id, opt.train_on_inputs);
      }
      break;
    case DatasetFormat::Messages: e = messages_example(j, *chat, opt.train_on_inputs); break;
    case DatasetFormat::ShareGpt: e = sharegpt_example(j, *chat, opt.train_on_inputs); break;
    case DatasetFormat::Alpaca: e = alpaca_example(j, *chat, opt.train_on_inputs); break;
    case DatasetFormat::Tokens: return tokens_example(j, opt.vocab_size);
    case DatasetFormat::Auto: WICK_CHECK(false, "format not resolved");
  }
  check_vocab(e, opt.vocab_size, "the tokenizer");
  return e;
}

}  // namespace

Example parse_dataset_line(const std::string& line, DatasetFormat format, const DatasetOptions& opt,
                           const Tokenizer* tok, const ChatTemplate* tmpl, DatasetFormat* detected) {
  const json j = parse_json(line);
  if (!j.is_object()) throw std::runtime_error("expected a JSON object");
  const DatasetFormat f = format == DatasetFormat::Auto ? dataset_detail::detect_format(j) : format;
  if (detected) *detected = f;
  std::optional<dataset_detail::ChatRules> chat;
  if (tok && tmpl) chat.emplace(*tok, *tmpl);
  return example_of(j, f, opt, tok, tmpl, chat ? &*chat : nullptr);
}

Example parse_pretokenized_line(const std::string& line, int64_t vocab) {
  DatasetOptions opt;
  opt.vocab_size = vocab;
  return parse_dataset_line(line, DatasetFormat::Tokens, opt, nullptr, nullptr);
}

bool truncate_example(Example& e, int64_t max_seq_len) {
  if (max_seq_len <= 0 || static_cast<int64_t>(e.ids.size()) <= max_seq_len) return false;
  e.ids.resize(max_seq_len);
  e.labels.resize(max_seq_len);
  return true;
}

void check_dataset(const Dataset& d) {
  if (d.examples.empty()) throw Error("the dataset has no examples", d.path, "check the file is not empty");
  if (d.counted_tokens() == 0)
    throw Error("every label of the dataset is masked (-100): there is nothing to learn", d.path,
                "check the labels / loss masking (a prompt-completion or chat example needs a completion or "
                "an assistant turn of more than the first token)");
}

Dataset load_dataset(const std::string& path, const DatasetOptions& opt, const Tokenizer* tok,
                     const ChatTemplate* tmpl) {
  std::ifstream f = open_input_file(path);
  Dataset d;
  d.path = path;
  d.format = opt.format;
  require_inputs(d.format, tok, tmpl, path);
  std::optional<dataset_detail::ChatRules> chat;  // the template probed once for the whole file
  if (tok && tmpl) chat.emplace(*tok, *tmpl);
  int64_t format_line = 0;  // the line the format was detected from
  std::string line;
  int64_t lineno = 0;
  while (std::getline(f, line)) {
    lineno++;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(lineno);
    json j;
    DatasetFormat lf = d.format;
    try {
      j = parse_json(line);
      if (opt.format == DatasetFormat::Auto) {
        lf = dataset_detail::detect_format(j);
        if (d.format != DatasetFormat::Auto && lf != d.format)
          throw std::runtime_error(std::string("the line is in the ") + dataset_format_name(lf) +
                                   " format, but the file is in the " + dataset_format_name(d.format) +
                                   " format (from line " + std::to_string(format_line) + ")");
      } else if (!j.is_object()) {
        throw std::runtime_error("expected a JSON object");
      }
    } catch (const std::runtime_error& err) {
      if (opt.skip_bad_lines) {
        d.skipped++;
        continue;
      }
      throw Error(reason(err), where, "fix the line or pass --skip-bad-lines");
    }
    if (d.format == DatasetFormat::Auto) {  // the first good line decides
      require_inputs(lf, tok, tmpl, where);
      d.format = lf;
      format_line = lineno;
    }
    try {
      Example e = example_of(j, d.format, opt, tok, tmpl, chat ? &*chat : nullptr);
      d.truncated += truncate_example(e, opt.max_seq_len);
      d.examples.push_back(std::move(e));
    } catch (const std::runtime_error& err) {
      if (opt.skip_bad_lines) {
        d.skipped++;
        continue;
      }
      throw Error(reason(err), where, "fix the line or pass --skip-bad-lines");
    }
  }
  check_dataset(d);
  return d;
}

Dataset load_pretokenized_jsonl(const std::string& path, const DatasetOptions& opt) {
  DatasetOptions o = opt;
  o.format = DatasetFormat::Tokens;
  return load_dataset(path, o, nullptr, nullptr);
}

int32_t default_eos_id(const std::string& model_dir, const Tokenizer& tok, const ModelConfig& cfg) {
  const fs::path tc = fs::path(model_dir) / "tokenizer_config.json";
  if (fs::exists(tc)) {
    json j;
    try {
      j = json::parse(io::read_file(tc.string()));
    } catch (const json::exception& e) {
      throw Error(std::string("not valid JSON: ") + e.what(), tc.string());
    }
    if (j.is_object() && j.contains("eos_token")) {
      const json& t = j.at("eos_token");
      std::string content;
      if (t.is_string()) content = t.get<std::string>();
      else if (t.is_object() && t.contains("content") && t.at("content").is_string()) content = t.at("content").get<std::string>();
      if (!content.empty()) {
        const int32_t id = tok.token_id(content);
        if (id < 0)
          throw Error("eos_token \"" + content + "\" is not a token of the tokenizer", tc.string() + ": eos_token");
        return id;
      }
    }
  }
  for (int64_t id : load_generation_eos(model_dir, cfg))
    if (id >= 0 && id < tok.vocab_size()) return static_cast<int32_t>(id);
  return -1;
}

Dataset split_eval(Dataset& d, double fraction, uint64_t seed) {
  const int64_t n = static_cast<int64_t>(d.examples.size());
  if (!(fraction > 0.0 && fraction < 1.0))
    throw Error("the evaluation fraction must be in (0, 1), got " + std::to_string(fraction), "--eval-split");
  if (n < 2)
    throw Error("cannot split an evaluation set from " + std::to_string(n) + " example(s)", d.path,
                "--eval-split needs at least 2 examples; or pass --eval FILE");
  const int64_t k = std::clamp<int64_t>(std::llround(fraction * static_cast<double>(n)), 1, n - 1);
  // A seeded permutation; its first k indices are the evaluation set.
  std::vector<int64_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  Rng rng(seed, 0xe7a15e7ULL);
  for (int64_t i = n - 1; i > 0; i--) std::swap(perm[i], perm[rng.below(static_cast<uint64_t>(i + 1))]);
  std::vector<char> is_eval(n, 0);
  for (int64_t i = 0; i < k; i++) is_eval[perm[i]] = 1;
  Dataset ev;
  ev.path = d.path + " (eval split)";
  ev.format = d.format;
  std::vector<Example> train;
  for (int64_t i = 0; i < n; i++) (is_eval[i] ? ev.examples : train).push_back(std::move(d.examples[i]));
  d.examples = std::move(train);
  check_dataset(d);
  check_dataset(ev);
  return ev;
}

}  // namespace wick
