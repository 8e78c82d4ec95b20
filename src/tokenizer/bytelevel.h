// The GPT-2 byte-level alphabet: every byte maps to one printable code point so that any UTF-8 text becomes
// a string over 256 symbols. Bytes 0x21-0x7E, 0xA1-0xAC, 0xAE-0xFF map to themselves; the other 68 bytes map
// in increasing order to U+0100, U+0101, ... (space -> U+0120 'Ġ', '\n' -> U+010A 'Ċ').
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace wick::tok {

class ByteLevel {
 public:
  static const ByteLevel& get();

  // The UTF-8 encoding of the symbol for byte b.
  const std::string& symbol(uint8_t b) const { return symbol_[b]; }
  // The byte-level string of raw bytes (each byte -> its symbol).
  std::string encode(std::string_view bytes) const;
  // Raw bytes of a byte-level token, appended to out. Returns false (appending nothing) when some code
  // point of token is not in the alphabet; HF's ByteLevel decoder then emits the token's own UTF-8 bytes.
  bool decode(std::string_view token, std::string& out) const;

 private:
  ByteLevel();
  std::array<std::string, 256> symbol_;
  std::array<int16_t, 0x144> byte_of_;  // code point -> byte, -1 when not in the alphabet (max is U+0143)
};

}  // namespace wick::tok
