#include "train/train_data.h"

#include <filesystem>

#include "core/error.h"
#include "model/config.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace wick {

// Reads the training (and evaluation) data with the model folder's tokenizer and chat template, before the
// weights are loaded, so a bad line fails fast.
TrainData load_train_data(const TrainDataOptions& f, const std::string& model_dir, uint64_t seed,
                          const std::function<void(const std::string&)>& log) {
  namespace fs = std::filesystem;
  if (f.eval_split != 0 && !(f.eval_split > 0 && f.eval_split < 1))
    throw Error("expected a fraction in (0, 1), got " + std::to_string(f.eval_split), "--eval-split");
  const ModelConfig cfg = ModelConfig::from_model_dir(model_dir);
  std::optional<Tokenizer> tok;
  if (fs::exists(fs::path(model_dir) / "tokenizer.json")) tok = Tokenizer::from_model_dir(model_dir);
  std::optional<ChatTemplateKind> force;
  if (!f.chat_template.empty()) force = parse_chat_template_kind(f.chat_template);
  const ChatTemplate tmpl = fs::exists(fs::path(model_dir) / "tokenizer_config.json") || !force
                                ? ChatTemplate::from_tokenizer_config(model_dir, force)
                                : ChatTemplate::of_kind(*force);
  DatasetOptions opt;
  opt.format = parse_dataset_format(f.format);
  opt.max_seq_len = f.max_seq_len;
  opt.skip_bad_lines = f.skip_bad;
  opt.train_on_inputs = f.train_on_inputs;
  opt.vocab_size = cfg.vocab_size;
  if (tok) opt.eos_id = default_eos_id(model_dir, *tok, cfg);
  const Tokenizer* tp = tok ? &*tok : nullptr;
  TrainData d{load_dataset(f.data, opt, tp, &tmpl), std::nullopt};
  auto describe = [&](const Dataset& x, const std::string& what) {
    if (!log) return;
    log(what + ": " + std::to_string(x.examples.size()) + " " + dataset_format_name(x.format) + " examples, " +
        std::to_string(x.counted_tokens()) + " counted tokens (" + std::to_string(x.truncated) + " truncated to " +
        std::to_string(f.max_seq_len) + " tokens, " + std::to_string(x.skipped) + " bad lines skipped)");
  };
  describe(d.train, f.data);
  if (!f.eval_file.empty()) {
    d.eval = load_dataset(f.eval_file, opt, tp, &tmpl);
    describe(*d.eval, f.eval_file);
  } else if (f.eval_split > 0) {
    d.eval = split_eval(d.train, f.eval_split, seed);
    if (log)
      log(std::to_string(d.eval->examples.size()) + " examples held out for evaluation (" +
          std::to_string(d.eval->counted_tokens()) + " counted tokens), " + std::to_string(d.train.examples.size()) +
          " left to train on");
  }
  return d;
}


}  // namespace wick
