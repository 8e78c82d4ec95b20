// Python's str, dict and list methods as chat templates call them ('a b'.split(), d.items(), l.index(x)), and
// attribute, item and slice access with Jinja2's rules (a missing key or attribute is undefined; only undefined
// objects fail).
#include "tokenizer/jinja_builtins.h"

#include <algorithm>
#include <string_view>

#include <utf8proc.h>

#include "tokenizer/jinja_lexer.h"

namespace wick::jinja {

namespace {

// 'name' (GCC 12 warns -Wrestrict, wrongly, on "'" + a temporary string once get_attr inlines it).
std::string quoted(const std::string& name) { return std::string(1, '\'') + name + "'"; }

Value strip_value(const Value& self, const CallArgs& a, bool left, bool right) {
  const std::string s = need_str(self, "strip");
  const Value chars = arg(a, 0, "chars", Value::none());
  if (chars.is_none()) return Value::string(strip_ws(s, left, right));
  return Value::string(strip_chars(s, need_str(chars, "strip"), left, right));
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

}  // namespace

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
    default: return Value::undefined(quoted(obj.type_name()) + " object has no attribute '" + name + "'");
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
    default: return Value::undefined(quoted(obj.type_name()) + " object is not subscriptable");
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
  // a + i st stays inside [-1, n] for i < count (the step may be any int64).
  const int64_t count = static_cast<int64_t>(step_count(a, b, st));
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

}  // namespace wick::jinja
