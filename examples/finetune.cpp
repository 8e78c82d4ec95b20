// Fine-tune a LoRA adapter, then generate with it. Ctrl-C stops after the current step with a checkpoint
// that TrainSettings::resume continues.
//   finetune MODEL_DIR DATA.jsonl OUT_DIR [MAX_STEPS]
// DATA.jsonl: one {"input_ids": [...], "labels": [...]} per line (labels optional, -100 = not learned).
#include <wick/wick.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <string>

static std::atomic<bool> g_stop{false};

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s MODEL_DIR DATA.jsonl OUT_DIR [MAX_STEPS]\n", argv[0]);
    return 2;
  }
  try {
    wick::TrainSettings t;  // the defaults: r 16, alpha 32, all projections, lr 2e-4 cosine, 3 epochs
    t.model_dir = argv[1];
    t.data = argv[2];
    t.out_dir = argv[3];
    if (argc > 4) t.max_steps = std::stoll(argv[4]);
    std::signal(SIGINT, [](int) { g_stop = true; });

    const wick::TrainSummary s = wick::train(
        t,
        [](const wick::TrainProgress& p) {
          std::fprintf(stderr, "step %lld/%lld  loss %.4f (smoothed %.4f)  lr %.2e  %.0f tok/s  eta %.0f s\n",
                       static_cast<long long>(p.step), static_cast<long long>(p.total_steps), p.loss, p.smoothed_loss,
                       p.lr, p.tokens_per_s, p.eta_s);
        },
        &g_stop);
    for (const auto& [k, v] : s.settings) std::fprintf(stderr, "  %-16s %s\n", k.c_str(), v.c_str());
    std::fprintf(stderr, "%s after %lld of %lld steps, %lld tokens, %.1f s; final loss %.4f; report %s\n",
                 s.completed ? "done" : "stopped", static_cast<long long>(s.steps), static_cast<long long>(s.total_steps),
                 static_cast<long long>(s.tokens), s.seconds, s.final_loss, s.report_path.c_str());
    if (!s.completed) return 0;

    // The adapter is a PEFT folder: attach it to the base model and generate.
    wick::Model model(t.model_dir);
    model.attach_adapter(s.out_dir);
    wick::GenerateSettings g;
    g.max_new_tokens = 16;
    const wick::Generation out = model.has_tokenizer() ? wick::generate(model, std::string("Hello"), g)
                                                       : wick::generate_ids(model, {1, 2, 3}, g);
    if (model.has_tokenizer()) std::printf("%s\n", out.text.c_str());
    else
      for (size_t i = 0; i < out.ids.size(); i++) std::printf("%d%s", out.ids[i], i + 1 < out.ids.size() ? "," : "\n");
  } catch (const wick::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
