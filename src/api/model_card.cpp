// OUT/README.md: the model card PEFT writes beside an adapter (save_pretrained's README.md), so the folder
// reads well on the Hub: YAML front matter the Hub indexes (base_model, library_name: peft, tags), then
// what was trained, with which settings, and how to load it.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "api/train_run.h"
#include "io/safetensors.h"
#include "train/report.h"

namespace fs = std::filesystem;

namespace wick {

namespace {
const char* const kMarker = "<!-- written by wick train; edit freely: wick replaces it only while this line is here -->";
}

void write_model_card(const std::string& out_dir, const std::string& base_hub_id, const std::string& base_path,
                      const nlohmann::json& settings) {
  const fs::path path = fs::path(out_dir) / "README.md";
  if (fs::exists(path) && io::read_file(path.string()).find(kMarker) == std::string::npos) return;  // the user's
  const std::string base = base_hub_id.empty() ? base_path : base_hub_id;
  const RunMetrics m = read_metrics((fs::path(out_dir) / "metrics.jsonl").string());
  std::ostringstream o;
  o << "---\n";
  if (!base_hub_id.empty()) o << "base_model: " << base_hub_id << "\n";
  o << "library_name: peft\npipeline_tag: text-generation\ntags:\n";
  if (!base_hub_id.empty()) o << "- base_model:adapter:" << base_hub_id << "\n";
  o << "- lora\n- wick\n---\n\n" << kMarker << "\n\n";
  fs::path name = fs::path(out_dir).lexically_normal();
  if (name.filename().empty()) name = name.parent_path();
  o << "# " << name.filename().string() << "\n\n";
  o << "A LoRA adapter (PEFT format) for `" << base << "`, fine-tuned with wick.\n\n";
  o << "## Training\n\n";
  if (!m.loss.empty())
    o << "- steps: " << m.last_step << ", tokens: " << m.tokens << ", final training loss: " << m.loss.back() << "\n";
  if (m.best_eval_step >= 0)
    o << "- best eval loss: " << m.best_eval_loss << " at step " << m.best_eval_step << "\n";
  if (settings.contains("adapter_step")) o << "- this adapter: step " << settings["adapter_step"].dump() << "\n";
  o << "\n| setting | value |\n|---|---|\n";
  for (const auto& [k, v] : settings_rows(settings)) o << "| " << k << " | " << v << " |\n";
  o << "\nrun.toml in this folder holds every option; `wick train --config run.toml` repeats the run.\n\n";
  o << "## Use\n\nWith wick:\n\n    wick generate --model " << base << " --adapter " << out_dir << " --chat --prompt \"...\"\n\n";
  o << "With PEFT:\n\n```python\nfrom peft import AutoPeftModelForCausalLM\nmodel = AutoPeftModelForCausalLM.from_pretrained(\""
    << out_dir << "\")\n```\n";
  io::write_file_atomic(path.string(), o.str());
}

}  // namespace wick
