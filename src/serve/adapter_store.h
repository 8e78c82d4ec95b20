// The adapters a server holds, by name, each loaded once onto the model's device and shared: a request takes
// a shared_ptr when it is admitted, so unloading an adapter (DELETE /v1/adapters/NAME) never pulls it from
// under a request in flight; its memory goes when the last request using it finishes.
#pragma once
#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/causal_lm.h"

namespace wick::serve {

// One projection's low-rank pair: y += scale * (x A^T) B^T. A [r, in], B [out, r] f32 on the device.
struct AdapterPair {
  Tensor A, B;
  float scale = 0.0f;
  bool active() const { return A.defined(); }
};

// A PEFT adapter laid out for the batched forward: pairs[layer][j], j in LayerWeights::linears order.
struct ServeAdapter {
  std::string name, path;
  int64_t rank = 0;
  std::vector<std::array<AdapterPair, 7>> pairs;
};

// Reads a PEFT folder, checks it against the model (lora/lora.h validate_against) and moves it to the device.
std::shared_ptr<const ServeAdapter> load_serve_adapter(const CausalLM& m, const std::string& name,
                                                       const std::string& dir);

// An adapter name: 1..64 of [A-Za-z0-9._-], not the base model's name. wick::Error otherwise.
void check_adapter_name(const std::string& name, const std::string& base_name);

class AdapterStore {
 public:
  // root "" = adapters may be loaded from anywhere (only --adapter at start); else POST paths must lie in it.
  AdapterStore(const CausalLM& m, std::string base_name, std::string root);
  // Loads and registers. ApiError 409 when the name is taken, 403 when check_root and the path is outside
  // the root (or there is no root); wick::Error when the name is invalid or the folder is not a valid
  // adapter for this model. A relative path is taken under the root.
  std::shared_ptr<const ServeAdapter> add(const std::string& name, const std::string& dir, bool check_root);
  bool remove(const std::string& name);  // false when absent
  // nullptr when absent.
  std::shared_ptr<const ServeAdapter> find(const std::string& name) const;
  std::vector<std::shared_ptr<const ServeAdapter>> list() const;  // by name
  const std::string& base_name() const { return base_; }
  bool loading_allowed() const { return !root_.empty(); }

 private:
  const CausalLM& m_;
  std::string base_, root_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const ServeAdapter>> by_name_;
};

}  // namespace wick::serve
