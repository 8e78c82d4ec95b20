// The text, prompt-completion and tokens formats, and format detection from a line's keys.
#include <stdexcept>
#include <string>

#include "train/dataset_formats.h"
#include "tokenizer/tokenizer.h"

namespace wick::dataset_detail {

using nlohmann::json;

namespace {

std::string quoted(const char* s) { return std::string("\"") + s + "\""; }

const char* json_kind(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

const std::string& string_field(const json& j, const char* field) {
  if (!j.contains(field)) throw std::runtime_error("missing " + quoted(field));
  const json& v = j.at(field);
  if (!v.is_string()) throw std::runtime_error(quoted(field) + " must be a string, not " + json_kind(v));
  return v.get_ref<const std::string&>();
}

std::vector<int32_t> int_array(const json& j, const char* field, int64_t vocab, bool allow_ignore) {
  if (!j.is_array()) throw std::runtime_error(quoted(field) + " must be an array of integers, not " + json_kind(j));
  std::vector<int32_t> out;
  out.reserve(j.size());
  for (size_t i = 0; i < j.size(); i++) {
    const json& v = j[i];
    if (!v.is_number_integer())
      throw std::runtime_error(quoted(field) + "[" + std::to_string(i) + "] is " + json_kind(v) + ", not an integer");
    const int64_t x = v.get<int64_t>();
    const bool ok = (x >= 0 && (vocab <= 0 || x < vocab)) || (allow_ignore && x == -100);
    if (!ok)
      throw std::runtime_error(quoted(field) + "[" + std::to_string(i) + "] = " + std::to_string(x) +
                               " is outside the vocabulary [0, " + std::to_string(vocab) + ")" +
                               (allow_ignore ? " and is not -100" : ""));
    out.push_back(static_cast<int32_t>(x));
  }
  return out;
}

}  // namespace

DatasetFormat detect_format(const json& j) {
  if (!j.is_object()) throw std::runtime_error(std::string("expected a JSON object, got ") + json_kind(j));
  std::vector<DatasetFormat> found;
  if (j.contains("text")) found.push_back(DatasetFormat::Text);
  if (j.contains("prompt") || j.contains("completion")) found.push_back(DatasetFormat::PromptCompletion);
  if (j.contains("messages")) found.push_back(DatasetFormat::Messages);
  if (j.contains("input_ids")) found.push_back(DatasetFormat::Tokens);
  if (j.contains("conversations")) found.push_back(DatasetFormat::ShareGpt);
  if (j.contains("instruction")) found.push_back(DatasetFormat::Alpaca);
  if (found.empty())
    throw std::runtime_error("no key of a known format: expected \"text\", \"prompt\" + \"completion\", "
                             "\"messages\", \"conversations\" (ShareGPT), \"instruction\" + \"output\" (Alpaca) "
                             "or \"input_ids\"");
  if (found.size() > 1) {
    std::string names;
    for (DatasetFormat f : found) names += std::string(names.empty() ? "" : ", ") + dataset_format_name(f);
    throw std::runtime_error("the keys fit several formats (" + names + "); pass --format to choose one");
  }
  return found[0];
}

void check_vocab(const Example& e, int64_t vocab, const char* what) {
  if (vocab <= 0) return;
  for (size_t i = 0; i < e.ids.size(); i++)
    if (e.ids[i] < 0 || e.ids[i] >= vocab)
      throw std::runtime_error(std::string(what) + " gave token id " + std::to_string(e.ids[i]) + " (position " +
                               std::to_string(i) + "), outside the model's vocabulary [0, " + std::to_string(vocab) +
                               "): the tokenizer does not match the model");
}

// ids = encode(text) + eos; every token counted.
Example text_example(const json& j, const Tokenizer& tok, int32_t eos) {
  Example e;
  e.ids = tok.encode(string_field(j, "text"));
  if (eos >= 0) e.ids.push_back(eos);
  if (e.ids.empty()) throw std::runtime_error("\"text\" is empty (and no eos token is appended)");
  e.labels = e.ids;
  return e;
}

// ids = encode(prompt) + encode(completion) + eos: the prompt tokenized alone, as it is at inference.
// Only the completion and the eos are counted (every token with train_on_inputs).
Example prompt_completion_example(const json& j, const Tokenizer& tok, int32_t eos, bool train_on_inputs) {
  const std::vector<int32_t> p = tok.encode(string_field(j, "prompt"));
  std::vector<int32_t> c = tok.encode(string_field(j, "completion"));
  if (eos >= 0) c.push_back(eos);
  if (c.empty()) throw std::runtime_error("\"completion\" is empty (and no eos token is appended): nothing to learn");
  Example e;
  e.ids = p;
  e.ids.insert(e.ids.end(), c.begin(), c.end());
  if (train_on_inputs) e.labels = e.ids;
  else {
    e.labels.assign(p.size(), -100);
    e.labels.insert(e.labels.end(), c.begin(), c.end());
  }
  return e;
}

Example tokens_example(const json& j, int64_t vocab) {
  if (!j.contains("input_ids")) throw std::runtime_error("missing \"input_ids\"");
  Example e;
  e.ids = int_array(j.at("input_ids"), "input_ids", vocab, false);
  if (e.ids.empty()) throw std::runtime_error("\"input_ids\" is empty");
  if (j.contains("labels") && !j.at("labels").is_null()) {
    e.labels = int_array(j.at("labels"), "labels", vocab, true);
    if (e.labels.size() != e.ids.size())
      throw std::runtime_error("\"labels\" has " + std::to_string(e.labels.size()) + " entries, \"input_ids\" has " +
                               std::to_string(e.ids.size()));
  } else {
    e.labels = e.ids;
  }
  return e;
}

}  // namespace wick::dataset_detail
