// The four dataset formats with the real Qwen tokenizer: ids and exactly which positions count. Expected ids
// come from Hugging Face (tests/fixtures/tokenizer and chat); the counted positions of a conversation are
// found by scanning its ids for the "<|im_start|>assistant\n" header, not by the loader's method.
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer_testutil.h"
#include "train/dataset.h"

namespace wick::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Qwen ids of the chat control tokens (from the chat fixture's transformers ids).
constexpr int32_t kImStart = 151644, kImEnd = 151645, kAssistant = 77091, kNewline = 198;

fs::path scratch_file(const std::string& name, const std::vector<std::string>& lines) {
  const fs::path dir = fs::path(WICK_BINARY_DIR) / "test_scratch" / "dataset_formats";
  fs::create_directories(dir);
  const fs::path p = dir / name;
  std::ofstream f(p, std::ios::binary);
  for (const auto& l : lines) f << l << "\n";
  return p;
}

// Labels for a rendered conversation: counted from after each "<|im_start|>assistant\n" through the next <|im_end|>.
std::vector<int32_t> assistant_labels(const std::vector<int32_t>& ids) {
  std::vector<int32_t> lab(ids.size(), -100);
  for (size_t i = 0; i + 2 < ids.size(); i++) {
    if (ids[i] != kImStart || ids[i + 1] != kAssistant || ids[i + 2] != kNewline) continue;
    size_t t = i + 3;
    for (; t < ids.size() && ids[t] != kImEnd; t++) lab[t] = ids[t];
    if (t < ids.size()) lab[t] = ids[t];
    i = t;
  }
  return lab;
}

std::vector<json> tokenizer_cases(size_t n) {
  std::vector<json> out;
  for (const auto& [line, c] : read_jsonl(source_dir() + "/tests/fixtures/tokenizer/tokenizer_cases.jsonl")) {
    if (c.at("ids").size() >= 2 && c.at("ids").size() <= 12) out.push_back(c);
    if (out.size() == n) break;
  }
  return out;
}

DatasetOptions opts(DatasetFormat f = DatasetFormat::Auto) {
  DatasetOptions o;
  o.format = f;
  o.eos_id = kImEnd;
  return o;
}

TEST(DatasetFormats, DefaultEosFromTokenizerConfigThenModelConfig) {
  const Tokenizer* tok = qwen_tokenizer();
  if (!tok) return;
  ModelConfig cfg;
  cfg.vocab_size = 151936;
  cfg.eos_token_ids = {151643};
  EXPECT_EQ(default_eos_id(qwen_tokenizer_dir(), *tok, cfg), kImEnd);  // tokenizer_config eos_token <|im_end|>
  const fs::path empty = fs::path(WICK_BINARY_DIR) / "test_scratch" / "dataset_formats" / "no_tokenizer_config";
  fs::create_directories(empty);
  EXPECT_EQ(default_eos_id(empty.string(), *tok, cfg), 151643);  // config.json's eos
  cfg.eos_token_ids.clear();
  EXPECT_EQ(default_eos_id(empty.string(), *tok, cfg), -1);
}

TEST(DatasetFormats, TextCountsEveryTokenAndAppendsEos) {
  const Tokenizer* tok = qwen_tokenizer();
  if (!tok) return;
  const auto cases = tokenizer_cases(4);
  ASSERT_EQ(cases.size(), 4u);
  std::vector<std::string> lines;
  for (const auto& c : cases) lines.push_back(json{{"text", c.at("text")}, {"source", "ignored"}}.dump());
  const Dataset d = load_dataset(scratch_file("text.jsonl", lines).string(), opts(), tok, nullptr);
  EXPECT_EQ(d.format, DatasetFormat::Text);
  ASSERT_EQ(d.examples.size(), cases.size());
  for (size_t i = 0; i < cases.size(); i++) {
    std::vector<int32_t> want = cases[i].at("ids").get<std::vector<int32_t>>();
    want.push_back(kImEnd);
    EXPECT_EQ(d.examples[i].ids, want) << i;
    EXPECT_EQ(d.examples[i].labels, want) << i;
  }
}

TEST(DatasetFormats, PromptCompletionCountsCompletionAndEosOnly) {
  const Tokenizer* tok = qwen_tokenizer();
  if (!tok) return;
  const auto cases = tokenizer_cases(4);
  const std::string line = json{{"prompt", cases[0].at("text")}, {"completion", cases[1].at("text")}}.dump();
  const std::string line2 = json{{"completion", cases[3].at("text")}, {"prompt", cases[2].at("text")}}.dump();
  const Dataset d = load_dataset(scratch_file("pc.jsonl", {line, "", line2}).string(), opts(), tok, nullptr);
  EXPECT_EQ(d.format, DatasetFormat::PromptCompletion);
  ASSERT_EQ(d.examples.size(), 2u);
  for (size_t k = 0; k < 2; k++) {
    const auto p = cases[2 * k].at("ids").get<std::vector<int32_t>>();
    const auto c = cases[2 * k + 1].at("ids").get<std::vector<int32_t>>();
    std::vector<int32_t> ids = p, labels(p.size(), -100);
    ids.insert(ids.end(), c.begin(), c.end());
    ids.push_back(kImEnd);
    labels.insert(labels.end(), c.begin(), c.end());
    labels.push_back(kImEnd);
    EXPECT_EQ(d.examples[k].ids, ids) << k;
    EXPECT_EQ(d.examples[k].labels, labels) << k;
  }
}

// The fixture's full conversations (add_generation_prompt=false) as transformers tokenised them.
TEST(DatasetFormats, MessagesMatchTransformersIdsAndCountAssistantTurns) {
  const Tokenizer* tok = qwen_tokenizer();
  if (!tok) return;
  const ChatTemplate tmpl = ChatTemplate::from_tokenizer_config(qwen_tokenizer_dir());
  std::vector<std::string> lines;
  std::vector<std::vector<int32_t>> want;
  for (const auto& [n, c] : read_jsonl(source_dir() + "/tests/fixtures/chat/chat_template_cases.jsonl")) {
    if (c.at("add_generation_prompt").get<bool>() || !c.at("enable_thinking").is_null()) continue;
    lines.push_back(json{{"messages", c.at("messages")}}.dump());
    want.push_back(c.at("ids").get<std::vector<int32_t>>());
  }
  ASSERT_GE(lines.size(), 3u);
  const Dataset d = load_dataset(scratch_file("chat_fixture.jsonl", lines).string(), opts(), tok, &tmpl);
  EXPECT_EQ(d.format, DatasetFormat::Messages);
  ASSERT_EQ(d.examples.size(), want.size());
  for (size_t i = 0; i < want.size(); i++) {
    EXPECT_EQ(d.examples[i].ids, want[i]) << i;
    const auto lab = assistant_labels(want[i]);
    EXPECT_EQ(d.examples[i].labels, lab) << i;
    // The last token ("\n" after <|im_end|>) is not counted; the <|im_end|> before it is.
    EXPECT_EQ(lab.back(), -100);
    EXPECT_EQ(lab[lab.size() - 2], kImEnd);
  }
}

// Multi-turn, both template families: every assistant turn counted, nothing else; Qwen3's think handling
// (reasoning stripped before the last query, an empty block in the last turn) stays inside the turn.
TEST(DatasetFormats, MessagesMultiTurnBothTemplates) {
  const Tokenizer* tok = qwen_tokenizer();
  if (!tok) return;
  const json conv = json::array({{{"role", "system"}, {"content", "Be brief."}},
                                 {{"role", "user"}, {"content", "Hi there"}},
                                 {{"role", "assistant"}, {"content", "<think>\nsay hi\n</think>\n\nHello!"}},
                                 {{"role", "user"}, {"content", "2+2?"}},
                                 {{"role", "assistant"}, {"content", "4"}},
                                 {{"role", "user"}, {"content", "Thanks"}}});  // ends on a user turn
  const json first_assistant = json::array({{{"role", "assistant"}, {"content", "I speak first."}},
                                            {{"role", "user"}, {"content", "ok"}},
                                            {{"role", "assistant"}, {"content", "Good."}}});
  for (ChatTemplateKind kind : {ChatTemplateKind::Qwen3, ChatTemplateKind::Qwen25}) {
    const ChatTemplate tmpl = ChatTemplate::of_kind(kind);
    const auto path = scratch_file("chat_multi.jsonl", {json{{"messages", conv}}.dump(),
                                                        json{{"messages", first_assistant}}.dump()});
    const Dataset d = load_dataset(path.string(), opts(DatasetFormat::Messages), tok, &tmpl);
    ASSERT_EQ(d.examples.size(), 2u);
    for (size_t i = 0; i < 2; i++) {
      std::vector<ChatMessage> m;
      for (const auto& e : (i == 0 ? conv : first_assistant)) m.push_back({e.at("role").get<std::string>(), e.at("content").get<std::string>()});
      const std::vector<int32_t> ids = tok->encode(tmpl.render(m, false));
      EXPECT_EQ(d.examples[i].ids, ids) << chat_template_kind_name(kind) << " " << i;
      EXPECT_EQ(d.examples[i].labels, assistant_labels(ids)) << chat_template_kind_name(kind) << " " << i;
      int64_t turns = 0;
      for (int32_t l : d.examples[i].labels) turns += l == kImEnd;
      EXPECT_EQ(turns, 2) << chat_template_kind_name(kind) << " " << i;
    }
  }
}

TEST(DatasetFormats, TokensFormatAsBefore) {
  const auto path = scratch_file("tokens.jsonl", {R"({"input_ids": [5, 6, 7], "labels": [-100, 6, 7]})",
                                                  R"({"input_ids": [1, 2]})"});
  DatasetOptions o;
  o.vocab_size = 10;
  const Dataset d = load_dataset(path.string(), o);
  EXPECT_EQ(d.format, DatasetFormat::Tokens);
  ASSERT_EQ(d.examples.size(), 2u);
  EXPECT_EQ(d.examples[0].labels, (std::vector<int32_t>{-100, 6, 7}));
  EXPECT_EQ(d.examples[1].labels, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(d.counted_tokens(), 3);
}

std::vector<ChatMessage> chat_of(const json& list) {
  std::vector<ChatMessage> m;
  for (const auto& e : list) m.push_back({e.at("role").get<std::string>(), e.at("content").get<std::string>()});
  return m;
}

// ShareGPT: the same conversation as messages (human -> user, gpt -> assistant): the template's rendering,
// tokenized whole, with exactly the assistant turns counted.
TEST(DatasetFormats, ShareGptIsAConversation) {
  const Tokenizer* tok = qwen_tokenizer();
  if (!tok) return;
  const ChatTemplate tmpl = ChatTemplate::of_kind(ChatTemplateKind::Qwen25);
  const json conv = json::array({{{"from", "system"}, {"value", "Answer in one word."}},
                                 {{"from", "human"}, {"value", "Colour of the sky?"}},
                                 {{"from", "gpt"}, {"value", "Blue."}},
                                 {{"from", "human"}, {"value", "And grass?"}},
                                 {{"from", "gpt"}, {"value", "Green."}}});
  const json msgs = json::array({{{"role", "system"}, {"content", "Answer in one word."}},
                                 {{"role", "user"}, {"content", "Colour of the sky?"}},
                                 {{"role", "assistant"}, {"content", "Blue."}},
                                 {{"role", "user"}, {"content", "And grass?"}},
                                 {{"role", "assistant"}, {"content", "Green."}}});
  const Dataset d = load_dataset(scratch_file("sharegpt.jsonl", {json{{"conversations", conv}, {"id", 7}}.dump()}).string(),
                                 opts(), tok, &tmpl);
  EXPECT_EQ(d.format, DatasetFormat::ShareGpt);
  ASSERT_EQ(d.examples.size(), 1u);
  const std::vector<int32_t> ids = tok->encode(tmpl.render(chat_of(msgs), false));
  EXPECT_EQ(d.examples[0].ids, ids);
  EXPECT_EQ(d.examples[0].labels, assistant_labels(ids));
  // The first ids of the rendering, spelled out: <|im_start|>system\n...
  EXPECT_EQ(ids[0], kImStart);
  EXPECT_EQ(tok->decode(std::vector<int32_t>(ids.begin(), ids.begin() + 3)), "<|im_start|>system\n");
}

// Alpaca: instruction + "\n\n" + input as the user turn (the instruction alone without input), output as the
// assistant turn, an optional system turn; only the output (and its <|im_end|>) counted.
TEST(DatasetFormats, AlpacaIsOneUserAndOneAssistantTurn) {
  const Tokenizer* tok = qwen_tokenizer();
  if (!tok) return;
  const ChatTemplate tmpl = ChatTemplate::of_kind(ChatTemplateKind::Qwen25);
  const std::vector<std::string> lines = {
      R"({"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"})",
      R"({"instruction": "Name a prime.", "input": "", "output": "7"})",
      R"({"instruction": "Add the numbers.", "output": "5", "input": "2 3", "system": "You are a calculator."})"};
  const std::vector<std::vector<ChatMessage>> want = {
      {{"user", "Translate to French.\n\nGood morning"}, {"assistant", "Bonjour"}},
      {{"user", "Name a prime."}, {"assistant", "7"}},
      {{"system", "You are a calculator."}, {"user", "Add the numbers.\n\n2 3"}, {"assistant", "5"}}};
  const Dataset d = load_dataset(scratch_file("alpaca.jsonl", lines).string(), opts(), tok, &tmpl);
  EXPECT_EQ(d.format, DatasetFormat::Alpaca);
  ASSERT_EQ(d.examples.size(), want.size());
  for (size_t i = 0; i < want.size(); i++) {
    const std::vector<int32_t> ids = tok->encode(tmpl.render(want[i], false));
    EXPECT_EQ(d.examples[i].ids, ids) << i;
    EXPECT_EQ(d.examples[i].labels, assistant_labels(ids)) << i;
  }
  // "Bonjour" + <|im_end|> are the counted tokens of the first example.
  std::vector<int32_t> counted;
  for (int32_t l : d.examples[0].labels)
    if (l != -100) counted.push_back(l);
  std::vector<int32_t> bonjour = tok->encode("Bonjour");
  bonjour.push_back(kImEnd);
  EXPECT_EQ(counted, bonjour);
}

// TRL's conversational prompt-completion: the template over prompt + completion; the completion's assistant
// turn is counted, an assistant turn inside the prompt is context (masked).
TEST(DatasetFormats, ConversationalPromptCompletionCountsTheCompletion) {
  const Tokenizer* tok = qwen_tokenizer();
  if (!tok) return;
  const ChatTemplate tmpl = ChatTemplate::of_kind(ChatTemplateKind::Qwen25);
  const json prompt = json::array({{{"role", "user"}, {"content", "Hi"}},
                                   {{"role", "assistant"}, {"content", "Hello."}},
                                   {{"role", "user"}, {"content", "Capital of France?"}}});
  const json completion = json::array({{{"role", "assistant"}, {"content", "Paris."}}});
  const Dataset d = load_dataset(
      scratch_file("conv_pc.jsonl", {json{{"prompt", prompt}, {"completion", completion}}.dump()}).string(), opts(), tok, &tmpl);
  EXPECT_EQ(d.format, DatasetFormat::PromptCompletion);
  ASSERT_EQ(d.examples.size(), 1u);
  json all = prompt;
  all.push_back(completion[0]);
  const std::vector<int32_t> ids = tok->encode(tmpl.render(chat_of(all), false));
  EXPECT_EQ(d.examples[0].ids, ids);
  std::vector<int32_t> want = assistant_labels(ids);
  // Mask the first assistant turn (inside the prompt): everything up to and including its <|im_end|>.
  size_t first_end = 0;
  while (want[first_end] != kImEnd) first_end++;
  for (size_t t = 0; t <= first_end; t++) want[t] = -100;
  EXPECT_EQ(d.examples[0].labels, want);
  std::vector<int32_t> counted;
  for (int32_t l : want)
    if (l != -100) counted.push_back(l);
  std::vector<int32_t> paris = tok->encode("Paris.");
  paris.push_back(kImEnd);
  EXPECT_EQ(counted, paris);
}

// --train-on-inputs: every token counted, for prompt-completion (text and conversational) and chat formats.
TEST(DatasetFormats, TrainOnInputsCountsEveryToken) {
  const Tokenizer* tok = qwen_tokenizer();
  if (!tok) return;
  const ChatTemplate tmpl = ChatTemplate::of_kind(ChatTemplateKind::Qwen25);
  DatasetOptions o = opts();
  o.train_on_inputs = true;
  const std::vector<std::pair<std::string, std::string>> files = {
      {"pc", R"({"prompt": "Say hi:", "completion": " hi"})"},
      {"msgs", R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})"},
      {"sharegpt", R"({"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]})"},
      {"alpaca", R"({"instruction": "a", "output": "b"})"},
      {"conv_pc", R"({"prompt": [{"role": "user", "content": "a"}], "completion": [{"role": "assistant", "content": "b"}]})"}};
  for (const auto& [name, line] : files) {
    const Dataset d = load_dataset(scratch_file("toi_" + name + ".jsonl", {line}).string(), o, tok, &tmpl);
    ASSERT_EQ(d.examples.size(), 1u) << name;
    EXPECT_EQ(d.examples[0].labels, d.examples[0].ids) << name;
    if (name == "pc") {
      std::vector<int32_t> ids = tok->encode("Say hi:");
      for (int32_t t : tok->encode(" hi")) ids.push_back(t);
      ids.push_back(kImEnd);
      EXPECT_EQ(d.examples[0].ids, ids);
    } else {
      const std::vector<ChatMessage> m = {{"user", "a"}, {"assistant", "b"}};
      EXPECT_EQ(d.examples[0].ids, tok->encode(tmpl.render(m, false))) << name;
    }
  }
}

TEST(DatasetFormats, FormatNames) {
  for (DatasetFormat f : {DatasetFormat::Auto, DatasetFormat::Text, DatasetFormat::PromptCompletion,
                          DatasetFormat::Messages, DatasetFormat::Tokens, DatasetFormat::ShareGpt, DatasetFormat::Alpaca})
    EXPECT_EQ(parse_dataset_format(dataset_format_name(f)), f);
  EXPECT_THROW(parse_dataset_format("chatml"), Error);
}

}  // namespace
}  // namespace wick::test
