// Internal to the Jinja engine: the work budget of a render and the shared string helpers (jinja_builtins.cpp),
// integer arithmetic (jinja_int.cpp), Python's str/dict/list methods and attribute and item access with
// Jinja2's rules (jinja_methods.cpp: a missing key or attribute is undefined; only undefined objects fail), and
// Jinja2's filters and tests (jinja_filters.cpp).
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace wick::jinja {

// A failure while evaluating; the interpreter adds the template name and line. raised: from raise_exception().
struct EvalError : std::runtime_error {
  explicit EvalError(const std::string& what, bool raised = false) : std::runtime_error(what), raised(raised) {}
  bool raised;
};

constexpr size_t kMaxString = size_t(64) << 20;  // longer results are refused (a template doubling a string)

// ---- integers (jinja_int.cpp) ----
// Jinja2 computes with Python's unbounded integers, wick with int64. An operation whose exact result leaves
// int64 is an EvalError naming it ("integer overflow: 2 ** 63 is beyond 64 bits"), never a wrapped value nor
// C++'s undefined behaviour (found by fuzz_chat_template, session 24: 434444444444054 * -444444440531).
// Every result that fits is Python's.
int64_t int_add(int64_t a, int64_t b);
int64_t int_sub(int64_t a, int64_t b);
int64_t int_mul(int64_t a, int64_t b);
int64_t int_neg(int64_t a);
int64_t int_abs(int64_t a);
int64_t int_pow(int64_t base, int64_t exp);  // exp >= 0
// Python's // and % (the remainder takes the divisor's sign); b != 0.
int64_t int_floordiv(int64_t a, int64_t b);
int64_t int_mod(int64_t a, int64_t b);
// int(d): d truncated toward zero; d must be finite (the callers decide what NaN and infinities give).
int64_t int_of_double(double d);
// How many items from, from + step, ... stop before `to` (Python's len(range(from, to, step))), step != 0; in 128
// bits, as any int64 bounds and step may be given (range() and slices).
__int128 step_count(int64_t from, int64_t to, int64_t step);

// ---- the work budget of a render ----
// A chat template comes with the model, from anywhere, and `wick serve` renders one per request: no template
// may keep wick busy for long. A render counts its work in steps and stops past kMaxSteps with EvalError
// ("the template ran more than 2000000 steps ..."; the interpreter names the line). Steps:
//   - one per statement run and per expression evaluated; a loop iteration and a macro call one more each;
//   - one per item of a list or dict that an operation walks, copies or builds (range() items included);
//   - one per 128 bytes of a string that an operation reads or writes (output and captured text included),
//     and one per 8 bytes of a string split into characters (a small string or a value each).
// So every step is a bounded amount of work (tens of nanoseconds), whatever the values' sizes: a render ends
// within about a second without sanitizers (0.1-0.2 s for the hostile cases of Jinja.EveryStepIsBoundedWork),
// having built at most ~256 MB of strings. The Qwen 3 template takes ~80 steps a short message and ~1 step
// per 20 bytes of a long one: 20,000 messages, or 30 MB of text (millions of tokens), fit.
constexpr int64_t kMaxSteps = 2000000;
constexpr int64_t str_steps(size_t bytes) { return static_cast<int64_t>(bytes >> 7); }
constexpr int64_t char_steps(size_t bytes) { return static_cast<int64_t>(bytes >> 3); }

// The step count of the render running on this thread: made by the interpreter for one render, current on
// its thread until destroyed (renders on other threads have their own).
class StepBudget {
 public:
  StepBudget();
  ~StepBudget();
  StepBudget(const StepBudget&) = delete;
  StepBudget& operator=(const StepBudget&) = delete;
  // Adds n steps; EvalError once more than kMaxSteps have been spent.
  void spend(int64_t n) {
    used_ += n;
    if (used_ > kMaxSteps) exceeded();
  }
  int64_t used() const { return used_; }

 private:
  [[noreturn]] static void exceeded();
  int64_t used_ = 0;
  StepBudget* prev_;
};

// Adds n steps to the render running on this thread (nothing outside a render).
void charge(int64_t n);

// ---- helpers of the str methods (jinja_methods.cpp) and the filters (jinja_filters.cpp); jinja_builtins.cpp ----
// Argument k (by position or name), or def; a copy, so a temporary default is safe to keep.
Value arg(const CallArgs& a, size_t k, const char* name, const Value& def);
// v itself, or EvalError "<what> expects a string / an integer, got '<type>'".
std::string need_str(const Value& v, const std::string& what);
int64_t need_int(const Value& v, const std::string& what);
std::string map_case(const std::string& s, int mode /*0 lower, 1 upper, 2 title, 3 capitalize*/);
// Python's str.strip() / strip(chars) (left, right: lstrip, rstrip), split(sep, maxsplit), replace(from, to,
// count) and splitlines().
std::string strip_ws(const std::string& s, bool left, bool right);
std::string strip_chars(const std::string& s, const std::string& chars, bool left, bool right);
Value split_value(const std::string& s, const Value& sep, int64_t maxsplit);
std::string replace_all(const std::string& s, const std::string& from, const std::string& to, int64_t count);
std::vector<std::string> splitlines(const std::string& s);

// ---- jinja_methods.cpp ----
Value get_attr(const Value& obj, const std::string& name);  // obj.name
Value get_item(const Value& obj, const Value& key);         // obj[key]
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

// ---- jinja_filters.cpp ----
Value apply_filter(const std::string& name, const Value& v, const CallArgs& args);
bool apply_test(const std::string& name, const Value& v, const CallArgs& args);

// The items a for loop visits: a list's items, a dict's keys, a string's characters; undefined -> none.
List iterate(const Value& v);

// "'name' is undefined" or the reason the undefined value carries.
std::string undefined_message(const Value& v);

}  // namespace wick::jinja
