#include "model/linear.h"

#include <algorithm>

#include "core/error.h"
#include "ops/dropout.h"
#include "ops/elementwise.h"
#include "ops/matrix_view.h"
#include "ops/low_rank.h"
#include "ops/matmul.h"
#include "ops/small_m_linear.h"
#include "ops/weight_grads.h"

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

bool uses_dropout(const Linear& l, uint64_t mix) { return mix != 0 && l.lora.dropout > 0.0f; }
uint64_t mix_at(const uint64_t* mixes, size_t j) { return mixes ? mixes[j] : 0; }

MatrixView whole(const Tensor& t) { return MatrixView::whole(t); }
// A 1-D tensor as a [1, n] view.
MatrixView flat(const Tensor& t) { return MatrixView{&t, 0, 1, t.numel(), t.numel()}; }

// A view's elements as one contiguous [rows, cols] tensor: the tensor itself when the view is all of it, else a
// copy in buf.
Tensor contiguous(const MatrixView& v, Tensor& buf) {
  const Tensor& t = *v.tensor;
  if (v.offset == 0 && v.packed() && t.ndim() == 2 && t.dim(0) == v.rows && t.dim(1) == v.cols) return t;
  Tensor c = front(buf, v.rows, v.cols, t.dtype(), t.device());
  copy_matrix(v, whole(c));
  return c;
}

// The adapter's input: x, or dropout(x) in s.d32 (f32) / s.d16 (bf16), x made contiguous through s.xc first
// when it is a block of a wider buffer. keep holds the tensor the returned view points at.
MatrixView adapter_input(const Linear& l, const MatrixView& x, LinearScratch& s, uint64_t mix, Tensor& keep) {
  if (!uses_dropout(l, mix)) return x;
  const Tensor& t = *x.tensor;
  const Tensor src = contiguous(x, s.xc);
  keep = front(t.dtype() == DType::F32 ? s.d32 : s.d16, x.rows, x.cols, t.dtype(), t.device());
  dropout_forward(src, l.lora.dropout, s.dropout_seed, mix, keep);
  return whole(keep);
}

// The late input of backward as a view (model/linear.h's LateInput gives a tensor).
using LateView = std::function<MatrixView()>;

// ---------------------------------------------------------------- f32 compute

// y = x W^T + b, then (adapter) u = xin A^T [N, r] into u's view, y += scale u B^T.
void forward32(const Linear& l, const MatrixView& x, Tensor& y, const MatrixView& u, LinearScratch& s, uint64_t mix) {
  matmul(x, whole(l.w), whole(y), false, true, 1.0f, 0.0f, l.b.defined() ? &l.b : nullptr);
  if (!l.lora.active()) return;
  Tensor keep;
  matmul(adapter_input(l, x, s, mix, keep), whole(l.lora.A), u, false, true, 1.0f, 0.0f);  // u = xin A^T  [N, r]
  matmul(u, whole(l.lora.B), whole(y), false, true, l.lora.scale, 1.0f);        // y += scale * u B^T
}

// Every product that needs no x first (dx, dB, du), then x (from late_x, once) for dA.
void backward32(Linear& l, const Tensor& dy, const LateView& late_x, const MatrixView& u, Tensor& dx, bool accumulate,
                LinearScratch& s, uint64_t mix) {
  const int64_t N = dy.dim(0);
  matmul(dy, l.w, dx, false, false, 1.0f, accumulate ? 1.0f : 0.0f);  // frozen base: dx (=|+=) dy W
  if (!l.lora.active()) return;
  const float sc = l.lora.scale;
  matmul(whole(dy), u, whole(l.lora.dB), true, false, sc, 1.0f);      // dB += scale * dy^T u   [out, r]
  Tensor du = front(s.r32, N, l.lora.rank(), DType::F32, dy.device());
  matmul(dy, l.lora.B, du, false, false, sc, 0.0f);                   // du = scale * dy B      [N, r]
  if (!uses_dropout(l, mix)) {
    matmul(du, l.lora.A, dx, false, false, 1.0f, 1.0f);               // dx += du A
  } else {
    Tensor dxl = front(s.a32, N, l.in(), DType::F32, dy.device());
    matmul(du, l.lora.A, dxl, false, false);
    dropout_forward(dxl, l.lora.dropout, s.dropout_seed, mix, dx, /*accumulate*/ true);  // dx += dropout'(du A)
  }
  Tensor keep;
  matmul(whole(du), adapter_input(l, late_x(), s, mix, keep), whole(l.lora.dA), true, false, 1.0f, 1.0f);  // dA += du^T xin
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

// A group's members as refresh16 takes them.
std::vector<const Linear*> group_members(const std::vector<Linear*>& ls) { return {ls.begin(), ls.end()}; }

// Appends the casts that bring l's bf16 adapter copies (A16, B16) up to date with its f32 masters: its packed
// block's one cast (added by the block's first member: `blocks` holds the blocks added so far), or, for a
// stand-alone adapter (set outside attach), a cast each for A and B into copies of its own (made here when missing
// or of another shape).
void add_adapter_casts(const LoraSlot& s, std::vector<MatrixCopy>& copies, std::vector<const void*>& blocks) {
  if (!s.active()) return;
  if (packed(s)) {
    if (std::find(blocks.begin(), blocks.end(), s.pack16.raw()) != blocks.end()) return;
    blocks.push_back(s.pack16.raw());
    copies.push_back({flat(s.pack32), flat(s.pack16)});
    return;
  }
  if (!s.A16.defined() || s.A16.shape() != s.A.shape() || inside(s.A16, s.pack16))
    s.A16 = Tensor::empty(s.A.shape(), DType::BF16, s.A.device());
  if (!s.B16.defined() || s.B16.shape() != s.B.shape() || inside(s.B16, s.pack16))
    s.B16 = Tensor::empty(s.B.shape(), DType::BF16, s.B.device());
  copies.push_back({whole(s.A), whole(s.A16)});
  copies.push_back({whole(s.B), whole(s.B16)});
}

// Brings A16, B16 of every active adapter up to date with the f32 masters in one copy_matrices (none when s says
// they are current).
void refresh16(const std::vector<const Linear*>& ls, const LinearScratch& s) {
  if (s.adapters_current) return;
  std::vector<MatrixCopy> copies;
  std::vector<const void*> blocks;
  for (const Linear* l : ls) add_adapter_casts(l->lora, copies, blocks);
  copy_matrices(copies);
}

// The adapter term into y, then the base with beta = 1: y = round(x W^T + b + round(scale u B^T)).
// u [N, r] receives xin A16^T unless have_u (the group GEMM made it).
void forward16(const Linear& l, const MatrixView& x, Tensor& y, const MatrixView& u, LinearScratch& s, uint64_t mix,
               bool have_u) {
  const Tensor* bias = l.b.defined() ? &l.b : nullptr;
  if (!l.lora.active()) {
    matmul(x, whole(l.w), whole(y), false, true, 1.0f, 0.0f, bias);
    return;
  }
  Tensor keep;
  if (!have_u) matmul(adapter_input(l, x, s, mix, keep), whole(l.lora.A16), u, false, true, 1.0f, 0.0f);  // u = xin A^T  [N, r]
  matmul(u, whole(l.lora.B16), whole(y), false, true, l.lora.scale, 0.0f);                   // y = scale u B^T
  matmul(x, whole(l.w), whole(y), false, true, 1.0f, 1.0f, bias);                             // y += x W^T + b
}

// The adapter's weight gradients in one op (ops/weight_grads.h): dB += scale dy^T u [out, r], and dA += du^T x
// ([r, in], the transposed form) when x is given.
WeightGradProduct dB_product(const Linear& l, const MatrixView& dy, const MatrixView& u) {
  return {dy, u, whole(l.lora.dB), /*transposed*/ false, l.lora.scale};
}
// (The products hold views: dA must outlive the weight_grad_products call.)
WeightGradProduct dA_product(const Tensor& dA, const MatrixView& x, const MatrixView& du) {
  return {x, du, whole(dA), /*transposed*/ true, 1.0f};
}

// du = scale dy B [N, r] (bf16) into du's view.
void adapter_du16(const Linear& l, const Tensor& dy, const MatrixView& du) {
  matmul(whole(dy), whole(l.lora.B16), du, false, false, l.lora.scale, 0.0f);  // [N, out] x [out, r]
}

// As backward32: du, dx first, then x (late_x, once) for dA; dB and dA in one weight_grad_products.
void backward16(Linear& l, const Tensor& dy, const LateView& late_x, const MatrixView& u, Tensor& dx, bool accumulate,
                LinearScratch& s, uint64_t mix) {
  const float beta = accumulate ? 1.0f : 0.0f;
  if (!l.lora.active()) {
    matmul(dy, l.w, dx, false, false, 1.0f, beta);
    return;
  }
  const int64_t N = dy.dim(0);
  Tensor du = front(s.u16, N, l.lora.rank(), dy.dtype(), dy.device());
  adapter_du16(l, dy, whole(du));
  if (!uses_dropout(l, mix)) {
    matmul(du, l.lora.A16, dx, false, false, 1.0f, beta);  // dx (=|+=) du A
    matmul(dy, l.w, dx, false, false, 1.0f, 1.0f);         // dx += dy W
  } else {
    Tensor dxl = front(s.d16, N, l.in(), dy.dtype(), dy.device());  // consumed before dropout(x) takes s.d16
    matmul(du, l.lora.A16, dxl, false, false);
    matmul(dy, l.w, dx, false, false, 1.0f, beta);
    dropout_forward(dxl, l.lora.dropout, s.dropout_seed, mix, dx, /*accumulate*/ true);  // dx += dropout'(du A)
  }
  Tensor keep;
  const MatrixView x = adapter_input(l, late_x(), s, mix, keep);
  weight_grad_products({dB_product(l, whole(dy), u), dA_product(l.lora.dA, x, whole(du))});
}

// Columns [off, off + r) of the products' view u [N, R]: member u_j [N, r].
MatrixView part(const MatrixView& u, int64_t off, int64_t r) {
  MatrixView p = u;
  p.offset += off;
  p.cols = r;
  return p;
}

// u [N, r] of the compute dtype in the memory of the caller's u (see linear_forward).
Tensor u_of(const Tensor& u, int64_t N, int64_t r, DType dt) {
  if (u.dtype() == dt && u.numel() == N * r) return u.view({N, r});
  WICK_CHECK(u.nbytes() >= static_cast<size_t>(N * r) * dtype_size(dt),
             "linear: saved u " << u.str() << " too small for " << dtype_name(dt) << " [" << N << ", " << r << "]");
  return over(u, {N, r}, dt);
}

struct Group {
  std::vector<Linear*> act;  // the active members, in order
  std::vector<int64_t> off;  // column offset of each active member in the products
  int64_t R = 0;
  int64_t offset_of(const Linear* l) const {
    for (size_t a = 0; a < act.size(); a++)
      if (act[a] == l) return off[a];
    return -1;
  }
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

bool no_dropout(const std::vector<Linear*>& ls, const uint64_t* mixes) {
  for (size_t j = 0; j < ls.size(); j++)
    if (ls[j]->lora.active() && uses_dropout(*ls[j], mix_at(mixes, j))) return false;
  return true;
}

// The group's adapters in the compute dtype (A16 in bf16, the masters in f32).
const Tensor& A_of(const Linear* l, bool f32) { return f32 ? l->lora.A : l->lora.A16; }

// u [N, R] = x A^T for every active member: one GEMM over the stacked A's when they are stacked and no member
// drops its input, else one a member. Unfolded f32 groups always go one a member (their numbers are
// linear_forward's); the fold takes the one GEMM in either dtype (f32_too: the products' rounding is the GEMM's).
// Returns whether it made u (else the caller makes each member's).
bool group_products(const Group& g, const std::vector<Linear*>& ls, const MatrixView& x, const MatrixView& u,
                    const uint64_t* mixes, bool f32, bool f32_too = false) {
  if ((f32 && !f32_too) || g.act.size() < 2 || !no_dropout(ls, mixes) ||
      !stacked(g, [f32](Linear* l) -> const Tensor& { return A_of(l, f32); }))
    return false;
  const Tensor A = over(A_of(g.act[0], f32), {g.R, x.cols}, x.tensor->dtype());
  matmul(x, whole(A), u, false, true, 1.0f, 0.0f);  // [N, R]
  return true;
}

// Inference over a few rows on CUDA (decode): each adapter's scale (x A^T) B^T runs as one fused
// low_rank_product (u = x A^T kept in f32) instead of two GEMMs. Only for inference callers (the same flag as
// the small-M kernels: LayerRun::inference; training and evaluation keep their numerics), with nothing saved,
// without dropout, for ranks the fused kernel takes. The CPU keeps its GEMMs (bit for bit what it computed
// before).
bool fused_inference(const std::vector<Linear*>& ls, const Tensor& x, const Tensor& saved, const uint64_t* mixes,
                     bool inference) {
  if (!inference || saved.defined() || !x.device().is_cuda() || x.dim(0) > kLowRankFusedMaxRows || !no_dropout(ls, mixes))
    return false;
  for (const Linear* l : ls)
    if (l->lora.active() && !low_rank_fused(x.dim(0), l->lora.rank())) return false;
  return true;
}

// The group's backward over views: dys [N, out_j] -> dx [N, in] (= or +=), dA, dB (+=); x from late_x (once), u
// [N, R] the forward's products.
void group_backward_views(const std::vector<Linear*>& ls, const std::vector<const Tensor*>& dys, const LateView& late_x,
                          const MatrixView& u, Tensor& dx, bool accumulate, LinearScratch& s, const uint64_t* mixes) {
  WICK_CHECK(dys.size() == ls.size(), "linear_group_backward: " << ls.size() << " linears, " << dys.size() << " gradients");
  const Group g = group_of(ls);
  const int64_t N = dys[0]->dim(0);
  const bool f32 = dys[0]->dtype() == DType::F32;
  // late_x runs once, when the first member needs x; its result is kept for the others.
  bool have_x = false;
  MatrixView x;
  const LateView once = [&]() {
    if (!have_x) x = late_x();
    have_x = true;
    return x;
  };
  const bool one = !f32 && g.act.size() > 1 && no_dropout(ls, mixes) &&
                   stacked(g, [](Linear* l) -> const Tensor& { return l->lora.A16; }) &&
                   stacked(g, [](Linear* l) -> const Tensor& { return l->lora.dA; });
  if (!one) {  // one linear at a time, exactly as linear_backward
    // A member's dA comes before the next member's dx: with more than one member, x is taken first.
    if (ls.size() > 1) once();
    for (size_t j = 0; j < ls.size(); j++) {
      const MatrixView uj = ls[j]->lora.active() ? part(u, g.offset_of(ls[j]), ls[j]->lora.rank()) : MatrixView{};
      const bool acc = j == 0 ? accumulate : true;
      if (f32) backward32(*ls[j], *dys[j], once, uj, dx, acc, s, mix_at(mixes, j));
      else backward16(*ls[j], *dys[j], once, uj, dx, acc, s, mix_at(mixes, j));
    }
    return;
  }
  // Stacked: du [N, R] (each member's columns), then dx (=|+=) du A in one GEMM, the frozen bases dx += dy_j W_j,
  // and every member's dB with dA (all members, [R, in]) in one weight_grad_products.
  Tensor du = front(s.u16, N, g.R, dys[0]->dtype(), dys[0]->device());
  std::vector<WeightGradProduct> grads;
  for (size_t a = 0; a < g.act.size(); a++) {
    Linear& l = *g.act[a];
    const size_t j = std::find(ls.begin(), ls.end(), &l) - ls.begin();
    adapter_du16(l, *dys[j], part(whole(du), g.off[a], l.lora.rank()));
    grads.push_back(dB_product(l, whole(*dys[j]), part(u, g.off[a], l.lora.rank())));
  }
  const int64_t in = dx.dim(1);
  matmul(du, over(g.act[0]->lora.A16, {g.R, in}, du.dtype()), dx, false, false, 1.0f, accumulate ? 1.0f : 0.0f);
  for (size_t j = 0; j < ls.size(); j++) matmul(*dys[j], ls[j]->w, dx, false, false, 1.0f, 1.0f);
  const Tensor dA = over(g.act[0]->lora.dA, {g.R, in}, DType::F32);  // outlives the products' views of it
  grads.push_back(dA_product(dA, once(), whole(du)));
  weight_grad_products(grads);
}

// The folded weight of member l ([W | 0 .. scale B .. 0], [out, in + R]): made when missing or laid out for
// another group, its scale B columns rewritten from the f32 master (one rounding).
// current: refresh_adapters has just rewritten the scale B columns (only a copy made here needs them).
const Tensor& folded_weight(const Linear& l, int64_t R, int64_t off, DType dt, bool current) {
  const LoraSlot& a = l.lora;
  const int64_t in = l.in(), out = l.out(), r = a.rank();
  if (!a.folded.defined() || a.folded.shape() != Shape{out, in + R} || a.folded.dtype() != dt || a.folded_at != off) {
    a.folded = Tensor::zeros({out, in + R}, dt, l.w.device());
    copy_matrix(whole(l.w), MatrixView::columns(a.folded, 0, in));
    a.folded_at = off;
    current = false;
  }
  if (!current) copy_matrix(whole(a.B), MatrixView::columns(a.folded, in + off, r), a.scale);
  return a.folded;
}

}  // namespace

bool small_m_takes(const std::vector<Linear*>& ls, const Tensor& x, const Tensor& saved, const uint64_t* mixes,
                   bool inference) {
  if (!inference || !small_m_enabled() || saved.defined() || !x.device().is_cuda() || x.ndim() != 2 ||
      !small_m_rows(x.dim(0)) || ls.empty() || ls.size() > kSmallMMaxMembers)
    return false;
  bool adapted = false;
  for (const Linear* l : ls) {
    if (l->w.dtype() != x.dtype() || (l->b.defined() && l->b.dtype() != x.dtype())) return false;
    adapted = adapted || l->lora.active();
  }
  if (!adapted) return true;  // the whole group in one small_m_linear
  if (x.dtype() != DType::BF16 || x.dim(1) == 0 || !no_dropout(ls, mixes)) return false;
  const Group g = group_of(ls);
  // Packed adapters (pack_lora_group: their A16's one block) only; the others take the GEMM paths.
  return g.R > 0 && stacked(g, [](Linear* l) -> const Tensor& { return l->lora.A16; });
}

bool small_m_group(const std::vector<Linear*>& ls, const Tensor& x, const Tensor& saved, const uint64_t* mixes,
                   bool inference, LinearScratch& s, SmallMAdapters& lr, const SmallMNorm* input_norm) {
  if (!small_m_takes(ls, x, saved, mixes, inference)) return false;
  const Group g = group_of(ls);
  if (g.act.empty()) return true;  // no adapter: the whole group in one small_m_linear
  refresh16(group_members(ls), s);
  // u = x [A_1; ..; A_n]^T [N, R] f32: one small_m_linear over the stacked bf16 A's (settled when no cast of this
  // forward wrote them).
  const int64_t N = x.dim(0), in = x.dim(1);
  Tensor A = over(g.act[0]->lora.A16, {g.R, in}, x.dtype());
  lr.u_store = front(s.r32, N, g.R, DType::F32, x.device());
  SmallMOptions u_opt;
  u_opt.weights_settled = s.adapters_current;
  u_opt.input_norm = input_norm;
  small_m_linear(x, {&A}, {}, {&lr.u_store}, u_opt);
  lr.terms.u = &lr.u_store;
  lr.terms.B.assign(ls.size(), nullptr);
  lr.terms.col.assign(ls.size(), 0);
  lr.terms.scale.assign(ls.size(), 0.0f);
  for (size_t a = 0; a < g.act.size(); a++) {
    const size_t j = std::find(ls.begin(), ls.end(), g.act[a]) - ls.begin();
    lr.terms.B[j] = &g.act[a]->lora.B16;
    lr.terms.col[j] = g.off[a];
    lr.terms.scale[j] = g.act[a]->lora.scale;
  }
  return true;
}

// ---------------------------------------------------------------- one linear

void linear_forward(const Linear& l, const Tensor& x, const Tensor& x32, Tensor& y, Tensor* u, LinearScratch& s,
                    uint64_t dropout_mix) {
  const int64_t N = x.dim(0), r = l.lora.rank();
  const bool f32 = x.dtype() == DType::F32;
  Tensor uu;
  if (l.lora.active()) {
    uu = u ? u_of(*u, N, r, x.dtype()) : front(f32 ? s.r32 : s.u16, N, r, x.dtype(), x.device());
    if (!f32) refresh16({&l}, s);
  }
  const MatrixView uv = uu.defined() ? whole(uu) : MatrixView{};
  if (f32) forward32(l, whole(x), y, uv, s, dropout_mix);
  else forward16(l, whole(x), y, uv, s, dropout_mix, false);
}

void linear_backward(Linear& l, const Tensor& dy, const Tensor& x32, const Tensor& u, Tensor& dx, bool accumulate,
                     LinearScratch& s, uint64_t dropout_mix) {
  const int64_t N = dy.dim(0), r = l.lora.rank();
  const Tensor uu = l.lora.active() ? u_of(u, N, r, dy.dtype()) : Tensor();
  const MatrixView uv = uu.defined() ? whole(uu) : MatrixView{};
  if (dy.dtype() == DType::F32) return backward32(l, dy, [&] { return whole(x32); }, uv, dx, accumulate, s, dropout_mix);
  // bf16: the adapter reads the layer input x. Callers pass x itself; an f32 copy of it (what callers passed
  // before the adapters ran in bf16) is rounded back, exactly, when dA needs it.
  Tensor x;
  auto late_x = [&]() {
    x = x32;
    if (x32.dtype() != dy.dtype()) {
      x = front(s.d16, x32.dim(0), x32.dim(1), dy.dtype(), dy.device());
      cast(x32, x);
    }
    return whole(x);
  };
  backward16(l, dy, late_x, uv, dx, accumulate, s, dropout_mix);
}

// ---------------------------------------------------------------- a group

int64_t lora_group_rank(const std::vector<Linear*>& ls) { return group_of(ls).R; }

void linear_group_forward(const std::vector<Linear*>& ls, const Tensor& x, const std::vector<Tensor*>& ys,
                          Tensor& saved, LinearScratch& s, const uint64_t* mixes, bool inference,
                          const SmallMNorm* input_norm) {
  WICK_CHECK(ys.size() == ls.size(), "linear_group_forward: " << ls.size() << " linears, " << ys.size() << " outputs");
  SmallMAdapters lr;
  if (small_m_group(ls, x, saved, mixes, inference, s, lr, input_norm)) {
    std::vector<const Tensor*> w, b;
    for (const Linear* l : ls) {
      w.push_back(&l->w);
      b.push_back(l->b.defined() ? &l->b : nullptr);
    }
    SmallMOptions opt;
    opt.weights_settled = true;  // inference: the model's weights, which no kernel of a forward writes
    opt.low_rank = lr.terms.u ? &lr.terms : nullptr;
    opt.input_norm = input_norm;
    small_m_linear(x, w, b, ys, opt);
    return;
  }
  WICK_CHECK(!input_norm, "linear_group_forward: an input norm is done only by the small_m path (small_m_takes)");
  const Group g = group_of(ls);
  const int64_t N = x.dim(0);
  const bool f32 = x.dtype() == DType::F32;
  if (g.R > 0 && fused_inference(ls, x, saved, mixes, inference)) {
    // f32: y = x W^T + b, then y += scale (x A^T) B^T. bf16: y = round(scale (x A16^T) B16^T) first, then the
    // base GEMM adds x W^T + b with beta = 1, the order of forward16 (u is not rounded to bf16 here).
    if (!f32) refresh16(group_members(ls), s);
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
  if (g.R > 0 && !store.defined()) store = front(f32 ? s.r32 : s.u16, N, g.R, x.dtype(), x.device());
  if (g.R > 0)
    WICK_CHECK(store.dtype() == x.dtype() && store.shape() == Shape({N, g.R}),
               "linear_group_forward: saved must be " << dtype_name(x.dtype()) << " [" << N << ", " << g.R
                                                      << "], got " << store.str());
  const MatrixView xv = whole(x), u = g.R > 0 ? whole(store) : MatrixView{};
  if (g.R > 0 && !f32) refresh16(group_members(ls), s);
  const bool one = g.R > 0 && group_products(g, ls, xv, u, mixes, f32);
  for (size_t j = 0; j < ls.size(); j++) {
    const MatrixView uj = ls[j]->lora.active() ? part(u, g.offset_of(ls[j]), ls[j]->lora.rank()) : MatrixView{};
    if (f32) forward32(*ls[j], xv, *ys[j], uj, s, mix_at(mixes, j));
    else forward16(*ls[j], xv, *ys[j], uj, s, mix_at(mixes, j), one);
  }
}

void linear_group_backward(const std::vector<Linear*>& ls, const std::vector<const Tensor*>& dys, const Tensor& x,
                           const Tensor& saved, Tensor& dx, bool accumulate, LinearScratch& s,
                           const uint64_t* mixes) {
  linear_group_backward(ls, dys, [&]() -> const Tensor& { return x; }, saved, dx, accumulate, s, mixes);
}

void linear_group_backward(const std::vector<Linear*>& ls, const std::vector<const Tensor*>& dys,
                           const LateInput& late_x, const Tensor& saved, Tensor& dx, bool accumulate, LinearScratch& s,
                           const uint64_t* mixes) {
  const MatrixView u = saved.defined() ? whole(saved) : MatrixView{};
  group_backward_views(ls, dys, [&] { return whole(late_x()); }, u, dx, accumulate, s, mixes);
}

// ---------------------------------------------------------------- a folded group

namespace {
// xu [N, in + R] of the compute dtype, R the group's rank (> 0): returns in.
int64_t folded_input_width(const char* op, const Group& g, const Tensor& xu, DType dt) {
  WICK_CHECK(g.R > 0, "" << std::string(op) << ": a folded group needs an adapter");
  WICK_CHECK(xu.ndim() == 2 && xu.dtype() == dt && xu.dim(1) > g.R,
             "" << std::string(op) << ": xu must be " << dtype_name(dt) << " [N, in + " << g.R << "], got " << xu.str());
  const int64_t in = xu.dim(1) - g.R;
  for (const Linear* l : g.act)
    WICK_CHECK(l->in() == in, "" << std::string(op) << ": " << l->name << " reads " << l->in() << " features, xu holds " << in << " + " << g.R);
  return in;
}
}  // namespace

void folded_group_forward(const std::vector<Linear*>& ls, const Tensor& xu, const std::vector<Tensor*>& ys,
                          LinearScratch& s, const uint64_t* mixes) {
  static const char* op = "folded_group_forward";
  WICK_CHECK(ys.size() == ls.size(), "" << std::string(op) << ": " << ls.size() << " linears, " << ys.size() << " outputs");
  const Group g = group_of(ls);
  const DType dt = ys[0]->dtype();
  const bool f32 = dt == DType::F32;
  const int64_t in = folded_input_width(op, g, xu, dt);
  const MatrixView x = MatrixView::columns(xu, 0, in), u = MatrixView::columns(xu, in, g.R);
  if (!f32) refresh16(group_members(ls), s);
  // u: one GEMM over the stacked A's (either dtype), or one a member.
  if (!group_products(g, ls, x, u, mixes, f32, /*f32_too*/ true)) {
    for (size_t j = 0; j < ls.size(); j++) {
      const Linear& l = *ls[j];
      if (!l.lora.active()) continue;
      Tensor keep;
      matmul(adapter_input(l, x, s, mix_at(mixes, j), keep), whole(A_of(&l, f32)),
             part(u, g.offset_of(&l), l.lora.rank()), false, true, 1.0f, 0.0f);
    }
  }
  for (size_t j = 0; j < ls.size(); j++) {
    const Linear& l = *ls[j];
    const Tensor* bias = l.b.defined() ? &l.b : nullptr;
    if (!l.lora.active()) matmul(x, whole(l.w), whole(*ys[j]), false, true, 1.0f, 0.0f, bias);
    else matmul(whole(xu), whole(folded_weight(l, g.R, g.offset_of(&l), dt, s.adapters_current)), whole(*ys[j]), false,
                true, 1.0f, 0.0f, bias);
  }
}

void folded_group_backward(const std::vector<Linear*>& ls, const std::vector<const Tensor*>& dys, const Tensor& xu,
                           Tensor& dx, bool accumulate, LinearScratch& s, const uint64_t* mixes) {
  static const char* op = "folded_group_backward";
  const Group g = group_of(ls);
  WICK_CHECK(!dys.empty() && dys.size() == ls.size(), "" << std::string(op) << ": " << ls.size() << " linears, "
                                                         << dys.size() << " gradients");
  const DType dt = dys[0]->dtype();
  const bool f32 = dt == DType::F32;
  const int64_t in = folded_input_width(op, g, xu, dt), N = dys[0]->dim(0);
  const MatrixView x = MatrixView::columns(xu, 0, in), u = MatrixView::columns(xu, in, g.R);
  const bool stacked_adapters = stacked(g, [f32](Linear* l) -> const Tensor& { return A_of(l, f32); }) &&
                                stacked(g, [](Linear* l) -> const Tensor& { return l->lora.dA; });
  if (accumulate || !no_dropout(ls, mixes) || !stacked_adapters) {  // the unfolded backward on xu's views
    group_backward_views(ls, dys, [&] { return x; }, u, dx, accumulate, s, mixes);
    return;
  }
  // [dx_base | du] = sum_j dy_j [W_j | 0 .. scale_j B_j .. 0] through the folded weights the forward made (its
  // scale B is current: no optimizer step comes between a forward and its backward): every member's
  // du_j = scale_j dy_j B_j lands in its u columns from the base GEMMs that read dy anyway, where the unfolded
  // backward reads each dy once more for du. Active members first (the first writes every column).
  Tensor dxu = front(s.dxu, N, in + g.R, dt, dys[0]->device());
  const MatrixView dx_base = MatrixView::columns(dxu, 0, in), du = MatrixView::columns(dxu, in, g.R);
  bool first = true;
  for (size_t j = 0; j < ls.size(); j++) {
    const Linear& l = *ls[j];
    if (!l.lora.active()) continue;
    const Tensor& wf = l.lora.folded;
    WICK_CHECK(wf.defined() && wf.shape() == Shape({l.out(), in + g.R}) && l.lora.folded_at == g.offset_of(&l),
               "" << std::string(op) << ": " << l.name << " has no folded weight of this group (no folded forward?)");
    matmul(*dys[j], wf, dxu, false, false, 1.0f, first ? 0.0f : 1.0f);
    first = false;
  }
  for (size_t j = 0; j < ls.size(); j++)
    if (!ls[j]->lora.active()) matmul(whole(*dys[j]), whole(ls[j]->w), dx_base, false, false, 1.0f, 1.0f);
  // dx = dx_base + du A (one GEMM over the stacked A's, reading dx_base and writing dx: no copy); then every
  // member's dB_j += scale_j dy_j^T u_j with dA += du^T x in one weight_grad_products.
  const Tensor A = over(A_of(g.act[0], f32), {g.R, in}, dt);
  matmul_into(du, whole(A), dx_base, whole(dx), false, false, 1.0f, 1.0f);
  std::vector<WeightGradProduct> grads;
  for (const Linear* l : g.act) {
    const size_t j = std::find(ls.begin(), ls.end(), l) - ls.begin();
    grads.push_back(dB_product(*l, whole(*dys[j]), part(u, g.offset_of(l), l->lora.rank())));
  }
  const Tensor dA = over(g.act[0]->lora.dA, {g.R, in}, DType::F32);  // outlives the products' views of it
  grads.push_back(dA_product(dA, x, du));
  weight_grad_products(grads);
}

void refresh_adapters(const std::vector<Linear*>& linears) {
  std::vector<MatrixCopy> copies;
  std::vector<const void*> blocks;
  for (const Linear* l : linears) {
    const LoraSlot& a = l->lora;
    if (!a.active()) continue;
    if (l->w.dtype() != DType::F32) add_adapter_casts(a, copies, blocks);  // bf16 compute: refresh16's casts
    if (a.folded.defined() && a.folded.dim(1) >= l->in() + a.folded_at + a.rank())
      copies.push_back({whole(a.B), MatrixView::columns(a.folded, l->in() + a.folded_at, a.rank()), a.scale});
  }
  copy_matrices(copies);
}

int64_t folded_group_bytes(const std::vector<Linear*>& ls, DType dt) {
  const Group g = group_of(ls);
  int64_t n = 0;
  for (const Linear* l : g.act) n += l->out() * (l->in() + g.R);
  return n * static_cast<int64_t>(dtype_size(dt));
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
