#include "io/output_folder.h"

#include <filesystem>
#include <vector>

#include "core/error.h"
#include "io/fs_util.h"

namespace fs = std::filesystem;

namespace wick::io {

bool folder_is_empty(const std::string& dir) {
  if (!path_exists(dir)) return true;
  std::error_code ec;
  return is_dir(dir) && fs::is_empty(dir, ec) && !ec;
}

void check_output_folder(const std::string& dir, bool overwrite, const std::string& hint) {
  // A file where the folder (or one above it) would go: --overwrite replaces what a folder holds, never a file.
  std::error_code ec;
  const fs::path out = fs::absolute(dir, ec);
  for (fs::path p = out; !p.empty(); p = p.parent_path()) {
    if (path_exists(p)) {
      if (!is_dir(p))
        throw Error(p == out ? "the output path is a file, not a folder"
                             : "the output path lies under a file, not a folder: " + p.string(),
                    dir, "choose another --out");
      break;
    }
    if (p == p.parent_path()) break;
  }
  if (overwrite || folder_is_empty(dir)) return;
  throw Error("the output folder is not empty", dir, hint);
}

static bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

void remove_model_files(const std::string& dir) {
  static const std::vector<std::string> named = {"config.json", "generation_config.json", "tokenizer.json",
                                                 "tokenizer_config.json", "vocab.json", "merges.txt",
                                                 "special_tokens_map.json", "added_tokens.json", "chat_template.jinja"};
  std::error_code ec;
  std::vector<fs::path> doomed;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const std::string n = it->path().filename().string();
    bool hit = ends_with(n, ".safetensors") || ends_with(n, ".safetensors.index.json") || n.rfind("pytorch_model", 0) == 0;
    for (const auto& m : named) hit = hit || n == m;
    if (hit) doomed.push_back(it->path());
  }
  for (const auto& p : doomed)
    if (!fs::remove(p, ec) && ec) throw Error("cannot remove the old model file: " + ec.message(), p.string());
}

}  // namespace wick::io
