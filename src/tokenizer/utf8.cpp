#include "tokenizer/utf8.h"

#include <cstdlib>
#include <memory>

#include <utf8proc.h>

#include "core/error.h"

namespace wick::tok {

namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

// For a lead byte: the sequence length (0 = never valid as a lead) and the allowed range of the second
// byte (Unicode Table 3-7: excludes overlongs, surrogates and code points above U+10FFFF).
struct Lead {
  int len;
  unsigned char lo, hi;
};

Lead lead_of(unsigned char b) {
  if (b < 0x80) return {1, 0, 0};
  if (b < 0xC2) return {0, 0, 0};
  if (b < 0xE0) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b < 0xF0) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b < 0xF4) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// Length of the well-formed prefix of the sequence starting at s[i]: the full length when complete and valid,
// otherwise how many bytes (>= 1 when the lead is a valid lead) form a valid but unfinished prefix, and sets
// *truncated when the prefix ran into the end of the input rather than into a bad byte.
size_t valid_prefix(std::string_view s, size_t i, bool* complete, bool* truncated) {
  const unsigned char b = s[i];
  const Lead l = lead_of(b);
  *complete = false;
  *truncated = false;
  if (l.len == 1) {
    *complete = true;
    return 1;
  }
  if (l.len == 0) return 0;
  size_t k = 1;
  for (; k < static_cast<size_t>(l.len); k++) {
    if (i + k >= s.size()) {
      *truncated = true;
      return k;
    }
    const unsigned char c = s[i + k];
    const unsigned char lo = k == 1 ? l.lo : 0x80, hi = k == 1 ? l.hi : 0xBF;
    if (c < lo || c > hi) return k;
  }
  *complete = true;
  return k;
}

}  // namespace

size_t utf8_invalid_at(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      i++;
      continue;
    }
    bool complete, truncated;
    const size_t n = valid_prefix(s, i, &complete, &truncated);
    if (!complete) return i;
    i += n;
  }
  return std::string_view::npos;
}

size_t utf8_decode_lossy(std::string_view s, std::string& out, bool final) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char b = s[i];
    if (b < 0x80) {
      out.push_back(static_cast<char>(b));
      i++;
      continue;
    }
    bool complete, truncated;
    const size_t n = valid_prefix(s, i, &complete, &truncated);
    if (complete) {
      out.append(s.data() + i, n);
      i += n;
    } else if (truncated && !final) {
      return i;  // may still complete when more bytes come
    } else {
      out.append(kReplacement);  // one replacement for the maximal invalid subpart (at least one byte)
      i += n == 0 ? 1 : n;
    }
  }
  return i;
}

std::string nfc(std::string_view s) {
  if (is_ascii(s)) return std::string(s);
  utf8proc_uint8_t* dst = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), static_cast<utf8proc_ssize_t>(s.size()),
                   &dst, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> guard(dst, &std::free);
  if (n < 0) throw Error(std::string("NFC normalization failed: ") + utf8proc_errmsg(n), "tokenizer input");
  return std::string(reinterpret_cast<const char*>(dst), static_cast<size_t>(n));
}

std::vector<std::string> utf8_chars(std::string_view s) {
  std::vector<std::string> out;
  for (size_t k = 0; k < s.size();) {
    const size_t n = utf8_char_len(s, k);
    out.emplace_back(s.substr(k, n));
    k += n;
  }
  return out;
}

}  // namespace wick::tok
