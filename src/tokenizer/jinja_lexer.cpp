#include "tokenizer/jinja_lexer.h"

#include <cstdint>
#include <cstring>

#include "core/error.h"

namespace wick::jinja {

namespace {

// Decodes the code point at s[k] (valid UTF-8 assumed; a stray byte counts as itself) and its length.
uint32_t cp_at(const std::string& s, size_t k, size_t& len) {
  const unsigned char c = static_cast<unsigned char>(s[k]);
  uint32_t cp = c;
  len = 1;
  if (c >= 0xF0) { cp = c & 0x07; len = 4; }
  else if (c >= 0xE0) { cp = c & 0x0F; len = 3; }
  else if (c >= 0xC0) { cp = c & 0x1F; len = 2; }
  if (k + len > s.size()) { len = 1; return c; }
  for (size_t j = 1; j < len; j++) cp = (cp << 6) | (static_cast<unsigned char>(s[k + j]) & 0x3F);
  return cp;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) out.push_back(static_cast<char>(cp));
  else if (cp < 0x800) { out.push_back(static_cast<char>(0xC0 | (cp >> 6))); out.push_back(static_cast<char>(0x80 | (cp & 0x3F))); }
  else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Newlines in [p, p + n): memchr's word-at-a-time scan, not a compare per byte (the lexer counts lines over the
// whole template text).
int count_newlines(const char* p, size_t n) {
  int lines = 0;
  for (const char* end = p + n; (p = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)))); p++)
    lines++;
  return lines;
}

// Length of the run of whitespace (Python's \s) starting at k. ASCII is decided without decoding.
size_t space_run(const std::string& s, size_t k) {
  size_t start = k;
  while (k < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[k]);
    if (c < 0x80) {
      if (!((c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20))) break;
      k++;
      continue;
    }
    size_t len;
    if (!py_isspace(cp_at(s, k, len))) break;
    k += len;
  }
  return k - start;
}

bool name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }
bool digit(char c) { return c >= '0' && c <= '9'; }

class Lexer {
 public:
  Lexer(std::string src, const std::string& name) : s_(std::move(src)), name_(name) {}

  std::vector<Token> run() {
    out_.reserve(s_.size() / 4 + 2);  // chat templates: about one token per 4-6 bytes
    bool line_starting = true;
    while (pos_ < s_.size()) {
      size_t open = s_.find('{', pos_);
      while (open != std::string::npos && open + 1 < s_.size() && s_[open + 1] != '{' && s_[open + 1] != '%' && s_[open + 1] != '#')
        open = s_.find('{', open + 1);
      if (open == std::string::npos || open + 1 >= s_.size()) {
        text(s_.substr(pos_));
        pos_ = s_.size();
        break;
      }
      const char kind = s_[open + 1];
      const char sign = open + 2 < s_.size() && (s_[open + 2] == '-' || s_[open + 2] == '+') ? s_[open + 2] : 0;
      std::string data = s_.substr(pos_, open - pos_);
      if (sign == '-') {
        data = py_strip(data, false, true);
      } else if (sign != '+' && kind != '{') {  // lstrip_blocks: blocks and comments, not {{ }}
        const size_t l_pos = data.rfind('\n') == std::string::npos ? 0 : data.rfind('\n') + 1;
        if ((l_pos > 0 || line_starting) && l_pos < data.size() && space_run(data, l_pos) == data.size() - l_pos)
          data.resize(l_pos);
      }
      text(std::move(data));
      pos_ = open + 2 + (sign ? 1 : 0);
      if (kind == '#') line_starting = comment();
      else if (kind == '%' && raw_block(line_starting)) continue;
      else line_starting = tag(kind == '%');
    }
    out_.push_back({Token::Eof, "", line_});
    return std::move(out_);  // the lexer is a temporary, run once: hand the tokens over without a copy
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(what, name_ + ":" + std::to_string(line_), "wick renders a subset of Jinja: the syntax chat templates use");
  }

  void advance_to(size_t p) {
    if (p > pos_) line_ += count_newlines(s_.data() + pos_, p - pos_);
    pos_ = p;
  }

  void text(std::string data) {
    const int lines = count_newlines(data.data(), data.size());
    if (!data.empty()) out_.push_back({Token::Text, std::move(data), line_});
    line_ += lines;
  }

  // After "{#": skips to "#}". Returns whether the consumed text ends with a newline.
  bool comment() {
    const size_t close = s_.find("#}", pos_);
    if (close == std::string::npos) fail("missing end of comment tag \"#}\"");
    size_t end = close + 2;
    const bool minus = close > pos_ && s_[close - 1] == '-', plus = close > pos_ && s_[close - 1] == '+';
    if (minus) end += space_run(s_, end);
    else if (!plus && end < s_.size() && s_[end] == '\n') end++;
    advance_to(end);
    return s_[end - 1] == '\n';
  }

  // "{% raw %}...{% endraw %}": the body is text. Returns false (consuming nothing) when the tag is not raw.
  bool raw_block(bool& line_starting) {
    size_t k = pos_ + space_run(s_, pos_);
    if (s_.compare(k, 3, "raw") != 0 || (k + 3 < s_.size() && name_char(s_[k + 3]))) return false;
    k += 3;
    k += space_run(s_, k);
    const bool minus = s_.compare(k, 3, "-%}") == 0;
    if (!minus && s_.compare(k, 2, "%}") != 0) fail("expected \"%}\" after \"raw\"");
    k += minus ? 3 : 2;
    if (minus) k += space_run(s_, k);
    advance_to(k);
    // Find {% endraw %}
    for (size_t search = pos_;;) {
      const size_t open = s_.find("{%", search);
      if (open == std::string::npos) fail("missing {% endraw %}");
      size_t j = open + 2;
      const char sign = j < s_.size() && (s_[j] == '-' || s_[j] == '+') ? s_[j] : 0;
      if (sign) j++;
      j += space_run(s_, j);
      if (s_.compare(j, 6, "endraw") != 0) { search = open + 2; continue; }
      j += 6;
      j += space_run(s_, j);
      std::string data = s_.substr(pos_, open - pos_);
      if (sign == '-') data = py_strip(data, false, true);
      text(std::move(data));
      pos_ = open;
      size_t end;
      if (s_.compare(j, 3, "-%}") == 0) end = j + 3 + space_run(s_, j + 3);
      else if (s_.compare(j, 3, "+%}") == 0) end = j + 3;
      else if (s_.compare(j, 2, "%}") == 0) end = j + 2 + (j + 2 < s_.size() && s_[j + 2] == '\n' ? 1 : 0);
      else fail("expected \"%}\" after \"endraw\"");
      advance_to(end);
      line_starting = s_[end - 1] == '\n';
      return true;
    }
  }

  // After "{{" or "{%" (and its sign): the expression tokens through the closing delimiter. Returns whether
  // the last consumed text (the closing delimiter and what it trims) ends with a newline.
  bool tag(bool block) {
    out_.push_back({block ? Token::BlockBegin : Token::VarBegin, "", line_});
    int depth = 0;  // open brackets: "}}" inside {{ {'a': {'b': 1}} }} does not end the tag
    for (;;) {
      const size_t ws = space_run(s_, pos_);
      advance_to(pos_ + ws);
      if (pos_ >= s_.size()) fail(block ? "missing end of block tag \"%}\"" : "missing end of expression \"}}\"");
      const char* close = block ? "%}" : "}}";
      if (depth == 0) {
        if (s_[pos_] == '-' && s_.compare(pos_ + 1, 2, close) == 0) {
          out_.push_back({block ? Token::BlockEnd : Token::VarEnd, "", line_});
          size_t end = pos_ + 3;
          end += space_run(s_, end);
          advance_to(end);
          return s_[end - 1] == '\n';
        }
        if (block && s_.compare(pos_, 3, "+%}") == 0) {
          out_.push_back({Token::BlockEnd, "", line_});
          advance_to(pos_ + 3);
          return false;
        }
        if (s_.compare(pos_, 2, close) == 0) {
          out_.push_back({block ? Token::BlockEnd : Token::VarEnd, "", line_});
          size_t end = pos_ + 2;
          if (block && end < s_.size() && s_[end] == '\n') end++;  // trim_blocks
          advance_to(end);
          return s_[end - 1] == '\n';
        }
      }
      const char c = s_[pos_];
      if (name_start(c)) {
        size_t e = pos_;
        while (e < s_.size() && name_char(s_[e])) e++;
        out_.push_back({Token::Name, s_.substr(pos_, e - pos_), line_});
        advance_to(e);
      } else if (digit(c)) {
        number();
      } else if (c == '\'' || c == '"') {
        string_literal();
      } else {
        static constexpr const char* two[] = {"//", "**", "==", "!=", ">=", "<="};
        std::string op(1, c);
        if (pos_ + 1 < s_.size())
          for (const char* t : two)
            if (c == t[0] && s_[pos_ + 1] == t[1]) op = t;
        if (op.size() == 1 && (c == 0 || !std::strchr("+-*/%~<>=()[]{},.:|", c)))
          fail(std::string("unexpected character '") + c + "' in a tag");
        if (op == "(" || op == "[" || op == "{") depth++;
        if (op == ")" || op == "]" || op == "}") {
          if (depth == 0) fail("unexpected '" + op + "'");
          depth--;
        }
        out_.push_back({Token::Op, op, line_});
        advance_to(pos_ + op.size());
      }
    }
  }

  void number() {
    size_t e = pos_;
    bool is_float = false;
    while (e < s_.size() && (digit(s_[e]) || s_[e] == '_')) e++;
    if (e + 1 < s_.size() && s_[e] == '.' && digit(s_[e + 1])) {
      is_float = true;
      e++;
      while (e < s_.size() && (digit(s_[e]) || s_[e] == '_')) e++;
    }
    if (e < s_.size() && (s_[e] == 'e' || s_[e] == 'E')) {
      size_t k = e + 1;
      if (k < s_.size() && (s_[k] == '+' || s_[k] == '-')) k++;
      if (k < s_.size() && digit(s_[k])) {
        is_float = true;
        e = k;
        while (e < s_.size() && digit(s_[e])) e++;
      }
    }
    std::string t;
    for (size_t k = pos_; k < e; k++)
      if (s_[k] != '_') t.push_back(s_[k]);
    out_.push_back({is_float ? Token::Float : Token::Int, t, line_});
    advance_to(e);
  }

  // Python string escapes, as Jinja2 decodes literals ("unicode-escape"); an unknown escape keeps its backslash.
  void string_literal() {
    const char q = s_[pos_];
    std::string v;
    size_t k = pos_ + 1;
    for (;; k++) {
      if (k >= s_.size()) fail("unterminated string literal");
      const char c = s_[k];
      if (c == q) break;
      if (c != '\\') {  // plain text up to the next quote or backslash, appended at once
        const size_t stop = s_.find_first_of(q == '"' ? "\"\\" : "'\\", k);
        const size_t end = stop == std::string::npos ? s_.size() : stop;
        v.append(s_, k, end - k);
        k = end - 1;  // the loop's k++ lands on the quote or backslash (or the end: unterminated)
        continue;
      }
      if (++k >= s_.size()) fail("unterminated string literal");
      const char e = s_[k];
      auto hex = [&](int n) {
        if (k + n >= s_.size()) fail("truncated \\x/\\u escape in a string literal");
        uint32_t cp = 0;
        for (int j = 1; j <= n; j++) {
          const char h = s_[k + j];
          cp <<= 4;
          if (h >= '0' && h <= '9') cp |= h - '0';
          else if (h >= 'a' && h <= 'f') cp |= h - 'a' + 10;
          else if (h >= 'A' && h <= 'F') cp |= h - 'A' + 10;
          else fail("bad \\x/\\u escape in a string literal");
        }
        k += n;
        append_utf8(v, cp);
      };
      switch (e) {
        case 'n': v += '\n'; break;
        case 't': v += '\t'; break;
        case 'r': v += '\r'; break;
        case '\\': v += '\\'; break;
        case '\'': v += '\''; break;
        case '"': v += '"'; break;
        case 'a': v += '\a'; break;
        case 'b': v += '\b'; break;
        case 'f': v += '\f'; break;
        case 'v': v += '\v'; break;
        case '\n': break;  // line continuation
        case 'x': hex(2); break;
        case 'u': hex(4); break;
        case 'U': hex(8); break;
        default:
          if (e >= '0' && e <= '7') {
            uint32_t cp = 0;
            int n = 0;
            while (n < 3 && k < s_.size() && s_[k] >= '0' && s_[k] <= '7') cp = cp * 8 + (s_[k++] - '0'), n++;
            k--;
            append_utf8(v, cp);
          } else {
            v.push_back('\\');
            v.push_back(e);
          }
      }
    }
    out_.push_back({Token::String, v, line_});
    advance_to(k + 1);
  }

  std::string s_;
  const std::string& name_;
  size_t pos_ = 0;
  int line_ = 1;
  std::vector<Token> out_;
};

}  // namespace

bool py_isspace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

std::string py_strip(const std::string& s, bool left, bool right) {
  size_t a = 0, b = s.size();
  if (left) a = space_run(s, 0);
  if (right && b > a) {
    // Walk back over whole code points.
    while (b > a) {
      size_t start = b - 1;
      while (start > a && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) start--;
      size_t len;
      if (!py_isspace(cp_at(s, start, len))) break;
      b = start;
    }
  }
  return s.substr(a, b - a);
}

std::vector<Token> lex(const std::string& source, const std::string& name) {
  // Newlines -> "\n"; one trailing newline dropped (keep_trailing_newline=False). Most templates have no "\r".
  std::string s;
  if (source.find('\r') == std::string::npos) {
    s = source;
  } else {
    s.reserve(source.size());
    for (size_t k = 0; k < source.size(); k++) {
      if (source[k] == '\r') {
        s.push_back('\n');
        if (k + 1 < source.size() && source[k + 1] == '\n') k++;
      } else {
        s.push_back(source[k]);
      }
    }
  }
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return Lexer(std::move(s), name).run();
}

}  // namespace wick::jinja
