// The values a Jinja chat template computes with, with Python's semantics where templates can tell the
// difference: str() of numbers ("1.0", "True", "None"), == between int/float/bool, truthiness, dicts that keep
// insertion order, and strings indexed by code point. Lists and dicts are immutable (transformers renders in
// an ImmutableSandboxedEnvironment); a namespace() is the one mutable object ({% set ns.x = ... %}).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace wick::jinja {

struct Value;
using List = std::vector<Value>;
struct Dict;
struct CallArgs;
using Function = std::function<Value(CallArgs&)>;

struct Value {
  enum class Type { Undefined, None, Bool, Int, Float, String, List, Dict, Function };
  Type type = Type::Undefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::shared_ptr<const std::string> s;
  std::shared_ptr<const List> list;
  std::shared_ptr<Dict> dict;  // mutable only when dict->is_namespace
  std::shared_ptr<const Function> fn;
  std::string name;  // Undefined: the expression that had no value (for error messages); Function: its name
  bool is_tuple = false;  // a List written (a, b): printed with parentheses

  static Value undefined(std::string what = "") { Value v; v.name = std::move(what); return v; }
  static Value none() { Value v; v.type = Type::None; return v; }
  static Value boolean(bool x) { Value v; v.type = Type::Bool; v.b = x; return v; }
  static Value integer(int64_t x) { Value v; v.type = Type::Int; v.i = x; return v; }
  static Value number(double x) { Value v; v.type = Type::Float; v.f = x; return v; }
  static Value string(std::string x);
  static Value of_list(List x, bool tuple = false);
  static Value of_dict(std::shared_ptr<Dict> d);
  static Value function(std::string name, Function f);
  static Value from_json(const nlohmann::ordered_json& j);

  bool is_undefined() const { return type == Type::Undefined; }
  bool is_none() const { return type == Type::None; }
  bool is_string() const { return type == Type::String; }
  bool is_number() const { return type == Type::Int || type == Type::Float || type == Type::Bool; }
  bool is_list() const { return type == Type::List; }
  bool is_dict() const { return type == Type::Dict; }
  const std::string& str() const { return *s; }
  double as_double() const { return type == Type::Float ? f : type == Type::Bool ? (b ? 1 : 0) : static_cast<double>(i); }
  int64_t as_int() const { return type == Type::Bool ? (b ? 1 : 0) : i; }

  bool truthy() const;
  std::string type_name() const;  // Python's: "str", "int", "list", "dict", "NoneType", "undefined", ...
};

struct Dict {
  std::vector<std::pair<std::string, Value>> items;  // insertion order, as Python dicts
  bool is_namespace = false;
  const Value* find(const std::string& key) const;
  void set(const std::string& key, Value v);
};

struct CallArgs {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  // Argument k by position or by name (nullptr when absent).
  const Value* get(size_t k, const char* name) const;
};

bool equal(const Value& a, const Value& b);
// -1, 0 or 1; false when the two cannot be ordered (Python's TypeError).
bool compare(const Value& a, const Value& b, int& out);

std::string to_str(const Value& v);   // Python str()
std::string repr(const Value& v);     // Python repr()
// Python's json.dumps(v, ensure_ascii=False, indent=indent (-1 = None), sort_keys, separators) as
// transformers' tojson; null separators are Python's defaults.
std::string to_json(const Value& v, int indent, bool sort_keys, const std::string* item_sep = nullptr,
                    const std::string* key_sep = nullptr);
std::string float_repr(double x);     // Python repr of a float: "1.0", "1e-05", "1e+20", "inf"

// Code-point helpers for Python's str semantics.
std::vector<std::string> code_points(const std::string& s);
size_t code_point_count(const std::string& s);

}  // namespace wick::jinja
