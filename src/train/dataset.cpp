#include "train/dataset.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/error.h"

namespace wick {

int64_t Dataset::counted_tokens() const {
  int64_t n = 0;
  for (const Example& e : examples)
    for (size_t t = 1; t < e.labels.size(); t++) n += e.labels[t] != -100;  // labels[0] never counts (shift)
  return n;
}

static std::vector<int32_t> int_array(const nlohmann::json& j, const char* field, int64_t vocab, bool allow_ignore) {
  if (!j.is_array()) throw std::runtime_error(std::string("\"") + field + "\" must be an array of integers");
  std::vector<int32_t> out;
  out.reserve(j.size());
  for (size_t i = 0; i < j.size(); i++) {
    const auto& v = j[i];
    if (!v.is_number_integer())
      throw std::runtime_error(std::string("\"") + field + "\"[" + std::to_string(i) + "] is not an integer");
    const int64_t x = v.get<int64_t>();
    const bool ok = (x >= 0 && (vocab <= 0 || x < vocab)) || (allow_ignore && x == -100);
    if (!ok)
      throw std::runtime_error(std::string("\"") + field + "\"[" + std::to_string(i) + "] = " + std::to_string(x) +
                               " is outside the vocabulary [0, " + std::to_string(vocab) + ")" +
                               (allow_ignore ? " and is not -100" : ""));
    out.push_back(static_cast<int32_t>(x));
  }
  return out;
}

Example parse_pretokenized_line(const std::string& line, int64_t vocab) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error(std::string("invalid JSON: ") + e.what());
  }
  if (!j.is_object()) throw std::runtime_error("expected a JSON object");
  if (!j.contains("input_ids")) throw std::runtime_error("missing \"input_ids\"");
  Example e;
  e.ids = int_array(j["input_ids"], "input_ids", vocab, false);
  if (e.ids.empty()) throw std::runtime_error("\"input_ids\" is empty");
  if (j.contains("labels") && !j["labels"].is_null()) {
    e.labels = int_array(j["labels"], "labels", vocab, true);
    if (e.labels.size() != e.ids.size())
      throw std::runtime_error("\"labels\" has " + std::to_string(e.labels.size()) + " entries, \"input_ids\" has " +
                               std::to_string(e.ids.size()));
  } else {
    e.labels = e.ids;
  }
  return e;
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
                "check the labels / loss masking");
}

Dataset load_pretokenized_jsonl(const std::string& path, const DatasetOptions& opt) {
  std::ifstream f(path);
  if (!f) throw Error("cannot open the dataset", path);
  Dataset d;
  d.path = path;
  std::string line;
  int64_t lineno = 0;
  while (std::getline(f, line)) {
    lineno++;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      Example e = parse_pretokenized_line(line, opt.vocab_size);
      d.truncated += truncate_example(e, opt.max_seq_len);
      d.examples.push_back(std::move(e));
    } catch (const std::runtime_error& err) {
      if (opt.skip_bad_lines) {
        d.skipped++;
        continue;
      }
      throw Error(err.what(), path + ":" + std::to_string(lineno), "fix the line or pass --skip-bad-lines");
    }
  }
  check_dataset(d);
  return d;
}

}  // namespace wick
