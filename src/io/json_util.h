// Strict JSON for wick's input files: parse errors name the file and position, invalid UTF-8 is refused,
// and a key repeated inside one object is an error at any depth (nlohmann-json silently keeps one value).
// Plus small typed field readers whose errors name the file and the field.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace wick::io {

// True when bytes are well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
bool is_valid_utf8(std::string_view bytes);

// Parses text (where = file name for messages). ordered_json keeps the file's key order.
nlohmann::json parse_json_strict(std::string_view text, const std::string& where);
nlohmann::ordered_json parse_json_strict_ordered(std::string_view text, const std::string& where);
nlohmann::json read_json_file(const std::string& path);  // read_file + parse_json_strict

// A short rendering of a JSON value for error messages (at most ~80 characters).
std::string json_brief(const nlohmann::json& v);
std::string json_brief(const nlohmann::ordered_json& v);

// Typed optional fields of a JSON object: absent or null -> nullopt; a wrong type throws
// wick::Error("field '<key>' must be <kind>, got <value>", where).
std::optional<int64_t> get_int(const nlohmann::json& obj, const std::string& key, const std::string& where);
std::optional<double> get_number(const nlohmann::json& obj, const std::string& key, const std::string& where);
std::optional<bool> get_bool(const nlohmann::json& obj, const std::string& key, const std::string& where);
std::optional<std::string> get_string(const nlohmann::json& obj, const std::string& key, const std::string& where);

}  // namespace wick::io
