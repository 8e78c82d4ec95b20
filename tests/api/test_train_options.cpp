// The training-option table (src/train/train_options.h): every row is reachable by its name and aliases, the
// TRL / PEFT / HF spellings people type are aliases, settings round-trip through run.toml exactly (random
// values, strings with quotes, '#', newlines and non-ASCII), bad values and unknown keys are wick::Errors
// that name the option, and the cross-field rules hold.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "api/train_config_file.h"
#include "train/train_options.h"
#include "wick/wick.h"
#include "core/error.h"
#include "core/rng.h"
#include "io/io_testutil.h"
#include "io/safetensors.h"

namespace fs = std::filesystem;

namespace wick {
namespace {

std::string tmp_file(const std::string& name, const std::string& text) {
  const fs::path p = fs::temp_directory_path() / ("wick_opts_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream(p) << text;
  return p.string();
}

template <class V>
V member_type(V TrainSettings::*);

// A value for the row drawn at random, valid by its rule.
std::string random_value(const OptionRow& row, Rng& rng) {
  const std::string strs[] = {"a \"quoted\" # not a comment", "line1\nline2\ttab", "naïve → ünïcödé", "plain", "back\\slash"};
  if (row.rule.one_of) {
    std::vector<std::string> w;
    std::string s = row.rule.one_of;
    for (size_t a = 0, b; a <= s.size(); a = b + 1) {
      b = s.find('|', a);
      if (b == std::string::npos) b = s.size();
      w.push_back(s.substr(a, b - a));
    }
    return w[rng.below(w.size())];
  }
  return std::visit(
      [&](auto&& f) -> std::string {
        using F = std::decay_t<decltype(f)>;
        if constexpr (std::is_same_v<F, OptionCustom>) {
          return std::to_string(rng.uniform() * 0.9) + "," + std::to_string(rng.uniform() * 0.9);
        } else {
          using V = decltype(member_type(f));
          if constexpr (std::is_same_v<V, std::string>) return strs[rng.below(5)];
          else if constexpr (std::is_same_v<V, bool>) return rng.below(2) ? "true" : "false";
          else if constexpr (std::is_same_v<V, double>) {
            const double lo = std::isfinite(row.rule.lo) ? row.rule.lo : -5;
            const double hi = std::isfinite(row.rule.hi) ? row.rule.hi : lo + 10;
            char b[40];
            std::snprintf(b, sizeof b, "%.17g", lo + (hi - lo) * (0.01 + 0.98 * rng.uniform()));
            return b;
          } else if constexpr (std::is_same_v<V, int64_t>) {
            const int64_t lo = std::isfinite(row.rule.lo) ? static_cast<int64_t>(row.rule.lo) + (row.rule.lo_open ? 1 : 0) : -100;
            return std::to_string(lo + static_cast<int64_t>(rng.below(1000)));
          } else if constexpr (std::is_same_v<V, uint64_t>) return std::to_string(rng.below(1u << 30));
          else return "";  // lists: set below
        }
      },
      row.field);
}

TEST(TrainOptions, EveryRowIsFoundByItsNameFlagsAndAliases) {
  for (const OptionRow& row : train_option_table()) {
    EXPECT_EQ(find_train_option(row.name), &row) << row.name;
    std::string f = option_flags(row);
    for (size_t a = 0, b; a < f.size(); a = b + 1) {
      b = f.find(',', a);
      if (b == std::string::npos) b = f.size();
      std::string name = f.substr(a + 2, b - a - 2);
      if (name.rfind("no-", 0) == 0 && option_is_flag(row)) name = name.substr(3);
      EXPECT_EQ(find_train_option(name), &row) << name;
    }
    EXPECT_GT(std::string(row.help).size(), 10u) << row.name;
  }
}

TEST(TrainOptions, TheNamesOfTrlPeftAndHfAreAliases) {
  const std::vector<std::pair<std::string, std::string>> want = {
      {"lora-r", "rank"}, {"lora_alpha", "alpha"}, {"lora-dropout", "dropout"}, {"target-modules", "targets"},
      {"learning_rate", "lr"}, {"output-dir", "out"}, {"gradient_accumulation_steps", "grad_accum"},
      {"max-seq-length", "max_seq_len"}, {"num_train_epochs", "epochs"}, {"per-device-train-batch-size", "batch_size"}};
  for (const auto& [alias, name] : want) {
    const OptionRow* r = find_train_option(alias);
    ASSERT_NE(r, nullptr) << alias;
    EXPECT_EQ(std::string(r->name), name) << alias;
  }
  EXPECT_EQ(find_train_option("no-such-option"), nullptr);
}

TEST(TrainOptions, DefaultsSatisfyEveryRowRule) {
  TrainSettings s;
  s.model_dir = "m", s.data = "d", s.out_dir = "o";
  EXPECT_NO_THROW(validate_train_settings(s));
  for (const OptionRow& row : train_option_table()) {
    TrainSettings t;
    EXPECT_NO_THROW(set_option(row, t, {option_default_text(row)}, row.name)) << row.name;
  }
}

TEST(TrainOptions, RandomSettingsRoundTripThroughToml) {
  Rng rng(11);
  for (int trial = 0; trial < 20; trial++) {
    TrainSettings s;
    for (const OptionRow& row : train_option_table()) {
      if (std::holds_alternative<std::vector<std::string> TrainSettings::*>(row.field)) {
        std::vector<std::string> v;
        const int n = static_cast<int>(rng.below(4));
        for (int i = 0; i < n; i++) v.push_back(row.repeatable ? "say \"hi\" # " + std::to_string(i) + "\n, ok" : "proj" + std::to_string(i));
        s.*std::get<std::vector<std::string> TrainSettings::*>(row.field) = v;
        continue;
      }
      set_option(row, s, {random_value(row, rng)}, row.name);
    }
    const std::string path = tmp_file("rt.toml", train_settings_toml(s));
    const TrainSettings back = train_settings_from_toml(path);
    for (const OptionRow& row : train_option_table()) {
      EXPECT_EQ(option_text(row, back), option_text(row, s)) << row.name << " in\n" << io::read_file(path);
      if (std::holds_alternative<std::vector<std::string> TrainSettings::*>(row.field))
        EXPECT_EQ(back.*std::get<std::vector<std::string> TrainSettings::*>(row.field),
                  s.*std::get<std::vector<std::string> TrainSettings::*>(row.field)) << row.name;
    }
    fs::remove(path);
  }
}

TEST(TrainOptions, TomlTakesAliasesAndATrainTable) {
  const std::string path = tmp_file("alias.toml", "[train]\nlearning_rate = 5e-5\nlora_r = 4\ntarget-modules = [\"q_proj\", \"v_proj\"]\n"
                                                  "packing = true\nnum_train_epochs = 2\n");
  const TrainSettings s = train_settings_from_toml(path);
  EXPECT_EQ(s.lr, 5e-5);
  EXPECT_EQ(s.r, 4);
  EXPECT_EQ(s.targets, (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_TRUE(s.packing);
  EXPECT_EQ(s.epochs, 2);
  fs::remove(path);
}

// Two keys of one option (its name and an alias, or two aliases) in one file: the same value is fine, different
// values are an error naming the file and both keys (the one read last used to win silently).
TEST(TrainOptions, TomlRefusesTwoKeysOfOneOptionThatDisagree) {
  const std::string same = tmp_file("same.toml", "rank = 8\nlora_r = 8\nlr = 1e-4\nlearning_rate = 0.0001\n"
                                                 "targets = [\"q_proj\", \"v_proj\"]\ntarget_modules = \"q_proj,v_proj\"\n");
  const TrainSettings s = train_settings_from_toml(same);
  EXPECT_EQ(s.r, 8);
  EXPECT_EQ(s.lr, 1e-4);
  struct Case {
    std::string text, key_a, key_b;
  };
  const std::vector<Case> cases = {{"rank = 8\nlora_r = 16\n", "rank", "lora_r"},
                                   {"[train]\nlearning_rate = 1e-4\nlr = 2e-4\n", "learning_rate", "lr"},
                                   {"max-seq-len = 512\nmax_seq_length = 1024\n", "max-seq-len", "max_seq_length"},
                                   {"targets = [\"q_proj\"]\ntarget-modules = [\"v_proj\"]\n", "targets", "target-modules"}};
  for (const Case& c : cases) {
    const std::string path = tmp_file("twice.toml", c.text);
    EXPECT_WICK_ERROR(train_settings_from_toml(path), path, "'" + c.key_a + "'", "'" + c.key_b + "'", "different values");
    fs::remove(path);
  }
  fs::remove(same);
}

// A file may hold options at the top and under [train] (docs/guide.md). Keys above a [train] table used to be
// ignored without a word (rank = 8 there trained r 16); now both places are read, one option in both with
// different values is refused as two keys of one option are, and anything else (another table, a `train` that is
// not one table) is an error naming the file and the key.
TEST(TrainOptions, TomlReadsTheKeysBesideATrainTable) {
  const std::string both = tmp_file("both.toml", "rank = 8\nlearning_rate = 1e-4\n[train]\nlr = 0.0001\nalpha = 4\n");
  const TrainSettings s = train_settings_from_toml(both);
  EXPECT_EQ(s.r, 8);
  EXPECT_EQ(s.lr, 1e-4);
  EXPECT_EQ(s.alpha, 4);
  std::vector<std::string> keys;
  TrainSettings t;
  apply_train_toml(t, both, &keys);
  EXPECT_EQ(keys, (std::vector<std::string>{"lr", "rank", "alpha"}));  // toml++ reads each table's keys sorted
  fs::remove(both);
  struct Case {
    std::string text;
    std::vector<std::string> mentions;
  };
  const std::vector<Case> cases = {
      {"rank = 8\n[train]\nlora_r = 16\n", {"'rank' (8) and 'train.lora_r' (16) name one option, rank, with different values"}},
      {"lr = 1e-4\n[train]\nlr = 2e-4\n", {"'lr' (0.0001) and 'train.lr' (0.0002)"}},
      {"rank = 8\n[train]\nalpha = 4\n[serve]\nport = 8000\n", {"unknown table [serve]", "under [train]"}},
      {"[train]\nrank = 8\n[train.lora]\nr = 4\n", {"unknown table [train.lora]"}},
      {"[train]\nrank = 8\nlearning_rat = 1\n", {"unknown option 'learning_rat'", "at the top of the file or under [train]"}},
      {"train = 5\nrank = 8\n", {"'train' must be a table", "got a value"}},
      {"[[train]]\nrank = 8\n", {"'train' must be a table", "[[train]]"}},
  };
  for (const Case& c : cases) {
    const std::string path = tmp_file("beside.toml", c.text);
    EXPECT_WICK_ERROR(train_settings_from_toml(path), path);
    for (const std::string& m : c.mentions) EXPECT_WICK_ERROR(train_settings_from_toml(path), m);
    fs::remove(path);
  }
}

// Each bad input is a wick::Error whose text names the option (or file and key).
TEST(TrainOptions, BadValuesNameTheOption) {
  struct Case {
    std::string name, value, mentions;
  };
  const std::vector<Case> cases = {{"rank", "0", ">= 1"},          {"rank", "four", "integer"},
                                   {"lr", "-1", "> 0"},            {"dropout", "1", "[0, 1)"},
                                   {"scheduler", "triangle", "cosine"}, {"betas", "0.9", "b1,b2"},
                                   {"seed", "-3", "non-negative"}, {"packing", "maybe", "true or false"},
                                   {"eval_split", "1.5", "[0, 1)"}, {"report_to", "wandb", "tensorboard"}};
  for (const Case& c : cases) {
    TrainSettings s;
    try {
      set_option(*find_train_option(c.name), s, {c.value}, "--" + c.name);
      ADD_FAILURE() << c.name << "=" << c.value << " accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--" + c.name), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(c.mentions), std::string::npos) << e.what();
    }
  }
  const std::string bad_key = tmp_file("bad.toml", "lr = 1e-4\nlearning_rat = 3\n");
  try {
    train_settings_from_toml(bad_key);
    ADD_FAILURE() << "unknown key accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("learning_rat"), std::string::npos) << e.what();
  }
  const std::string bad_syntax = tmp_file("syntax.toml", "lr = = 3\n");
  try {
    train_settings_from_toml(bad_syntax);
    ADD_FAILURE() << "bad TOML accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("syntax.toml:1"), std::string::npos) << e.what();
  }
  fs::remove(bad_key);
  fs::remove(bad_syntax);
}

TEST(TrainOptions, CrossFieldRules) {
  auto base = [] {
    TrainSettings s;
    s.model_dir = "m", s.data = "d", s.out_dir = "o";
    return s;
  };
  struct Case {
    void (*edit)(TrainSettings&);
    std::string mentions;
  };
  const std::vector<Case> cases = {
      {[](TrainSettings& s) { s.model_dir.clear(); }, "--model"},
      {[](TrainSettings& s) { s.eval_data = "e", s.eval_split = 0.1; }, "--eval-split"},
      {[](TrainSettings& s) { s.eval_every = 5; }, "--eval-every"},
      {[](TrainSettings& s) { s.early_stopping_patience = 2; }, "--early-stopping-patience"},
      {[](TrainSettings& s) { s.load_best = true; }, "--load-best"},
      {[](TrainSettings& s) { s.load_best = true, s.eval_split = 0.2, s.eval_every = 3, s.save_every = 4; }, "multiple"},
      {[](TrainSettings& s) { s.sample_every = 3; }, "--sample-prompt"},
      {[](TrainSettings& s) { s.grad_accum = 0; }, "--grad-accum"},
  };
  for (const Case& c : cases) {
    TrainSettings s = base();
    c.edit(s);
    try {
      validate_train_settings(s);
      ADD_FAILURE() << "accepted; expected " << c.mentions;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(c.mentions), std::string::npos) << e.what();
    }
  }
  TrainSettings ok = base();
  ok.load_best = true, ok.eval_split = 0.2, ok.eval_every = 2, ok.save_every = 4;
  EXPECT_NO_THROW(validate_train_settings(ok));
  TrainSettings api = base();
  api.r = 0;
  try {
    validate_train_settings(api, "TrainSettings::");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("TrainSettings::rank"), std::string::npos) << e.what();
  }
}

TEST(TrainOptions, MarkdownListsEveryOptionWithItsDefault) {
  const std::string md = train_options_markdown();
  for (const OptionRow& row : train_option_table()) {
    const std::string flag = option_flags(row).substr(0, option_flags(row).find(','));
    EXPECT_NE(md.find("`" + flag + "`"), std::string::npos) << flag;
    EXPECT_NE(md.find(std::string("### ") + row.group), std::string::npos) << row.group;
  }
  EXPECT_NE(md.find("| `0.0002` |"), std::string::npos) << md;
}

// docs/guide.md's option reference is the table's Markdown, kept in step.
TEST(TrainOptions, GuideHoldsTheGeneratedReference) {
  const fs::path guide = fs::path(WICK_SOURCE_DIR) / "docs" / "guide.md";
  ASSERT_TRUE(fs::exists(guide));
  const std::string g = io::read_file(guide.string());
  EXPECT_NE(g.find(train_options_markdown()), std::string::npos)
      << "docs/guide.md is out of date: regenerate its option reference with `wick train --options-markdown`";
}

}  // namespace
}  // namespace wick
