// Bad dataset input: every malformed line is an error naming file:line and what is wrong, or is skipped and
// counted with skip_bad_lines; truncation is counted; empty and all-masked datasets fail before training.
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer_testutil.h"
#include "train/dataset.h"

namespace wick::test {
namespace {

namespace fs = std::filesystem;

std::string scratch_file(const std::string& name, const std::vector<std::string>& lines) {
  const fs::path dir = fs::path(WICK_BINARY_DIR) / "test_scratch" / "dataset_errors";
  fs::create_directories(dir);
  const fs::path p = dir / name;
  std::ofstream f(p, std::ios::binary);
  for (const auto& l : lines) f << l << "\n";
  return p.string();
}

// The error's text (what + where + hint), or a failure when nothing was thrown.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no wick::Error";
  return "";
}

DatasetOptions tokens_opts(int64_t vocab = 100) {
  DatasetOptions o;
  o.vocab_size = vocab;
  return o;
}

const std::string kGood = R"({"input_ids": [1, 2, 3], "labels": [-100, 2, 3]})";

// Each bad line, on line 3 after two good ones (and a blank line), gives an error naming file:3 and the reason.
TEST(DatasetErrors, MalformedTokenLinesNameFileLineAndReason) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"({"input_ids": [1, 2, 3)", "invalid JSON"},
      {R"({"input_ids": [1, 3e333]})", "invalid JSON"},  // a number too large for a double (found by fuzz_jsonl)
      {R"([1, 2, 3])", "expected a JSON object"},
      {R"({"ids": [1, 2]})", "no key of a known format"},
      {R"({"input_ids": []})", "\"input_ids\" is empty"},
      {R"({"input_ids": [1, "2"]})", "\"input_ids\"[1] is a string"},
      {R"({"input_ids": [1, 200]})", "\"input_ids\"[1] = 200 is outside the vocabulary [0, 100)"},
      {R"({"input_ids": [1, 2], "labels": [2]})", "\"labels\" has 1 entries"},
      {R"({"input_ids": [1, 2], "labels": [-5, 2]})", "\"labels\"[0] = -5"},
      {R"({"text": "hello"})", "the line is in the text format, but the file is in the tokens format (from line 1)"},
      {R"({"input_ids": [1], "messages": []})", "fit several formats (messages, tokens)"},
  };
  for (size_t i = 0; i < bad.size(); i++) {
    const std::string path = scratch_file("bad" + std::to_string(i) + ".jsonl", {kGood, "", bad[i].first, kGood});
    const std::string msg = error_of([&] { load_dataset(path, tokens_opts()); });
    EXPECT_NE(msg.find(path + ":3"), std::string::npos) << msg;
    EXPECT_NE(msg.find(bad[i].second), std::string::npos) << msg;
    // The same file with skip_bad_lines: the bad line is counted, the good ones kept.
    DatasetOptions o = tokens_opts();
    o.skip_bad_lines = true;
    const Dataset d = load_dataset(path, o);
    EXPECT_EQ(d.skipped, 1) << bad[i].first;
    EXPECT_EQ(d.examples.size(), 2u) << bad[i].first;
  }
}

// --data naming a folder or a missing file: said as such, not "the dataset has no examples".
TEST(DatasetErrors, AFolderOrAMissingPathIsNamed) {
  const fs::path dir = fs::path(scratch_file("probe.jsonl", {})).parent_path();
  std::string msg = error_of([&] { load_dataset(dir.string(), tokens_opts()); });
  EXPECT_NE(msg.find("it is a directory"), std::string::npos) << msg;
  EXPECT_NE(msg.find(dir.string()), std::string::npos) << msg;
  msg = error_of([&] { load_dataset((dir / "missing.jsonl").string(), tokens_opts()); });
  EXPECT_NE(msg.find("cannot open: No such file"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing.jsonl"), std::string::npos) << msg;
}

TEST(DatasetErrors, ForcedFormatChecksEveryLine) {
  const std::string path = scratch_file("forced.jsonl", {kGood, kGood});
  DatasetOptions o = tokens_opts();
  o.format = DatasetFormat::Text;
  // The text format needs a tokenizer: refused before reading, naming the file.
  const std::string msg = error_of([&] { load_dataset(path, o); });
  EXPECT_NE(msg.find("needs the model's tokenizer"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  const Tokenizer* tok = qwen_tokenizer();
  if (!tok) return;
  const std::string msg2 = error_of([&] { load_dataset(path, o, tok); });
  EXPECT_NE(msg2.find(path + ":1: missing \"text\""), std::string::npos) << msg2;
}

TEST(DatasetErrors, MalformedTextLinesNameFileLine) {
  const Tokenizer* tok = qwen_tokenizer();
  if (!tok) return;
  const ChatTemplate tmpl = ChatTemplate::of_kind(ChatTemplateKind::Qwen25);
  const std::string msgs_ok = R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})";
  const std::string pc_ok = R"({"prompt": "a", "completion": "b"})";
  struct Case {
    std::string good, bad, reason;
  };
  const std::vector<Case> cases = {
      {R"({"text": "ok"})", R"({"text": 5})", "\"text\" must be a string, not a number"},
      {R"({"text": "ok"})", "{\"text\": \"\xff\"}", "invalid JSON"},  // not UTF-8
      {pc_ok, R"({"prompt": "a"})", "missing \"completion\""},
      {pc_ok, R"({"prompt": [{"role": "user", "content": "a"}], "completion": "b"})", "conversational"},
      {pc_ok, R"({"prompt": [{"role": "user", "content": "a"}], "completion": [{"role": "user", "content": "b"}]})",
       "no assistant message in \"completion\""},
      {pc_ok, R"({"prompt": [{"role": "user", "content": "a"}], "completion": [{"role": "assistant", "content": 3}]})",
       "\"completion\"[0].content must be a string"},
      {msgs_ok, R"({"messages": []})", "\"messages\" is empty"},
      {msgs_ok, R"({"messages": {"role": "user"}})", "\"messages\" must be an array"},
      {msgs_ok, R"({"messages": [{"role": "tool", "content": "x"}, {"role": "assistant", "content": "y"}]})",
       "\"messages\"[0].role is \"tool\""},
      {msgs_ok, R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant"}]})",
       "\"messages\"[1].content must be a string"},
      {msgs_ok, R"({"messages": [{"role": "user", "content": "x"}]})", "no assistant message"},
      {msgs_ok, R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "a<|im_end|>b"}]})",
       "contains the text <|im_end|>"},
      // A newline opening the assistant turn merges with the header's "\n" when tokenized whole.
      {msgs_ok, R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "\nHello"}]})",
       "straddles a turn boundary"},
  };
  const std::string sg_ok = R"({"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]})";
  const std::string al_ok = R"({"instruction": "a", "input": "", "output": "b"})";
  const std::vector<Case> more = {
      {sg_ok, R"({"conversations": [{"from": "human", "value": "a"}, {"from": "bot", "value": "b"}]})",
       "\"conversations\"[1].from is \"bot\"; expected human, gpt or system"},
      {sg_ok, R"({"conversations": [{"from": "human", "value": "a"}, {"from": "gpt"}]})",
       "\"conversations\"[1].value must be a string"},
      {sg_ok, R"({"conversations": "hi"})", "\"conversations\" must be an array"},
      {sg_ok, R"({"conversations": [{"from": "human", "value": "a"}]})", "no assistant message"},
      {sg_ok, R"({"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "x<|im_end|>"}]})",
       "\"conversations\"[1].value contains the text <|im_end|>"},
      {al_ok, R"({"instruction": "a", "input": ""})", "missing \"output\""},
      {al_ok, R"({"instruction": "a", "output": 5})", "\"output\" must be a string"},
      {al_ok, R"({"instruction": ["a"], "output": "b"})", "\"instruction\" must be a string"},
      {al_ok, R"({"instruction": "a", "output": "<|im_start|>"})", "\"output\" contains the text <|im_start|>"},
      {al_ok, R"({"instruction": "", "output": "b"})", "\"instruction\" and \"input\" are both empty"},
  };
  std::vector<Case> all = cases;
  all.insert(all.end(), more.begin(), more.end());
  DatasetOptions o;
  o.eos_id = tok->token_id("<|im_end|>");
  for (size_t i = 0; i < all.size(); i++) {
    const std::string path = scratch_file("text_bad" + std::to_string(i) + ".jsonl", {all[i].good, all[i].bad});
    const std::string msg = error_of([&] { load_dataset(path, o, tok, &tmpl); });
    EXPECT_NE(msg.find(path + ":2"), std::string::npos) << msg;
    EXPECT_NE(msg.find(all[i].reason), std::string::npos) << msg;
  }
  // Model vocabulary smaller than the tokenizer's ids.
  DatasetOptions small = o;
  small.vocab_size = 1000;
  const std::string path = scratch_file("text_vocab.jsonl", {R"({"text": "Hello world"})"});
  const std::string msg = error_of([&] { load_dataset(path, small, tok); });
  EXPECT_NE(msg.find(path + ":1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("outside the model's vocabulary [0, 1000)"), std::string::npos) << msg;
}

// Qwen3 writes a <think> block into an assistant turn only when it is last: two assistant messages in a
// row after the last user message render differently alone and together, which must be refused.
TEST(DatasetErrors, Qwen3ConsecutiveAssistantTurnsRefused) {
  const Tokenizer* tok = qwen_tokenizer();
  if (!tok) return;
  const ChatTemplate tmpl = ChatTemplate::of_kind(ChatTemplateKind::Qwen3);
  const std::string path = scratch_file(
      "qwen3_consecutive.jsonl",
      {R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}]})"});
  const std::string msg = error_of([&] { load_dataset(path, DatasetOptions{}, tok, &tmpl); });
  EXPECT_NE(msg.find(path + ":1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("renders the messages before \"messages\"[2]"), std::string::npos) << msg;
}

TEST(DatasetErrors, TruncationIsCounted) {
  const std::string path = scratch_file("trunc.jsonl", {R"({"input_ids": [1, 2, 3]})", R"({"input_ids": [1, 2, 3, 4, 5, 6]})",
                                                        R"({"input_ids": [9, 8, 7, 6, 5, 4, 3, 2, 1], "labels": [-100, -100, -100, -100, -100, 4, 3, 2, 1]})"});
  DatasetOptions o = tokens_opts();
  o.max_seq_len = 4;
  const Dataset d = load_dataset(path, o);
  EXPECT_EQ(d.truncated, 2);
  ASSERT_EQ(d.examples.size(), 3u);
  EXPECT_EQ(d.examples[0].ids.size(), 3u);
  EXPECT_EQ(d.examples[1].ids, (std::vector<int32_t>{1, 2, 3, 4}));
  EXPECT_EQ(d.examples[2].labels, (std::vector<int32_t>{-100, -100, -100, -100}));
  EXPECT_EQ(d.counted_tokens(), 2 + 3);
}

TEST(DatasetErrors, EmptyAndAllMaskedDatasetsFail) {
  const std::string empty = scratch_file("empty.jsonl", {});
  EXPECT_NE(error_of([&] { load_dataset(empty, tokens_opts()); }).find("no examples"), std::string::npos);
  const std::string blank = scratch_file("blank.jsonl", {"", "  ", ""});
  EXPECT_NE(error_of([&] { load_dataset(blank, tokens_opts()); }).find("no examples"), std::string::npos);
  // Every line bad and skipped: still no examples.
  DatasetOptions skip = tokens_opts();
  skip.skip_bad_lines = true;
  const std::string all_bad = scratch_file("all_bad.jsonl", {"{", "[]"});
  EXPECT_NE(error_of([&] { load_dataset(all_bad, skip); }).find("no examples"), std::string::npos);
  // labels[0] never counts (it has no prediction), so [x, -100] counts nothing either.
  const std::string masked = scratch_file("masked.jsonl", {R"({"input_ids": [1, 2], "labels": [-100, -100]})",
                                                           R"({"input_ids": [3, 4], "labels": [3, -100]})"});
  const std::string msg = error_of([&] { load_dataset(masked, tokens_opts()); });
  EXPECT_NE(msg.find("every label of the dataset is masked"), std::string::npos) << msg;
  EXPECT_NE(msg.find(masked), std::string::npos) << msg;
  const std::string none = (fs::path(WICK_BINARY_DIR) / "test_scratch" / "dataset_errors" / "none.jsonl").string();
  EXPECT_NE(error_of([&] { load_dataset(none, tokens_opts()); }).find(none + ": cannot open"), std::string::npos);
}

}  // namespace
}  // namespace wick::test
