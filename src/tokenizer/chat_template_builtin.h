// Built-in copies of the Qwen2.5 and Qwen3 chat templates (Jinja source).
#pragma once

namespace wick {

extern const char* const kQwen25Template;
extern const char* const kQwen3Template;

}  // namespace wick
