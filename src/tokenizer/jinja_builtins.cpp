// The Jinja engine's shared pieces: the work budget of a render (jinja_builtins.h says what a step is), the
// string helpers of Python's str methods (jinja_methods.cpp) and Jinja2's filters (jinja_filters.cpp), and the
// iteration of a value as a for loop sees it.
#include "tokenizer/jinja_builtins.h"

#include <algorithm>

#include <utf8proc.h>

#include "tokenizer/jinja_lexer.h"
#include "tokenizer/utf8.h"

namespace wick::jinja {

namespace {
thread_local StepBudget* current_budget = nullptr;
}  // namespace

StepBudget::StepBudget() : prev_(current_budget) { current_budget = this; }
StepBudget::~StepBudget() { current_budget = prev_; }

void StepBudget::exceeded() {
  throw EvalError("the template ran more than " + std::to_string(kMaxSteps) +
                  " steps (statements, expressions, loop iterations, macro calls, items and bytes of data handled; "
                  "a runaway loop?)");
}

void charge(int64_t n) {
  if (current_budget) current_budget->spend(n);
}

// Argument k (by position or name), or def; a copy, so a temporary default is safe to keep.
Value arg(const CallArgs& a, size_t k, const char* name, const Value& def) {
  const Value* v = a.get(k, name);
  return v ? *v : def;
}

std::string need_str(const Value& v, const std::string& what) {
  if (v.is_undefined()) throw EvalError(undefined_message(v));
  if (!v.is_string()) throw EvalError(what + " expects a string, got '" + v.type_name() + "'");
  charge(str_steps(v.str().size()));  // a copy
  return v.str();
}

int64_t need_int(const Value& v, const std::string& what) {
  if (v.type != Value::Type::Int && v.type != Value::Type::Bool) throw EvalError(what + " expects an integer, got '" + v.type_name() + "'");
  return v.as_int();
}

// Case mapping per code point (utf8proc's simple mappings, as Python's for all but a few special cases).
std::string map_case(const std::string& s, int mode /*0 lower, 1 upper, 2 title, 3 capitalize*/) {
  std::string out;
  bool prev_cased = false, first = true;
  for (const std::string& ch : code_points(s)) {
    utf8proc_int32_t cp;
    if (utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(ch.data()), static_cast<utf8proc_ssize_t>(ch.size()), &cp) < 0) {
      out += ch;
      continue;
    }
    utf8proc_int32_t m = cp;
    if (mode == 0) m = utf8proc_tolower(cp);
    else if (mode == 1) m = utf8proc_toupper(cp);
    else if (mode == 2) m = prev_cased ? utf8proc_tolower(cp) : utf8proc_totitle(cp);
    else m = first ? utf8proc_totitle(cp) : utf8proc_tolower(cp);
    const utf8proc_category_t cat = utf8proc_category(cp);
    prev_cased = cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT;
    first = false;
    utf8proc_uint8_t buf[4];
    const auto n = utf8proc_encode_char(m, buf);
    out.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
  }
  return out;
}

// py_strip, charged: the copy by its bytes, the whitespace it decoded (character by character) by its length.
std::string strip_ws(const std::string& s, bool left, bool right) {
  std::string out = py_strip(s, left, right);
  charge(str_steps(s.size()) + char_steps(s.size() - out.size()));
  return out;
}

// Python's str.strip(chars) with explicit characters (each code point of chars is stripped). The characters
// are those code_points() splits s into, walked in place: a left strip looks only at what it strips, a right
// strip scans forward from there (a stray byte is a character of its own, as code_points has it); chars is
// a sorted set, so each character costs a few comparisons however long chars is.
std::string strip_chars(const std::string& s, const std::string& chars, bool left, bool right) {
  auto key = [](const char* p, size_t n) {  // a character (1-4 bytes) as one number
    uint64_t k = n;
    for (size_t i = 0; i < n; i++) k |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * (i + 1));
    return k;
  };
  std::vector<uint64_t> set;
  for (const std::string& c : code_points(chars)) set.push_back(key(c.data(), c.size()));
  std::sort(set.begin(), set.end());
  auto in = [&](size_t at, size_t n) { return std::binary_search(set.begin(), set.end(), key(s.data() + at, n)); };
  size_t a = 0, b = s.size();
  if (left)
    while (a < b) {
      const size_t n = tok::utf8_char_len(s, a);
      if (!in(a, n)) break;
      a += n;
    }
  if (right) {
    size_t run = std::string::npos;  // where the trailing run of stripped characters starts
    for (size_t k = a; k < b;) {
      const size_t n = tok::utf8_char_len(s, k);
      if (!in(k, n)) run = std::string::npos;
      else if (run == std::string::npos) run = k;
      k += n;
    }
    if (run != std::string::npos) b = run;
  }
  charge(char_steps(right ? s.size() : a) + str_steps(b - a));  // the characters looked at, and the copy
  return s.substr(a, b - a);
}

// Python's str.split(sep=None, maxsplit=-1).
Value split_value(const std::string& s, const Value& sep, int64_t maxsplit) {
  List out;
  if (sep.is_none() || sep.is_undefined()) {
    const std::vector<std::string> cps = code_points(s);
    auto space = [&](size_t k) {
      utf8proc_int32_t cp;
      utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(cps[k].data()), static_cast<utf8proc_ssize_t>(cps[k].size()), &cp);
      return py_isspace(static_cast<uint32_t>(cp));
    };
    size_t k = 0;
    while (k < cps.size()) {
      while (k < cps.size() && space(k)) k++;
      if (k >= cps.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
        std::string rest;
        for (size_t j = k; j < cps.size(); j++) rest += cps[j];
        out.push_back(Value::string(py_strip(rest, false, true)));
        return Value::of_list(std::move(out));
      }
      std::string w;
      while (k < cps.size() && !space(k)) w += cps[k++];
      charge(1);  // a part
      out.push_back(Value::string(w));
    }
    return Value::of_list(std::move(out));
  }
  const std::string d = need_str(sep, "split");
  if (d.empty()) throw EvalError("split(): empty separator");
  charge(2 * str_steps(s.size()));  // read, and copied into the parts
  size_t pos = 0;
  for (;;) {
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) break;
    const size_t at = s.find(d, pos);
    if (at == std::string::npos) break;
    charge(1);  // a part
    out.push_back(Value::string(s.substr(pos, at - pos)));
    pos = at + d.size();
  }
  out.push_back(Value::string(s.substr(pos)));
  return Value::of_list(std::move(out));
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
  charge(str_steps(s.size()));
  std::string out;
  if (from.empty()) {  // Python inserts `to` between every character (and at both ends)
    const std::vector<std::string> cps = code_points(s);
    int64_t done = 0;
    for (size_t k = 0; k <= cps.size(); k++) {
      if (count < 0 || done < count) { out += to; done++; }
      if (k < cps.size()) out += cps[k];
      if (out.size() > kMaxString) throw EvalError("string longer than 64 MiB");
    }
    charge(str_steps(out.size()));
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  for (;;) {
    const size_t at = s.find(from, pos);
    if (at == std::string::npos || (count >= 0 && done >= count)) break;
    out.append(s, pos, at - pos).append(to);
    pos = at + from.size();
    done++;
    if (out.size() > kMaxString) throw EvalError("string longer than 64 MiB");
  }
  out.append(s, pos, std::string::npos);
  charge(str_steps(out.size()));
  return out;
}

// Python's str.splitlines() line boundaries.
std::vector<std::string> splitlines(const std::string& s) {
  charge(2 * str_steps(s.size()));  // read, and copied into the lines
  std::vector<std::string> out;
  std::string cur;
  for (size_t k = 0; k < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[k]);
    size_t brk = 0;
    if (c == '\r') brk = k + 1 < s.size() && s[k + 1] == '\n' ? 2 : 1;
    else if (c == '\n' || c == '\v' || c == '\f' || (c >= 0x1c && c <= 0x1e)) brk = 1;
    else if (c == 0xC2 && k + 1 < s.size() && static_cast<unsigned char>(s[k + 1]) == 0x85) brk = 2;
    else if (c == 0xE2 && k + 2 < s.size() && static_cast<unsigned char>(s[k + 1]) == 0x80 &&
             (static_cast<unsigned char>(s[k + 2]) == 0xA8 || static_cast<unsigned char>(s[k + 2]) == 0xA9)) brk = 3;
    if (brk) {
      charge(1);  // a line
      out.push_back(cur);
      cur.clear();
      k += brk;
    } else {
      cur.push_back(s[k++]);
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

std::string undefined_message(const Value& v) { return v.name.empty() ? "a value is undefined" : v.name; }

List iterate(const Value& v) {
  switch (v.type) {
    case Value::Type::List: charge(static_cast<int64_t>(v.list->size())); return *v.list;
    case Value::Type::Dict: {
      charge(static_cast<int64_t>(v.dict->items.size()));
      List l;
      for (const auto& [k, x] : v.dict->items) l.push_back(Value::string(k));
      return l;
    }
    case Value::Type::String: {
      charge(static_cast<int64_t>(code_point_count(v.str())));  // a value each (code_points charges the split)
      List l;
      for (auto& c : code_points(v.str())) l.push_back(Value::string(c));
      return l;
    }
    case Value::Type::Undefined: return {};
    default: throw EvalError("'" + v.type_name() + "' object is not iterable");
  }
}

}  // namespace wick::jinja
