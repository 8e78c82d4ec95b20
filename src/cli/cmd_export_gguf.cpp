// wick export-gguf: a model (with an adapter merged in) or a LoRA adapter alone as a GGUF file for llama.cpp.
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "core/error.h"
#include "io/gguf_export.h"
#include "io/output_folder.h"
#include "io/peft_adapter.h"
#include "lora/lora.h"
#include "lora/merge_folder.h"
#include "model/config.h"
#include "model/gguf_hparams.h"

namespace fs = std::filesystem;

namespace wick::cli {

namespace {

std::string folder_name(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

}  // namespace

void register_export_gguf(CLI::App& app) {
  auto* cmd = app.add_subcommand("export-gguf", "Write the model (with --adapter merged in) or, with --lora-only, the adapter as GGUF for llama.cpp");
  struct Flags {
    std::string model, adapter, out, type = "f16";
    bool lora_only = false, overwrite = false;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("--model", f->model, "Hugging Face model folder (config.json, weights, tokenizer)")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--adapter", f->adapter, "PEFT LoRA adapter folder, merged into the weights (or written alone with --lora-only)")->check(CLI::ExistingDirectory);
  cmd->add_option("--out", f->out, "the .gguf file to write")->required();
  cmd->add_option("--type", f->type, "tensor type of the 2-D weights: f16 (default), bf16, q8_0 or f32 (norms and biases stay f32)");
  cmd->add_flag("--lora-only", f->lora_only, "write the adapter alone, in llama.cpp's LoRA GGUF form (llama-cli --lora FILE)");
  cmd->add_flag("--overwrite", f->overwrite, "replace --out when it exists (without it an existing file is refused)");
  cmd->callback([f] {
    const io::GgufFileType ft = io::parse_gguf_file_type(f->type);
    if (fs::exists(f->out) && fs::is_directory(f->out)) throw Error("the output is a folder", f->out, "give a file name, e.g. model.gguf");
    // --overwrite replaces --out: never one of the files being read (the weights, the adapter), by any name
    // (a link to one counts), nor a file inside the input folders other than a *.gguf.
    io::check_output_file_not_input(f->out, "--out", {{"--model", f->model}, {"--adapter", f->adapter}});
    // Checked before any work: the file is replaced (atomically) only when asked.
    if (fs::exists(f->out) && !f->overwrite)
      throw Error("the output file exists", f->out, "pass --overwrite to replace it, or choose another --out");
    io::GgufExportSummary s;
    if (f->lora_only) {
      if (f->adapter.empty()) throw Error("--lora-only needs --adapter", "--lora-only");
      const ModelConfig cfg = ModelConfig::from_model_dir(f->model);
      // The adapter file names its architecture, and llama.cpp applies it only to a model of that one.
      if (cfg.model_type != "qwen2")
        throw Error("GGUF export knows the qwen2 architecture only, not \"" + cfg.model_type + "\"",
                    (fs::path(f->model) / "config.json").string());
      const io::AdapterFiles ad = io::load_peft_adapter(f->adapter);
      validate_against(ad, cfg, f->adapter);
      s = io::write_lora_gguf(ad, ft, f->out, folder_name(f->adapter));
    } else {
      const ModelConfig cfg = ModelConfig::from_model_dir(f->model);
      s = io::write_model_gguf(f->model, gguf_hparams(cfg), merged_model_tensors(f->model, f->adapter), ft, f->out, folder_name(f->model));
    }
    std::fprintf(stderr, "wick export-gguf: wrote %s (%zu tensors, %zu metadata keys)\n", f->out.c_str(), s.tensors.size(), s.kv_count);
  });
}

}  // namespace wick::cli
