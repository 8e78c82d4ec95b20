// The one table of training options, in the spirit of mlx-lm's TrainingArgs: each row is a name, its
// aliases, its group, its help, and its validation rule, bound to a member of wick::TrainSettings
// (include/wick/train_settings.h) whose initializer is the default. Everything that names an option reads this table:
//   - `wick train` registers one flag per row (--name with dashes, plus --alias for each alias),
//   - a --config file and the run.toml written into every output folder use the row names as keys,
//   - the public API validates TrainSettings with the same rules (validate_train_settings),
//   - docs/guide.md's option reference is generated from it (`wick train --options-markdown`).
// A new option is a new member of TrainSettings plus a row in train_options.cpp.
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <variant>
#include <vector>

#include "wick/train_settings.h"

namespace wick {

// How a value reads and writes as text (the CLI and TOML both go through text).
struct OptionCustom {
  std::string (*get)(const TrainSettings&);
  void (*set)(TrainSettings&, const std::string&, const std::string& where);
};
using OptionField = std::variant<std::string TrainSettings::*, int64_t TrainSettings::*, uint64_t TrainSettings::*,
                                 double TrainSettings::*, bool TrainSettings::*,
                                 std::vector<std::string> TrainSettings::*, OptionCustom>;

// A number's range (inclusive unless open), or one of a set of words ("a|b|c"); "" allowed when empty_ok.
struct OptionRule {
  double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
  bool lo_open = false, hi_open = false;
  const char* one_of = nullptr;
  bool empty_ok = true;  // for one_of: "" is also accepted
};

struct OptionRow {
  const char* name;     // snake_case; the flag is --name with '_' -> '-'
  const char* aliases;  // more flag names, comma-separated, without dashes ("lora-r,lora_r" style), or ""
  const char* group;    // the purpose it serves, for --help and the guide
  const char* help;
  OptionField field;
  OptionRule rule;
  bool repeatable = false;  // a list whose CLI flag is given once per element (values taken verbatim);
                            // other lists take one comma-separated value
  const char* metavar = nullptr;  // for the help ("N", "FILE", ...); null: from the type
};

const std::vector<OptionRow>& train_option_table();
// The row named name, or whose alias is name ('-' and '_' are the same), or null.
const OptionRow* find_train_option(const std::string& name);

// The flag names of a row for CLI11: "--max-seq-len,--max-seq-length" (bool rows default true: "--no-name").
std::string option_flags(const OptionRow& row);
bool option_is_flag(const OptionRow& row);  // bool rows are flags on the command line
// The value as text (lists comma-joined) and as its default.
std::string option_text(const OptionRow& row, const TrainSettings& s);
std::string option_default_text(const OptionRow& row);
// Sets the row's member from text values (one for scalars; lists: one per element, or one comma-separated
// value). wick::Error names `where` (a flag or "file: key") and what was expected.
void set_option(const OptionRow& row, TrainSettings& s, const std::vector<std::string>& values, const std::string& where);

// How an error names option `name` (a row name, underscores): "--max-steps" for where_prefix "--" (the CLI),
// else where_prefix + name ("TrainSettings::max_steps").
std::string option_where(const std::string& where_prefix, const std::string& name);

// Every row's rule alone (the one source of the per-option rules; validate_train_options in train/trainer.h
// applies them to a TrainOptions too).
void check_option_rules(const TrainSettings& s, const std::string& where_prefix = "--");

// Every row's rule, and the rules that involve two fields (eval file vs split, load_best needs eval and
// checkpoints, ...). where_prefix: "--" for the CLI, "TrainSettings::" for the API.
void validate_train_settings(const TrainSettings& s, const std::string& where_prefix = "--");

// Markdown: a section per group, a row per option (flags, default, help) - the guide's reference.
std::string train_options_markdown();

}  // namespace wick
