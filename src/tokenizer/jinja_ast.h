// The parsed form of a Jinja template: expressions (Expr) and statements (Node), each with its line.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace wick::jinja {

struct Expr;
using ExprP = std::unique_ptr<Expr>;

// The operator of a Unary, Binary or Compare expression, decided once by the parser so that evaluating does
// not compare operator strings (the name / ops strings stay for error messages).
enum class Op : uint8_t { None, Add, Sub, Mul, Div, FloorDiv, Mod, Pow, Concat, And, Or, Not, Pos, Neg,
                          Eq, Ne, Lt, Le, Gt, Ge, In, NotIn };

struct Expr {
  enum Kind {
    Literal,   // lit
    Name,      // name
    ListLit,   // args: items (is_tuple for "(a, b)")
    DictLit,   // args: key, value, key, value, ...
    Attr,      // args[0].name
    Item,      // args[0][args[1]]
    Slice,     // args[0][args[1]:args[2]:args[3]] (absent bounds are null)
    Call,      // args[0](args[1:], kwargs)
    Filter,    // args[0] | name(args[1:], kwargs)
    Test,      // args[0] is [not] name(args[1:], kwargs)
    Unary,     // name ("-", "+", "not") args[0]
    Binary,    // args[0] name args[1]: + - * / // % ** ~ and or
    Compare,   // args[0] ops[0] args[1] ops[1] args[2] ... (==, !=, <, <=, >, >=, in, notin)
    Cond,      // args[1] if args[0] else args[2] (args[2] may be null)
  };
  Kind kind;
  int line = 0;
  Value lit;
  std::string name;
  std::vector<ExprP> args;
  std::vector<std::pair<std::string, ExprP>> kwargs;
  std::vector<std::string> ops;
  Op op = Op::None;          // Unary, Binary: name as an Op
  std::vector<Op> op_codes;  // Compare: ops as Ops
  bool negated = false;  // Test: "is not"
  bool is_tuple = false;
};

struct Node;
using NodeP = std::unique_ptr<Node>;
using Body = std::vector<NodeP>;

struct Node {
  enum Kind {
    Text,        // text
    Output,      // {{ expr }}
    If,          // branches: (cond, body); a final else has cond null
    For,         // for targets in expr [if cond]: body [else else_body]
    Set,         // set targets = expr, or set attr_of.name = expr (attr_of non-null)
    SetBlock,    // {% set targets[0] [| filters] %}body{% endset %}; filter: chain over a Literal placeholder
    Macro,       // macro name(params): body
    CallBlock,   // {% call [(params)] expr %}body{% endcall %}: expr is the macro call; body becomes caller()
    FilterBlock, // {% filter chain %}body{% endfilter %}
    Break,
    Continue,
    Generation,  // transformers' {% generation %}body{% endgeneration %}: marks assistant text
  };
  Kind kind;
  int line = 0;
  std::string text, name;
  ExprP expr, cond, attr_of, filter;
  std::vector<std::string> targets;
  std::vector<std::pair<ExprP, Body>> branches;
  Body body, else_body;
  std::vector<std::pair<std::string, ExprP>> params;  // macro / call-block parameters with defaults (null: none)
  // For: whether the body names `loop` (the parser looks); when not, no loop object is built per iteration,
  // which nothing could observe (macros see the top level, not the loop's scope).
  bool uses_loop = true;
};

}  // namespace wick::jinja
