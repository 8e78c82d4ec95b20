#include "tokenizer/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "tokenizer/jinja_builtins.h"
#include "tokenizer/utf8.h"

namespace wick::jinja {

Value Value::string(std::string x) {
  Value v;
  v.type = Type::String;
  v.s = std::make_shared<const std::string>(std::move(x));
  return v;
}

Value Value::of_list(List x, bool tuple) {
  Value v;
  v.type = Type::List;
  v.list = std::make_shared<const List>(std::move(x));
  v.is_tuple = tuple;
  return v;
}

Value Value::of_dict(std::shared_ptr<Dict> d) {
  Value v;
  v.type = Type::Dict;
  v.dict = std::move(d);
  return v;
}

Value Value::function(std::string name, Function f) {
  Value v;
  v.type = Type::Function;
  v.fn = std::make_shared<const Function>(std::move(f));
  v.name = std::move(name);
  return v;
}

Value Value::from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return none();
    case nlohmann::ordered_json::value_t::boolean: return boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return integer(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: return integer(static_cast<int64_t>(j.get<uint64_t>()));
    case nlohmann::ordered_json::value_t::number_float: return number(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return string(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      List l;
      l.reserve(j.size());
      for (const auto& e : j) l.push_back(from_json(e));
      return of_list(std::move(l));
    }
    case nlohmann::ordered_json::value_t::object: {
      auto d = std::make_shared<Dict>();
      for (auto it = j.begin(); it != j.end(); ++it) d->set(it.key(), from_json(it.value()));
      return of_dict(std::move(d));
    }
    default: return undefined();
  }
}

bool Value::truthy() const {
  switch (type) {
    case Type::Undefined: case Type::None: return false;
    case Type::Bool: return b;
    case Type::Int: return i != 0;
    case Type::Float: return f != 0;
    case Type::String: return !s->empty();
    case Type::List: return !list->empty();
    case Type::Dict: return dict->is_namespace || !dict->items.empty();
    case Type::Function: return true;
  }
  return false;
}

std::string Value::type_name() const {
  switch (type) {
    case Type::Undefined: return "undefined";
    case Type::None: return "NoneType";
    case Type::Bool: return "bool";
    case Type::Int: return "int";
    case Type::Float: return "float";
    case Type::String: return "str";
    case Type::List: return is_tuple ? "tuple" : "list";
    case Type::Dict: return dict->is_namespace ? "Namespace" : "dict";
    case Type::Function: return "function";
  }
  return "?";
}

// A lookup walks the keys: a dict of more than a few dozen (a long literal, or a tool schema) is charged
// to the render by its size; the usual few keys cost nothing more than the expression that looks.
const Value* Dict::find(const std::string& key) const {
  if (items.size() >= 32) charge(static_cast<int64_t>(items.size() >> 4));
  for (const auto& [k, v] : items)
    if (k == key) return &v;
  return nullptr;
}

void Dict::set(const std::string& key, Value v) {
  if (items.size() >= 32) charge(static_cast<int64_t>(items.size() >> 4));
  for (auto& [k, old] : items)
    if (k == key) {
      old = std::move(v);
      return;
    }
  items.emplace_back(key, std::move(v));
}

const Value* CallArgs::get(size_t k, const char* name) const {
  if (k < pos.size()) return &pos[k];
  for (const auto& [n, v] : kw)
    if (n == name) return &v;
  return nullptr;
}

bool equal(const Value& a, const Value& b) {
  using T = Value::Type;
  if (a.is_number() && b.is_number()) {
    if (a.type == T::Float || b.type == T::Float) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.type != b.type) return false;
  switch (a.type) {
    case T::Undefined: case T::None: return true;
    case T::String:
      if (a.s->size() != b.s->size()) return false;
      charge(str_steps(a.s->size()));
      return *a.s == *b.s;
    case T::List:
      if (a.list->size() != b.list->size()) return false;
      charge(static_cast<int64_t>(a.list->size()));
      for (size_t k = 0; k < a.list->size(); k++)
        if (!equal((*a.list)[k], (*b.list)[k])) return false;
      return true;
    case T::Dict:
      if (a.dict == b.dict) return true;
      if (a.dict->is_namespace || b.dict->is_namespace || a.dict->items.size() != b.dict->items.size()) return false;
      charge(static_cast<int64_t>(a.dict->items.size()));
      for (const auto& [k, v] : a.dict->items) {
        const Value* o = b.dict->find(k);
        if (!o || !equal(v, *o)) return false;
      }
      return true;
    case T::Function: return a.fn == b.fn;
    default: return false;
  }
}

bool compare(const Value& a, const Value& b, int& out) {
  if (a.is_number() && b.is_number()) {
    if (a.type == Value::Type::Float || b.type == Value::Type::Float) {
      const double x = a.as_double(), y = b.as_double();
      out = x < y ? -1 : x > y ? 1 : 0;
    } else {
      const int64_t x = a.as_int(), y = b.as_int();
      out = x < y ? -1 : x > y ? 1 : 0;
    }
    return true;
  }
  if (a.is_string() && b.is_string()) {  // UTF-8 byte order is code point order
    charge(str_steps(std::min(a.s->size(), b.s->size())));
    const int c = a.s->compare(*b.s);
    out = c < 0 ? -1 : c > 0 ? 1 : 0;
    return true;
  }
  if (a.is_list() && b.is_list()) {
    const size_t n = std::min(a.list->size(), b.list->size());
    charge(static_cast<int64_t>(n));
    for (size_t k = 0; k < n; k++) {
      if (equal((*a.list)[k], (*b.list)[k])) continue;
      return compare((*a.list)[k], (*b.list)[k], out);
    }
    out = a.list->size() < b.list->size() ? -1 : a.list->size() > b.list->size() ? 1 : 0;
    return true;
  }
  return false;
}

std::string float_repr(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  if (x == 0) return std::signbit(x) ? "-0.0" : "0.0";
  // The shortest digits that round-trip, then Python's layout: fixed for 1e-4 <= |x| < 1e16, else d.ddde+XX.
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), x, std::chars_format::scientific);
  std::string sci(buf, r.ptr);
  const size_t e = sci.find('e');
  std::string mant = sci.substr(0, e);
  const int exp = std::stoi(sci.substr(e + 1));
  const bool neg = mant[0] == '-';
  if (neg) mant.erase(0, 1);
  std::string digits;
  for (char c : mant)
    if (c != '.') digits.push_back(c);
  std::string out = neg ? "-" : "";
  const size_t nd = digits.size();
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out.append("0.").append(static_cast<size_t>(-exp - 1), '0').append(digits);
    } else if (nd <= static_cast<size_t>(exp) + 1) {
      out.append(digits).append(static_cast<size_t>(exp) + 1 - nd, '0').append(".0");
    } else {
      out.append(digits, 0, static_cast<size_t>(exp) + 1).append(".").append(digits, static_cast<size_t>(exp) + 1, std::string::npos);
    }
    return out;
  }
  out.push_back(digits[0]);
  if (nd > 1) out.append(".").append(digits, 1, std::string::npos);
  char eb[16];
  std::snprintf(eb, sizeof(eb), "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
  return out + eb;
}

namespace {

std::string repr_str(const std::string& s) {
  charge(2 * str_steps(s.size()));  // read and written
  const bool dq = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  const char q = dq ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == static_cast<unsigned char>(q)) out += std::string("\\") + static_cast<char>(q);
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) {
      char b[8];
      std::snprintf(b, sizeof(b), "\\x%02x", c);
      out += b;
    } else out.push_back(static_cast<char>(c));
  }
  out.push_back(q);
  return out;
}

void json_str(const std::string& s, std::string& out) {
  charge(2 * str_steps(s.size()));  // read and written
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char b[8];
          std::snprintf(b, sizeof(b), "\\u%04x", c);
          out += b;
        } else out.push_back(static_cast<char>(c));
    }
  }
  out.push_back('"');
}

struct JsonFmt {
  int indent;
  bool sort_keys;
  std::string item_sep, key_sep;
};

void json_rec(const Value& v, const JsonFmt& fmt, int depth, std::string& out) {
  charge(1 + (fmt.indent > 0 ? str_steps(static_cast<size_t>(fmt.indent) * static_cast<size_t>(depth + 1)) : 0));
  if (out.size() > kMaxString) throw EvalError("string longer than 64 MiB");
  const int indent = fmt.indent;
  using T = Value::Type;
  auto newline = [&](int d) {
    out.push_back('\n');
    out.append(static_cast<size_t>(indent * d), ' ');
  };
  switch (v.type) {
    case T::None: case T::Undefined: out += "null"; return;
    case T::Bool: out += v.b ? "true" : "false"; return;
    case T::Int: out += std::to_string(v.i); return;
    case T::Float:
      if (std::isnan(v.f)) out += "NaN";
      else if (std::isinf(v.f)) out += v.f > 0 ? "Infinity" : "-Infinity";
      else out += float_repr(v.f);
      return;
    case T::String: json_str(*v.s, out); return;
    case T::Function: out += "null"; return;
    case T::List: {
      if (v.list->empty()) { out += "[]"; return; }
      out.push_back('[');
      for (size_t k = 0; k < v.list->size(); k++) {
        if (k) out += fmt.item_sep;
        if (indent >= 0) newline(depth + 1);
        json_rec((*v.list)[k], fmt, depth + 1, out);
      }
      if (indent >= 0) newline(depth);
      out.push_back(']');
      return;
    }
    case T::Dict: {
      if (v.dict->items.empty()) { out += "{}"; return; }
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& e : v.dict->items) items.push_back(&e);
      if (fmt.sort_keys) std::stable_sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
      out.push_back('{');
      for (size_t k = 0; k < items.size(); k++) {
        if (k) out += fmt.item_sep;
        if (indent >= 0) newline(depth + 1);
        json_str(items[k]->first, out);
        out += fmt.key_sep;
        json_rec(items[k]->second, fmt, depth + 1, out);
      }
      if (indent >= 0) newline(depth);
      out.push_back('}');
      return;
    }
  }
}

}  // namespace

std::string repr(const Value& v) {
  using T = Value::Type;
  switch (v.type) {
    case T::String: return repr_str(*v.s);
    case T::List: {
      charge(static_cast<int64_t>(v.list->size()));
      std::string out = v.is_tuple ? "(" : "[";
      for (size_t k = 0; k < v.list->size(); k++) {
        out += (k ? ", " : "") + repr((*v.list)[k]);
        if (out.size() > kMaxString) throw EvalError("string longer than 64 MiB");
      }
      if (v.is_tuple && v.list->size() == 1) out += ",";
      return out + (v.is_tuple ? ")" : "]");
    }
    case T::Dict: {
      if (v.dict->is_namespace) return "<Namespace>";
      charge(static_cast<int64_t>(v.dict->items.size()));
      std::string out = "{";
      bool first = true;
      for (const auto& [k, x] : v.dict->items) {
        out += (first ? "" : ", ") + repr_str(k) + ": " + repr(x);
        if (out.size() > kMaxString) throw EvalError("string longer than 64 MiB");
        first = false;
      }
      return out + "}";
    }
    default: return to_str(v);
  }
}

std::string to_str(const Value& v) {
  using T = Value::Type;
  switch (v.type) {
    case T::Undefined: return "";
    case T::None: return "None";
    case T::Bool: return v.b ? "True" : "False";
    case T::Int: return std::to_string(v.i);
    case T::Float: return float_repr(v.f);
    case T::String: charge(str_steps(v.s->size())); return *v.s;  // a copy
    case T::Function: return "<function " + v.name + ">";
    default: return repr(v);
  }
}

std::string to_json(const Value& v, int indent, bool sort_keys, const std::string* item_sep, const std::string* key_sep) {
  JsonFmt fmt{indent, sort_keys, item_sep ? *item_sep : indent >= 0 ? "," : ", ", key_sep ? *key_sep : ": "};
  std::string out;
  json_rec(v, fmt, 0, out);
  return out;
}

std::vector<std::string> code_points(const std::string& s) {
  charge(char_steps(s.size()));  // before the split: a string of one per character
  return tok::utf8_chars(s);
}

size_t code_point_count(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace wick::jinja
