// wick's public C++ API: load a Hugging Face model folder (Qwen2/2.5, Qwen3, Llama, Mistral), generate
// text, and fine-tune a LoRA adapter, on the CPU or a CUDA GPU. Small and stable: nothing here exposes
// wick's internals (pimpl).
//
//   wick::Model m("Qwen2.5-0.5B-Instruct");
//   auto g = wick::generate(m, std::vector<wick::Message>{{"user", "Hi!"}}, {},
//                           [](const std::string& piece, int) { std::cout << piece << std::flush; return true; });
//   wick::TrainSettings t;  t.model_dir = "..."; t.data = "train.jsonl"; t.out_dir = "run1";
//   wick::TrainSummary s = wick::train(t, [](const wick::TrainProgress& p) { ... });
//   m.attach_adapter(s.out_dir);
//
// Errors are thrown as wick::Error (a std::runtime_error whose what() reads "where: what (hint: ...)").
// Thread safety: a Model is used by one thread at a time.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

// wick::Error. Installed as wick/core/error.h beside this file; in wick's own tree it is src/core/error.h.
#include "core/error.h"
#include "wick/train_settings.h"

namespace wick {

// ---- Models ---------------------------------------------------------------------------------------------

struct LoadSettings {
  std::string revision;         // with a Hub id as the model: a branch, tag or commit ("" = main)
  std::string device = "auto";  // "auto" (CUDA when a GPU is usable, else CPU), "cpu", "cuda", "cuda:N"
  std::string dtype = "auto";   // "auto" (bf16 on CUDA, f32 on the CPU), "f32", "bf16"
  std::string adapter;          // a PEFT LoRA adapter folder or Hub id to attach ("" = none)
  std::string chat_template;    // force "qwen2.5" or "qwen3" ("" = recognised from tokenizer_config.json)
};

struct ModelInfo {
  std::string dir, model_type, device, dtype;
  int64_t parameters = 0, layers = 0, hidden_size = 0, intermediate_size = 0, heads = 0, kv_heads = 0;
  int64_t vocab_size = 0, max_position_embeddings = 0;
  std::vector<int64_t> eos_token_ids;
  bool has_tokenizer = false;
  std::string chat_template;  // "qwen2.5", "qwen3", or "" when the folder has none wick recognises
  std::string adapter;        // the attached adapter's folder ("" = none)
  int64_t lora_r = 0;         // its rank, alpha and target modules
  double lora_alpha = 0;
  std::vector<std::string> lora_targets;
};

struct Message {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

struct GenerateSettings;
struct Generation;
class Model;
// Called with each piece of text as it completes (never half a UTF-8 character; empty for tokens that add
// no text, e.g. an eos) and its token id (-1 for text held back until the end). Return false to stop.
using OnToken = std::function<bool(const std::string& piece, int token_id)>;

// A loaded model (weights on a device, optional adapter, tokenizer and chat template when the folder has them).
class Model {
 public:
  // dir: a model folder, or a Hugging Face Hub id ("Qwen/Qwen2.5-0.5B-Instruct") found in the local Hub cache
  // ($HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub; wick never downloads).
  explicit Model(const std::string& dir, const LoadSettings& settings = {});
  ~Model();
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;

  // Attaches the PEFT adapter in dir (replacing one already attached); detach_adapter() returns to the base.
  void attach_adapter(const std::string& dir);
  void detach_adapter();
  ModelInfo info() const;

  bool has_tokenizer() const;
  std::vector<int32_t> encode(const std::string& text) const;  // wick::Error without tokenizer.json
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = true) const;
  // The chat template applied to messages (the text the model sees), with the assistant's turn opened.
  std::string chat_prompt(const std::vector<Message>& messages, bool add_generation_prompt = true) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> p_;
  friend Generation generate_ids(Model&, const std::vector<int32_t>&, const GenerateSettings&, const OnToken&);
};

// ---- Generation -----------------------------------------------------------------------------------------

struct GenerateSettings {
  int64_t max_new_tokens = 256;
  // Sampling; unset = the model's generation_config.json (greedy unless it says do_sample).
  std::optional<float> temperature;         // 0 = greedy
  std::optional<int> top_k;                 // 0 = off
  std::optional<float> top_p, min_p;        // 1 / 0 = off
  std::optional<float> repetition_penalty;  // 1 = off
  uint64_t seed = 0;                        // runs with one seed are reproducible
  std::vector<std::string> stop;            // stop strings (the text is cut before them)
};

struct Generation {
  std::string text;            // the generated text (special tokens skipped, cut before a stop string)
  std::vector<int32_t> ids;    // generated ids (a final eos id included)
  std::string stop_reason;     // "eos", "stop_string", "length" (or "callback" when on_token said stop)
  int64_t prompt_tokens = 0;
  double prefill_s = 0, decode_s = 0;
};

// Raw text prompt (no template). Messages go through the chat template with the assistant's turn opened.
Generation generate(Model& model, const std::string& prompt, const GenerateSettings& settings = {},
                    const OnToken& on_token = {});
Generation generate(Model& model, const std::vector<Message>& messages, const GenerateSettings& settings = {},
                    const OnToken& on_token = {});
// Token ids as the prompt (a model folder without a tokenizer generates ids only).
Generation generate_ids(Model& model, const std::vector<int32_t>& prompt_ids, const GenerateSettings& settings = {},
                        const OnToken& on_token = {});

// ---- Fine-tuning ----------------------------------------------------------------------------------------

// TrainSettings (every training option, with its default): wick/train_settings.h, included above.

// The defaults overlaid with a TOML file whose keys are option names (a run.toml) - wick::Error naming the
// file and key on an unknown key or a bad value; and the settings as such a file.
TrainSettings train_settings_from_toml(const std::string& path);
std::string train_settings_toml(const TrainSettings& settings);

struct TrainProgress {
  int64_t step = 0, total_steps = 0, tokens = 0;  // tokens: input tokens of this step
  double epoch = 0, loss = 0, smoothed_loss = 0, grad_norm = 0, lr = 0;
  double tokens_per_s = 0, elapsed_s = 0, eta_s = 0;
};

struct TrainSummary {
  bool completed = false;     // false: stopped by *stop (a checkpoint was saved; resume = out_dir)
  int64_t steps = 0, total_steps = 0, tokens = 0;
  double seconds = 0;         // wall time of this call's training loop
  double final_loss = 0;
  std::optional<double> best_eval_loss;  // when the run evaluated
  int64_t best_eval_step = -1;
  int64_t batch_size = 0;
  std::string batch_reason;   // how batch_size was chosen
  std::string out_dir;        // the adapter (adapter_config.json + adapter_model.safetensors) is here
  std::string report_path;    // "" when write_report is off
  bool stopped_early = false; // early stopping ended the run (completed is true)
  int64_t adapter_step = 0;   // the step of out_dir's adapter (the best one with load_best)
  std::vector<std::string> checkpoints;  // the checkpoint-N folders kept, oldest first
  std::vector<std::pair<std::string, std::string>> settings;  // the effective settings, readable order
};

// Trains until done or until *stop becomes true (checked between steps; then a checkpoint is saved).
// Data-parallel: in a process started by mpirun / srun, every rank calls train with the same settings
// (rank 0 writes the folder; the ranks agree on the step a stop takes effect); one such call per process.
TrainSummary train(const TrainSettings& settings, const std::function<void(const TrainProgress&)>& on_progress = {},
                   const std::atomic<bool>* stop = nullptr);

}  // namespace wick
