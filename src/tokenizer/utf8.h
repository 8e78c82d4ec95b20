// UTF-8 helpers the tokenizer needs: validation, NFC (utf8proc), and lossy decoding that replaces invalid
// bytes with U+FFFD exactly as Python's bytes.decode(errors="replace") and Rust's String::from_utf8_lossy do
// (one U+FFFD per maximal invalid subpart, the Unicode "best practice" for substitution).
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace wick::tok {

// Offset of the first byte that is not part of a well-formed UTF-8 sequence, or npos when s is valid.
size_t utf8_invalid_at(std::string_view s);

// NFC of valid UTF-8 (the caller validates first). ASCII passes through untouched.
std::string nfc(std::string_view s);

// Appends the decoding of bytes to out, invalid subparts as U+FFFD. With final=false a trailing sequence
// that is incomplete but could still become valid is left undecoded; returns how many bytes were consumed
// (always bytes.size() when final).
size_t utf8_decode_lossy(std::string_view bytes, std::string& out, bool final);

// Byte length of the UTF-8 sequence a lead byte starts (1 for ASCII and stray bytes), clipped to what is left.
inline size_t utf8_char_len(std::string_view s, size_t at) {
  const unsigned char c = static_cast<unsigned char>(s[at]);
  const size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
  return n < s.size() - at ? n : s.size() - at;
}

// The characters of s (valid UTF-8 assumed), each as its bytes.
std::vector<std::string> utf8_chars(std::string_view s);

inline bool is_ascii(std::string_view s) {
  for (unsigned char c : s)
    if (c >= 0x80) return false;
  return true;
}

}  // namespace wick::tok
