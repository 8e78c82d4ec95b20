// 64-bit integer arithmetic with Python's results, or an EvalError where Python's would leave int64
// (jinja_builtins.h says why).
#include <cmath>
#include <string>

#include "tokenizer/jinja_builtins.h"

namespace wick::jinja {
namespace {

[[noreturn]] void overflow(int64_t a, const char* op, int64_t b) {
  throw EvalError("integer overflow: " + std::to_string(a) + " " + op + " " + std::to_string(b) +
                  " is beyond 64 bits (wick's templates compute with 64-bit integers)");
}

}  // namespace

int64_t int_add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) overflow(a, "+", b);
  return r;
}

int64_t int_sub(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) overflow(a, "-", b);
  return r;
}

int64_t int_mul(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) overflow(a, "*", b);
  return r;
}

int64_t int_neg(int64_t a) {
  if (a == INT64_MIN) throw EvalError("integer overflow: -(" + std::to_string(a) + ") is beyond 64 bits");
  return -a;
}

int64_t int_abs(int64_t a) {
  if (a == INT64_MIN) throw EvalError("integer overflow: abs(" + std::to_string(a) + ") is beyond 64 bits");
  return a < 0 ? -a : a;
}

int64_t int_pow(int64_t base, int64_t exp) {
  // 0, 1 and -1 to any power without looping (exp may be 10**18); otherwise the result's magnitude at least
  // doubles with each factor, so more than 63 factors overflow, and squaring stops at the first overflow.
  if (exp == 0 || base == 1) return 1;
  if (base == 0) return 0;
  if (base == -1) return exp % 2 == 0 ? 1 : -1;
  if (exp > 63) overflow(base, "**", exp);
  int64_t result = 1, b = base, e = exp;
  while (true) {
    if (e & 1) {
      if (__builtin_mul_overflow(result, b, &result)) overflow(base, "**", exp);
    }
    e >>= 1;
    if (e == 0) return result;
    if (__builtin_mul_overflow(b, b, &b)) overflow(base, "**", exp);
  }
}

int64_t int_floordiv(int64_t a, int64_t b) {
  if (b == -1) return int_neg(a);  // a / -1 is the one quotient that can leave int64 (and C++'s is undefined)
  int64_t q = a / b;
  if (a % b != 0 && ((a % b < 0) != (b < 0))) q--;
  return q;
}

int64_t int_mod(int64_t a, int64_t b) {
  if (b == -1) return 0;  // INT64_MIN % -1 is undefined in C++, 0 in Python
  int64_t m = a % b;
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  return m;
}

__int128 step_count(int64_t from, int64_t to, int64_t step) {
  const __int128 span = step > 0 ? static_cast<__int128>(to) - from : static_cast<__int128>(from) - to;
  const __int128 stride = step > 0 ? static_cast<__int128>(step) : -static_cast<__int128>(step);
  return span <= 0 ? 0 : (span + stride - 1) / stride;
}

int64_t int_of_double(double d) {
  const double t = std::trunc(d);
  // [-2^63, 2^63): both bounds are exact doubles.
  if (!(t >= -9223372036854775808.0 && t < 9223372036854775808.0))
    throw EvalError("integer overflow: int(" + std::to_string(d) + ") is beyond 64 bits");
  return static_cast<int64_t>(t);
}

}  // namespace wick::jinja
