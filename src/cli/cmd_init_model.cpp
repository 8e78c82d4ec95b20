// wick init-model: a random-weight model folder with a published config of any family (benchmarks, tests,
// the demo).
#include <cstdio>

#include "cli/commands.h"
#include "core/error.h"
#include "io/fs_util.h"
#include "io/output_folder.h"
#include "model/presets.h"
#include "tokenizer/tokenizer_files.h"

namespace wick::cli {

void register_init_model(CLI::App& app) {
  auto* cmd = app.add_subcommand("init-model", "Write a random-weight model with a published config (Qwen2.5, Qwen3, Llama 3.2, Mistral, Gemma 3) and, for Qwen, the Qwen tokenizer");
  auto preset = std::make_shared<std::string>(), out = std::make_shared<std::string>(), dtype = std::make_shared<std::string>("bf16");
  auto seed = std::make_shared<uint64_t>(0);
  auto tok = std::make_shared<std::string>();
  std::string names;
  for (const std::string& n : preset_names()) names += (names.empty() ? "" : ", ") + n;
  cmd->add_option("--preset", *preset, "one of: " + names)->required();
  auto overwrite = std::make_shared<bool>(false);
  cmd->add_option("--out", *out, "output folder")->required();
  cmd->add_flag("--overwrite", *overwrite, "replace the model in a non-empty --out (its weights, config and tokenizer files)");
  cmd->add_option("--seed", *seed, "random seed (default 0)")->check(non_negative_integer());
  cmd->add_option("--dtype", *dtype, "weights dtype: bf16 (default), f32 or f16");
  cmd->add_option("--tokenizer-dir", *tok, "folder with tokenizer.json + tokenizer_config.json (default: the fetched Qwen tokenizer for Qwen presets, none for others)");
  cmd->callback([=] {
    const ModelConfig c = preset_config(*preset);
    // The Qwen tokenizer's ids fit only a Qwen vocabulary; other families get theirs from --tokenizer-dir.
    const bool qwen = c.model_type.rfind("qwen", 0) == 0;
    const std::string tdir = !tok->empty() ? *tok : qwen ? default_tokenizer_dir() : "";
    io::check_output_folder(*out, *overwrite, "pass --overwrite to replace the model in it, or choose another --out");
    // With --overwrite the old model files go (no old shard or index beside the new weights), but only after
    // write_random_model has checked everything that can fail (a missing tokenizer must not cost the old model).
    write_random_model(c, *out, *seed, dtype_from_name(*dtype), tdir, preset_embed_std(*preset), *overwrite);
    std::fprintf(stderr, "wick init-model: %s (%.1fM parameters, random weights) written to %s\n", preset->c_str(),
                 c.num_parameters() / 1e6, out->c_str());
  });
}

}  // namespace wick::cli
