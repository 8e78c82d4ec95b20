// Chat templates: the Qwen3 renderings transformers produced (tests/fixtures/chat*/chat_template_cases.jsonl),
// the Qwen2.5 strings of docs formats.md §3.3 with the golden ids of §3.5, detection and errors.
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer_testutil.h"

namespace wick::test {
namespace {

namespace fs = std::filesystem;

std::vector<ChatMessage> messages_of(const nlohmann::json& j) {
  std::vector<ChatMessage> m;
  for (const auto& e : j) m.push_back({e.at("role").get<std::string>(), e.at("content").get<std::string>()});
  return m;
}

// A scratch folder under the build tree, emptied first.
fs::path scratch(const std::string& name) {
  const fs::path p = fs::path(WICK_BINARY_DIR) / "test_scratch" / ("chat_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

void write(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f << s;
}

std::string config_with_template(const std::string& tmpl) {
  return nlohmann::json{{"tokenizer_class", "Qwen2Tokenizer"}, {"chat_template", tmpl}}.dump();
}

TEST(ChatTemplate, Qwen3FixtureRenderingsMatchTransformers) {
  const Tokenizer* tok = qwen_tokenizer();
  if (!tok) return;
  const ChatTemplate t = ChatTemplate::from_tokenizer_config(qwen_tokenizer_dir());
  ASSERT_TRUE(t.available());
  EXPECT_EQ(t.kind(), ChatTemplateKind::Qwen3);
  EXPECT_EQ(t.default_system(), "");
  const auto dirs = fixture_dirs("chat", "chat_template_cases.jsonl");
  ASSERT_FALSE(dirs.empty());
  size_t cases = 0;
  for (const auto& dir : dirs) {
    const std::string file = dir + "/chat_template_cases.jsonl";
    for (const auto& [line, c] : read_jsonl(file)) {
      cases++;
      std::optional<bool> thinking;
      if (!c.at("enable_thinking").is_null()) thinking = c.at("enable_thinking").get<bool>();
      const std::string text = t.render(messages_of(c.at("messages")), c.at("add_generation_prompt").get<bool>(), thinking);
      EXPECT_EQ(text, c.at("text").get<std::string>()) << file << ":" << line;
      EXPECT_EQ(tok->encode(text), c.at("ids").get<std::vector<int32_t>>()) << file << ":" << line;
    }
  }
  EXPECT_GE(cases, 19u);
}

// Multi-turn reasoning: only the assistant turn after the last user query keeps its <think> block.
TEST(ChatTemplate, Qwen3StripsThinkingBeforeLastQuery) {
  const ChatTemplate t = ChatTemplate::of_kind(ChatTemplateKind::Qwen3);
  const std::vector<ChatMessage> m = {{"user", "a"},
                                      {"assistant", "<think>\nr1\n</think>\n\nx"},
                                      {"user", "b"},
                                      {"assistant", "<think>\nr2\n</think>\n\ny"}};
  EXPECT_EQ(t.render(m, false),
            "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nx<|im_end|>\n<|im_start|>user\nb<|im_end|>\n"
            "<|im_start|>assistant\n<think>\nr2\n</think>\n\ny<|im_end|>\n");
}

std::vector<int32_t> cat(std::initializer_list<std::vector<int32_t>> parts) {
  std::vector<int32_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// formats.md §3.3 (strings) and §3.5 (ids of the system turn, the role headers and "Hello!").
TEST(ChatTemplate, Qwen25InstructDefaultSystem) {
  const fs::path dir = scratch("qwen25");
  write(dir / "tokenizer_config.json",
        config_with_template("{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + "
                             "'<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. "
                             "You are a helpful assistant.<|im_end|>\\n' }}{%- endif %}..."));
  const ChatTemplate t = ChatTemplate::from_tokenizer_config(dir.string());
  ASSERT_TRUE(t.available());
  EXPECT_EQ(t.kind(), ChatTemplateKind::Qwen25);
  EXPECT_EQ(t.default_system(), "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
  const std::string sys = "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n";
  const std::string text = t.render({{"user", "Hello!"}}, true);
  EXPECT_EQ(text, sys + "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n");
  // Given a system message, no default; later system messages are ordinary turns; enable_thinking is ignored.
  EXPECT_EQ(t.render({{"system", "S"}, {"user", "u"}, {"assistant", "a"}, {"system", "T"}}, false, false),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nu<|im_end|>\n<|im_start|>assistant\na<|im_end|>\n"
            "<|im_start|>system\nT<|im_end|>\n");
  // Assistant content is kept verbatim (no <think> handling in Qwen2.5).
  EXPECT_EQ(t.render({{"user", "u"}, {"assistant", "<think>r</think>a"}}, false),
            sys + "<|im_start|>user\nu<|im_end|>\n<|im_start|>assistant\n<think>r</think>a<|im_end|>\n");

  const Tokenizer* tok = qwen_tokenizer();
  if (!tok) return;
  const std::vector<int32_t> sys_ids = {151644, 8948, 198, 2610, 525, 1207, 16948, 11, 3465, 553, 54364,
                                        14817,  13,   1446, 525, 264, 10950, 17847, 13, 151645, 198};
  EXPECT_EQ(tok->encode(text), cat({sys_ids, {151644, 872, 198}, {9707, 0}, {151645, 198}, {151644, 77091, 198}}));
}

TEST(ChatTemplate, Qwen25BaseDefaultSystem) {
  const fs::path dir = scratch("qwen2base");
  // The Qwen2 / base-model style: the default prompt is "You are a helpful assistant."
  write(dir / "tokenizer_config.json",
        config_with_template("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
                             "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
                             "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
                             "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"));
  const ChatTemplate t = ChatTemplate::from_tokenizer_config((dir / "tokenizer_config.json").string());
  EXPECT_EQ(t.kind(), ChatTemplateKind::Qwen25);
  EXPECT_EQ(t.default_system(), "You are a helpful assistant.");
  EXPECT_EQ(t.render({{"user", "Hi"}}, true),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatTemplate, ChatTemplateJinjaFileIsRead) {
  const Tokenizer* tok = qwen_tokenizer();
  if (!tok) return;
  const fs::path dir = scratch("jinja");
  write(dir / "tokenizer_config.json", R"({"tokenizer_class": "Qwen2Tokenizer"})");
  // The Qwen3 template, moved to chat_template.jinja as newer transformers save it.
  std::ifstream f(qwen_tokenizer_dir() + "/tokenizer_config.json");
  write(dir / "chat_template.jinja", nlohmann::json::parse(f).at("chat_template").get<std::string>());
  EXPECT_EQ(ChatTemplate::from_tokenizer_config(dir.string()).kind(), ChatTemplateKind::Qwen3);
}

TEST(ChatTemplate, MissingOrUnknownTemplateFailsOnlyWhenUsed) {
  const fs::path none = scratch("none");
  write(none / "tokenizer_config.json", R"({"tokenizer_class": "Qwen2Tokenizer"})");
  const ChatTemplate t = ChatTemplate::from_tokenizer_config(none.string());  // no error yet
  EXPECT_FALSE(t.available());
  try {
    t.render({{"user", "x"}}, true);
    ADD_FAILURE() << "render without a template did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no chat_template"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--chat-template"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(ChatTemplate::from_tokenizer_config(scratch("empty").string()).available());  // no config at all

  const fs::path other = scratch("other");
  write(other / "tokenizer_config.json", config_with_template("{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}"));
  const ChatTemplate u = ChatTemplate::from_tokenizer_config(other.string());
  EXPECT_FALSE(u.available());
  try {
    (void)u.kind();
    ADD_FAILURE() << "kind() of an unknown template did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not one wick recognises"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--chat-template qwen2.5"), std::string::npos) << e.what();
  }
  // Forcing a family works whatever the file holds.
  const ChatTemplate forced = ChatTemplate::from_tokenizer_config(other.string(), ChatTemplateKind::Qwen25);
  EXPECT_EQ(forced.default_system(), "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
  EXPECT_EQ(ChatTemplate::from_tokenizer_config(none.string(), ChatTemplateKind::Qwen3).render({{"user", "x"}}, true, false),
            "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");

  const fs::path bad = scratch("bad");
  write(bad / "tokenizer_config.json", "{\"chat_template\": ");
  EXPECT_THROW(ChatTemplate::from_tokenizer_config(bad.string()), Error);
}

TEST(ChatTemplate, RejectsOtherRolesAndEmptyConversations) {
  const ChatTemplate t = ChatTemplate::of_kind(ChatTemplateKind::Qwen3);
  try {
    t.render({{"user", "x"}, {"tool", "{}"}}, true);
    ADD_FAILURE() << "a tool message was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("role \"tool\""), std::string::npos) << e.what();
  }
  EXPECT_THROW(t.render({}, true), Error);
  EXPECT_EQ(parse_chat_template_kind("qwen2.5"), ChatTemplateKind::Qwen25);
  EXPECT_EQ(parse_chat_template_kind("qwen3"), ChatTemplateKind::Qwen3);
  EXPECT_THROW(parse_chat_template_kind("llama3"), Error);
}

}  // namespace
}  // namespace wick::test
