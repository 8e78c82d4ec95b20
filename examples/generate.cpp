// Generate with a Hugging Face model folder, optionally through a LoRA adapter, streaming the text.
//   generate MODEL_DIR PROMPT [ADAPTER_DIR]
// PROMPT is sent through the chat template when the model has one; "ids:1,2,3" gives token ids instead
// (for folders without a tokenizer), and the generated ids are printed.
#include <wick/wick.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL_DIR PROMPT|ids:1,2,3 [ADAPTER_DIR]\n", argv[0]);
    return 2;
  }
  try {
    wick::LoadSettings load;
    if (argc > 3) load.adapter = argv[3];
    wick::Model model(argv[1], load);
    const wick::ModelInfo info = model.info();
    std::fprintf(stderr, "%s: %.1fM parameters on %s (%s)%s%s\n", info.dir.c_str(), info.parameters / 1e6,
                 info.device.c_str(), info.dtype.c_str(), info.adapter.empty() ? "" : ", adapter ", info.adapter.c_str());

    wick::GenerateSettings settings;
    settings.max_new_tokens = 32;
    auto print = [](const std::string& piece, int) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      return true;  // false would stop here
    };
    const std::string prompt = argv[2];
    wick::Generation g;
    if (prompt.rfind("ids:", 0) == 0) {
      std::vector<int32_t> ids;
      std::stringstream ss(prompt.substr(4));
      for (std::string t; std::getline(ss, t, ',');) ids.push_back(static_cast<int32_t>(std::stol(t)));
      g = wick::generate_ids(model, ids, settings);
      for (size_t i = 0; i < g.ids.size(); i++) std::printf("%s%d", i ? "," : "", g.ids[i]);
    } else if (!info.chat_template.empty()) {
      g = wick::generate(model, std::vector<wick::Message>{{"user", prompt}}, settings, print);
    } else {
      g = wick::generate(model, prompt, settings, print);
    }
    std::printf("\n");
    std::fprintf(stderr, "[%lld prompt tokens, %zu generated, stop: %s]\n", static_cast<long long>(g.prompt_tokens),
                 g.ids.size(), g.stop_reason.c_str());
  } catch (const wick::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
