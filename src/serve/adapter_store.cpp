#include "serve/adapter_store.h"

#include <filesystem>

#include "core/error.h"
#include "io/fs_util.h"
#include "io/peft_adapter.h"
#include "lora/lora.h"
#include "serve/openai_api.h"

namespace fs = std::filesystem;

namespace wick::serve {

std::shared_ptr<const ServeAdapter> load_serve_adapter(const CausalLM& m, const std::string& name,
                                                       const std::string& dir) {
  const io::AdapterFiles files = io::load_peft_adapter(dir);
  validate_against(files, m.config(), dir);
  auto a = std::make_shared<ServeAdapter>();
  a->name = name;
  a->path = dir;
  a->rank = files.cfg.r;
  const int64_t L = m.config().num_layers;
  a->pairs.resize(static_cast<size_t>(L));
  static const char* kProj[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                 "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
  size_t used = 0;
  for (int64_t l = 0; l < L; l++)
    for (int j = 0; j < 7; j++) {
      const std::string path = "model.layers." + std::to_string(l) + "." + kProj[j];
      auto it = files.modules.find(path);
      if (it == files.modules.end()) continue;
      AdapterPair& p = a->pairs[static_cast<size_t>(l)][static_cast<size_t>(j)];
      p.A = it->second.A.to(DType::F32).to(m.device());
      p.B = it->second.B.to(DType::F32).to(m.device());
      p.scale = static_cast<float>(files.cfg.scale());
      used++;
    }
  if (used != files.modules.size())
    throw Error("the adapter has modules that are not attention or MLP projections of a decoder layer", dir,
                "serve adapters of q/k/v/o/gate/up/down_proj only");
  return a;
}

void check_adapter_name(const std::string& name, const std::string& base_name) {
  if (name.empty() || name.size() > 64) throw Error("an adapter name must have 1 to 64 characters", "name");
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      throw Error("adapter name '" + name + "' may only hold letters, digits, '.', '_' and '-'", "name");
  if (name == base_name) throw Error("adapter name '" + name + "' is the base model's name", "name");
}

AdapterStore::AdapterStore(const CausalLM& m, std::string base_name, std::string root)
    : m_(m), base_(std::move(base_name)) {
  if (!root.empty()) {
    std::error_code ec;
    const fs::path canon = fs::canonical(root, ec);
    if (ec || !fs::is_directory(canon)) throw Error("the adapter root is not a folder", "--adapter-root " + root);
    root_ = canon.string();
  }
}

std::shared_ptr<const ServeAdapter> AdapterStore::add(const std::string& name, const std::string& dir, bool check_root) {
  check_adapter_name(name, base_);
  std::string path = dir;
  if (check_root) {
    if (root_.empty())
      throw ApiError(403, "loading adapters while serving is off: start wick serve with --adapter-root DIR", "path");
    std::error_code ec;
    const fs::path canon = fs::weakly_canonical(fs::path(root_) / dir, ec);  // relative paths are under the root
    const std::string c = canon.string();
    if (ec || !io::path_within(c, root_))
      throw ApiError(403, "adapter path '" + dir + "' is outside the adapter root " + root_, "path");
    path = c;
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (by_name_.count(name)) throw ApiError(409, "an adapter named '" + name + "' is already loaded", "name");
  }
  auto a = load_serve_adapter(m_, name, path);  // slow: outside the lock
  std::lock_guard<std::mutex> lk(mu_);
  if (!by_name_.emplace(name, a).second) throw ApiError(409, "an adapter named '" + name + "' is already loaded", "name");
  return a;
}

bool AdapterStore::remove(const std::string& name) {
  std::lock_guard<std::mutex> lk(mu_);
  return by_name_.erase(name) > 0;
}

std::shared_ptr<const ServeAdapter> AdapterStore::find(const std::string& name) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<const ServeAdapter>> AdapterStore::list() const {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<std::shared_ptr<const ServeAdapter>> out;
  for (const auto& [n, a] : by_name_) out.push_back(a);
  return out;
}

}  // namespace wick::serve
