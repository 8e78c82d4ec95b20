#include "model/linear.h"

#include <algorithm>

#include "core/error.h"
#include "ops/dropout.h"
#include "ops/elementwise.h"
#include "ops/low_rank.h"
#include "ops/matmul.h"
#include "ops/small_m_linear.h"

namespace wick {

namespace {

// A [rows, cols] view at the front of a flat scratch buffer of dtype dt, grown on demand (allocations are
// stream-ordered on CUDA, so replacing a buffer that queued work still reads is safe).
Tensor front(Tensor& buf, int64_t rows, int64_t cols, DType dt, Device dev) {
  const int64_t n = rows * cols;
  if (!buf.defined() || buf.dtype() != dt || buf.device() != dev || buf.numel() < n)
    buf = Tensor::empty({std::max<int64_t>(n, 1)}, dt, dev);
  return buf.view({buf.numel()}).narrow0(0, n).view({rows, cols});
}

// A tensor of the given shape over the bytes at `first` (valid while the storage behind `first` lives).
Tensor over(const Tensor& first, const Shape& shape, DType dt) {
  return Tensor::borrow(first.raw(), shape, dt, first.device(), nullptr);
}

bool uses_dropout(const Linear& l, uint64_t seed) { return seed != 0 && l.lora.dropout > 0.0f; }
uint64_t seed_at(const uint64_t* seeds, size_t j) { return seeds ? seeds[j] : 0; }

// ---------------------------------------------------------------- f32 compute (unchanged numerics)

// The adapter's input: x32, or dropout(x32) in s.d32.
Tensor adapter_input32(const Linear& l, const Tensor& x32, LinearScratch& s, uint64_t seed) {
  if (!uses_dropout(l, seed)) return x32;
  Tensor d = front(s.d32, x32.dim(0), x32.dim(1), DType::F32, x32.device());
  dropout_forward(x32, l.lora.dropout, seed, d);
  return d;
}

// u [N, r] f32 (or null: scratch).
void forward32(const Linear& l, const Tensor& x, const Tensor& x32, Tensor& y, Tensor* u, LinearScratch& s,
               uint64_t seed) {
  const int64_t N = x.dim(0);
  matmul(x, l.w, y, false, true, 1.0f, 0.0f, l.b.defined() ? &l.b : nullptr);
  if (!l.lora.active()) return;
  const Tensor xin = adapter_input32(l, x32, s, seed);
  Tensor uu = u ? *u : front(s.r32, N, l.lora.rank(), DType::F32, x.device());
  matmul(xin, l.lora.A, uu, false, true);                      // u = xin A^T  [N, r]
  matmul(uu, l.lora.B, y, false, true, l.lora.scale, 1.0f);    // y += scale * u B^T
}

// Every product that needs no x first (dx, dB, du), then x (from late_x, once) for dA.
void backward32(Linear& l, const Tensor& dy, const LateInput& late_x, const Tensor& u, Tensor& dx, bool accumulate,
                LinearScratch& s, uint64_t seed) {
  const int64_t N = dy.dim(0);
  matmul(dy, l.w, dx, false, false, 1.0f, accumulate ? 1.0f : 0.0f);  // frozen base: dx (=|+=) dy W
  if (!l.lora.active()) return;
  const float sc = l.lora.scale;
  matmul(dy, u, l.lora.dB, true, false, sc, 1.0f);                    // dB += scale * dy^T u   [out, r]
  Tensor du = front(s.r32, N, l.lora.rank(), DType::F32, dy.device());
  matmul(dy, l.lora.B, du, false, false, sc, 0.0f);                   // du = scale * dy B      [N, r]
  if (!uses_dropout(l, seed)) {
    matmul(du, l.lora.A, dx, false, false, 1.0f, 1.0f);               // dx += du A
  } else {
    Tensor dxl = front(s.a32, N, l.in(), DType::F32, dy.device());
    matmul(du, l.lora.A, dxl, false, false);
    dropout_forward(dxl, l.lora.dropout, seed, dxl);                  // dx += dropout'(du A)
    add(dx, dxl, dx);
  }
  const Tensor xin = adapter_input32(l, late_x(), s, seed);
  matmul(du, xin, l.lora.dA, true, false, 1.0f, 1.0f);                // dA += du^T xin         [r, in]
}

// ---------------------------------------------------------------- bf16 compute

bool inside(const Tensor& t, const Tensor& block) {
  if (!t.defined() || !block.defined()) return false;
  const char* p = static_cast<const char*>(t.raw());
  const char* b = static_cast<const char*>(block.raw());
  return p >= b && p + t.nbytes() <= b + block.nbytes();
}

bool packed(const LoraSlot& s) {
  return inside(s.A, s.pack32) && inside(s.B, s.pack32) && inside(s.A16, s.pack16) && inside(s.B16, s.pack16) &&
         s.A16.shape() == s.A.shape() && s.B16.shape() == s.B.shape();
}

// Brings A16, B16 of every active adapter up to date with the f32 masters: one cast per packed block.
void refresh16(const std::vector<const Linear*>& ls) {
  std::vector<const void*> done;
  for (const Linear* l : ls) {
    const LoraSlot& s = l->lora;
    if (!s.active()) continue;
    if (packed(s)) {
      if (std::find(done.begin(), done.end(), s.pack16.raw()) != done.end()) continue;
      done.push_back(s.pack16.raw());
      Tensor dst = s.pack16;
      cast(s.pack32, dst);
      continue;
    }
    // Stand-alone adapter (set outside attach): its own bf16 copies.
    if (!s.A16.defined() || s.A16.shape() != s.A.shape() || inside(s.A16, s.pack16))
      s.A16 = Tensor::empty(s.A.shape(), DType::BF16, s.A.device());
    if (!s.B16.defined() || s.B16.shape() != s.B.shape() || inside(s.B16, s.pack16))
      s.B16 = Tensor::empty(s.B.shape(), DType::BF16, s.B.device());
    cast(s.A, s.A16);
    cast(s.B, s.B16);
  }
}

// The adapter's input in bf16: x, or dropout(x) in s.d16.
Tensor adapter_input16(const Linear& l, const Tensor& x, LinearScratch& s, uint64_t seed) {
  if (!uses_dropout(l, seed)) return x;
  Tensor d = front(s.d16, x.dim(0), x.dim(1), x.dtype(), x.device());
  dropout_forward(x, l.lora.dropout, seed, d);
  return d;
}

// The adapter term into y, then the base with beta = 1: y = round(x W^T + b + round(scale u B^T)).
// uT [r, N] receives xin A16^T unless have_u (the group GEMM made it).
void forward16(const Linear& l, const Tensor& x, Tensor& y, Tensor& uT, LinearScratch& s, uint64_t seed,
               bool have_u) {
  const Tensor* bias = l.b.defined() ? &l.b : nullptr;
  if (!l.lora.active()) {
    matmul(x, l.w, y, false, true, 1.0f, 0.0f, bias);
    return;
  }
  if (!have_u) matmul(l.lora.A16, adapter_input16(l, x, s, seed), uT, false, true);  // u^T = A xin^T  [r, N]
  matmul(uT, l.lora.B16, y, true, true, l.lora.scale, 0.0f);                        // y = scale u B^T
  matmul(x, l.w, y, false, true, 1.0f, 1.0f, bias);                                 // y += x W^T + b
}

// dB += scale dy^T u, du^T = scale B^T dy^T into duT [r, N] (bf16).
void adapter_grads_B16(Linear& l, const Tensor& dy, const Tensor& uT, Tensor& duT) {
  const float sc = l.lora.scale;
  matmul(dy, uT, l.lora.dB, true, true, sc, 1.0f);       // [out, N] x [N, r] -> dB (f32, +=)
  matmul(l.lora.B16, dy, duT, true, true, sc, 0.0f);     // [r, out] x [out, N] -> du^T
}

// As backward32: dB, du^T, dx first, then x (late_x, once) for dA.
void backward16(Linear& l, const Tensor& dy, const LateInput& late_x, const Tensor& uT, Tensor& dx, bool accumulate,
                LinearScratch& s, uint64_t seed) {
  const float beta = accumulate ? 1.0f : 0.0f;
  if (!l.lora.active()) {
    matmul(dy, l.w, dx, false, false, 1.0f, beta);
    return;
  }
  const int64_t N = dy.dim(0);
  Tensor duT = front(s.u16, l.lora.rank(), N, dy.dtype(), dy.device());
  adapter_grads_B16(l, dy, uT, duT);
  if (!uses_dropout(l, seed)) {
    matmul(duT, l.lora.A16, dx, true, false, 1.0f, beta);  // dx (=|+=) du A
    matmul(dy, l.w, dx, false, false, 1.0f, 1.0f);         // dx += dy W
  } else {
    Tensor dxl = front(s.d16, N, l.in(), dy.dtype(), dy.device());  // consumed before dropout(x) takes s.d16
    matmul(duT, l.lora.A16, dxl, true, false);
    dropout_forward(dxl, l.lora.dropout, seed, dxl);
    matmul(dy, l.w, dx, false, false, 1.0f, beta);
    add(dx, dxl, dx);
  }
  const Tensor xin = adapter_input16(l, late_x(), s, seed);
  matmul(duT, xin, l.lora.dA, false, false, 1.0f, 1.0f);  // dA += du^T xin  [r, in] (f32)
}

// Rows [off, off + r) of saved [R, N] as u^T [r, N] (bf16), or the same elements as u [N, r] (f32).
Tensor saved_part(const Tensor& saved, int64_t off, int64_t r, int64_t N, bool f32) {
  Tensor rows = saved.narrow0(off, r);
  return f32 ? rows.view({N, r}) : rows;
}

// bf16 u^T [r, N] in the memory of the caller's u (see linear_forward).
Tensor u16_of(const Tensor& u, int64_t r, int64_t N) {
  if (u.dtype() == DType::BF16 && u.numel() == r * N) return u.view({r, N});
  WICK_CHECK(u.nbytes() >= static_cast<size_t>(r * N) * 2, "linear: saved u " << u.str() << " too small for bf16 ["
                                                                               << r << ", " << N << "]");
  return over(u, {r, N}, DType::BF16);
}

struct Group {
  std::vector<Linear*> act;  // the active members, in order
  std::vector<int64_t> off;  // row offset of each active member in saved
  int64_t R = 0;
};

Group group_of(const std::vector<Linear*>& ls) {
  Group g;
  for (Linear* l : ls)
    if (l->lora.active()) {
      g.act.push_back(l);
      g.off.push_back(g.R);
      g.R += l->lora.rank();
    }
  return g;
}

// Whether the tensors picked from the active members lie one after the other (same dtype) in memory: then
// they form one [R, in] matrix starting at the first.
template <class Pick> bool stacked(const Group& g, Pick pick) {
  const Tensor& first = pick(g.act[0]);
  if (!first.defined()) return false;
  const char* p = static_cast<const char*>(first.raw());
  for (size_t j = 0; j < g.act.size(); j++) {
    const Tensor& t = pick(g.act[j]);
    if (!t.defined() || t.dtype() != first.dtype() || t.raw() != p) return false;
    p += t.nbytes();
  }
  return true;
}

bool no_dropout(const std::vector<Linear*>& ls, const uint64_t* seeds) {
  for (size_t j = 0; j < ls.size(); j++)
    if (ls[j]->lora.active() && uses_dropout(*ls[j], seed_at(seeds, j))) return false;
  return true;
}

// Inference over a few rows on CUDA (decode): each adapter's scale (x A^T) B^T runs as one fused
// low_rank_product (u = x A^T kept in f32) instead of two GEMMs. Only for inference callers (the same flag as
// the small-M kernels: LayerRun::inference; training and evaluation keep their numerics), with nothing saved,
// without dropout, for ranks the fused kernel takes. The CPU keeps its GEMMs (bit for bit what it computed
// before).
bool fused_inference(const std::vector<Linear*>& ls, const Tensor& x, const Tensor& saved, const uint64_t* seeds,
                     bool inference) {
  if (!inference || saved.defined() || !x.device().is_cuda() || x.dim(0) > kLowRankFusedMaxRows || !no_dropout(ls, seeds))
    return false;
  for (const Linear* l : ls)
    if (l->lora.active() && !low_rank_fused(x.dim(0), l->lora.rank())) return false;
  return true;
}

}  // namespace

// Inference over a few rows on CUDA without adapters (decode): the whole group in one small_m_linear.
bool small_m_group(const std::vector<Linear*>& ls, const Tensor& x, const Tensor& saved, bool inference) {
  if (!inference || !small_m_enabled() || saved.defined() || !x.device().is_cuda() || x.ndim() != 2 || !small_m_rows(x.dim(0)) ||
      ls.empty() || ls.size() > kSmallMMaxMembers)
    return false;
  for (const Linear* l : ls)
    if (l->lora.active() || l->w.dtype() != x.dtype() || (l->b.defined() && l->b.dtype() != x.dtype())) return false;
  return true;
}

// ---------------------------------------------------------------- one linear

void linear_forward(const Linear& l, const Tensor& x, const Tensor& x32, Tensor& y, Tensor* u, LinearScratch& s,
                    uint64_t dropout_seed) {
  if (x.dtype() == DType::F32) return forward32(l, x, x32, y, u, s, dropout_seed);
  if (!l.lora.active()) return forward16(l, x, y, y, s, 0, false);
  refresh16({&l});
  const int64_t N = x.dim(0), r = l.lora.rank();
  Tensor uT = u ? u16_of(*u, r, N) : front(s.u16, r, N, x.dtype(), x.device());
  forward16(l, x, y, uT, s, dropout_seed, false);
}

void linear_backward(Linear& l, const Tensor& dy, const Tensor& x32, const Tensor& u, Tensor& dx, bool accumulate,
                     LinearScratch& s, uint64_t dropout_seed) {
  if (dy.dtype() == DType::F32) return backward32(l, dy, [&]() -> const Tensor& { return x32; }, u, dx, accumulate, s, dropout_seed);
  // bf16: the adapter reads the layer input x. Callers pass x itself; an f32 copy of it (what callers passed
  // before the adapters ran in bf16) is rounded back, exactly, when dA needs it.
  Tensor x;
  auto late_x = [&]() -> const Tensor& {
    x = x32;
    if (x32.dtype() != dy.dtype()) {
      x = front(s.d16, x32.dim(0), x32.dim(1), dy.dtype(), dy.device());
      cast(x32, x);
    }
    return x;
  };
  Tensor uT = l.lora.active() ? u16_of(u, l.lora.rank(), dy.dim(0)) : Tensor();
  backward16(l, dy, late_x, uT, dx, accumulate, s, dropout_seed);
}

// ---------------------------------------------------------------- a group

int64_t lora_group_rank(const std::vector<Linear*>& ls) { return group_of(ls).R; }

void linear_group_forward(const std::vector<Linear*>& ls, const Tensor& x, const std::vector<Tensor*>& ys,
                          Tensor& saved, LinearScratch& s, const uint64_t* seeds, bool inference) {
  WICK_CHECK(ys.size() == ls.size(), "linear_group_forward: " << ls.size() << " linears, " << ys.size() << " outputs");
  if (small_m_group(ls, x, saved, inference)) {
    std::vector<const Tensor*> w, b;
    for (const Linear* l : ls) {
      w.push_back(&l->w);
      b.push_back(l->b.defined() ? &l->b : nullptr);
    }
    SmallMOptions opt;
    opt.weights_settled = true;  // inference: the model's weights, which no kernel of a forward writes
    small_m_linear(x, w, b, ys, opt);
    return;
  }
  const Group g = group_of(ls);
  const int64_t N = x.dim(0);
  const bool f32 = x.dtype() == DType::F32;
  if (g.R > 0 && fused_inference(ls, x, saved, seeds, inference)) {
    // f32: y = x W^T + b, then y += scale (x A^T) B^T. bf16: y = round(scale (x A16^T) B16^T) first, then the
    // base GEMM adds x W^T + b with beta = 1, the order of forward16 (u is not rounded to bf16 here).
    if (!f32) refresh16(std::vector<const Linear*>(ls.begin(), ls.end()));
    for (size_t j = 0; j < ls.size(); j++) {
      const Linear& l = *ls[j];
      const Tensor* bias = l.b.defined() ? &l.b : nullptr;
      if (!l.lora.active()) {
        matmul(x, l.w, *ys[j], false, true, 1.0f, 0.0f, bias);
      } else if (f32) {
        matmul(x, l.w, *ys[j], false, true, 1.0f, 0.0f, bias);
        low_rank_product(x, l.lora.A, l.lora.B, l.lora.scale, *ys[j], true);
      } else {
        low_rank_product(x, l.lora.A16, l.lora.B16, l.lora.scale, *ys[j], false);
        matmul(x, l.w, *ys[j], false, true, 1.0f, 1.0f, bias);
      }
    }
    return;
  }
  // Inference keeps no products: they go to scratch.
  Tensor store = saved;
  if (g.R > 0 && !store.defined()) store = front(f32 ? s.r32 : s.u16, g.R, N, x.dtype(), x.device());
  if (g.R > 0)
    WICK_CHECK(store.dtype() == x.dtype() && store.numel() == g.R * N,
               "linear_group_forward: saved must be " << dtype_name(x.dtype()) << " [" << g.R << ", " << N
                                                      << "], got " << store.str());
  if (f32) {  // one linear at a time, exactly as linear_forward
    size_t a = 0;
    for (size_t j = 0; j < ls.size(); j++) {
      Tensor u;
      if (ls[j]->lora.active()) u = saved_part(store, g.off[a++], ls[j]->lora.rank(), N, true);
      forward32(*ls[j], x, x, *ys[j], u.defined() ? &u : nullptr, s, seed_at(seeds, j));
    }
    return;
  }
  std::vector<const Linear*> cls(ls.begin(), ls.end());
  if (g.R > 0) refresh16(cls);
  // One x A^T for the group when the A16's are stacked and no member drops its input.
  const bool one = g.act.size() > 1 && no_dropout(ls, seeds) && stacked(g, [](Linear* l) -> const Tensor& {
                     return l->lora.A16;
                   });
  if (one) matmul(over(g.act[0]->lora.A16, {g.R, x.dim(1)}, x.dtype()), x, store, false, true);  // [R, N]
  size_t a = 0;
  for (size_t j = 0; j < ls.size(); j++) {
    Tensor uT;
    if (ls[j]->lora.active()) uT = saved_part(store, g.off[a++], ls[j]->lora.rank(), N, false);
    forward16(*ls[j], x, *ys[j], uT, s, seed_at(seeds, j), one);
  }
}

void linear_group_backward(const std::vector<Linear*>& ls, const std::vector<const Tensor*>& dys, const Tensor& x,
                           const Tensor& saved, Tensor& dx, bool accumulate, LinearScratch& s,
                           const uint64_t* seeds) {
  linear_group_backward(ls, dys, [&]() -> const Tensor& { return x; }, saved, dx, accumulate, s, seeds);
}

void linear_group_backward(const std::vector<Linear*>& ls, const std::vector<const Tensor*>& dys,
                           const LateInput& late_x, const Tensor& saved, Tensor& dx, bool accumulate, LinearScratch& s,
                           const uint64_t* seeds) {
  WICK_CHECK(dys.size() == ls.size(), "linear_group_backward: " << ls.size() << " linears, " << dys.size() << " gradients");
  const Group g = group_of(ls);
  const int64_t N = dys[0]->dim(0);
  const bool f32 = dys[0]->dtype() == DType::F32;
  // late_x runs once, when the first member needs x; its result is kept for the others.
  const Tensor* x = nullptr;
  const LateInput once = [&]() -> const Tensor& {
    if (!x) x = &late_x();
    return *x;
  };
  const bool one = !f32 && g.act.size() > 1 && no_dropout(ls, seeds) &&
                   stacked(g, [](Linear* l) -> const Tensor& { return l->lora.A16; }) &&
                   stacked(g, [](Linear* l) -> const Tensor& { return l->lora.dA; });
  if (!one) {  // one linear at a time, exactly as linear_backward
    // A member's dA comes before the next member's dx: with more than one member, x is taken first.
    if (ls.size() > 1) once();
    size_t a = 0;
    for (size_t j = 0; j < ls.size(); j++) {
      Tensor u;
      if (ls[j]->lora.active()) u = saved_part(saved, g.off[a++], ls[j]->lora.rank(), N, f32);
      const bool acc = j == 0 ? accumulate : true;
      if (f32) backward32(*ls[j], *dys[j], once, u, dx, acc, s, seed_at(seeds, j));
      else backward16(*ls[j], *dys[j], once, u, dx, acc, s, seed_at(seeds, j));
    }
    return;
  }
  // Stacked: du^T [R, N] per member, then dx (=|+=) du A in one GEMM, the frozen bases dx += dy_j W_j, and
  // dA (all members) += du^T x in one GEMM.
  Tensor duT = front(s.u16, g.R, N, dys[0]->dtype(), dys[0]->device());
  for (size_t a = 0; a < g.act.size(); a++) {
    Linear& l = *g.act[a];
    const size_t j = std::find(ls.begin(), ls.end(), &l) - ls.begin();
    Tensor part = duT.narrow0(g.off[a], l.lora.rank());
    adapter_grads_B16(l, *dys[j], saved_part(saved, g.off[a], l.lora.rank(), N, false), part);
  }
  const int64_t in = dx.dim(1);
  matmul(duT, over(g.act[0]->lora.A16, {g.R, in}, duT.dtype()), dx, true, false, 1.0f, accumulate ? 1.0f : 0.0f);
  for (size_t j = 0; j < ls.size(); j++) matmul(*dys[j], ls[j]->w, dx, false, false, 1.0f, 1.0f);
  Tensor dA = over(g.act[0]->lora.dA, {g.R, in}, DType::F32);
  matmul(duT, once(), dA, false, false, 1.0f, 1.0f);
}

// ---------------------------------------------------------------- packing

namespace {

// Total f32 elements of a group's block, and the members that have adapters.
int64_t block_size(const std::vector<Linear*>& ls) {
  int64_t n = 0;
  for (Linear* l : ls)
    if (l->lora.active()) n += l->lora.A.numel() + l->lora.B.numel();
  return n;
}

// Calls f(l, offset of A, offset of B) in the layout [A_1; ..; A_n | B_1 | .. | B_n].
template <class F> void for_layout(const std::vector<Linear*>& ls, F f) {
  int64_t offA = 0, offB = 0;
  for (Linear* l : ls)
    if (l->lora.active()) offB += l->lora.A.numel();
  for (Linear* l : ls) {
    if (!l->lora.active()) continue;
    f(*l, offA, offB);
    offA += l->lora.A.numel();
    offB += l->lora.B.numel();
  }
}

Tensor part(const Tensor& block, int64_t off, const Shape& shape) {
  return block.narrow0(off, shape_numel(shape)).view(shape);
}

}  // namespace

void pack_lora_group(const std::vector<Linear*>& ls) {
  const int64_t n = block_size(ls);
  if (n == 0) return;
  Linear* first = nullptr;
  for (Linear* l : ls)
    if (l->lora.active() && !first) first = l;
  const Device dev = first->lora.A.device();
  Tensor b32 = Tensor::empty({n}, DType::F32, dev);
  Tensor b16 = first->w.dtype() == DType::F32 ? Tensor() : Tensor::empty({n}, DType::BF16, dev);
  for_layout(ls, [&](Linear& l, int64_t offA, int64_t offB) {
    LoraSlot& s = l.lora;
    WICK_CHECK(s.A.dtype() == DType::F32 && s.B.dtype() == DType::F32 && s.A.device() == dev && s.B.device() == dev,
               "pack_lora_group: adapter of " << l.name << " must be f32 on " << dev.str());
    Tensor A = part(b32, offA, s.A.shape()), B = part(b32, offB, s.B.shape());
    A.copy_from(s.A);
    B.copy_from(s.B);
    s.A = A;
    s.B = B;
    s.pack32 = b32;
    s.pack16 = b16;
    s.A16 = b16.defined() ? part(b16, offA, A.shape()) : Tensor();
    s.B16 = b16.defined() ? part(b16, offB, B.shape()) : Tensor();
  });
}

void pack_lora_grads(const std::vector<Linear*>& ls) {
  const int64_t n = block_size(ls);
  if (n == 0) return;
  Device dev = Device::cpu();
  for (Linear* l : ls)
    if (l->lora.active()) dev = l->lora.A.device();
  Tensor g = Tensor::zeros({n}, DType::F32, dev);
  for_layout(ls, [&](Linear& l, int64_t offA, int64_t offB) {
    l.lora.dA = part(g, offA, l.lora.A.shape());
    l.lora.dB = part(g, offB, l.lora.B.shape());
  });
}

}  // namespace wick
