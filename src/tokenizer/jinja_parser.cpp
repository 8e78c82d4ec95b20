#include "tokenizer/jinja_parser.h"

#include <initializer_list>
#include <set>
#include <string_view>

#include "core/error.h"

namespace wick::jinja {

namespace {

constexpr int kMaxDepth = 200;  // nesting of expressions and blocks: deeper input is refused, not a stack overflow

class Parser {
 public:
  Parser(const std::vector<Token>& t, const std::string& name) : t_(t), name_(name) {}

  Body run() {
    Body b = body({});
    if (cur().kind != Token::Eof) fail("unexpected tag");
    return b;
  }

 private:
  const Token& cur() const { return t_[p_]; }
  const Token& peek(size_t k = 1) const { return t_[std::min(p_ + k, t_.size() - 1)]; }
  // string_view: the length is known, so a different token costs a size compare, not strlen + memcmp.
  bool is_op(std::string_view op) const { return cur().kind == Token::Op && cur().text == op; }
  bool is_name(std::string_view n) const { return cur().kind == Token::Name && cur().text == n; }
  bool at_end() const { return cur().kind == Token::BlockEnd || cur().kind == Token::VarEnd || cur().kind == Token::Eof; }

  [[noreturn]] void fail(const std::string& what, int line = -1) const {
    throw Error(what, name_ + ":" + std::to_string(line < 0 ? cur().line : line),
                "wick renders a subset of Jinja: the syntax chat templates use");
  }
  std::string describe(const Token& k) const {
    switch (k.kind) {
      case Token::Eof: return "end of template";
      case Token::BlockEnd: return "end of block tag";
      case Token::VarEnd: return "end of expression";
      case Token::String: return "string";
      case Token::Text: return "text";
      default: return "'" + k.text + "'";
    }
  }
  void expect_op(const char* op) {
    if (!is_op(op)) fail(std::string("expected '") + op + "', got " + describe(cur()));
    p_++;
  }
  std::string expect_name(const char* what) {
    if (cur().kind != Token::Name) fail(std::string("expected ") + what + ", got " + describe(cur()));
    return t_[p_++].text;
  }
  void expect_block_end(const std::string& tag) {
    if (cur().kind != Token::BlockEnd) fail("expected end of '" + tag + "' tag (\"%}\"), got " + describe(cur()));
    p_++;
  }

  struct Guard {
    explicit Guard(Parser& p) : p(p) {
      if (++p.depth_ > kMaxDepth) p.fail("template nested too deeply (over " + std::to_string(kMaxDepth) + " levels)");
    }
    ~Guard() { p.depth_--; }
    Parser& p;
  };

  static Op op_code(std::string_view op) {
    static constexpr std::pair<std::string_view, Op> codes[] = {
        {"+", Op::Add},   {"-", Op::Sub},  {"*", Op::Mul}, {"/", Op::Div}, {"//", Op::FloorDiv}, {"%", Op::Mod},
        {"**", Op::Pow},  {"~", Op::Concat}, {"and", Op::And}, {"or", Op::Or}, {"not", Op::Not},
        {"==", Op::Eq},   {"!=", Op::Ne},  {"<", Op::Lt},  {"<=", Op::Le}, {">", Op::Gt}, {">=", Op::Ge},
        {"in", Op::In},   {"notin", Op::NotIn}};
    for (const auto& [text, code] : codes)
      if (text == op) return code;
    return Op::None;
  }

  // Whether an expression or statements name `name` anywhere (a for body's use of `loop`).
  static bool names(const Expr* e, std::string_view name) {
    if (!e) return false;
    if (e->kind == Expr::Name && e->name == name) return true;
    for (const ExprP& a : e->args)
      if (names(a.get(), name)) return true;
    for (const auto& kw : e->kwargs)
      if (names(kw.second.get(), name)) return true;
    return false;
  }
  static bool names(const Body& body, std::string_view name) {
    for (const NodeP& n : body) {
      if (names(n->expr.get(), name) || names(n->cond.get(), name) || names(n->attr_of.get(), name) ||
          names(n->filter.get(), name) || names(n->body, name) || names(n->else_body, name))
        return true;
      for (const auto& [c, b] : n->branches)
        if (names(c.get(), name) || names(b, name)) return true;
      for (const auto& p : n->params)
        if (names(p.second.get(), name)) return true;
    }
    return false;
  }

  static ExprP make(Expr::Kind k, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->line = line;
    return e;
  }

  // Statements until a block tag named in `ends` (left unconsumed: cur() is that name) or the end.
  Body body(std::initializer_list<std::string_view> ends) {
    Guard g(*this);
    Body out;
    for (;;) {
      const Token& k = cur();
      if (k.kind == Token::Eof) {
        if (ends.size() != 0) fail("unexpected end of template: expected '{% " + std::string(*ends.begin()) + " %}'");
        return out;
      }
      if (k.kind == Token::Text) {
        auto n = std::make_unique<Node>();
        n->kind = Node::Text;
        n->line = k.line;
        n->text = k.text;
        out.push_back(std::move(n));
        p_++;
      } else if (k.kind == Token::VarBegin) {
        p_++;
        auto n = std::make_unique<Node>();
        n->kind = Node::Output;
        n->line = k.line;
        n->expr = tuple(true);
        if (cur().kind != Token::VarEnd) fail("expected end of expression (\"}}\"), got " + describe(cur()));
        p_++;
        out.push_back(std::move(n));
      } else if (k.kind == Token::BlockBegin) {
        p_++;
        if (cur().kind != Token::Name) fail("expected a tag name after \"{%\", got " + describe(cur()));
        for (std::string_view e : ends)
          if (cur().text == e) return out;
        out.push_back(statement());
      } else {
        fail("unexpected " + describe(k));
      }
    }
  }

  // Consumes "{% name %}" after body() stopped on it (cur() is the name).
  void end_tag(const std::string& name) {
    p_++;
    expect_block_end(name);
  }

  NodeP statement() {
    const Token& k = cur();
    const std::string tag = k.text;
    const int line = k.line;
    p_++;
    auto n = std::make_unique<Node>();
    n->line = line;
    if (tag == "if") {
      n->kind = Node::If;
      ExprP c = expression(false);
      expect_block_end("if");
      for (;;) {
        Body b = body({"elif", "else", "endif"});
        n->branches.emplace_back(std::move(c), std::move(b));
        const std::string end = cur().text;
        p_++;
        if (end == "elif") {
          c = expression(false);
          expect_block_end("elif");
        } else if (end == "else") {
          expect_block_end("else");
          n->branches.emplace_back(nullptr, body({"endif"}));
          end_tag("endif");
          break;
        } else {
          expect_block_end("endif");
          break;
        }
      }
    } else if (tag == "for") {
      n->kind = Node::For;
      n->targets.push_back(expect_name("a loop variable name"));
      while (is_op(",")) {
        p_++;
        n->targets.push_back(expect_name("a loop variable name"));
      }
      if (!is_name("in")) fail("expected 'in' in the for loop, got " + describe(cur()));
      p_++;
      n->expr = tuple(false, true);
      if (is_name("if")) {
        p_++;
        n->cond = expression(true);
      }
      if (is_name("recursive")) fail("recursive for loops are not supported");
      expect_block_end("for");
      loops_++;
      n->body = body({"else", "endfor"});
      n->uses_loop = names(n->body, "loop");
      loops_--;
      if (cur().text == "else") {
        end_tag("else");
        n->else_body = body({"endfor"});
      }
      end_tag("endfor");
    } else if (tag == "set") {
      const std::string first = expect_name("a variable name");
      if (is_op(".")) {
        p_++;
        n->kind = Node::Set;
        n->attr_of = make(Expr::Name, line);
        n->attr_of->name = first;
        n->targets.push_back(expect_name("an attribute name"));
        expect_op("=");
        n->expr = tuple(true);
        expect_block_end("set");
        return n;
      }
      n->targets.push_back(first);
      while (is_op(",")) {
        p_++;
        n->targets.push_back(expect_name("a variable name"));
      }
      if (is_op("=")) {
        p_++;
        n->kind = Node::Set;
        n->expr = tuple(true);
        expect_block_end("set");
      } else {
        if (n->targets.size() != 1) fail("a {% set %} block assigns one variable");
        n->kind = Node::SetBlock;
        if (is_op("|")) n->filter = filter_chain(line);
        expect_block_end("set");
        n->body = body({"endset"});
        end_tag("endset");
      }
    } else if (tag == "macro") {
      n->kind = Node::Macro;
      n->name = expect_name("a macro name");
      params(n->params);
      expect_block_end("macro");
      const int saved = loops_;
      loops_ = 0;
      n->body = body({"endmacro"});
      loops_ = saved;
      end_tag("endmacro");
    } else if (tag == "call") {
      n->kind = Node::CallBlock;
      if (is_op("(")) params(n->params);
      n->expr = expression(true);
      if (n->expr->kind != Expr::Call) fail("expected a macro call after {% call %}", line);
      expect_block_end("call");
      n->body = body({"endcall"});
      end_tag("endcall");
    } else if (tag == "filter") {
      n->kind = Node::FilterBlock;
      n->filter = filter_chain(line, /*leading_pipe=*/false);
      expect_block_end("filter");
      n->body = body({"endfilter"});
      end_tag("endfilter");
    } else if (tag == "break" || tag == "continue") {
      if (loops_ == 0) fail("'" + tag + "' outside a for loop", line);
      n->kind = tag == "break" ? Node::Break : Node::Continue;
      expect_block_end(tag);
    } else if (tag == "generation") {
      n->kind = Node::Generation;
      expect_block_end("generation");
      n->body = body({"endgeneration"});
      end_tag("endgeneration");
    } else {
      static const std::set<std::string> known = {"extends", "include", "import", "from", "block", "with",
                                                  "do", "autoescape", "trans"};
      if (known.count(tag)) fail("the '{% " + tag + " %}' tag is not supported", line);
      fail("unknown tag '" + tag + "' (or an end tag with no matching start)", line);
    }
    return n;
  }

  // "(a, b=default, ...)" of a macro or call block.
  void params(std::vector<std::pair<std::string, ExprP>>& out) {
    expect_op("(");
    while (!is_op(")")) {
      if (!out.empty()) expect_op(",");
      if (is_op(")")) break;
      std::string nm = expect_name("a parameter name");
      ExprP def;
      if (is_op("=")) {
        p_++;
        def = expression(true);
      }
      out.emplace_back(std::move(nm), std::move(def));
    }
    p_++;
  }

  // "| f(args) | g" applied to a placeholder literal (the block's rendered text is put there when evaluated).
  ExprP filter_chain(int line, bool leading_pipe = true) {
    ExprP node = make(Expr::Literal, line);
    if (leading_pipe) expect_op("|");
    node = filter(std::move(node));
    while (is_op("|")) {
      p_++;
      node = filter(std::move(node));
    }
    return node;
  }

  // Expressions separated by commas: a tuple when there is a comma (or explicit "()" handled by primary).
  ExprP tuple(bool with_cond, bool stop_at_if = false) {
    const int line = cur().line;
    ExprP first = with_cond ? expression(true) : or_expr();
    if (!is_op(",")) return first;
    auto t = make(Expr::ListLit, line);
    t->is_tuple = true;
    t->args.push_back(std::move(first));
    while (is_op(",")) {
      p_++;
      if (at_end() || (stop_at_if && is_name("if")) || is_op(")")) break;
      t->args.push_back(with_cond ? expression(true) : or_expr());
    }
    return t;
  }

  ExprP expression(bool with_cond) {
    Guard g(*this);
    if (!with_cond) return or_expr();
    ExprP e = or_expr();
    while (is_name("if")) {
      const int line = cur().line;
      p_++;
      auto c = make(Expr::Cond, line);
      ExprP test = or_expr();
      ExprP other;
      if (is_name("else")) {
        p_++;
        other = expression(true);
      }
      c->args.push_back(std::move(test));
      c->args.push_back(std::move(e));
      c->args.push_back(std::move(other));
      e = std::move(c);
    }
    return e;
  }

  ExprP binary(ExprP l, const std::string& op, ExprP r, int line) {
    auto b = make(Expr::Binary, line);
    b->name = op;
    b->op = op_code(op);
    b->args.push_back(std::move(l));
    b->args.push_back(std::move(r));
    return b;
  }

  ExprP or_expr() {
    ExprP l = and_expr();
    while (is_name("or")) {
      const int line = cur().line;
      p_++;
      l = binary(std::move(l), "or", and_expr(), line);
    }
    return l;
  }
  ExprP and_expr() {
    ExprP l = not_expr();
    while (is_name("and")) {
      const int line = cur().line;
      p_++;
      l = binary(std::move(l), "and", not_expr(), line);
    }
    return l;
  }
  ExprP not_expr() {
    Guard g(*this);
    if (is_name("not")) {
      auto u = make(Expr::Unary, cur().line);
      p_++;
      u->name = "not";
      u->op = Op::Not;
      u->args.push_back(not_expr());
      return u;
    }
    return compare();
  }
  ExprP compare() {
    const int line = cur().line;
    ExprP first = math1();
    ExprP c;
    for (;;) {
      std::string op;
      if (cur().kind == Token::Op && (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                                      cur().text == "<=" || cur().text == ">" || cur().text == ">=")) {
        op = cur().text;
        p_++;
      } else if (is_name("in")) {
        op = "in";
        p_++;
      } else if (is_name("not") && peek().kind == Token::Name && peek().text == "in") {
        op = "notin";
        p_ += 2;
      } else {
        break;
      }
      if (!c) {
        c = make(Expr::Compare, line);
        c->args.push_back(std::move(first));
      }
      c->ops.push_back(op);
      c->op_codes.push_back(op_code(op));
      c->args.push_back(math1());
    }
    return c ? std::move(c) : std::move(first);
  }
  ExprP math1() {
    ExprP l = concat();
    while (is_op("+") || is_op("-")) {
      const std::string op = cur().text;
      const int line = cur().line;
      p_++;
      l = binary(std::move(l), op, concat(), line);
    }
    return l;
  }
  ExprP concat() {
    ExprP l = math2();
    while (is_op("~")) {
      const int line = cur().line;
      p_++;
      l = binary(std::move(l), "~", math2(), line);
    }
    return l;
  }
  ExprP math2() {
    ExprP l = pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const std::string op = cur().text;
      const int line = cur().line;
      p_++;
      l = binary(std::move(l), op, pow(), line);
    }
    return l;
  }
  ExprP pow() {
    ExprP l = unary(true);
    while (is_op("**")) {
      const int line = cur().line;
      p_++;
      l = binary(std::move(l), "**", unary(true), line);
    }
    return l;
  }
  ExprP unary(bool with_filter) {
    Guard g(*this);
    ExprP node;
    if (is_op("-") || is_op("+")) {
      node = make(Expr::Unary, cur().line);
      node->name = cur().text;
      node->op = node->name == "-" ? Op::Neg : Op::Pos;
      p_++;
      node->args.push_back(unary(false));
    } else {
      node = postfix(primary());
    }
    if (with_filter) node = filter_expr(std::move(node));
    return node;
  }

  ExprP primary() {
    Guard g(*this);
    const Token& k = cur();
    const int line = k.line;
    if (k.kind == Token::Name) {
      p_++;
      auto e = make(Expr::Literal, line);
      if (k.text == "true" || k.text == "True") e->lit = Value::boolean(true);
      else if (k.text == "false" || k.text == "False") e->lit = Value::boolean(false);
      else if (k.text == "none" || k.text == "None") e->lit = Value::none();
      else {
        e->kind = Expr::Name;
        e->name = k.text;
      }
      return e;
    }
    if (k.kind == Token::String) {
      std::string s;
      while (cur().kind == Token::String) s += t_[p_++].text;
      auto e = make(Expr::Literal, line);
      e->lit = Value::string(std::move(s));
      return e;
    }
    if (k.kind == Token::Int || k.kind == Token::Float) {
      p_++;
      auto e = make(Expr::Literal, line);
      try {
        e->lit = k.kind == Token::Int ? Value::integer(std::stoll(k.text)) : Value::number(std::stod(k.text));
      } catch (const std::exception&) {
        fail("number literal '" + k.text + "' is out of range");
      }
      return e;
    }
    if (is_op("(")) {
      p_++;
      if (is_op(")")) {
        p_++;
        auto t = make(Expr::ListLit, line);
        t->is_tuple = true;
        return t;
      }
      ExprP e = tuple(true);
      expect_op(")");
      return e;
    }
    if (is_op("[")) {
      p_++;
      auto l = make(Expr::ListLit, line);
      while (!is_op("]")) {
        if (!l->args.empty()) expect_op(",");
        if (is_op("]")) break;
        l->args.push_back(expression(true));
      }
      p_++;
      return l;
    }
    if (is_op("{")) {
      p_++;
      auto d = make(Expr::DictLit, line);
      while (!is_op("}")) {
        if (!d->args.empty()) expect_op(",");
        if (is_op("}")) break;
        d->args.push_back(expression(true));
        expect_op(":");
        d->args.push_back(expression(true));
      }
      p_++;
      return d;
    }
    fail("expected an expression, got " + describe(k));
  }

  ExprP postfix(ExprP node) {
    for (;;) {
      const int line = cur().line;
      if (is_op(".")) {
        p_++;
        auto a = make(Expr::Attr, line);
        if (cur().kind == Token::Name) a->name = t_[p_++].text;
        else if (cur().kind == Token::Int) {  // x.0 is x[0]
          a->kind = Expr::Item;
          auto idx = make(Expr::Literal, line);
          const std::string& digits = t_[p_++].text;
          try {
            idx->lit = Value::integer(std::stoll(digits));
          } catch (const std::exception&) {
            fail("index '." + digits + "' is out of range");
          }
          a->args.push_back(std::move(node));
          a->args.push_back(std::move(idx));
          node = std::move(a);
          continue;
        } else fail("expected an attribute name after '.', got " + describe(cur()));
        a->args.push_back(std::move(node));
        node = std::move(a);
      } else if (is_op("[")) {
        p_++;
        node = subscript(std::move(node), line);
      } else if (is_op("(")) {
        node = call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprP subscript(ExprP obj, int line) {
    ExprP parts[3];
    bool slice = false;
    if (!is_op(":")) parts[0] = expression(true);
    if (is_op(":")) {
      slice = true;
      p_++;
      if (!is_op(":") && !is_op("]")) parts[1] = expression(true);
      if (is_op(":")) {
        p_++;
        if (!is_op("]")) parts[2] = expression(true);
      }
    }
    expect_op("]");
    auto e = make(slice ? Expr::Slice : Expr::Item, line);
    e->args.push_back(std::move(obj));
    e->args.push_back(std::move(parts[0]));
    if (slice) {
      e->args.push_back(std::move(parts[1]));
      e->args.push_back(std::move(parts[2]));
    }
    return e;
  }

  // "(" args ")" after cur(): positional and name=value arguments, appended to e.
  void call_args(Expr& e) {
    expect_op("(");
    for (bool first = true; !is_op(")"); first = false) {
      if (!first) expect_op(",");
      if (is_op(")")) break;
      if (is_op("*") || is_op("**")) fail("*args and **kwargs in calls are not supported");
      if (cur().kind == Token::Name && peek().kind == Token::Op && peek().text == "=") {
        std::string nm = t_[p_].text;
        p_ += 2;
        e.kwargs.emplace_back(std::move(nm), expression(true));
      } else {
        if (!e.kwargs.empty()) fail("a positional argument follows a keyword argument");
        e.args.push_back(expression(true));
      }
    }
    p_++;
  }

  ExprP call(ExprP callee) {
    auto c = make(Expr::Call, cur().line);
    c->args.push_back(std::move(callee));
    call_args(*c);
    return c;
  }

  ExprP filter(ExprP subject) {
    auto f = make(Expr::Filter, cur().line);
    f->name = expect_name("a filter name");
    f->args.push_back(std::move(subject));
    if (is_op("(")) call_args(*f);
    return f;
  }

  ExprP filter_expr(ExprP node) {
    for (;;) {
      if (is_op("|")) {
        p_++;
        node = filter(std::move(node));
      } else if (is_name("is")) {
        const int line = cur().line;
        p_++;
        auto t = make(Expr::Test, line);
        if (is_name("not")) {
          t->negated = true;
          p_++;
        }
        t->name = expect_name("a test name");
        t->args.push_back(std::move(node));
        const Token& k = cur();
        if (is_op("(")) {
          call_args(*t);
        } else if ((k.kind == Token::Name || k.kind == Token::String || k.kind == Token::Int || k.kind == Token::Float ||
                    is_op("[") || is_op("{")) &&
                   !(k.kind == Token::Name && (k.text == "else" || k.text == "or" || k.text == "and" || k.text == "if"))) {
          if (is_name("is")) fail("tests cannot be chained with 'is'");
          t->args.push_back(postfix(primary()));
        }
        node = std::move(t);
      } else if (is_op("(")) {
        node = call(std::move(node));
      } else {
        return node;
      }
    }
  }

  const std::vector<Token>& t_;
  const std::string& name_;
  size_t p_ = 0;
  int depth_ = 0, loops_ = 0;
};

}  // namespace

Body parse(const std::vector<Token>& tokens, const std::string& name) { return Parser(tokens, name).run(); }

}  // namespace wick::jinja
