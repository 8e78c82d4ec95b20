// What a training run's checkpoints were trained on: base_model.json, a small record of the base model (its name
// as given, its config's architecture and sizes, a fingerprint of its weights), so that `--resume` can refuse a
// checkpoint of another base. The adapter's tensor shapes catch a base of other sizes, but not one of the same
// architecture with other weights (a base and its instruct model, a merged model): that resumed silently and
// went on training an adapter on weights it was never trained on.
//
// TrainRun writes <run>/base_model.json at the start of a run; CheckpointWriter copies it into every
// checkpoint-<step>/ before the folder gets its name (train/checkpoint_dir.h), so a checkpoint carries the
// record of the run that wrote it, wherever it is copied. Checkpoints of older wick versions have none: their
// resume is warned of, not refused.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace wick {

// The record's file name, in a run folder and in each checkpoint.
inline constexpr const char* kBaseModelRecord = "base_model.json";

// The record of the model in model_dir (config.json and its safetensors weights); shown_name is how the run
// names it (a Hub id or the folder), revision the Hub revision ("" if none). The fingerprint hashes every
// tensor's name, shape and 64 values spread over it, read as f32 (so a bf16 copy of bf16 weights, a re-sharded or
// moved folder hash the same): a few pages per tensor, not the whole file.
nlohmann::json base_model_record(const std::string& model_dir, const std::string& shown_name,
                                 const std::string& revision = "");

// A resume of checkpoint_dir onto the model whose record is `given`: wick::Error naming the checkpoint's record,
// what it was trained on and what was given, when the architecture, a size or the weights differ; a warning
// when the checkpoint has no record (written by an older wick). where_model: how the model option is named
// ("--model").
void check_resume_base(const std::string& checkpoint_dir, const nlohmann::json& given, const std::string& where_model);

}  // namespace wick
