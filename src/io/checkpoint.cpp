// Checkpoint: one model.safetensors, or the shards named by model.safetensors.index.json (formats.md
// §1.3), checked against each other: every shard exists and is valid, every name maps to a shard that
// holds it, and no tensor is stored in two shards.
#include <filesystem>

#include "core/error.h"
#include "io/fs_util.h"
#include "io/json_util.h"
#include "io/safetensors.h"

namespace fs = std::filesystem;

namespace wick::io {

static bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// A shard name from an index must stay inside the checkpoint folder.
static void check_shard_name(const std::string& shard, const std::string& index_path) {
  const fs::path p(shard);
  bool bad = shard.empty() || p.is_absolute();
  for (const auto& part : p)
    if (part == "..") bad = true;
  if (bad) throw Error("shard file name '" + shard + "' must be a file name inside the checkpoint folder", index_path);
}

static void open_index(const std::string& dir, const std::string& index_path,
                       std::vector<std::shared_ptr<SafeTensorsFile>>& files,
                       std::map<std::string, size_t>& owner) {
  const nlohmann::json j = read_json_file(index_path);
  if (!j.is_object()) throw Error("index must be a JSON object", index_path);
  auto wm = j.find("weight_map");
  if (wm == j.end() || !wm->is_object() || wm->empty())
    throw Error("missing or empty \"weight_map\" object", index_path, "expected {\"weight_map\": {\"<tensor>\": \"<shard file>\"}}");
  std::map<std::string, size_t> shard_index;
  std::map<std::string, std::string> mapped;  // tensor -> shard
  for (const auto& [name, shard] : wm->items()) {
    if (!shard.is_string())
      throw Error("weight_map entry for '" + name + "' must be a shard file name, got " + json_brief(shard), index_path);
    const std::string s = shard.get<std::string>();
    check_shard_name(s, index_path);
    mapped[name] = s;
    if (!shard_index.count(s)) {
      const fs::path sp = fs::path(dir) / s;
      if (!is_file(sp))
        throw Error("shard '" + s + "' (listed for tensor '" + name + "') does not exist", index_path);
      shard_index[s] = files.size();
      files.push_back(SafeTensorsFile::open(sp.string()));
    }
  }
  // Every tensor of every shard has one owner; tensors a shard holds beyond weight_map are kept.
  for (size_t i = 0; i < files.size(); i++)
    for (const TensorInfo& ti : files[i]->tensors()) {
      auto [it, fresh] = owner.emplace(ti.name, i);
      if (!fresh)
        throw Error("tensor '" + ti.name + "' is stored in two shards: " + files[it->second]->path() + " and " +
                        files[i]->path(),
                    index_path);
    }
  for (const auto& [name, s] : mapped) {
    const auto& f = files[shard_index[s]];
    if (!f->has(name))
      throw Error("weight_map says tensor '" + name + "' is in '" + s + "', but that shard does not hold it", index_path);
  }
}

Checkpoint Checkpoint::open(const std::string& dir_or_file) {
  Checkpoint c;
  if (is_file(dir_or_file)) {
    if (ends_with(dir_or_file, ".index.json")) {
      const std::string dir = fs::path(dir_or_file).parent_path().string();
      open_index(dir.empty() ? "." : dir, dir_or_file, c.files_, c.owner_);
      return c;
    }
    c.files_.push_back(SafeTensorsFile::open(dir_or_file));
  } else if (is_dir(dir_or_file)) {
    const fs::path single = fs::path(dir_or_file) / "model.safetensors";
    const fs::path index = fs::path(dir_or_file) / "model.safetensors.index.json";
    if (is_file(single)) {
      c.files_.push_back(SafeTensorsFile::open(single.string()));
    } else if (is_file(index)) {
      open_index(dir_or_file, index.string(), c.files_, c.owner_);
      return c;
    } else {
      const bool has_bin = path_exists(fs::path(dir_or_file) / "pytorch_model.bin") ||
                           path_exists(fs::path(dir_or_file) / "pytorch_model.bin.index.json");
      throw Error("no model.safetensors or model.safetensors.index.json in this folder", dir_or_file,
                  has_bin ? "pickle (.bin) checkpoints are not supported: convert them to safetensors"
                          : "point at a Hugging Face model folder");
    }
  } else {
    throw Error("no such file or folder", dir_or_file);
  }
  for (const TensorInfo& ti : c.files_[0]->tensors()) c.owner_[ti.name] = 0;
  return c;
}

bool Checkpoint::has(const std::string& name) const { return owner_.count(name) != 0; }

static size_t owner_of(const std::map<std::string, size_t>& owner,
                       const std::vector<std::shared_ptr<SafeTensorsFile>>& files, const std::string& name) {
  auto it = owner.find(name);
  if (it == owner.end()) {
    std::string where = files.empty() ? std::string("checkpoint") : files[0]->path();
    if (files.size() > 1) where += " (and " + std::to_string(files.size() - 1) + " more shards)";
    throw Error("tensor '" + name + "' not found in the checkpoint", where);
  }
  return it->second;
}

const TensorInfo& Checkpoint::info(const std::string& name) const {
  return files_[owner_of(owner_, files_, name)]->info(name);
}
Tensor Checkpoint::get(const std::string& name) const { return files_[owner_of(owner_, files_, name)]->get(name); }
std::string Checkpoint::where(const std::string& name) const {
  auto it = owner_.find(name);
  return it == owner_.end() ? std::string() : files_[it->second]->path();
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (const auto& [n, i] : owner_) out.push_back(n);
  return out;
}

}  // namespace wick::io
