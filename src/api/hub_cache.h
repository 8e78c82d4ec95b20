// Model and adapter names as people type them: a folder, or a Hugging Face Hub id ("Qwen/Qwen2.5-0.5B-Instruct")
// found in the local Hub cache the way transformers finds it offline. wick never downloads: a missing id is
// an error that shows the download command.
//
// The cache: $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
// ~/.cache/huggingface/hub. Inside: models--ORG--NAME/refs/<branch or tag> holds a commit hash;
// models--ORG--NAME/snapshots/<commit>/ holds the files (symlinks into blobs/).
#pragma once
#include <string>

namespace wick {

struct ResolvedModel {
  std::string path;    // the folder to read (absolute)
  std::string hub_id;  // "ORG/NAME" when it came from the Hub cache, else ""
  std::string commit;  // the snapshot's commit, with a Hub id
};

// The cache folder in effect (it need not exist).
std::string hub_cache_dir();

// A Hub id is ORG/NAME (letters, digits, '-', '_', '.'; not starting with '.'), and not a path that exists.
bool looks_like_hub_id(const std::string& s);

// name: a folder (made absolute), or a Hub id. revision: a branch, tag or commit ("" = main; only with a
// Hub id). must_have: the file the folder must hold ("config.json" for a model, "adapter_config.json" for
// an adapter). flag: the option named in errors ("--model").
ResolvedModel resolve_model(const std::string& name, const std::string& revision, const std::string& must_have,
                            const std::string& flag);

}  // namespace wick
