#include "tokenizer/bpe.h"

#include <algorithm>
#include <cstdio>
#include <functional>

#include "core/error.h"
#include "tokenizer/bytelevel.h"
#include "tokenizer/utf8.h"

namespace wick::tok {

Bpe::Bpe(TokenMap vocab, const std::vector<std::pair<std::string, std::string>>& merges, const BpeOptions& opt,
         const std::string& where)
    : vocab_(std::move(vocab)), opt_(opt) {
  int32_t max_id = -1;
  for (const auto& [tok, id] : vocab_) {
    if (id < 0) throw Error("negative id " + std::to_string(id) + " for token \"" + tok + "\"", where + ": model.vocab");
    max_id = std::max(max_id, id);
  }
  id_to_token_.assign(static_cast<size_t>(max_id) + 1, std::string());
  for (const auto& [tok, id] : vocab_) {
    if (!id_to_token_[id].empty())
      throw Error("id " + std::to_string(id) + " is given to both \"" + id_to_token_[id] + "\" and \"" + tok + "\"",
                  where + ": model.vocab");
    id_to_token_[id] = tok;
  }
  const ByteLevel& bl = ByteLevel::get();
  for (int b = 0; b < 256; b++) {
    if (!opt_.byte_level) {
      char name[8];
      std::snprintf(name, sizeof(name), "<0x%02X>", b);
      auto it = vocab_.find(std::string_view(name));
      byte_id_[b] = it == vocab_.end() ? -1 : it->second;
      continue;
    }
    auto it = vocab_.find(bl.symbol(static_cast<uint8_t>(b)));
    if (it == vocab_.end())
      throw Error("the byte-level symbol of byte " + std::to_string(b) + " (\"" + bl.symbol(static_cast<uint8_t>(b)) +
                      "\") is not in the vocabulary",
                  where + ": model.vocab", "wick supports byte-level BPE vocabularies that cover all 256 bytes");
    byte_id_[b] = it->second;
  }
  if (!opt_.unk_token.empty()) {
    auto it = vocab_.find(opt_.unk_token);
    if (it == vocab_.end())
      throw Error("unk_token \"" + opt_.unk_token + "\" is not in the vocabulary", where + ": model.unk_token");
    unk_id_ = it->second;
  }
  merges_.reserve(merges.size());
  std::string joined;  // a + b, in one buffer reused across merges (Gemma 3 has 514,906 of them)
  for (size_t r = 0; r < merges.size(); r++) {
    const auto& [a, b] = merges[r];
    joined.assign(a).append(b);
    auto ia = vocab_.find(a), ib = vocab_.find(b), im = vocab_.find(std::string_view(joined));
    if (ia == vocab_.end() || ib == vocab_.end() || im == vocab_.end())
      throw Error("merge (\"" + a + "\", \"" + b + "\") uses a token missing from the vocabulary",
                  where + ": model.merges[" + std::to_string(r) + "]");
    // A pair listed twice keeps its first (lowest) rank, as HF does.
    merges_.emplace(key(ia->second, ib->second), Merge{static_cast<int32_t>(r), im->second});
  }
}

const std::string& Bpe::token(int32_t id) const {
  static const std::string none;
  if (id < 0 || id >= static_cast<int32_t>(id_to_token_.size())) return none;
  return id_to_token_[id];
}

void Bpe::encode_word(std::string_view bytes, std::vector<int32_t>& out) const {
  if (bytes.empty()) return;
  if (bytes.size() == 1 && opt_.byte_level) {
    out.push_back(byte_id_[static_cast<unsigned char>(bytes[0])]);
    return;
  }
  const bool cacheable = bytes.size() <= kCacheMaxWord;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(bytes);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t start = out.size();
  if (opt_.ignore_merges) {  // a word that is itself a token is taken whole, before any merging
    auto it = opt_.byte_level ? vocab_.find(ByteLevel::get().encode(bytes)) : vocab_.find(bytes);
    if (it != vocab_.end()) out.push_back(it->second);
  }
  if (out.size() == start) merge_word(bytes, out);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() < kCacheCapacity) cache_.emplace(std::string(bytes), std::vector<int32_t>(out.begin() + start, out.end()));
  }
}

// The symbols a word starts as (ids and byte lengths), before any merge.
void Bpe::initial_symbols(std::string_view w, std::vector<int32_t>& ids, std::vector<int32_t>& lens) const {
  ids.clear();
  lens.clear();
  if (opt_.byte_level) {
    for (unsigned char c : w) {
      ids.push_back(byte_id_[c]);
      lens.push_back(1);
    }
    return;
  }
  int32_t unk_len = 0;  // a pending unk symbol (fuse_unk grows it)
  for (size_t i = 0; i < w.size();) {
    const size_t n = utf8_char_len(w, i);
    const std::string_view ch = w.substr(i, n);
    i += n;
    auto it = vocab_.find(ch);
    if (it != vocab_.end()) {
      if (unk_len) {
        ids.push_back(unk_id_);
        lens.push_back(unk_len);
        unk_len = 0;
      }
      ids.push_back(it->second);
      lens.push_back(static_cast<int32_t>(n));
      continue;
    }
    if (opt_.byte_fallback) {
      bool all = true;
      for (unsigned char b : ch) all &= byte_id_[b] >= 0;
      if (all) {  // (a pending unk stays pending, as in HF)
        for (unsigned char b : ch) {
          ids.push_back(byte_id_[b]);
          lens.push_back(1);
        }
        continue;
      }
    }
    if (unk_id_ >= 0) {
      if (unk_len && !opt_.fuse_unk) {
        ids.push_back(unk_id_);
        lens.push_back(unk_len);
        unk_len = 0;
      }
      unk_len += static_cast<int32_t>(n);
    }
  }
  if (unk_len) {
    ids.push_back(unk_id_);
    lens.push_back(unk_len);
  }
}

// Symbols form a doubly linked list over the word's byte positions; a symbol that was merged into its left
// neighbour is dead (len 0). Candidate merges sit in a min-heap ordered by (rank, position); an entry is
// stale when its symbol died or its right neighbour changed, which the pop re-checks.
void Bpe::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  struct Sym {
    int32_t id, prev, next, len;
  };
  struct Cand {
    int32_t rank, pos, new_id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  thread_local std::vector<Sym> sym;
  thread_local std::vector<Cand> heap;  // min-heap via std::push_heap / pop_heap with greater<>
  thread_local std::vector<int32_t> ids, lens;
  initial_symbols(word, ids, lens);
  const int32_t n = static_cast<int32_t>(ids.size());
  if (n == 0) return;
  sym.resize(n);
  for (int32_t i = 0; i < n; i++) sym[i] = {ids[i], i - 1, i + 1 < n ? i + 1 : -1, lens[i]};

  heap.clear();
  auto push = [&](int32_t pos) {
    const int32_t nx = sym[pos].next;
    if (nx < 0) return;
    if (const Merge* m = find_merge(sym[pos].id, sym[nx].id)) {
      heap.push_back({m->rank, pos, m->new_id});
      std::push_heap(heap.begin(), heap.end(), std::greater<>{});
    }
  };
  for (int32_t i = 0; i + 1 < n; i++) push(i);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>{});
    const Cand c = heap.back();
    heap.pop_back();
    Sym& s = sym[c.pos];
    if (s.len == 0 || s.next < 0) continue;
    const Merge* m = find_merge(s.id, sym[s.next].id);
    if (!m || m->rank != c.rank || m->new_id != c.new_id) continue;  // stale
    Sym& r = sym[s.next];
    s.id = c.new_id;
    s.len += r.len;
    r.len = 0;
    s.next = r.next;
    if (s.next >= 0) sym[s.next].prev = c.pos;
    if (s.prev >= 0) push(s.prev);
    push(c.pos);
  }
  for (int32_t i = 0; i >= 0; i = sym[i].next) out.push_back(sym[i].id);
}

}  // namespace wick::tok
