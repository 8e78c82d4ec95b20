// Jinja parser: tokens -> statements, with Jinja2's operator precedence (lowest first): "x if c else y",
// or, and, not, comparisons and in, + -, ~, * / // %, **, unary - +, then primary with .attr, [item],
// [a:b:c], (call), | filter and "is" test. Anything outside the supported subset (extends, include, import,
// recursive loops, ...) is a wick::Error naming the template, the line and what was expected.
#pragma once
#include <string>
#include <vector>

#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_lexer.h"

namespace wick::jinja {

Body parse(const std::vector<Token>& tokens, const std::string& name);

}  // namespace wick::jinja
