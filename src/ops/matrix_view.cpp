// MatrixView (ops/matrix_view.h): its constructors and the checks every op taking views runs.
#include "ops/matrix_view.h"

#include "ops/validate.h"

namespace wick {

using ops_detail::Arg;
using ops_detail::fail;

MatrixView MatrixView::whole(const Tensor& t) {
  static const char* op = "MatrixView::whole";
  const Arg T{"t", &t};
  ops_detail::one_device(op, {T});
  ops_detail::need_rank(op, T, 2, "[rows, cols]");
  return {&t, 0, t.dim(0), t.dim(1), t.dim(1)};
}

MatrixView MatrixView::columns(const Tensor& t, int64_t first, int64_t count) {
  static const char* op = "MatrixView::columns";
  const Arg T{"t", &t};
  ops_detail::one_device(op, {T});
  ops_detail::need_rank(op, T, 2, "[rows, C]");
  if (first < 0 || count < 0 || first + count > t.dim(1))
    fail(op, {T}, "columns [" + std::to_string(first) + ", " + std::to_string(first + count) +
                      ") must lie inside [0, " + std::to_string(t.dim(1)) + ")");
  return {&t, first, t.dim(0), count, t.dim(1)};
}

namespace ops_detail {

std::string view_str(const char* name, const MatrixView& v) {
  return std::string(name) + "'s view [" + std::to_string(v.rows) + " x " + std::to_string(v.cols) + ", ld " +
         std::to_string(v.ld) + "] at offset " + std::to_string(v.offset);
}

void need_view_inside(const char* op, const char* name, const MatrixView& v) {
  const Arg T{name, v.tensor};
  if (!v.tensor || !v.tensor->defined()) fail(op, {}, std::string(name) + "'s view must be over a defined tensor");
  if (v.offset < 0 || v.rows < 0 || v.cols < 0)
    fail(op, {T}, view_str(name, v) + ": offset, rows and cols must be >= 0");
  if (v.ld < v.cols) fail(op, {T}, view_str(name, v) + ": ld must be >= cols");
  if (v.rows == 0 || v.cols == 0) return;
  const int64_t end = v.offset + (v.rows - 1) * v.ld + v.cols;  // one past its last element
  if (end > v.tensor->numel())
    fail(op, {T}, view_str(name, v) + " must lie inside the tensor: it ends at element " + std::to_string(end) +
                      " > numel " + std::to_string(v.tensor->numel()));
}

bool may_overlap(const MatrixView& x, const MatrixView& y) {
  if (x.rows == 0 || x.cols == 0 || y.rows == 0 || y.cols == 0) return false;
  const int64_t ex = dtype_size(x.tensor->dtype()), ey = dtype_size(y.tensor->dtype());
  const int64_t x0 = reinterpret_cast<intptr_t>(x.tensor->raw()) + x.offset * ex;
  const int64_t y0 = reinterpret_cast<intptr_t>(y.tensor->raw()) + y.offset * ey;
  const int64_t x1 = x0 + ((x.rows - 1) * x.ld + x.cols) * ex, y1 = y0 + ((y.rows - 1) * y.ld + y.cols) * ey;
  if (x1 <= y0 || y1 <= x0) return false;
  const int64_t pitch = x.ld * ex;
  if (pitch != y.ld * ey) return true;
  // Columns as byte ranges on a circle of length pitch: [xs, xs + wx) and [ys, ys + wy).
  const int64_t xs = ((x0 % pitch) + pitch) % pitch, ys = ((y0 % pitch) + pitch) % pitch;
  const int64_t wx = x.cols * ex, wy = y.cols * ey;
  const int64_t d = ((ys - xs) % pitch + pitch) % pitch;  // where y starts, measured from x's start
  return d < wx || d + wy > pitch;
}

}  // namespace ops_detail
}  // namespace wick
