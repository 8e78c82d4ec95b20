#include "io/json_util.h"

#include <set>
#include <vector>

#include <utf8proc.h>

#include "core/error.h"
#include "io/safetensors.h"

namespace wick::io {

bool is_valid_utf8(std::string_view bytes) {
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(bytes.data());
  utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(bytes.size());
  while (left > 0) {
    if (*p < 0x80) {  // ASCII fast path
      p++;
      left--;
      continue;
    }
    utf8proc_int32_t cp = 0;
    const utf8proc_ssize_t n = utf8proc_iterate(p, left, &cp);
    if (n <= 0 || !utf8proc_codepoint_valid(cp)) return false;
    p += n;
    left -= n;
  }
  return true;
}

// Parses with a callback that keeps one key set per open object; the first repeated key is reported
// with its path (e.g. "a.b") once parsing ends, so that syntax errors still take precedence.
template <typename J>
static J parse_impl(std::string_view text, const std::string& where) {
  if (!is_valid_utf8(text)) throw Error("not valid UTF-8 JSON", where);
  // nlohmann skips a byte-order mark; serde_json (safetensors) and Python's json (transformers) refuse it.
  if (text.substr(0, 3) == "\xEF\xBB\xBF") throw Error("invalid JSON: starts with a UTF-8 byte-order mark", where);
  struct Frame {
    std::set<std::string> keys;
    std::string name;  // this object's key in its parent ("" for arrays' elements and the root)
  };
  std::vector<Frame> stack;
  std::string last_key, duplicate;
  auto cb = [&](int /*depth*/, typename J::parse_event_t ev, J& parsed) -> bool {
    switch (ev) {
      case J::parse_event_t::object_start:
        stack.push_back({{}, last_key});
        last_key.clear();
        break;
      case J::parse_event_t::key: {
        const std::string k = parsed.template get<std::string>();
        if (!stack.empty() && !stack.back().keys.insert(k).second && duplicate.empty()) {
          std::string path;
          for (const Frame& f : stack)
            if (!f.name.empty()) path += f.name + ".";
          duplicate = path + k;
        }
        last_key = k;
        break;
      }
      case J::parse_event_t::object_end:
        if (!stack.empty()) stack.pop_back();
        last_key.clear();
        break;
      case J::parse_event_t::array_start:
      case J::parse_event_t::array_end:
      case J::parse_event_t::value:
        last_key.clear();
        break;
    }
    return true;
  };
  J j;
  try {
    j = J::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const typename J::exception& e) {
    std::string msg = e.what();
    const auto close = msg.find("] ");
    if (msg.rfind("[json.exception", 0) == 0 && close != std::string::npos) msg = msg.substr(close + 2);
    throw Error("invalid JSON: " + msg, where);
  }
  if (!duplicate.empty())
    throw Error("duplicate key '" + duplicate + "' in JSON object", where,
                "each key may appear once; JSON readers disagree on which value wins");
  return j;
}

nlohmann::json parse_json_strict(std::string_view text, const std::string& where) {
  return parse_impl<nlohmann::json>(text, where);
}
nlohmann::ordered_json parse_json_strict_ordered(std::string_view text, const std::string& where) {
  return parse_impl<nlohmann::ordered_json>(text, where);
}
nlohmann::json read_json_file(const std::string& path) { return parse_json_strict(read_file(path), path); }

// A copy cut to depth 2 and 4 elements per container, so that dump() (recursive) stays shallow even
// for a hostile, deeply nested value.
template <typename J>
static J shallow(const J& v, int depth) {
  if (!v.is_structured()) return v;
  if (depth == 0) return J("...");
  J out = v.is_array() ? J::array() : J::object();
  int n = 0;
  for (auto it = v.begin(); it != v.end(); ++it, ++n) {
    if (n == 4) {
      if (v.is_array()) out.push_back("...");
      else out["..."] = "...";
      break;
    }
    if (v.is_array()) out.push_back(shallow(*it, depth - 1));
    else out[it.key()] = shallow(*it, depth - 1);
  }
  return out;
}

template <typename J>
static std::string brief_impl(const J& v) {
  std::string s = shallow(v, 2).dump(-1, ' ', /*ensure_ascii=*/true, J::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}
std::string json_brief(const nlohmann::json& v) { return brief_impl(v); }
std::string json_brief(const nlohmann::ordered_json& v) { return brief_impl(v); }

static const nlohmann::json* field(const nlohmann::json& obj, const std::string& key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

[[noreturn]] static void wrong_type(const std::string& key, const char* kind, const nlohmann::json& v,
                                    const std::string& where) {
  throw Error("field '" + key + "' must be " + kind + ", got " + json_brief(v), where);
}

std::optional<int64_t> get_int(const nlohmann::json& obj, const std::string& key, const std::string& where) {
  const nlohmann::json* v = field(obj, key);
  if (!v) return std::nullopt;
  if (v->is_number_unsigned()) {
    if (v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) wrong_type(key, "an integer that fits in 64 bits", *v, where);
    return static_cast<int64_t>(v->get<uint64_t>());
  }
  if (v->is_number_integer()) return v->get<int64_t>();
  wrong_type(key, "an integer", *v, where);
}

std::optional<double> get_number(const nlohmann::json& obj, const std::string& key, const std::string& where) {
  const nlohmann::json* v = field(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) wrong_type(key, "a number", *v, where);
  return v->get<double>();
}

std::optional<bool> get_bool(const nlohmann::json& obj, const std::string& key, const std::string& where) {
  const nlohmann::json* v = field(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) wrong_type(key, "true or false", *v, where);
  return v->get<bool>();
}

std::optional<std::string> get_string(const nlohmann::json& obj, const std::string& key, const std::string& where) {
  const nlohmann::json* v = field(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) wrong_type(key, "a string", *v, where);
  return v->get<std::string>();
}

}  // namespace wick::io
