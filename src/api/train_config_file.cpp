// run.toml: training settings as a TOML file whose keys are the option table's names (train_options.h).
// `wick train --config FILE` reads one (the command line overrides it), and every run writes its effective
// settings as OUT/run.toml, so `wick train --config OUT/run.toml` repeats the run. Parsed and written with
// toml++ (strings with quotes, '#' and newlines round-trip; CLI11's own config reader cuts values at '#').
#include "api/train_config_file.h"

#include <toml++/toml.h>

#include <map>
#include <sstream>
#include <utility>

#include "core/error.h"
#include "io/safetensors.h"
#include "train/train_options.h"

namespace wick {

namespace {

std::string scalar_text(const toml::node& n, const std::string& where) {
  if (auto v = n.as_string()) return v->get();
  if (auto v = n.as_integer()) return std::to_string(v->get());
  if (auto v = n.as_floating_point()) {
    std::ostringstream o;
    o.precision(17);
    o << v->get();
    return o.str();
  }
  if (auto v = n.as_boolean()) return v->get() ? "true" : "false";
  throw Error("expected a string, number or boolean", where);
}

}  // namespace

void apply_train_toml(TrainSettings& s, const std::string& path, std::vector<std::string>* keys_set) {
  toml::table tbl;
  try {
    tbl = toml::parse(io::read_file(path), path);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    throw Error(std::string(e.description()), path + ":" + std::to_string(b.line) + ":" + std::to_string(b.column),
                "a TOML file of `name = value` lines, as wick train writes into OUT/run.toml");
  }
  // The options are the top-level keys and the keys of a [train] table (docs/guide.md: both places are valid;
  // one file can hold both). A top-level key beside a [train] table (rank = 8 above the [train] line) used to be
  // ignored without a word once the table was there: now both places are read, and one option in both with
  // different values is refused below, as two keys of one option are. A `train` that is not a table
  // (train = 5, [[train]]) was skipped as silently: refused. Any other key, or another table, is an unknown
  // option.
  struct Entry {
    std::string key, label;  // label: how errors name it ("train.lr" when the file uses both places)
    const toml::node* node;
    bool in_train;
  };
  std::vector<Entry> entries;
  const toml::node* train = tbl.get("train");
  if (train && !train->is_table())
    throw Error("'train' must be a table of wick train's options, got " +
                    std::string(train->is_array_of_tables() ? "an array of tables ([[train]])" : "a value"),
                path, "write [train] on a line of its own with the options below it, or the options at the top of the file");
  const toml::table* sub = train ? train->as_table() : nullptr;
  const bool both = sub && tbl.size() > 1;
  for (const auto& [k, node] : tbl)
    if (k.str() != "train") entries.push_back({std::string(k.str()), std::string(k.str()), &node, false});
  if (sub)
    for (const auto& [k, node] : *sub)
      entries.push_back({std::string(k.str()), (both ? "train." : "") + std::string(k.str()), &node, true});
  // Two spellings of one option (rank and lora_r) with different values: which one won depended on the order
  // the keys are read in (toml++ sorts them), so the file's meaning was a coin toss nobody saw. The same value
  // twice is harmless. Option row -> the first key that set it and the value it gave, as text.
  std::map<std::string, std::pair<std::string, std::string>> given;
  for (const Entry& e : entries) {
    const std::string& key = e.label;
    const toml::node& node = *e.node;
    const std::string where = path + ": " + key;
    const OptionRow* row = find_train_option(e.key);
    if (!row && node.is_table())  // [serve] (ignored without a word beside a [train] table), [train.lora]
      throw Error(std::string("unknown table [") + (e.in_train ? "train." : "") + e.key + "]", path,
                  "wick train reads its options at the top of the file and under [train], no other table");
    if (!row)
      throw Error("unknown option '" + key + "'", path,
                  "the keys are wick train's option names, as wick train --help lists them, at the top of the file or "
                  "under [train]");
    std::vector<std::string> values;
    if (auto arr = node.as_array()) {
      for (const auto& v : *arr) values.push_back(scalar_text(v, where));
      if (values.empty() && !std::holds_alternative<std::vector<std::string> TrainSettings::*>(row->field))
        throw Error("expected one value, got an empty list", where);
    } else {
      values.push_back(scalar_text(node, where));
    }
    set_option(*row, s, values, where);
    const std::string text = option_text(*row, s);
    const auto [seen, first] = given.try_emplace(row->name, key, text);
    if (!first && seen->second.second != text)
      throw Error("'" + seen->second.first + "' (" + seen->second.second + ") and '" + key + "' (" + text +
                      ") name one option, " + row->name + ", with different values",
                  path, "keep one of the two keys");
    if (keys_set && first) keys_set->push_back(row->name);
  }
}

TrainSettings train_settings_from_toml(const std::string& path) {
  TrainSettings s;
  apply_train_toml(s, path, nullptr);
  return s;
}

std::string train_settings_toml(const TrainSettings& s) {
  std::string out =
      "# wick train settings. `wick train --config THIS_FILE` repeats the run; flags given on the command line\n"
      "# override the values here. Keys are the option names of `wick train --help` (docs/guide.md).\n";
  for (const OptionRow& row : train_option_table()) {
    toml::table one;
    const std::string name = row.name;
    std::visit(
        [&](auto&& f) {
          using F = std::decay_t<decltype(f)>;
          if constexpr (std::is_same_v<F, OptionCustom>) {
            one.insert(name, f.get(s));
          } else {
            const auto& v = s.*f;
            using V = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<V, std::vector<std::string>>) {
              toml::array a;
              for (const auto& e : v) a.push_back(e);
              one.insert(name, std::move(a));
            } else if constexpr (std::is_same_v<V, uint64_t>) {
              one.insert(name, static_cast<int64_t>(v));
            } else if constexpr (std::is_same_v<V, double>) {
              // The shortest text that reads back exactly (toml++ would print 17 digits: 0.029999999999999999).
              std::string t = option_text(row, s);
              if (t.find_first_of(".eEn") == std::string::npos) t += ".0";
              out += name + " = " + t + "\n";
              return;
            } else {
              one.insert(name, v);
            }
          }
        },
        row.field);
    if (one.empty()) continue;
    std::ostringstream o;
    o << toml::toml_formatter(one, toml::format_flags::none);
    out += o.str() + "\n";
  }
  return out;
}

}  // namespace wick
