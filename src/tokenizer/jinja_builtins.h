// Internal to the Jinja engine: Jinja2's filters and tests, Python's str/dict/list methods, and attribute
// and item access with Jinja2's rules (a missing key or attribute is undefined; only undefined objects fail).
#pragma once
#include <stdexcept>
#include <string>

#include "tokenizer/jinja_value.h"

namespace wick::jinja {

// A failure while evaluating; the interpreter adds the template name and line. raised: from raise_exception().
struct EvalError : std::runtime_error {
  explicit EvalError(const std::string& what, bool raised = false) : std::runtime_error(what), raised(raised) {}
  bool raised;
};

constexpr size_t kMaxString = size_t(64) << 20;  // longer results are refused (a template doubling a string)

Value get_attr(const Value& obj, const std::string& name);  // obj.name
Value get_item(const Value& obj, const Value& key);         // obj[key]
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

Value apply_filter(const std::string& name, const Value& v, const CallArgs& args);
bool apply_test(const std::string& name, const Value& v, const CallArgs& args);

// The items a for loop visits: a list's items, a dict's keys, a string's characters; undefined -> none.
List iterate(const Value& v);

// "'name' is undefined" or the reason the undefined value carries.
std::string undefined_message(const Value& v);

}  // namespace wick::jinja
