#include "tokenizer/jinja_builtins.h"

#include <algorithm>
#include <charconv>
#include <string_view>
#include <cmath>
#include <cstdlib>

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

namespace {

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

Value strip_value(const Value& self, const CallArgs& a, bool left, bool right) {
  const std::string s = need_str(self, "strip");
  const Value chars = arg(a, 0, "chars", Value::none());
  if (chars.is_none()) return Value::string(strip_ws(s, left, right));
  return Value::string(strip_chars(s, need_str(chars, "strip"), left, right));
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

bool starts_or_ends(const std::string& s, const Value& what, bool start) {
  auto one = [&](const std::string& p) {
    return p.size() <= s.size() && (start ? s.compare(0, p.size(), p) == 0 : s.compare(s.size() - p.size(), p.size(), p) == 0);
  };
  if (what.is_list()) {
    charge(static_cast<int64_t>(what.list->size()));
    for (const Value& x : *what.list)
      if (one(need_str(x, start ? "startswith" : "endswith"))) return true;
    return false;
  }
  return one(need_str(what, start ? "startswith" : "endswith"));
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

Value method(const Value& self, const std::string& name, Function f) {
  (void)self;
  return Value::function(name, std::move(f));
}

Value string_attr(const Value& self, const std::string& name) {
  // The methods hold self (its text shared), not a copy of the text.
  const std::string_view nv = name;  // compared by length first, not strlen + memcmp
  if (nv == "strip" || nv == "lstrip" || nv == "rstrip")
    return method(self, name, [self, name](CallArgs& a) { return strip_value(self, a, name != "rstrip", name != "lstrip"); });
  if (nv == "split")
    return method(self, name, [self](CallArgs& a) {
      const std::string& s = self.str();
      return split_value(s, arg(a, 0, "sep", Value::none()), need_int(arg(a, 1, "maxsplit", Value::integer(-1)), "split"));
    });
  if (nv == "splitlines")
    return method(self, name, [self](CallArgs&) {
      const std::string& s = self.str();
      List l;
      for (auto& x : splitlines(s)) l.push_back(Value::string(x));
      return Value::of_list(std::move(l));
    });
  if (nv == "startswith" || nv == "endswith")
    return method(self, name, [self, name](CallArgs& a) {
      const std::string& s = self.str();
      const Value* p = a.get(0, "prefix");
      if (!p) throw EvalError(name + "() takes a prefix");
      return Value::boolean(starts_or_ends(s, *p, name == "startswith"));
    });
  if (nv == "upper" || nv == "lower" || nv == "title" || nv == "capitalize")
    return method(self, name, [self, name](CallArgs&) {
      const std::string& s = self.str();
      return Value::string(map_case(s, name == "lower" ? 0 : name == "upper" ? 1 : name == "title" ? 2 : 3));
    });
  if (nv == "replace")
    return method(self, name, [self](CallArgs& a) {
      const std::string& s = self.str();
      const Value* from = a.get(0, "old");
      const Value* to = a.get(1, "new");
      if (!from || !to) throw EvalError("replace() takes old and new");
      return Value::string(replace_all(s, need_str(*from, "replace"), need_str(*to, "replace"),
                                       need_int(arg(a, 2, "count", Value::integer(-1)), "replace")));
    });
  if (nv == "find" || nv == "rfind" || nv == "count" || nv == "index")
    return method(self, name, [self, name](CallArgs& a) {
      const std::string& s = self.str();
      const Value* sub = a.get(0, "sub");
      if (!sub) throw EvalError(name + "() takes a substring");
      const std::string x = need_str(*sub, name);
      charge(str_steps(s.size()));
      if (name == "count") {
        if (x.empty()) return Value::integer(static_cast<int64_t>(code_point_count(s)) + 1);
        int64_t n = 0;
        for (size_t p = s.find(x); p != std::string::npos; p = s.find(x, p + x.size())) n++;
        return Value::integer(n);
      }
      const size_t at = name == "rfind" ? s.rfind(x) : s.find(x);
      if (at == std::string::npos) {
        if (name == "index") throw EvalError("substring not found");
        return Value::integer(-1);
      }
      return Value::integer(static_cast<int64_t>(code_point_count(s.substr(0, at))));
    });
  if (nv == "join")
    return method(self, name, [self](CallArgs& a) {
      const std::string& s = self.str();
      const Value* it = a.get(0, "iterable");
      if (!it) throw EvalError("join() takes an iterable");
      std::string out;
      bool first = true;
      for (const Value& x : iterate(*it)) {
        if (!first) out += s;
        out += need_str(x, "join");
        if (out.size() > kMaxString) throw EvalError("string longer than 64 MiB");
        charge(1 + str_steps(s.size()));  // the item (copied above: charged) and the separator
        first = false;
      }
      return Value::string(out);
    });
  if (nv == "isdigit" || nv == "isalpha" || nv == "isspace" || nv == "isalnum" || nv == "islower" || nv == "isupper")
    return method(self, name, [self, name](CallArgs&) {
      const std::string& s = self.str();
      if (s.empty()) return Value::boolean(false);
      bool any_cased = false;
      for (const std::string& ch : code_points(s)) {
        utf8proc_int32_t cp;
        utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(ch.data()), static_cast<utf8proc_ssize_t>(ch.size()), &cp);
        const auto cat = utf8proc_category(cp);
        const bool alpha = cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
        const bool digit = cat == UTF8PROC_CATEGORY_ND;
        const bool lower = cat == UTF8PROC_CATEGORY_LL, upper = cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LT;
        any_cased |= lower || upper;
        bool ok = name == "isdigit" ? digit : name == "isalpha" ? alpha : name == "isalnum" ? alpha || digit
                : name == "isspace" ? py_isspace(static_cast<uint32_t>(cp)) : name == "islower" ? !upper : !lower;
        if (!ok) return Value::boolean(false);
      }
      if (name == "islower" || name == "isupper") return Value::boolean(any_cased);
      return Value::boolean(true);
    });
  return Value::undefined("'str object' has no attribute '" + name + "'");
}

Value dict_attr(const Value& self, const std::string& name) {
  const std::string_view nv = name;  // compared by length first, not strlen + memcmp
  if (nv == "items" || nv == "keys" || nv == "values")
    return method(self, name, [self, name](CallArgs&) {
      charge(static_cast<int64_t>(self.dict->items.size()));
      List l;
      for (const auto& [k, v] : self.dict->items) {
        if (name == "items") l.push_back(Value::of_list({Value::string(k), v}, true));
        else l.push_back(name == "keys" ? Value::string(k) : v);
      }
      return Value::of_list(std::move(l));
    });
  if (nv == "get")
    return method(self, name, [self](CallArgs& a) {
      const Value* k = a.get(0, "key");
      if (!k) throw EvalError("get() takes a key");
      if (k->is_string())
        if (const Value* v = self.dict->find(k->str())) return *v;
      return arg(a, 1, "default", Value::none());
    });
  static const char* const mutating[] = {"update", "pop", "popitem", "setdefault", "clear"};
  for (const char* m : mutating)
    if (nv == m)
      return method(self, name, [name](CallArgs&) -> Value {
        throw EvalError("access to attribute '" + name + "' of 'dict' object is unsafe (templates cannot change dicts)");
      });
  if (const Value* v = self.dict->find(name)) return *v;
  return Value::undefined("'dict object' has no attribute '" + name + "'");
}

Value list_attr(const Value& self, const std::string& name) {
  const std::string_view nv = name;  // compared by length first, not strlen + memcmp
  if (nv == "index" || nv == "count")
    return method(self, name, [self, name](CallArgs& a) {
      const Value* x = a.get(0, "value");
      if (!x) throw EvalError(name + "() takes a value");
      int64_t n = 0;
      charge(static_cast<int64_t>(self.list->size()));
      for (size_t k = 0; k < self.list->size(); k++)
        if (equal((*self.list)[k], *x)) {
          if (name == "index") return Value::integer(static_cast<int64_t>(k));
          n++;
        }
      if (name == "index") throw EvalError("value is not in list");
      return Value::integer(n);
    });
  static const char* const mutating[] = {"append", "extend", "insert", "pop", "remove", "sort", "reverse", "clear"};
  for (const char* m : mutating)
    if (nv == m)
      return method(self, name, [name](CallArgs&) -> Value {
        throw EvalError("access to attribute '" + name + "' of 'list' object is unsafe (templates cannot change lists; "
                        "use a namespace() or list concatenation)");
      });
  return Value::undefined("'list object' has no attribute '" + name + "'");
}

std::string html_escape(const std::string& s) {
  charge(str_steps(s.size()) * 2);  // read and written
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

// Attribute lookup for map/selectattr/sort: "a.b" walks nested attributes; numbers index lists.
Value attr_path(const Value& v, const std::string& path) {
  charge(str_steps(path.size()));
  Value cur = v;
  size_t pos = 0;
  while (pos <= path.size()) {
    const size_t dot = path.find('.', pos);
    const std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    if (!part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      int64_t index = 0;
      const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), index);
      if (ec != std::errc() || end != part.data() + part.size())
        throw EvalError("attribute index '" + part + "' is out of range");
      cur = get_item(cur, Value::integer(index));
    } else {
      cur = get_item(cur, Value::string(part));
    }
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  return cur;
}

CallArgs rest_args(const CallArgs& a, size_t from) {
  CallArgs r;
  for (size_t k = from; k < a.pos.size(); k++) r.pos.push_back(a.pos[k]);
  r.kw = a.kw;
  return r;
}

Value select_filter(const Value& v, const CallArgs& a, bool by_attr, bool keep) {
  List out;
  const size_t first_test = by_attr ? 1 : 0;
  std::string attribute;
  if (by_attr) attribute = need_str(arg(a, 0, "attribute", Value::undefined("selectattr needs an attribute")), "selectattr");
  const Value* test = a.pos.size() > first_test ? &a.pos[first_test] : nullptr;
  CallArgs targs = rest_args(a, first_test + 1);
  targs.kw.clear();
  for (const Value& x : iterate(v)) {
    charge(1);
    const Value subject = by_attr ? attr_path(x, attribute) : x;
    const bool ok = test ? apply_test(need_str(*test, "select"), subject, targs) : subject.truthy();
    if (ok == keep) out.push_back(x);
  }
  return Value::of_list(std::move(out));
}

Value sort_list(const Value& v, const CallArgs& a) {
  List l = iterate(v);
  charge(static_cast<int64_t>(l.size()) * (1 + static_cast<int64_t>(std::log2(static_cast<double>(l.size()) + 1))));
  const bool reverse = arg(a, 0, "reverse", Value::boolean(false)).truthy();
  const bool case_sensitive = arg(a, 1, "case_sensitive", Value::boolean(false)).truthy();
  const Value attribute = arg(a, 2, "attribute", Value::none());
  auto key = [&](const Value& x) {
    Value k = attribute.is_string() ? attr_path(x, attribute.str()) : x;
    if (!case_sensitive && k.is_string()) k = Value::string(map_case(k.str(), 0));
    return k;
  };
  std::stable_sort(l.begin(), l.end(), [&](const Value& x, const Value& y) {
    int c;
    if (!compare(key(x), key(y), c)) throw EvalError("sort: cannot compare '" + x.type_name() + "' and '" + y.type_name() + "'");
    return reverse ? c > 0 : c < 0;
  });
  return Value::of_list(std::move(l));
}

// Jinja2's indent filter.
std::string indent(const std::string& s0, const Value& width, bool first, bool blank) {
  const int64_t w = width.is_string() ? 0 : std::max<int64_t>(0, need_int(width, "indent"));
  if (w > static_cast<int64_t>(kMaxString)) throw EvalError("indent width beyond 64 MiB");
  const std::string ind = width.is_string() ? width.str() : std::string(static_cast<size_t>(w), ' ');
  const std::vector<std::string> lines = splitlines(s0 + "\n");
  std::string rv = first ? ind : "";
  for (size_t k = 0; k < lines.size(); k++) {
    if (k) {
      rv.push_back('\n');
      if (blank || !lines[k].empty()) rv.append(ind);
    }
    rv.append(lines[k]);
    if (rv.size() > kMaxString) throw EvalError("string longer than 64 MiB");
  }
  charge(str_steps(rv.size()));
  return rv;
}

std::string ascii_escape(const std::string& json) {
  std::string out;
  for (const std::string& ch : code_points(json)) {
    if (static_cast<unsigned char>(ch[0]) < 0x80) { out += ch; continue; }
    utf8proc_int32_t cp;
    utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(ch.data()), static_cast<utf8proc_ssize_t>(ch.size()), &cp);
    char b[16];
    if (cp >= 0x10000) {
      const int32_t v = cp - 0x10000;
      std::snprintf(b, sizeof(b), "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
    } else {
      std::snprintf(b, sizeof(b), "\\u%04x", cp);
    }
    out += b;
  }
  return out;
}

Value tojson(const Value& v, const CallArgs& a) {
  const Value ind = arg(a, 0, "indent", Value::none());
  const bool ensure_ascii = arg(a, 99, "ensure_ascii", Value::boolean(false)).truthy();
  const bool sort_keys = arg(a, 99, "sort_keys", Value::boolean(false)).truthy();
  const Value seps = arg(a, 99, "separators", Value::none());
  int indent_n = -1;
  if (!ind.is_none()) {
    const int64_t n = need_int(ind, "tojson indent");
    if (n > 4096) throw EvalError("tojson indent " + std::to_string(n) + " is beyond 4096");
    indent_n = static_cast<int>(n);
  }
  std::string out;
  if (seps.is_none()) {
    out = to_json(v, indent_n, sort_keys);
  } else {
    if (!seps.is_list() || seps.list->size() != 2 || !(*seps.list)[0].is_string() || !(*seps.list)[1].is_string())
      throw EvalError("tojson: separators must be a pair of strings");
    out = to_json(v, indent_n, sort_keys, &(*seps.list)[0].str(), &(*seps.list)[1].str());
  }
  charge(str_steps(out.size()));
  if (ensure_ascii) out = ascii_escape(out);
  return Value::string(out);
}

}  // namespace

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

Value get_attr(const Value& obj, const std::string& name) {
  switch (obj.type) {
    case Value::Type::Undefined: throw EvalError(undefined_message(obj) + " (reading its attribute '" + name + "')");
    case Value::Type::String: return string_attr(obj, name);
    case Value::Type::Dict:
      if (obj.dict->is_namespace) {
        if (const Value* v = obj.dict->find(name)) return *v;
        return Value::undefined("the namespace has no attribute '" + name + "'");
      }
      return dict_attr(obj, name);
    case Value::Type::List: return list_attr(obj, name);
    default: return Value::undefined("'" + obj.type_name() + "' object has no attribute '" + name + "'");
  }
}

Value get_item(const Value& obj, const Value& key) {
  switch (obj.type) {
    case Value::Type::Undefined: throw EvalError(undefined_message(obj) + " (reading an item of it)");
    case Value::Type::Dict:
      if (key.is_string()) {
        if (const Value* v = obj.dict->find(key.str())) return *v;
        return get_attr(obj, key.str());
      }
      return Value::undefined("dict has no such key");
    case Value::Type::List:
    case Value::Type::String: {
      if (key.type != Value::Type::Int && key.type != Value::Type::Bool) {
        if (key.is_string()) return get_attr(obj, key.str());
        throw EvalError("indices must be integers, not '" + key.type_name() + "'");
      }
      int64_t k = key.as_int();
      if (obj.is_list()) {
        const int64_t n = static_cast<int64_t>(obj.list->size());
        if (k < 0) k += n;
        if (k < 0 || k >= n) return Value::undefined("list index " + std::to_string(key.as_int()) + " out of range");
        return (*obj.list)[static_cast<size_t>(k)];
      }
      const std::vector<std::string> cps = code_points(obj.str());
      const int64_t n = static_cast<int64_t>(cps.size());
      if (k < 0) k += n;
      if (k < 0 || k >= n) return Value::undefined("string index " + std::to_string(key.as_int()) + " out of range");
      return Value::string(cps[static_cast<size_t>(k)]);
    }
    default: return Value::undefined("'" + obj.type_name() + "' object is not subscriptable");
  }
}

Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (obj.is_undefined()) throw EvalError(undefined_message(obj) + " (sliced)");
  if (!obj.is_list() && !obj.is_string()) throw EvalError("'" + obj.type_name() + "' object cannot be sliced");
  std::vector<std::string> cps;
  int64_t n;
  if (obj.is_string()) {
    cps = code_points(obj.str());
    n = static_cast<int64_t>(cps.size());
  } else {
    n = static_cast<int64_t>(obj.list->size());
  }
  const int64_t st = step.is_none() ? 1 : need_int(step, "slice step");
  if (st == 0) throw EvalError("slice step cannot be zero");
  // Python's slice.indices
  auto clamp = [&](const Value& v, int64_t def) {
    if (v.is_none()) return def;
    int64_t x = need_int(v, "slice bound");
    if (x < 0) x += n;
    if (st > 0) return std::clamp<int64_t>(x, 0, n);
    return std::clamp<int64_t>(x, -1, n - 1);
  };
  const int64_t a = clamp(start, st > 0 ? 0 : n - 1), b = clamp(stop, st > 0 ? n : -1);
  // How many items: in 128 bits, as the step may be any int64 (a + i st stays inside [-1, n] for i < count).
  const __int128 span = st > 0 ? static_cast<__int128>(b) - a : static_cast<__int128>(a) - b;
  const __int128 stride = st > 0 ? static_cast<__int128>(st) : -static_cast<__int128>(st);
  const int64_t count = span <= 0 ? 0 : static_cast<int64_t>((span + stride - 1) / stride);
  if (!obj.is_string()) charge(count);  // what is copied (a string's characters were charged by code_points)
  List l;
  std::string s;
  for (int64_t i = 0; i < count; i++) {
    const size_t k = static_cast<size_t>(a + i * st);
    if (obj.is_string()) s += cps[k];
    else l.push_back((*obj.list)[k]);
  }
  if (obj.is_string()) return Value::string(std::move(s));
  return Value::of_list(std::move(l), obj.is_tuple);
}

namespace {
// Python's float(s) for a stripped s: decimal or scientific notation, inf / infinity / nan in any case, values
// beyond a double as +-inf and below it as 0 (strtod's results); hexadecimal and anything else is not a number.
bool python_float(const std::string& s, double& d) {
  if (s.empty() || s.find_first_of("xX(") != std::string::npos) return false;
  char* end = nullptr;
  d = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}
}  // namespace

Value apply_filter(const std::string& name, const Value& v, const CallArgs& a) {
  const std::string& n = name;
  const std::string_view nv = n;  // compared by length first, not strlen + memcmp
  if (nv == "safe") return v;
  if (nv == "trim") {
    const Value chars = arg(a, 0, "chars", Value::none());
    const std::string s = to_str(v);
    if (chars.is_none()) return Value::string(strip_ws(s, true, true));
    return Value::string(strip_chars(s, need_str(chars, "trim"), true, true));
  }
  if (nv == "tojson") return tojson(v, a);
  if (nv == "length" || nv == "count") {
    if (v.is_string()) {
      charge(str_steps(v.str().size()));
      return Value::integer(static_cast<int64_t>(code_point_count(v.str())));
    }
    if (v.is_list()) return Value::integer(static_cast<int64_t>(v.list->size()));
    if (v.is_dict()) return Value::integer(static_cast<int64_t>(v.dict->items.size()));
    if (v.is_undefined()) return Value::integer(0);
    throw EvalError("object of type '" + v.type_name() + "' has no len()");
  }
  if (nv == "items") {
    if (v.is_undefined()) return Value::of_list({});
    if (!v.is_dict()) throw EvalError("items filter expects a mapping, got '" + v.type_name() + "'");
    charge(static_cast<int64_t>(v.dict->items.size()));
    List l;
    for (const auto& [k, x] : v.dict->items) l.push_back(Value::of_list({Value::string(k), x}, true));
    return Value::of_list(std::move(l));
  }
  if (nv == "first" || nv == "last") {
    if (v.is_list()) {  // without copying the list (messages | last inside a loop over the messages)
      if (v.list->empty()) return Value::undefined("no " + n + " item, sequence was empty");
      return nv == "first" ? v.list->front() : v.list->back();
    }
    const List l = iterate(v);
    if (l.empty()) return Value::undefined("no " + n + " item, sequence was empty");
    return nv == "first" ? l.front() : l.back();
  }
  if (nv == "upper") return Value::string(map_case(to_str(v), 1));
  if (nv == "lower") return Value::string(map_case(to_str(v), 0));
  if (nv == "title") return Value::string(map_case(to_str(v), 2));
  if (nv == "capitalize") return Value::string(map_case(to_str(v), 3));
  if (nv == "replace") {
    const Value* from = a.get(0, "old");
    const Value* to = a.get(1, "new");
    if (!from || !to) throw EvalError("replace filter takes old and new");
    const Value count = arg(a, 2, "count", Value::none());
    return Value::string(replace_all(to_str(v), to_str(*from), to_str(*to), count.is_none() ? -1 : need_int(count, "replace")));
  }
  if (nv == "join") {
    const std::string sep = to_str(arg(a, 0, "d", Value::string("")));
    const Value attribute = arg(a, 1, "attribute", Value::none());
    const std::string path = attribute.is_none() ? "" : to_str(attribute);
    std::string out;
    bool first = true;
    for (const Value& x : iterate(v)) {
      if (!first) out += sep;
      out += to_str(attribute.is_none() ? x : attr_path(x, path));
      if (out.size() > kMaxString) throw EvalError("string longer than 64 MiB");
      first = false;
    }
    charge(str_steps(out.size()));
    return Value::string(out);
  }
  if (nv == "list") return Value::of_list(iterate(v));
  if (nv == "default" || nv == "d") {
    const bool boolean = arg(a, 1, "boolean", Value::boolean(false)).truthy();
    if (v.is_undefined() || (boolean && !v.truthy())) return arg(a, 0, "default_value", Value::string(""));
    return v;
  }
  if (nv == "string") {
    if (v.is_string()) return v;  // str() of a str is itself: no copy
    return Value::string(to_str(v));
  }
  if (nv == "int") {
    const Value def = arg(a, 0, "default", Value::integer(0));
    if (v.type == Value::Type::Int || v.type == Value::Type::Bool) return Value::integer(v.as_int());
    // Jinja2's do_int: int(value), else int(float(value)), else the default. A NaN gives the default; an
    // infinite float raises in Jinja2 (int(inf) is an OverflowError it does not catch) and here; an infinite
    // or NaN float parsed from a string gives the default there and here. A value past int64 is an error
    // (Jinja2 gives the big integer: jinja_builtins.h).
    if (v.type == Value::Type::Float) return std::isnan(v.f) ? def : Value::integer(int_of_double(v.f));
    if (v.is_string()) {
      const std::string s = strip_ws(v.str(), true, true);  // outside the try: a budget error is not a parse error
      size_t used = 0;
      try {
        const int64_t x = std::stoll(s, &used);
        if (used == s.size()) return Value::integer(x);
      } catch (const std::out_of_range&) {
        const size_t digits = s.find_first_not_of("0123456789", s[0] == '-' || s[0] == '+' ? 1 : 0);
        if (digits == std::string::npos)
          throw EvalError("integer overflow: int() of a " + std::to_string(s.size()) + "-character number is beyond 64 bits");
      } catch (const std::invalid_argument&) {
      }
      double d;
      if (python_float(s, d) && std::isfinite(d)) return Value::integer(int_of_double(d));
    }
    return def;
  }
  if (nv == "float") {
    if (v.is_number()) return Value::number(v.as_double());
    if (v.is_string()) {
      double d;
      if (python_float(strip_ws(v.str(), true, true), d)) return Value::number(d);
    }
    return arg(a, 0, "default", Value::number(0));
  }
  if (nv == "abs") {
    if (v.type == Value::Type::Float) return Value::number(std::fabs(v.f));
    if (v.is_number()) return Value::integer(int_abs(v.as_int()));
    throw EvalError("abs expects a number");
  }
  if (nv == "escape" || nv == "e") return Value::string(html_escape(to_str(v)));
  if (nv == "indent")
    return Value::string(indent(to_str(v), arg(a, 0, "width", Value::integer(4)), arg(a, 1, "first", Value::boolean(false)).truthy(),
                                arg(a, 2, "blank", Value::boolean(false)).truthy()));
  if (nv == "dictsort") {
    if (!v.is_dict()) throw EvalError("dictsort expects a mapping");
    const bool cs = arg(a, 0, "case_sensitive", Value::boolean(false)).truthy();
    const std::string by = to_str(arg(a, 1, "by", Value::string("key")));
    const bool reverse = arg(a, 2, "reverse", Value::boolean(false)).truthy();
    const size_t n_items = v.dict->items.size();
    charge(static_cast<int64_t>(n_items) * (1 + static_cast<int64_t>(std::log2(static_cast<double>(n_items) + 1))));
    List l;
    for (const auto& [k, x] : v.dict->items) l.push_back(Value::of_list({Value::string(k), x}, true));
    const size_t idx = by == "value" ? 1 : 0;
    std::stable_sort(l.begin(), l.end(), [&](const Value& x, const Value& y) {
      Value kx = (*x.list)[idx], ky = (*y.list)[idx];
      if (!cs && kx.is_string()) kx = Value::string(map_case(kx.str(), 0));
      if (!cs && ky.is_string()) ky = Value::string(map_case(ky.str(), 0));
      int c;
      if (!compare(kx, ky, c)) throw EvalError("dictsort: values cannot be compared");
      return reverse ? c > 0 : c < 0;
    });
    return Value::of_list(std::move(l));
  }
  if (nv == "selectattr") return select_filter(v, a, true, true);
  if (nv == "rejectattr") return select_filter(v, a, true, false);
  if (nv == "select") return select_filter(v, a, false, true);
  if (nv == "reject") return select_filter(v, a, false, false);
  if (nv == "map") {
    List out;
    const Value* attribute = nullptr;
    for (const auto& [k, x] : a.kw)
      if (k == "attribute") attribute = &x;
    if (attribute) {
      const Value def = arg(a, 99, "default", Value::undefined("no such attribute"));
      const std::string path = to_str(*attribute);
      for (const Value& x : iterate(v)) {
        charge(1);
        Value got = attr_path(x, path);
        out.push_back(got.is_undefined() && !def.is_undefined() ? def : got);
      }
    } else {
      if (a.pos.empty()) throw EvalError("map needs a filter name or attribute=");
      const std::string f = need_str(a.pos[0], "map");
      const CallArgs rest = rest_args(a, 1);
      for (const Value& x : iterate(v)) {
        charge(1);
        out.push_back(apply_filter(f, x, rest));
      }
    }
    return Value::of_list(std::move(out));
  }
  if (nv == "attr") return get_attr(v, need_str(arg(a, 0, "name", Value::none()), "attr"));
  if (nv == "reverse") {
    if (v.is_string()) {
      std::vector<std::string> cps = code_points(v.str());
      std::string s;
      for (size_t k = cps.size(); k-- > 0;) s += cps[k];
      return Value::string(s);
    }
    List l = iterate(v);
    std::reverse(l.begin(), l.end());
    return Value::of_list(std::move(l));
  }
  if (nv == "sort") return sort_list(v, a);
  if (nv == "unique") {
    List out;
    for (const Value& x : iterate(v)) {
      charge(1 + static_cast<int64_t>(out.size()));  // compared with every item kept so far
      bool seen = false;
      for (const Value& y : out) seen |= equal(x, y);
      if (!seen) out.push_back(x);
    }
    return Value::of_list(std::move(out));
  }
  if (nv == "sum") {
    Value acc = arg(a, 1, "start", Value::integer(0));
    for (const Value& x : iterate(v)) {
      if (!x.is_number() || !acc.is_number()) throw EvalError("sum expects numbers");
      acc = (acc.type == Value::Type::Float || x.type == Value::Type::Float) ? Value::number(acc.as_double() + x.as_double())
                                                                             : Value::integer(int_add(acc.as_int(), x.as_int()));
    }
    return acc;
  }
  if (nv == "min" || nv == "max") {
    const List l = iterate(v);
    if (l.empty()) return Value::undefined("empty sequence");
    Value best = l[0];
    for (const Value& x : l) {
      int c;
      if (!compare(x, best, c)) throw EvalError(n + ": values cannot be compared");
      if ((nv == "min" && c < 0) || (nv == "max" && c > 0)) best = x;
    }
    return best;
  }
  if (nv == "round") {
    const int64_t prec = need_int(arg(a, 0, "precision", Value::integer(0)), "round");
    const std::string method = to_str(arg(a, 1, "method", Value::string("common")));
    const double scale = std::pow(10.0, static_cast<double>(prec)), x = v.as_double() * scale;
    const double r = method == "floor" ? std::floor(x) : method == "ceil" ? std::ceil(x) : std::round(x);
    return Value::number(r / scale);
  }
  if (nv == "wordcount") return Value::integer(static_cast<int64_t>(split_value(to_str(v), Value::none(), -1).list->size()));
  if (nv == "center") {
    const int64_t w = need_int(arg(a, 0, "width", Value::integer(80)), "center");
    if (w > static_cast<int64_t>(kMaxString)) throw EvalError("center width beyond 64 MiB");
    const std::string s = to_str(v);
    const int64_t len = static_cast<int64_t>(code_point_count(s));
    if (len >= w) return Value::string(s);
    const int64_t total = w - len, left = total / 2 + (total & w & 1);
    charge(str_steps(static_cast<size_t>(w)) + str_steps(s.size()));
    return Value::string(std::string(static_cast<size_t>(left), ' ') + s + std::string(static_cast<size_t>(total - left), ' '));
  }
  throw EvalError("no filter named '" + n + "' (wick supports the filters chat templates use)");
}

bool apply_test(const std::string& n, const Value& v, const CallArgs& a) {
  const std::string_view nv = n;  // compared by length first, not strlen + memcmp
  using T = Value::Type;
  auto other = [&]() -> const Value& {
    const Value* o = a.get(0, "other");
    if (!o) throw EvalError("test '" + n + "' takes an argument");
    return *o;
  };
  if (nv == "defined") return !v.is_undefined();
  if (nv == "undefined") return v.is_undefined();
  if (nv == "none") return v.is_none();
  if (nv == "string") return v.is_string();
  if (nv == "number") return v.is_number();
  if (nv == "integer") return v.type == T::Int;
  if (nv == "float") return v.type == T::Float;
  if (nv == "boolean") return v.type == T::Bool;
  if (nv == "true") return v.type == T::Bool && v.b;
  if (nv == "false") return v.type == T::Bool && !v.b;
  if (nv == "mapping") return v.is_dict() && !v.dict->is_namespace;
  if (nv == "iterable") return v.is_string() || v.is_list() || (v.is_dict() && !v.dict->is_namespace) || v.is_undefined();
  if (nv == "sequence") return v.is_string() || v.is_list() || (v.is_dict() && !v.dict->is_namespace);
  if (nv == "callable") return v.type == T::Function;
  if (nv == "even" || nv == "odd") {
    const int64_t x = need_int(v, n);
    return ((x % 2 + 2) % 2 == 0) == (nv == "even");
  }
  if (nv == "divisibleby") {
    const int64_t d = need_int(arg(a, 0, "num", Value::integer(1)), n);
    if (d == 0) throw EvalError("divisibleby 0");
    return int_mod(need_int(v, n), d) == 0;
  }
  if (nv == "eq" || nv == "equalto" || nv == "==") return equal(v, other());
  if (nv == "ne" || nv == "!=") return !equal(v, other());
  if (nv == "lt" || nv == "lessthan" || nv == "<" || nv == "le" || nv == "<=" || nv == "gt" || nv == "greaterthan" || nv == ">" ||
      nv == "ge" || nv == ">=") {
    int c;
    if (!compare(v, other(), c)) throw EvalError("test '" + n + "': values cannot be compared");
    if (nv == "lt" || nv == "lessthan" || nv == "<") return c < 0;
    if (nv == "le" || nv == "<=") return c <= 0;
    if (nv == "gt" || nv == "greaterthan" || nv == ">") return c > 0;
    return c >= 0;
  }
  if (nv == "in") {
    const Value& c = other();
    if (c.is_string()) {
      charge(str_steps(c.str().size()));
      return v.is_string() && c.str().find(v.str()) != std::string::npos;
    }
    if (c.is_dict()) return v.is_string() && c.dict->find(v.str());
    for (const Value& x : iterate(c))
      if (equal(x, v)) return true;
    return false;
  }
  if (nv == "sameas") {
    const Value& o = other();
    if (v.type != o.type) return false;
    if (v.is_none() || v.is_undefined()) return true;
    if (v.type == T::Bool) return v.b == o.b;
    if (v.is_list()) return v.list == o.list;
    if (v.is_dict()) return v.dict == o.dict;
    return equal(v, o);
  }
  if (nv == "lower" || nv == "upper") {
    if (!v.is_string()) return false;
    return map_case(v.str(), nv == "lower" ? 0 : 1) == v.str();
  }
  if (nv == "escaped") return false;
  throw EvalError("no test named '" + n + "' (wick supports the tests chat templates use)");
}

}  // namespace wick::jinja
