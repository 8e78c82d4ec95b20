#include "ops/validate.h"

namespace wick::ops_detail {

std::string describe(const Arg& a) {
  if (!a.t || !a.t->defined()) return std::string(a.name) + " (undefined)";
  return std::string(a.name) + " " + a.t->str();
}

void fail(const char* op, const Args& involved, const std::string& must, const std::string& hint) {
  std::string s = op;
  s += ": ";
  size_t i = 0;
  for (const Arg& a : involved) {
    if (i) s += (i + 1 == involved.size()) ? " and " : ", ";
    s += describe(a);
    i++;
  }
  if (involved.size()) s += ": ";
  s += must;
  throw Error(s, "", hint);
}

void no_cuda(const char* op) {
  throw Error(std::string(op) + ": a CUDA tensor reached an op in a build of wick without CUDA", "",
              "rebuild with nvcc present (cmake -DWICK_CUDA=ON), or use --device cpu");
}

Device one_device(const char* op, const Args& all) {
  const Arg* first = nullptr;
  for (const Arg& a : all) {
    if (!a.t || !a.t->defined()) fail(op, {a}, std::string(a.name) + " must be a defined tensor");
    if (!first) first = &a;
    else if (a.t->device() != first->t->device())
      fail(op, {*first, a}, "all tensors of one call must be on one device");
  }
  return first ? first->t->device() : Device::cpu();
}

void need_rank(const char* op, Arg a, int rank, const char* dims) {
  if (a.t->ndim() != rank)
    fail(op, {a}, std::string(a.name) + " must be rank " + std::to_string(rank) + " " + dims);
}

void need_shape(const char* op, const Args& involved, Arg a, const Shape& want, const char* symbolic) {
  if (a.t->shape() == want) return;
  fail(op, involved, std::string(a.name) + " must be " + symbolic + " = " + shape_str(want));
}

void need_dtype(const char* op, Arg a, DType want) {
  if (a.t->dtype() != want) fail(op, {a}, std::string(a.name) + " must be " + dtype_name(want));
}

void need_same_dtype(const char* op, Arg a, Arg ref) {
  if (a.t->dtype() == ref.t->dtype()) return;
  const std::string owner = ref.name, poss = owner.back() == 's' ? owner + "'" : owner + "'s";  // logits' / x's
  fail(op, {ref, a}, std::string(a.name) + " must have " + poss + " dtype (" + dtype_name(ref.t->dtype()) + ")");
}

void need_act(const char* op, Arg a) {
  const DType t = a.t->dtype();
  if (a.t->device().is_cpu()) {
    if (t != DType::F32)
      fail(op, {a}, std::string(a.name) + " must be f32: the CPU backend computes this op in f32", "cast to f32 first");
  } else if (t != DType::F32 && t != DType::BF16) {
    fail(op, {a}, std::string(a.name) + " must be f32 or bf16");
  }
}

void need_float(const char* op, Arg a) {
  const DType t = a.t->dtype();
  if (t != DType::F32 && t != DType::BF16) fail(op, {a}, std::string(a.name) + " must be f32 or bf16");
}

void need_index(const char* op, Arg a, bool allow_i64) {
  const DType t = a.t->dtype();
  if (t == DType::I32 || (allow_i64 && t == DType::I64)) return;
  fail(op, {a}, std::string(a.name) + (allow_i64 ? " must be i32 or i64" : " must be i32"));
}

Device check_rows(const char* op, Arg x, const Args& same, const Args& vec, const Args& stats) {
  Args all{x};
  all.insert(all.end(), same.begin(), same.end());
  all.insert(all.end(), vec.begin(), vec.end());
  all.insert(all.end(), stats.begin(), stats.end());
  const Device dev = one_device(op, all);
  need_rank(op, x, 2, "[N, C]");
  need_act(op, x);
  const int64_t N = x.t->dim(0), C = x.t->dim(1);
  for (const Arg& a : same) {
    need_shape(op, {x, a}, a, {N, C}, "[N, C]");
    need_same_dtype(op, a, x);
  }
  for (const Arg& a : vec) {
    need_shape(op, {x, a}, a, {C}, "[C]");
    need_same_dtype(op, a, x);
  }
  for (const Arg& a : stats) {
    need_shape(op, {x, a}, a, {N}, "[N]");
    need_dtype(op, a, DType::F32);
  }
  return dev;
}

}  // namespace wick::ops_detail
