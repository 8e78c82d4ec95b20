// Chat-template work per request: `wick serve` and `wick chat` render the model's template for every
// conversation (before prefill, so it adds to time-to-first-token), and a model load parses it once. Rows for
// the built-in Qwen2.5 and Qwen3 templates: parsing the template text, and rendering a 4-message
// conversation and a 64-message one (a long chat history) with the generation prompt.
#include <string>
#include <vector>

#include "bench_util.h"
#include "tokenizer/chat_template.h"

namespace wick::bench {

void register_chat_template_benchmarks(const std::vector<Device>& devices) {
  (void)devices;  // CPU work only
  const std::pair<const char*, ChatTemplateKind> kinds[] = {{"qwen2.5", ChatTemplateKind::Qwen25},
                                                            {"qwen3", ChatTemplateKind::Qwen3}};
  for (const auto& [name, kind] : kinds) {
    benchmark::RegisterBenchmark((std::string("chat_template/parse_") + name + "/cpu").c_str(), [kind = kind](benchmark::State& st) {
          timed_loop(st, Device::cpu(), [&] { benchmark::DoNotOptimize(ChatTemplate::of_kind(kind)); });
        })
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
    for (int n : {4, 64}) {
      benchmark::RegisterBenchmark((std::string("chat_template/render_") + name + "_msgs" + std::to_string(n) + "/cpu").c_str(),
                                   [kind = kind, n](benchmark::State& st) {
            const ChatTemplate t = ChatTemplate::of_kind(kind);
            std::vector<ChatMessage> msgs = {{"system", "You are a helpful assistant."}};
            for (int i = 1; i < n; i++)
              msgs.push_back(i % 2 ? ChatMessage{"user", "Tell me about item " + std::to_string(i) + ", briefly please."}
                                   : ChatMessage{"assistant", "Item " + std::to_string(i) + " is a small thing with a long name."});
            if (msgs.back().role != "user") msgs.push_back({"user", "And then?"});
            timed_loop(st, Device::cpu(), [&] { benchmark::DoNotOptimize(t.render(msgs, true)); });
          })
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

}  // namespace wick::bench
