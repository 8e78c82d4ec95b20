// A Jinja template engine for chat templates: the subset of Jinja2 that Hugging Face chat templates use,
// rendered as transformers' apply_chat_template renders them (an ImmutableSandboxedEnvironment with
// trim_blocks, lstrip_blocks and loopcontrols; tojson as json.dumps(ensure_ascii=False); the globals
// raise_exception and strftime_now; {% generation %} blocks marking assistant text). Files: jinja_lexer
// (text -> tokens), jinja_parser (tokens -> jinja_ast), jinja_eval (the interpreter), jinja_filters (filters,
// tests), jinja_methods (str/dict/list methods, attribute and item access), jinja_int (integer arithmetic),
// jinja_builtins (the step budget, shared helpers), jinja_value (values with Python's semantics).
//
// Every failure is a wick::Error naming the template and line: syntax outside the subset, undefined
// variables used as objects, type errors, raise_exception() (its message is the error), and runaway input
// (nesting, recursion and string size are bounded, and a render's work by a step budget - jinja_builtins.h -
// so a template cannot crash or hang wick).
#pragma once
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace wick::jinja {

struct Node;

struct RenderOptions {
  std::optional<std::tm> now;  // what strftime_now() formats; nullopt = the local time when rendering
  // Filled with the [begin, end) byte ranges of the output rendered inside {% generation %} blocks.
  std::vector<std::pair<size_t, size_t>>* generation = nullptr;
};

class Template {
 public:
  // Parses source (wick::Error on syntax outside the subset); name is used in error messages.
  Template(const std::string& source, std::string name);
  ~Template();
  Template(const Template&);
  Template& operator=(const Template&);

  // Renders with the given variables (messages, add_generation_prompt, bos_token, ...).
  std::string render(const Dict& variables, const RenderOptions& opt = {}) const;

  const std::string& name() const { return name_; }
  const std::string& source() const { return source_; }

 private:
  std::string name_, source_;
  std::shared_ptr<const std::vector<std::unique_ptr<Node>>> body_;
};

}  // namespace wick::jinja
