// Jinja2's filters ({{ x | tojson }}) and tests ({% if x is defined %}) that chat templates use, with Jinja2's
// results (tests/fixtures/chat: renderings by Jinja2 itself).
#include "tokenizer/jinja_builtins.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string_view>

#include <utf8proc.h>

#include "tokenizer/jinja_lexer.h"

namespace wick::jinja {

namespace {

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
