#include "tokenizer/bytelevel.h"

namespace wick::tok {

namespace {

std::string utf8_of(uint32_t cp) {  // cp < 0x800 here
  std::string s;
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else {
    s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return s;
}

bool printable(int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

}  // namespace

ByteLevel::ByteLevel() {
  byte_of_.fill(-1);
  uint32_t next = 0x100;
  for (int b = 0; b < 256; b++) {
    const uint32_t cp = printable(b) ? static_cast<uint32_t>(b) : next++;
    symbol_[b] = utf8_of(cp);
    byte_of_[cp] = static_cast<int16_t>(b);
  }
}

const ByteLevel& ByteLevel::get() {
  static const ByteLevel instance;
  return instance;
}

std::string ByteLevel::encode(std::string_view bytes) const {
  std::string s;
  s.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) s += symbol_[b];
  return s;
}

bool ByteLevel::decode(std::string_view token, std::string& out) const {
  const size_t start = out.size();
  for (size_t i = 0; i < token.size();) {
    const unsigned char c = token[i];
    uint32_t cp;
    if (c < 0x80) {
      cp = c;
      i += 1;
    } else if ((c & 0xE0) == 0xC0 && i + 1 < token.size()) {
      cp = ((c & 0x1Fu) << 6) | (static_cast<unsigned char>(token[i + 1]) & 0x3Fu);
      i += 2;
    } else {
      cp = 0x10000;  // any longer sequence is outside the alphabet
    }
    if (cp >= byte_of_.size() || byte_of_[cp] < 0) {
      out.resize(start);
      return false;
    }
    out.push_back(static_cast<char>(byte_of_[cp]));
  }
  return true;
}

}  // namespace wick::tok
