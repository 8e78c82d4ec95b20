// The Jinja interpreter: walks the parsed template with Jinja2's scoping (a for loop's body and a macro get
// their own scope, fresh on every iteration; if blocks do not; namespace() objects carry values out of loops).
#include <cmath>
#include <unordered_map>

#include "core/error.h"
#include "tokenizer/jinja.h"
#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_lexer.h"
#include "tokenizer/jinja_parser.h"

namespace wick::jinja {

namespace {

constexpr int kMaxCallDepth = 64;  // nested macro calls
// The work one render may do is counted in steps against kMaxSteps (jinja_builtins.h says what a step is):
// this interpreter counts each statement, expression, loop iteration and macro call, the builtins the data
// they touch. Nested loops (range(999999) inside range(999999)), a macro calling itself twice at each of 64
// levels (fuzz_chat_template), a loop body of thousands of expressions, a loop searching a 4 MB string at
// every iteration, or printing a list that holds itself 60 levels deep, took from seconds to forever before
// it (Jinja.EveryStepIsBoundedWork). transformers' sandbox stops a single range() at 100,000
// items and has no other limit; a server must not hang on a template it was given.

// A scope: a few names (a loop body holds `loop` and its targets; the top level the render's variables and
// the globals), searched linearly - cheaper than a hash map built for every loop iteration and macro call.
struct Frame {
  std::vector<std::pair<std::string, Value>> vars;
  const Frame* parent = nullptr;
  const Value* find_here(const std::string& k) const {
    if (vars.size() >= 32) charge(static_cast<int64_t>(vars.size() >> 4));  // a top level of many {% set %}s
    for (const auto& [name, v] : vars)
      if (name == k) return &v;
    return nullptr;
  }
  const Value* find(const std::string& k) const {
    for (const Frame* f = this; f; f = f->parent)
      if (const Value* v = f->find_here(k)) return v;
    return nullptr;
  }
  void set(const std::string& k, Value v) {
    if (Value* old = const_cast<Value*>(find_here(k))) *old = std::move(v);
    else vars.emplace_back(k, std::move(v));
  }
};

enum class Flow { Normal, Break, Continue };

Value num_result(double x) { return Value::number(x); }

class Interp {
 public:
  Interp(const std::string& name, const RenderOptions& opt) : name_(name), opt_(opt) {}

  std::string run(const Body& body, const Dict& vars) {
    Frame root;
    root.vars.reserve(vars.items.size() + 5);
    for (const auto& [k, v] : vars.items) root.set(k, v);
    root_ = &root;
    add_globals(root);
    std::string out;
    out_ = &out;
    main_ = &out;
    exec(body, root);
    return out;
  }

 private:
  [[noreturn]] void fail(const std::string& what, int line, bool raised = false) const {
    throw Error(what, name_ + ":" + std::to_string(line),
                raised ? "the chat template refuses this conversation (raise_exception)"
                       : "wick renders chat templates with a subset of Jinja");
  }

  void add_globals(Frame& f) {
    auto def = [&](const char* n, Function fn) {
      if (!f.find_here(n)) f.vars.emplace_back(n, Value::function(n, std::move(fn)));
    };
    def("raise_exception", [](CallArgs& a) -> Value {
      throw EvalError(a.pos.empty() ? "raise_exception() called" : to_str(a.pos[0]), true);
    });
    def("strftime_now", [this](CallArgs& a) -> Value {
      const Value* fmt = a.get(0, "format");
      if (!fmt || !fmt->is_string()) throw EvalError("strftime_now() takes a format string");
      std::tm tm{};
      if (opt_.now) {
        tm = *opt_.now;
      } else {
        const std::time_t t = std::time(nullptr);
        localtime_r(&t, &tm);
      }
      char buf[512];
      const size_t n = std::strftime(buf, sizeof(buf), fmt->str().c_str(), &tm);
      return Value::string(std::string(buf, n));
    });
    def("range", [this](CallArgs& a) -> Value {
      int64_t start = 0, stop = 0, step = 1;
      for (const Value& v : a.pos)
        if (v.type != Value::Type::Int && v.type != Value::Type::Bool) throw EvalError("range() takes integers");
      if (a.pos.size() == 1) stop = a.pos[0].as_int();
      else if (a.pos.size() >= 2) {
        start = a.pos[0].as_int();
        stop = a.pos[1].as_int();
        if (a.pos.size() >= 3) step = a.pos[2].as_int();
      } else throw EvalError("range() takes 1 to 3 arguments");
      if (step == 0) throw EvalError("range() step must not be zero");
      // Its length first (in 128 bits: start, stop and step may be any int64): too long is refused before
      // anything is built, and the items are charged to the step budget at once.
      const __int128 count = step_count(start, stop, step);
      if (count > 1000000) throw EvalError("range() longer than 1000000 items");
      spend(static_cast<int64_t>(count));
      List l;
      l.reserve(static_cast<size_t>(count));
      // start + k step lies in [start, stop) (or (stop, start]), but k step alone may not fit in 64 bits.
      for (int64_t k = 0; k < static_cast<int64_t>(count); k++)
        l.push_back(Value::integer(static_cast<int64_t>(start + static_cast<__int128>(k) * step)));
      return Value::of_list(std::move(l));
    });
    auto make_dict = [](CallArgs& a, bool ns) -> Value {
      auto d = std::make_shared<Dict>();
      d->is_namespace = ns;
      for (const Value& p : a.pos) {
        if (!p.is_dict()) throw EvalError(std::string(ns ? "namespace" : "dict") + "() takes a dict or name=value arguments");
        charge(static_cast<int64_t>(p.dict->items.size()));
        for (const auto& [k, v] : p.dict->items) d->set(k, v);
      }
      for (const auto& [k, v] : a.kw) d->set(k, v);
      return Value::of_dict(std::move(d));
    };
    def("namespace", [make_dict](CallArgs& a) { return make_dict(a, true); });
    def("dict", [make_dict](CallArgs& a) { return make_dict(a, false); });
  }

  // Counts work against kMaxSteps (EvalError: the statement or expression it is in names the template line).
  void spend(int64_t steps) { steps_.spend(steps); }

  // ---- statements ----

  Flow exec(const Body& body, Frame& f) {
    for (const NodeP& n : body) {
      const Flow fl = exec(*n, f);
      if (fl != Flow::Normal) return fl;
    }
    return Flow::Normal;
  }

  // Output and captured text (a macro's, a set block's) alike: the bytes are charged as they are written.
  void emit(const std::string& s) {
    if (out_->size() + s.size() > kMaxString) throw Error("template output longer than 64 MiB", name_);
    spend(str_steps(s.size()));
    *out_ += s;
  }
  // {{ v }}: a string is appended as it is, not copied through str() first.
  void emit_value(const Value& v) {
    if (v.is_string()) emit(v.str());
    else emit(to_str(v));
  }

  // Renders body into a string of its own (macro bodies, set blocks, filter blocks).
  std::string capture(const Body& body, Frame& f) {
    std::string buf;
    std::string* saved = out_;
    out_ = &buf;
    try {
      exec(body, f);
    } catch (...) {
      out_ = saved;
      throw;
    }
    out_ = saved;
    return buf;
  }

  void assign(Frame& f, const std::vector<std::string>& targets, const Value& v, int line) {
    if (targets.size() == 1) {
      f.set(targets[0], v);
      return;
    }
    if (!v.is_list()) fail("cannot unpack a " + v.type_name() + " into " + std::to_string(targets.size()) + " names", line);
    if (v.list->size() != targets.size())
      fail("cannot unpack " + std::to_string(v.list->size()) + " values into " + std::to_string(targets.size()) + " names", line);
    for (size_t k = 0; k < targets.size(); k++) f.set(targets[k], (*v.list)[k]);
  }

  // One statement: a step, and an EvalError from its own work (the step budget, a builtin's failure outside
  // an expression) named at its line.
  Flow exec(const Node& n, Frame& f) {
    try {
      spend(1);
      return exec_node(n, f);
    } catch (const EvalError& e) {
      fail(e.what(), n.line, e.raised);
    }
  }

  Flow exec_node(const Node& n, Frame& f) {
    switch (n.kind) {
      case Node::Text: emit(n.text); return Flow::Normal;
      case Node::Output: {
        emit_value(eval(*n.expr, f));
        return Flow::Normal;
      }
      case Node::If:
        for (const auto& [cond, body] : n.branches)
          if (!cond || eval(*cond, f).truthy()) return exec(body, f);
        return Flow::Normal;
      case Node::For: return exec_for(n, f);
      case Node::Set: {
        Value v = eval(*n.expr, f);
        if (n.attr_of) {
          const Value obj = eval(*n.attr_of, f);
          if (!obj.is_dict() || !obj.dict->is_namespace)
            fail("cannot set attribute '" + n.targets[0] + "' of a " + obj.type_name() + " (only of a namespace())", n.line);
          obj.dict->set(n.targets[0], std::move(v));
        } else {
          assign(f, n.targets, v, n.line);
        }
        return Flow::Normal;
      }
      case Node::SetBlock: {
        Value v = Value::string(capture(n.body, f));
        if (n.filter) v = eval_with_placeholder(*n.filter, v, f);
        f.set(n.targets[0], std::move(v));
        return Flow::Normal;
      }
      case Node::Macro: f.set(n.name, make_macro(n, nullptr)); return Flow::Normal;
      case Node::CallBlock: {
        // caller() renders the block's body; the macro call gets it as its "caller" variable.
        Value caller = make_macro(n, &f);
        const Expr& call = *n.expr;
        const Value callee = eval(*call.args[0], f);
        CallArgs a = eval_args(call, f);
        a.kw.emplace_back("caller", caller);
        emit_value(invoke(callee, a, n.line));
        return Flow::Normal;
      }
      case Node::FilterBlock: {
        const Value v = Value::string(capture(n.body, f));
        emit_value(eval_with_placeholder(*n.filter, v, f));
        return Flow::Normal;
      }
      case Node::Break: return Flow::Break;
      case Node::Continue: return Flow::Continue;
      case Node::Generation: {
        const size_t begin = out_->size();
        const Flow fl = exec(n.body, f);
        if (out_ == main_ && opt_.generation) opt_.generation->emplace_back(begin, out_->size());
        return fl;
      }
    }
    return Flow::Normal;
  }

  Flow exec_for(const Node& n, Frame& f) {
    const Value seq = eval(*n.expr, f);
    if (seq.is_none() || seq.is_number() || seq.type == Value::Type::Function)
      fail("'" + seq.type_name() + "' object is not iterable", n.line);
    // The items visited: a list's own (shared, not copied) unless filtered; dicts and strings are expanded.
    std::shared_ptr<const List> items = seq.is_list() ? seq.list : std::make_shared<const List>(iterate(seq));
    if (n.cond) {  // "for x in xs if cond": filtered first, so loop.length counts what is visited
      List kept;
      for (const Value& it : *items) {
        Frame probe;
        probe.parent = &f;
        assign(probe, n.targets, it, n.line);
        if (eval(*n.cond, probe).truthy()) kept.push_back(it);
      }
      items = std::make_shared<const List>(std::move(kept));
    }
    if (items->empty()) {
      exec(n.else_body, f);
      return Flow::Normal;
    }
    const int64_t len = static_cast<int64_t>(items->size());
    for (int64_t k = 0; k < len; k++) {
      try {
        spend(1);
      } catch (const EvalError& e) {
        fail(e.what(), n.line);
      }
      Frame body;
      body.parent = &f;
      body.vars.reserve(1 + n.targets.size());
      if (n.uses_loop) {
        // A fresh object every iteration, as before: a template that keeps `loop` sees that iteration's values.
        auto loop = std::make_shared<Dict>();
        auto& li = loop->items;  // the keys are distinct: appended, not searched
        li.reserve(12);
        li.emplace_back("index0", Value::integer(k));
        li.emplace_back("index", Value::integer(k + 1));
        li.emplace_back("revindex0", Value::integer(len - k - 1));
        li.emplace_back("revindex", Value::integer(len - k));
        li.emplace_back("first", Value::boolean(k == 0));
        li.emplace_back("last", Value::boolean(k == len - 1));
        li.emplace_back("length", Value::integer(len));
        li.emplace_back("depth", Value::integer(1));
        li.emplace_back("depth0", Value::integer(0));
        li.emplace_back("previtem", k > 0 ? (*items)[k - 1] : Value::undefined("there is no previous item"));
        li.emplace_back("nextitem", k + 1 < len ? (*items)[k + 1] : Value::undefined("there is no next item"));
        li.emplace_back("cycle", Value::function("cycle", [k](CallArgs& a) -> Value {
                          if (a.pos.empty()) throw EvalError("loop.cycle() needs at least one argument");
                          return a.pos[static_cast<size_t>(k) % a.pos.size()];
                        }));
        body.vars.emplace_back("loop", Value::of_dict(std::move(loop)));
      }
      assign(body, n.targets, (*items)[k], n.line);
      if (exec(n.body, body) == Flow::Break) break;
    }
    return Flow::Normal;
  }

  // A macro (or a call block's caller) as a callable value. A macro sees its parameters, then the template's
  // top-level variables; a caller sees the scope its block was written in.
  Value make_macro(const Node& n, const Frame* scope) {
    const Node* node = &n;
    const std::string nm = n.kind == Node::Macro ? n.name : "caller";
    return Value::function(nm, [this, node, scope, nm](CallArgs& a) -> Value {
      if (call_depth_ >= kMaxCallDepth)
        throw EvalError("macro calls nested deeper than " + std::to_string(kMaxCallDepth) + " (runaway recursion?)");
      spend(1);
      ++call_depth_;
      struct Leave {
        int& d;
        ~Leave() { d--; }
      } leave{call_depth_};
      Frame mf;
      mf.parent = scope ? scope : root_;
      const auto& params = node->params;
      if (a.pos.size() > params.size())
        throw EvalError("macro '" + nm + "' takes not more than " + std::to_string(params.size()) + " argument(s)");
      for (size_t k = 0; k < params.size(); k++) {
        const std::string& p = params[k].first;
        if (k < a.pos.size()) {
          mf.set(p, a.pos[k]);
          continue;
        }
        bool found = false;
        for (const auto& [kn, kv] : a.kw)
          if (kn == p) {
            mf.set(p, kv);
            found = true;
          }
        if (!found) mf.set(p, params[k].second ? eval(*params[k].second, mf) : Value::undefined(p));
      }
      for (const auto& [kn, kv] : a.kw) {
        bool known = kn == "caller";
        for (const auto& pp : params) known |= pp.first == kn;
        if (!known) throw EvalError("macro '" + nm + "' takes no keyword argument '" + kn + "'");
        if (kn == "caller") mf.set("caller", kv);
      }
      return Value::string(capture(node->body, mf));
    });
  }

  // ---- expressions ----

  Value eval_with_placeholder(const Expr& chain, const Value& v, Frame& f) {
    // chain is Filter(Filter(Literal placeholder, ...)...): evaluate bottom-up with v in the placeholder.
    if (chain.kind == Expr::Literal) return v;
    const Value inner = eval_with_placeholder(*chain.args[0], v, f);
    CallArgs a = eval_args(chain, f);
    try {
      return apply_filter(chain.name, inner, a);
    } catch (const EvalError& e) {
      fail(e.what(), chain.line, e.raised);
    }
  }

  CallArgs eval_args(const Expr& e, Frame& f) {
    CallArgs a;
    for (size_t k = 1; k < e.args.size(); k++) a.pos.push_back(eval(*e.args[k], f));
    for (const auto& [n, x] : e.kwargs) a.kw.emplace_back(n, eval(*x, f));
    return a;
  }

  Value invoke(const Value& callee, CallArgs& a, int line) {
    if (callee.is_undefined()) fail(undefined_message(callee) + " (called as a function)", line);
    if (callee.type != Value::Type::Function) fail("'" + callee.type_name() + "' object is not callable", line);
    try {
      return (*callee.fn)(a);
    } catch (const EvalError& e) {
      fail(e.what(), line, e.raised);
    }
  }

  Value eval(const Expr& e, Frame& f) {
    try {
      spend(1);
      return eval_inner(e, f);
    } catch (const EvalError& err) {
      fail(err.what(), e.line, err.raised);
    }
  }

  // l op r for the arithmetic operators; code is op as parsed (op is its text, for messages).
  Value arith(Op code, const std::string& op, const Value& l, const Value& r) {
    using T = Value::Type;
    if (l.is_undefined() || r.is_undefined())
      throw EvalError(undefined_message(l.is_undefined() ? l : r) + " (used with '" + op + "')");
    auto bad = [&]() -> EvalError {
      return EvalError("unsupported operand types for " + op + ": '" + l.type_name() + "' and '" + r.type_name() + "'");
    };
    const bool nums = l.is_number() && r.is_number();
    const bool ints = nums && l.type != T::Float && r.type != T::Float;
    if (code == Op::Add) {
      if (ints) return Value::integer(int_add(l.as_int(), r.as_int()));
      if (nums) return num_result(l.as_double() + r.as_double());
      if (l.is_string() && r.is_string()) {
        if (l.str().size() + r.str().size() > kMaxString) throw EvalError("string longer than 64 MiB");
        spend(str_steps(l.str().size() + r.str().size()));
        return Value::string(l.str() + r.str());
      }
      if (l.is_list() && r.is_list()) {
        spend(static_cast<int64_t>(l.list->size() + r.list->size()));
        List x = *l.list;
        x.insert(x.end(), r.list->begin(), r.list->end());
        return Value::of_list(std::move(x), l.is_tuple);
      }
      throw bad();
    }
    if (code == Op::Mul) {
      if (ints) return Value::integer(int_mul(l.as_int(), r.as_int()));
      if (nums) return num_result(l.as_double() * r.as_double());
      const Value* seq = l.is_string() || l.is_list() ? &l : &r;
      const Value* n = seq == &l ? &r : &l;
      if ((seq->is_string() || seq->is_list()) && (n->type == T::Int || n->type == T::Bool)) {
        const int64_t times = std::max<int64_t>(0, n->as_int());
        // An empty sequence times 10**12 is empty, not 10**12 appends of nothing.
        if (seq->is_string() && seq->str().empty()) return Value::string("");
        if (seq->is_list() && seq->list->empty()) return Value::of_list({});
        if (seq->is_string()) {
          if (static_cast<double>(seq->str().size()) * static_cast<double>(times) > kMaxString)
            throw EvalError("string longer than 64 MiB");
          spend(str_steps(seq->str().size() * static_cast<size_t>(times)));
          std::string s;
          for (int64_t k = 0; k < times; k++) s += seq->str();
          return Value::string(std::move(s));
        }
        if (static_cast<double>(seq->list->size()) * static_cast<double>(times) > 1e6) throw EvalError("list too long");
        spend(static_cast<int64_t>(seq->list->size() * static_cast<size_t>(times)));
        List x;
        for (int64_t k = 0; k < times; k++) x.insert(x.end(), seq->list->begin(), seq->list->end());
        return Value::of_list(std::move(x));
      }
      throw bad();
    }
    if (l.is_string() && code == Op::Mod) throw EvalError("string formatting with '%' is not supported");
    if (!nums) throw bad();
    if (code == Op::Sub) return ints ? Value::integer(int_sub(l.as_int(), r.as_int())) : num_result(l.as_double() - r.as_double());
    if (code == Op::Div) {
      if (r.as_double() == 0) throw EvalError("division by zero");
      return num_result(l.as_double() / r.as_double());
    }
    if (code == Op::FloorDiv || code == Op::Mod) {
      const bool floor_div = code == Op::FloorDiv;
      if (r.as_double() == 0) throw EvalError(floor_div ? "integer division by zero" : "modulo by zero");
      if (ints) return Value::integer(floor_div ? int_floordiv(l.as_int(), r.as_int()) : int_mod(l.as_int(), r.as_int()));
      const double a = l.as_double(), b = r.as_double();
      if (floor_div) return num_result(std::floor(a / b));
      double m = std::fmod(a, b);
      if (m != 0 && ((m < 0) != (b < 0))) m += b;
      return num_result(m);
    }
    if (code == Op::Pow) {
      if (ints && r.as_int() >= 0) return Value::integer(int_pow(l.as_int(), r.as_int()));
      return num_result(std::pow(l.as_double(), r.as_double()));
    }
    throw EvalError("unknown operator " + op);
  }

  bool contains(const Value& container, const Value& item) {
    switch (container.type) {
      case Value::Type::String:
        if (!item.is_string()) throw EvalError("'in <string>' requires a string on the left, not '" + item.type_name() + "'");
        spend(str_steps(container.str().size()));
        return container.str().find(item.str()) != std::string::npos;
      case Value::Type::List:
        spend(static_cast<int64_t>(container.list->size()));
        for (const Value& x : *container.list)
          if (equal(x, item)) return true;
        return false;
      case Value::Type::Dict:
        return item.is_string() && container.dict->find(item.str()) != nullptr;
      case Value::Type::Undefined: return false;
      default: throw EvalError("argument of type '" + container.type_name() + "' is not iterable");
    }
  }

  Value eval_inner(const Expr& e, Frame& f) {
    switch (e.kind) {
      case Expr::Literal: return e.lit;
      case Expr::Name: {
        if (const Value* v = f.find(e.name)) return *v;
        return Value::undefined("'" + e.name + "' is undefined");
      }
      case Expr::ListLit: {
        List l;
        for (const auto& x : e.args) l.push_back(eval(*x, f));
        return Value::of_list(std::move(l), e.is_tuple);
      }
      case Expr::DictLit: {
        auto d = std::make_shared<Dict>();
        for (size_t k = 0; k + 1 < e.args.size(); k += 2) {
          const Value key = eval(*e.args[k], f);
          if (!key.is_string()) throw EvalError("dict keys must be strings in wick's Jinja, got '" + key.type_name() + "'");
          d->set(key.str(), eval(*e.args[k + 1], f));
        }
        return Value::of_dict(std::move(d));
      }
      case Expr::Attr: return get_attr(eval(*e.args[0], f), e.name);
      case Expr::Item: return get_item(eval(*e.args[0], f), eval(*e.args[1], f));
      case Expr::Slice: {
        const Value obj = eval(*e.args[0], f);
        auto opt = [&](size_t k) { return e.args[k] ? eval(*e.args[k], f) : Value::none(); };
        return slice(obj, opt(1), opt(2), opt(3));
      }
      case Expr::Call: {
        const Value callee = eval(*e.args[0], f);
        CallArgs a = eval_args(e, f);
        return invoke(callee, a, e.line);
      }
      case Expr::Filter: {
        const Value v = eval(*e.args[0], f);
        CallArgs a = eval_args(e, f);
        return apply_filter(e.name, v, a);
      }
      case Expr::Test: {
        const Value v = eval(*e.args[0], f);
        CallArgs a = eval_args(e, f);
        return Value::boolean(apply_test(e.name, v, a) != e.negated);
      }
      case Expr::Unary: {
        const Value v = eval(*e.args[0], f);
        if (e.op == Op::Not) return Value::boolean(!v.truthy());
        if (!v.is_number()) {
          if (v.is_undefined()) throw EvalError(undefined_message(v));
          throw EvalError("bad operand type for unary " + e.name + ": '" + v.type_name() + "'");
        }
        if (e.op == Op::Pos) return v.type == Value::Type::Bool ? Value::integer(v.as_int()) : v;
        return v.type == Value::Type::Float ? Value::number(-v.f) : Value::integer(int_neg(v.as_int()));
      }
      case Expr::Binary: {
        if (e.op == Op::And) {
          Value l = eval(*e.args[0], f);
          return l.truthy() ? eval(*e.args[1], f) : l;
        }
        if (e.op == Op::Or) {
          Value l = eval(*e.args[0], f);
          return l.truthy() ? l : eval(*e.args[1], f);
        }
        const Value l = eval(*e.args[0], f), r = eval(*e.args[1], f);
        if (e.op == Op::Concat) {
          std::string s = to_str(l) + to_str(r);
          if (s.size() > kMaxString) throw EvalError("string longer than 64 MiB");
          spend(str_steps(s.size()));
          return Value::string(std::move(s));
        }
        return arith(e.op, e.name, l, r);
      }
      case Expr::Compare: {
        Value l = eval(*e.args[0], f);
        for (size_t k = 0; k < e.ops.size(); k++) {
          Value r = eval(*e.args[k + 1], f);
          const Op op = e.op_codes[k];
          bool ok;
          if (op == Op::Eq) ok = equal(l, r);
          else if (op == Op::Ne) ok = !equal(l, r);
          else if (op == Op::In) ok = contains(r, l);
          else if (op == Op::NotIn) ok = !contains(r, l);
          else {
            int c;
            if (!compare(l, r, c))
              throw EvalError("'" + e.ops[k] + "' not supported between '" + l.type_name() + "' and '" + r.type_name() + "'");
            ok = op == Op::Lt ? c < 0 : op == Op::Le ? c <= 0 : op == Op::Gt ? c > 0 : c >= 0;
          }
          if (!ok) return Value::boolean(false);
          l = std::move(r);
        }
        return Value::boolean(true);
      }
      case Expr::Cond:
        if (eval(*e.args[0], f).truthy()) return eval(*e.args[1], f);
        return e.args[2] ? eval(*e.args[2], f) : Value::undefined("the condition was false and there is no else");
    }
    return Value::undefined();
  }

  const std::string& name_;
  const RenderOptions& opt_;
  const Frame* root_ = nullptr;
  std::string* out_ = nullptr;
  const std::string* main_ = nullptr;
  int call_depth_ = 0;
  StepBudget steps_;  // this render's, current on this thread while it runs
};

}  // namespace

Template::Template(const std::string& source, std::string name) : name_(std::move(name)), source_(source) {
  body_ = std::make_shared<const Body>(parse(lex(source, name_), name_));
}
Template::~Template() = default;
Template::Template(const Template&) = default;
Template& Template::operator=(const Template&) = default;

std::string Template::render(const Dict& variables, const RenderOptions& opt) const {
  return Interp(name_, opt).run(*body_, variables);
}

}  // namespace wick::jinja
