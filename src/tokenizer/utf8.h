// UTF-8 helpers the tokenizer needs: validation, NFC (utf8proc), and lossy decoding that replaces invalid
// bytes with U+FFFD exactly as Python's bytes.decode(errors="replace") and Rust's String::from_utf8_lossy do
// (one U+FFFD per maximal invalid subpart, the Unicode "best practice" for substitution).
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace wick::tok {

// Offset of the first byte that is not part of a well-formed UTF-8 sequence, or npos when s is valid.
size_t utf8_invalid_at(std::string_view s);

// NFC of valid UTF-8 (the caller validates first). ASCII passes through untouched.
std::string nfc(std::string_view s);

// Appends the decoding of bytes to out, invalid subparts as U+FFFD. With final=false a trailing sequence
// that is incomplete but could still become valid is left undecoded; returns how many bytes were consumed
// (always bytes.size() when final).
size_t utf8_decode_lossy(std::string_view bytes, std::string& out, bool final);

inline bool is_ascii(std::string_view s) {
  for (unsigned char c : s)
    if (c >= 0x80) return false;
  return true;
}

}  // namespace wick::tok
