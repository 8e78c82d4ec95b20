// dataset_detail::ChatRules: what the chat formats read of the template and tokenizer is worked out once per
// dataset (one template probe for many lines), and gives each line what per-line work gave it.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "core/rng.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer_testutil.h"
#include "train/dataset_formats.h"

namespace wick::test {
namespace {

using nlohmann::json;
using dataset_detail::ChatRules;

// A random conversation of 1 to 3 user/assistant exchanges, with an optional system turn.
json random_conversation(Rng& rng) {
  static const std::vector<std::string> words = {"sky", "blue", "grass", "green", "tea", "is", "the", "why", "ok",
                                                 "answer", "short", "river", "stone", "Paris", "42", "yes"};
  auto sentence = [&] {
    std::string s;
    const uint32_t n = 1 + rng.next_u32() % 6;
    for (uint32_t i = 0; i < n; i++) s += (i ? " " : "") + words[rng.next_u32() % words.size()];
    return s + ".";
  };
  json m = json::array();
  if (rng.next_u32() % 2) m.push_back({{"role", "system"}, {"content", sentence()}});
  const uint32_t turns = 1 + rng.next_u32() % 3;
  for (uint32_t t = 0; t < turns; t++) {
    m.push_back({{"role", "user"}, {"content", sentence()}});
    m.push_back({{"role", "assistant"}, {"content", sentence()}});
  }
  return json{{"messages", m}};
}

TEST(ChatRules, OneProbeServesEveryLineWithTheSameResult) {
  const Tokenizer* tok = qwen_tokenizer();
  if (!tok) return;
  for (const ChatTemplateKind kind : {ChatTemplateKind::Qwen25, ChatTemplateKind::Qwen3}) {
    const ChatTemplate tmpl = ChatTemplate::of_kind(kind);
    Rng rng(7 + static_cast<int>(kind));
    ChatRules shared(*tok, tmpl);
    // The built-in templates have no {% generation %} blocks: the turns are found by the probe.
    ASSERT_FALSE(shared.generation_blocks());
    int64_t counted = 0;
    for (int line = 0; line < 12; line++) {
      const json j = random_conversation(rng);
      ChatRules fresh(*tok, tmpl);  // what every line used to do: probe the template itself
      const Example a = dataset_detail::messages_example(j, shared, false);
      const Example b = dataset_detail::messages_example(j, fresh, false);
      EXPECT_EQ(a.ids, b.ids) << j.dump();
      EXPECT_EQ(a.labels, b.labels) << j.dump();
      EXPECT_EQ(fresh.probes(), 1);
      for (int32_t l : a.labels) counted += l != -100;
    }
    EXPECT_EQ(shared.probes(), 1) << "12 lines, one probe of the template";
    EXPECT_GT(counted, 12) << "the assistant turns are counted";
    // The special-token rule still holds per line with the kept token list: an assistant message holding
    // <|im_end|> is refused, on every line that has one.
    json bad = random_conversation(rng);
    bad["messages"].back()["content"] = "fine<|im_end|>";
    for (int k = 0; k < 2; k++) {
      try {
        dataset_detail::messages_example(bad, shared, false);
        ADD_FAILURE() << "a control token's text in an assistant message was accepted";
      } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("<|im_end|>"), std::string::npos) << e.what();
      }
    }
    EXPECT_EQ(shared.probes(), 1);
  }
}

}  // namespace
}  // namespace wick::test
