// The safetensors writer, laid out as the reference writer does (formats.md §1.1): tensors sorted by
// dtype rank descending then name ascending, packed from offset 0; compact JSON header with
// __metadata__ first, space-padded to a multiple of 8 bytes; written atomically.
#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "io/safetensors_dtype.h"

namespace wick::io {

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  struct Item {
    const std::string* name;
    Tensor host;
    const SafetensorsDtype* dt;
  };
  std::vector<Item> items;
  std::set<std::string> seen;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__") throw Error("a tensor may not be named __metadata__", path);
    if (!seen.insert(name).second) throw Error("tensor name '" + name + "' given twice", path);
    if (!t.defined()) throw Error("tensor '" + name + "' is undefined", path);
    items.push_back({&name, t.to(Device::cpu()), &safetensors_dtype_of(t.dtype())});
  }
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    if (a.dt->rank != b.dt->rank) return a.dt->rank > b.dt->rank;
    return *a.name < *b.name;
  });

  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    h["__metadata__"] = std::move(m);
  }
  uint64_t offset = 0;
  for (const Item& it : items) {
    nlohmann::ordered_json e = nlohmann::ordered_json::object();
    e["dtype"] = it.dt->name;
    e["shape"] = it.host.shape();
    e["data_offsets"] = {offset, offset + it.host.nbytes()};
    offset += it.host.nbytes();
    h[*it.name] = std::move(e);
  }
  std::string header;
  try {
    header = h.dump();
  } catch (const nlohmann::json::exception&) {
    throw Error("a tensor name or metadata string is not valid UTF-8", path);
  }
  header.append((8 - header.size() % 8) % 8, ' ');

  const uint64_t n = header.size();
  AtomicFile f(path);
  f.write(&n, 8);  // little-endian host (asserted in safetensors.cpp)
  f.write(header.data(), header.size());
  for (const Item& it : items) f.write(it.host.raw(), it.host.nbytes());
  f.commit();
}

}  // namespace wick::io
