// Jinja lexer: template text -> tokens, with the whitespace rules of the environment transformers renders
// chat templates in (trim_blocks=True: the first newline after a block or comment tag is dropped;
// lstrip_blocks=True: spaces and tabs before a block or comment tag at the start of a line are dropped;
// "{%-" / "-%}" strip all whitespace on that side; "{%+" / "+%}" turn the two rules off). As Jinja2 does,
// newlines are normalised to "\n" and one trailing newline of the template is dropped.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace wick::jinja {

struct Token {
  enum Kind { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof };
  Kind kind;
  std::string text;  // Text: the data; String: the decoded literal; Name/Op/Int/Float: as written
  int line;
};

// name is the template's name for error messages (wick::Error with "name:line").
std::vector<Token> lex(const std::string& source, const std::string& name);

// Python's str.isspace for one code point, and str.strip()/lstrip()/rstrip() without arguments.
bool py_isspace(uint32_t cp);
std::string py_strip(const std::string& s, bool left, bool right);

}  // namespace wick::jinja
