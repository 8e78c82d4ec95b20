// The drivers of ops/opcheck.h: guarded outputs, runs on a device, comparisons, finite differences.
#include "ops/opcheck.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "core/error.h"

namespace wick::opcheck {

DType dtype_for(Kind k, DType act) {
  switch (k) {
    case Kind::Act: return act;
    case Kind::F32: return DType::F32;
    case Kind::BF16: return DType::BF16;
    case Kind::F16: return DType::F16;
    case Kind::I32: return DType::I32;
    case Kind::I64: return DType::I64;
  }
  return act;
}

static bool is_index(Kind k) { return k == Kind::I32 || k == Kind::I64; }

void Case::fill_inputs(std::vector<Tensor>& host, Rng& rng) const {
  const auto specs = inputs();
  for (size_t i = 0; i < specs.size(); i++) {
    WICK_CHECK(!is_index(specs[i].kind), "case " << name("case") << ": index input " << specs[i].name << " needs fill_inputs");
    float* p = host[i].data<float>();
    for (int64_t j = 0; j < host[i].numel(); j++) p[j] = gauss(rng);
  }
}

void Case::fill_cotangents(std::vector<Tensor>& cot, Rng& rng) const {
  for (Tensor& t : cot) {
    float* p = t.data<float>();
    for (int64_t j = 0; j < t.numel(); j++) p[j] = gauss(rng);
  }
}

double Case::ref_cost() const {
  double n = 0;
  for (const Spec& s : inputs()) n += static_cast<double>(shape_numel(s.shape));
  for (const Spec& s : outputs()) n += static_cast<double>(shape_numel(s.shape));
  return 4 * n;
}

// ---- reports ----

bool Report::pass() const {
  for (const Check& c : checks)
    if (!c.pass) return false;
  return !checks.empty();
}

static const Check* worst(const std::vector<Check>& cs) {
  const Check* w = nullptr;
  double r = -1;
  for (const Check& c : cs) {
    const double x = !c.pass ? INFINITY : (c.tol > 0 ? c.err / c.tol : (c.err > 0 ? INFINITY : 0));
    if (x > r) r = x, w = &c;
  }
  return w;
}
double Report::worst_err() const { return worst(checks) ? worst(checks)->err : 0; }
double Report::worst_tol() const { return worst(checks) ? worst(checks)->tol : 0; }

std::string Report::str() const {
  std::ostringstream os;
  for (const Check& c : checks)
    os << (c.pass ? "  ok   " : "  FAIL ") << c.what << ": err " << c.err << " tol " << c.tol
       << (c.note.empty() ? "" : " (" + c.note + ")") << "\n";
  return os.str();
}

// ---- tensors ----

constexpr int64_t kGuard = 32;  // elements of poison before and after every output

// A poison value per dtype: NaN payloads for floats (so unwritten elements read as NaN), odd integers.
static void poison(void* p, DType t, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    switch (t) {
      case DType::F32: static_cast<uint32_t*>(p)[i] = 0x7fc0bad5u; break;
      case DType::BF16: static_cast<uint16_t*>(p)[i] = 0x7fcbu; break;
      case DType::F16: static_cast<uint16_t*>(p)[i] = 0x7e5bu; break;
      case DType::I32: static_cast<uint32_t*>(p)[i] = 0x5eadbeefu; break;
      case DType::I64: static_cast<uint64_t*>(p)[i] = 0x5eadbeef5eadbeefull; break;
    }
  }
}

namespace {

// An output between guard elements: base [kGuard + n + kGuard] flat on the device, view its middle.
struct Guarded {
  Tensor base, view;
};

// Host values (f32 or an index type) as a dtype.
Tensor host_as(const Tensor& h, DType dt) { return h.dtype() == dt ? h.clone() : h.to(dt); }

Guarded make_guarded(const Shape& shape, DType dt, Device dev, const Tensor* init) {
  const int64_t n = shape_numel(shape);
  Tensor h = Tensor::empty({n + 2 * kGuard}, dt);
  poison(h.raw(), dt, n + 2 * kGuard);
  if (init) {
    const Tensor v = host_as(*init, dt);
    std::memcpy(static_cast<char*>(h.raw()) + kGuard * dtype_size(dt), v.raw(), v.nbytes());
  }
  Guarded g;
  g.base = h.to(dev);
  g.view = g.base.narrow0(kGuard, n).view(shape);
  return g;
}

// "" when both guards are intact, else what was overwritten.
std::string guard_damage(const Guarded& g) {
  const Tensor h = g.base.to(Device::cpu());
  const DType dt = h.dtype();
  const size_t es = dtype_size(dt);
  std::vector<char> pat(kGuard * es);
  poison(pat.data(), dt, kGuard);
  const int64_t n = g.view.numel();
  const char* p = static_cast<const char*>(h.raw());
  int bad = 0;
  int64_t first = 0;
  for (int64_t i = 0; i < 2 * kGuard; i++) {
    const int64_t at = i < kGuard ? i : kGuard + n + (i - kGuard);
    if (std::memcmp(p + at * es, pat.data(), es) != 0 && bad++ == 0) first = at - kGuard;
  }
  if (!bad) return "";
  return std::to_string(bad) + " guard elements overwritten, first at offset " + std::to_string(first) +
         " (region [0, " + std::to_string(n) + "))";
}

// Host f32 (or index) values of a device tensor.
Tensor fetch(const Tensor& t) {
  Tensor h = t.device().is_cpu() ? t.clone() : t.to(Device::cpu());  // a snapshot, never a view
  return dtype_is_float(h.dtype()) ? h.to(DType::F32) : h;
}

ref::Vec to_vec(const Tensor& host) {
  const Tensor h = host.to(Device::cpu());
  if (dtype_is_float(h.dtype())) {
    const std::vector<float> f = h.to_f32_vector();
    return ref::Vec(f.begin(), f.end());
  }
  const std::vector<int64_t> i = h.to_i64_vector();
  return ref::Vec(i.begin(), i.end());
}

int64_t count_nan(const Tensor& host_f32) {
  int64_t n = 0;
  const float* p = host_f32.data<float>();
  for (int64_t i = 0; i < host_f32.numel(); i++) n += std::isnan(p[i]);
  return n;
}

// Normalised error of a against b (see Check).
double norm_err(const ref::Vec& a, const ref::Vec& b) {
  double num = 0, den = 0, mx = 0, mb = 0;
  for (size_t i = 0; i < a.size(); i++) {
    const double d = a[i] - b[i];
    if (std::isnan(d)) return INFINITY;
    num += d * d;
    den += b[i] * b[i];
    mx = std::max(mx, std::fabs(d));
    mb = std::max(mb, std::fabs(b[i]));
  }
  // An all-zero reference (e.g. dq with one key: dS = P (dout.v - dout.out) cancels exactly on the CPU):
  // compare absolutely; the inputs are O(1), so rounding leaves ~1e-7 and a wrong kernel leaves O(1).
  if (den == 0) return mx;
  return std::max(std::sqrt(num / den), mx / (4 * mb));
}

Check compare(const std::string& what, const ref::Vec& got, const ref::Vec& want, double tol) {
  Check c{what, false, norm_err(got, want), tol, ""};
  c.pass = c.err <= tol;
  return c;
}

// Checks every output: guards intact, nothing left NaN; returns host f32 copies.
std::vector<Tensor> collect(const std::vector<Guarded>& g, const std::vector<Spec>& specs, const std::string& prefix,
                            Report& r) {
  std::vector<Tensor> out;
  for (size_t i = 0; i < g.size(); i++) {
    const std::string dmg = guard_damage(g[i]);
    Tensor h = fetch(g[i].view);
    const int64_t nan = dtype_is_float(h.dtype()) ? count_nan(h) : 0;
    if (!dmg.empty() || nan) {
      std::string note = dmg;
      if (nan) note += (note.empty() ? "" : "; ") + std::to_string(nan) + " elements NaN (left unwritten, or NaN produced)";
      r.checks.push_back({prefix + specs[i].name + " written exactly", false, 1, 0, note});
    }
    out.push_back(h);
  }
  return out;
}

// Inputs of a case: host values (f32 for float kinds), generated from the seed, rounded to what `act`
// can hold for Act-kind inputs when round_act.
std::vector<Tensor> make_inputs(const Case& c, Rng& rng, DType act) {
  std::vector<Tensor> h;
  for (const Spec& s : c.inputs())
    h.push_back(Tensor::empty(s.shape, is_index(s.kind) ? dtype_for(s.kind, act) : DType::F32));
  c.fill_inputs(h, rng);
  const auto specs = c.inputs();
  for (size_t i = 0; i < h.size(); i++)
    if (!is_index(specs[i].kind)) {
      const DType dt = dtype_for(specs[i].kind, act);
      if (dt != DType::F32) h[i] = h[i].to(dt).to(DType::F32);
    }
  return h;
}

std::vector<Tensor> upload(const std::vector<Tensor>& host, const std::vector<Spec>& specs, Device dev, DType act) {
  std::vector<Tensor> d;
  for (size_t i = 0; i < host.size(); i++) d.push_back(host_as(host[i], dtype_for(specs[i].kind, act)).to(dev));
  return d;
}

std::vector<Guarded> run_forward(const Case& c, const std::vector<Tensor>& dev_in, Device dev, DType act) {
  std::vector<Guarded> g;
  for (const Spec& s : c.outputs()) g.push_back(make_guarded(s.shape, dtype_for(s.kind, act), dev, nullptr));
  std::vector<Tensor> views;
  for (const Guarded& x : g) views.push_back(x.view);
  c.forward(dev_in, views);
  return g;
}

std::vector<Tensor> views_of(const std::vector<Guarded>& g) {
  std::vector<Tensor> v;
  for (const Guarded& x : g) v.push_back(x.view);
  return v;
}

bool contains(const std::vector<int>& v, int x) { return std::find(v.begin(), v.end(), x) != v.end(); }

// Cotangents (host f32, rounded through their output's dtype) and initial values of the parameter grads
// (host f32 random; nullptr-equivalent undefined tensors for written grads, which start poisoned).
struct BackwardInputs {
  std::vector<Tensor> cot, grad_init;
};

BackwardInputs make_backward_inputs(const Case& c, Rng& rng, DType act, bool zero_params) {
  BackwardInputs b;
  const auto outs = c.outputs();
  const auto ins = c.inputs();
  for (int o : c.cot_outputs()) b.cot.push_back(Tensor::empty(outs[o].shape, DType::F32));
  c.fill_cotangents(b.cot, rng);
  for (size_t j = 0; j < b.cot.size(); j++) {
    const DType dt = dtype_for(outs[c.cot_outputs()[j]].kind, act);
    if (dt != DType::F32) b.cot[j] = b.cot[j].to(dt).to(DType::F32);
  }
  const auto acc = c.accumulating();
  for (int i : c.grad_inputs()) {
    if (!contains(acc, i)) {
      b.grad_init.emplace_back();
      continue;
    }
    Tensor g = Tensor::zeros(ins[i].shape, DType::F32);
    if (!zero_params) {
      float* p = g.data<float>();
      for (int64_t k = 0; k < g.numel(); k++) p[k] = 0.5f * gauss(rng);
      const DType dt = dtype_for(ins[i].kind, act);
      if (dt != DType::F32) g = g.to(dt).to(DType::F32);
    }
    b.grad_init.push_back(g);
  }
  return b;
}

std::vector<Guarded> run_backward(const Case& c, const std::vector<Tensor>& dev_in, const std::vector<Tensor>& dev_out,
                                  const BackwardInputs& bi, Device dev, DType act) {
  const auto ins = c.inputs();
  const auto outs = c.outputs();
  std::vector<Tensor> cot;
  for (size_t j = 0; j < bi.cot.size(); j++)
    cot.push_back(host_as(bi.cot[j], dtype_for(outs[c.cot_outputs()[j]].kind, act)).to(dev));
  std::vector<Guarded> g;
  const auto gi = c.grad_inputs();
  for (size_t j = 0; j < gi.size(); j++) {
    const Spec& s = ins[gi[j]];
    g.push_back(make_guarded(s.shape, dtype_for(s.kind, act), dev, bi.grad_init[j].defined() ? &bi.grad_init[j] : nullptr));
  }
  std::vector<Tensor> views = views_of(g);
  c.backward(dev_in, dev_out, cot, views);
  return g;
}

std::vector<Spec> grad_specs(const Case& c) {
  std::vector<Spec> s;
  const auto ins = c.inputs();
  for (int i : c.grad_inputs()) s.push_back({"grad " + ins[i].name, ins[i].shape, ins[i].kind});
  return s;
}

}  // namespace

// ---- drivers ----

Report check_forward_cpu(const Case& c, DType act, uint64_t seed) {
  Report r;
  Rng rng(seed);
  const std::vector<Tensor> in = make_inputs(c, rng, act);
  const auto specs = c.inputs();
  const std::vector<Guarded> g = run_forward(c, upload(in, specs, Device::cpu(), act), Device::cpu(), act);
  const std::vector<Tensor> out = collect(g, c.outputs(), "", r);
  std::vector<ref::Vec> rin;
  for (const Tensor& t : in) rin.push_back(to_vec(t));
  const std::vector<ref::Vec> want = c.reference(rin);
  const double tol = act == DType::F32 ? c.tol.fwd : c.tol.cpu_bf16;
  const auto outs = c.outputs();
  for (size_t i = 0; i < out.size(); i++) r.checks.push_back(compare(outs[i].name, to_vec(out[i]), want[i], tol));
  return r;
}

Report check_backward_fd(const Case& c, uint64_t seed, double samples_budget) {
  Report r;
  if (!c.has_backward()) return r;
  Rng rng(seed);
  const DType act = DType::F32;
  const std::vector<Tensor> in = make_inputs(c, rng, act);
  const auto specs = c.inputs();
  const std::vector<Tensor> din = upload(in, specs, Device::cpu(), act);
  const std::vector<Guarded> fo = run_forward(c, din, Device::cpu(), act);
  const BackwardInputs bi = make_backward_inputs(c, rng, act, false);
  const std::vector<Guarded> gg = run_backward(c, din, views_of(fo), bi, Device::cpu(), act);
  const std::vector<Tensor> grads = collect(gg, grad_specs(c), "", r);

  // loss(inputs) = sum_j <reference(inputs)[cot_outputs[j]], cot[j]>, in f64
  std::vector<ref::Vec> x;
  for (const Tensor& t : in) x.push_back(to_vec(t));
  std::vector<ref::Vec> cot;
  for (const Tensor& t : bi.cot) cot.push_back(to_vec(t));
  const auto co = c.cot_outputs();
  auto loss = [&](const std::vector<ref::Vec>& xs) {
    const std::vector<ref::Vec> y = c.reference(xs);
    double l = 0;
    for (size_t j = 0; j < co.size(); j++)
      for (size_t k = 0; k < cot[j].size(); k++) l += y[co[j]][k] * cot[j][k];
    return l;
  };
  const double h = 1e-4;
  const int64_t samples = static_cast<int64_t>(std::clamp(samples_budget / (2 * c.ref_cost()), 2.0, 64.0));
  const auto gi = c.grad_inputs();
  for (size_t j = 0; j < gi.size(); j++) {
    const int i = gi[j];
    ref::Vec g = to_vec(grads[j]);
    if (bi.grad_init[j].defined()) {  // parameter grads were accumulated onto grad_init
      const ref::Vec g0 = to_vec(bi.grad_init[j]);
      for (size_t k = 0; k < g.size(); k++) g[k] -= g0[k];
    }
    double gmax = 0, gnorm = 0;
    for (double v : g) gmax = std::max(gmax, std::fabs(v)), gnorm += v * v;
    gnorm = std::sqrt(gnorm);
    Check ck{"grad " + specs[i].name + " vs finite differences", false, 0, c.tol.bwd, ""};
    const int64_t n = static_cast<int64_t>(g.size());
    std::vector<ref::Vec> xs = x;
    // Element samples (the first, the last, random ones): errors relative to the largest gradient element.
    std::vector<std::pair<int64_t, double>> fd;
    double fdmax = 0;
    for (int64_t s = 0; s < std::min(samples, n); s++) {
      const int64_t k = s == 0 ? 0 : s == 1 ? n - 1 : static_cast<int64_t>(rng.below(static_cast<uint64_t>(n)));
      const double x0 = x[i][k];
      xs[i][k] = x0 + h;
      const double lp = loss(xs);
      xs[i][k] = x0 - h;
      const double lm = loss(xs);
      xs[i][k] = x0;
      fd.push_back({k, (lp - lm) / (2 * h)});
      fdmax = std::max(fdmax, std::fabs(fd.back().second));
    }
    // Random directions u: (loss(x + h u) - loss(x - h u)) / 2h against <g, u>, covering every element.
    std::vector<std::pair<double, double>> dir;  // (fd, <g, u>) / ||u||
    for (int d = 0; d < 2; d++) {
      ref::Vec u(g.size());
      double un = 0, gu = 0;
      for (size_t k = 0; k < u.size(); k++) u[k] = gauss(rng), un += u[k] * u[k], gu += g[k] * u[k];
      un = std::sqrt(un);
      for (size_t k = 0; k < u.size(); k++) xs[i][k] = x[i][k] + h * u[k];
      const double lp = loss(xs);
      for (size_t k = 0; k < u.size(); k++) xs[i][k] = x[i][k] - h * u[k];
      const double lm = loss(xs);
      xs[i] = x[i];
      dir.push_back({(lp - lm) / (2 * h) / un, gu / un});
    }
    const double scale = std::max(gmax, fdmax);
    if (!(scale > 1e-12) || std::isnan(gmax)) {
      // A gradient that is exactly zero (e.g. one key: attention output = v, whatever q and k are) passes
      // only when the finite differences are zero too; NaN never passes.
      ck.pass = !std::isnan(gmax);
      ck.err = std::isnan(gmax) ? INFINITY : scale;
      ck.note = "zero gradient; the finite differences agree";
      r.checks.push_back(ck);
      continue;
    }
    double worst_elem = 0, worst_dir = 0;
    int64_t worst_at = -1;
    for (auto [k, f] : fd) {
      const double e = std::fabs(f - g[k]) / scale;
      if (e >= worst_elem) worst_elem = e, worst_at = k;
    }
    for (auto [f, gu] : dir) worst_dir = std::max(worst_dir, std::fabs(f - gu) / std::max(gnorm, std::fabs(f)));
    ck.err = std::max(worst_elem, worst_dir);
    ck.pass = ck.err <= ck.tol;
    std::ostringstream note;
    note << std::min(samples, n) << " elements (worst at " << worst_at << ": " << worst_elem << ") + 2 directions ("
         << worst_dir << ")";
    ck.note = note.str();
    r.checks.push_back(ck);
  }
  return r;
}

Report check_accumulate(const Case& c, Device dev, DType act, uint64_t seed) {
  Report r;
  if (!c.has_backward()) return r;
  Rng rng(seed);
  const std::vector<Tensor> in = make_inputs(c, rng, act);
  const std::vector<Tensor> din = upload(in, c.inputs(), dev, act);
  const std::vector<Guarded> fo = run_forward(c, din, dev, act);
  const BackwardInputs bi = make_backward_inputs(c, rng, act, true);  // parameter grads start at zero
  const auto gs = grad_specs(c);
  std::vector<Guarded> gg = run_backward(c, din, views_of(fo), bi, dev, act);
  const std::vector<Tensor> first = collect(gg, gs, "", r);
  std::vector<Tensor> views = views_of(gg);
  const auto outs = c.outputs();
  {
    std::vector<Tensor> cot;
    for (size_t j = 0; j < bi.cot.size(); j++)
      cot.push_back(host_as(bi.cot[j], dtype_for(outs[c.cot_outputs()[j]].kind, act)).to(dev));
    c.backward(din, views_of(fo), cot, views);
  }
  const std::vector<Tensor> second = collect(gg, gs, "", r);
  const bool exact = dev.is_cpu() && act == DType::F32 && c.exact_accumulate();
  const double tol = exact ? 0.0 : act == DType::F32 ? 1e-6 : 1e-2;
  const auto acc = c.accumulating();
  const auto gi = c.grad_inputs();
  for (size_t j = 0; j < gi.size(); j++) {
    const bool param = contains(acc, gi[j]);
    ref::Vec want = to_vec(first[j]);
    if (param)
      for (double& v : want) v *= 2;
    const ref::Vec got = to_vec(second[j]);
    Check ck = compare(gs[j].name + (param ? " after 2 calls == 2x one call (+=)" : " after 2 calls == one call (=)"),
                       got, want, tol);
    if (exact) {
      double m = 0;
      for (size_t k = 0; k < got.size(); k++) m = std::max(m, std::fabs(got[k] - want[k]));
      ck.err = m;
      ck.pass = m == 0;
      ck.note = "bitwise";
    }
    double gmax = 0;
    for (double v : want) gmax = std::max(gmax, std::fabs(v));
    if (param && !(gmax > 0)) ck.pass = false, ck.note = "parameter gradient is all zero: += and = would look alike";
    r.checks.push_back(ck);
  }
  return r;
}

Report check_device(const Case& c, Device dev, DType act, uint64_t seed) {
  Report r;
  Rng rng(seed);
  const auto specs = c.inputs();
  const std::vector<Tensor> in = make_inputs(c, rng, act);  // values act can hold, as f32
  const std::vector<Tensor> cin = upload(in, specs, Device::cpu(), DType::F32);
  const std::vector<Tensor> din = upload(in, specs, dev, act);
  const std::vector<Guarded> cf = run_forward(c, cin, Device::cpu(), DType::F32);
  const std::vector<Guarded> df = run_forward(c, din, dev, act);
  Report cpu_r;
  const std::vector<Tensor> cout_ = collect(cf, c.outputs(), "", cpu_r);
  const std::vector<Tensor> dout_ = collect(df, c.outputs(), "", r);
  const auto outs = c.outputs();
  const bool f32 = act == DType::F32;
  for (size_t i = 0; i < outs.size(); i++)
    r.checks.push_back(compare(outs[i].name, to_vec(dout_[i]), to_vec(cout_[i]), f32 ? c.tol.dev : c.tol.dev_bf16));
  if (c.has_backward()) {
    const BackwardInputs bi = make_backward_inputs(c, rng, act, false);
    const std::vector<Guarded> cg = run_backward(c, cin, views_of(cf), bi, Device::cpu(), DType::F32);
    const std::vector<Guarded> dg = run_backward(c, din, views_of(df), bi, dev, act);
    const auto gs = grad_specs(c);
    const std::vector<Tensor> cgh = collect(cg, gs, "", cpu_r);
    const std::vector<Tensor> dgh = collect(dg, gs, "", r);
    for (size_t j = 0; j < gs.size(); j++)
      r.checks.push_back(compare(gs[j].name, to_vec(dgh[j]), to_vec(cgh[j]), f32 ? c.tol.dev_bwd : c.tol.dev_bf16_bwd));
  }
  for (Check ck : cpu_r.checks) ck.what = "(cpu) " + ck.what, r.checks.push_back(ck);  // only failures
  return r;
}

}  // namespace wick::opcheck
