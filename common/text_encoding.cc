#include "common/text_encoding.h"

#include <algorithm>
#include <cstdint>

namespace leadsync::common {
namespace {

// cp1252 0x80..0x9F; the rest of the upper half is latin1.
constexpr char16_t kCp1252High[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

void put_utf8(char32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

}  // namespace

const char* text_encoding_name(TextEncoding e) noexcept {
  switch (e) {
    case TextEncoding::kUtf8: return "utf-8";
    case TextEncoding::kCp1252: return "cp1252";
    case TextEncoding::kLatin1: return "latin1";
  }
  return "utf-8";
}

std::size_t invalid_text_at(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  for (std::size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    if (c >= 0x01 && c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    char32_t min = 0;
    char32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2, min = 0x80, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3, min = 0x800, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4, min = 0x10000, cp = c & 0x07;
    } else {
      return i;  // NUL, a stray continuation byte, C0/C1 lead bytes, F5..FF
    }
    if (i + len > n) return i;
    for (std::size_t k = 1; k < len; ++k) {
      if (!continuation(p[i + k])) return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

void to_utf8(std::string_view s, TextEncoding from, std::string& out) {
  out.clear();
  out.reserve(s.size() + s.size() / 8);
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out.push_back(ch);
    } else if (from == TextEncoding::kCp1252 && c < 0xA0) {
      put_utf8(kCp1252High[c - 0x80], out);
    } else {
      put_utf8(c, out);
    }
  }
}

std::string_view utf8_prefix(std::string_view s, std::size_t max_bytes) noexcept {
  if (s.size() <= max_bytes) return s;
  std::size_t end = max_bytes;
  // Step back over continuation bytes to the start of the character that the cut would split.
  while (end > 0 && continuation(static_cast<unsigned char>(s[end]))) --end;
  return s.substr(0, end);
}

std::string storable_text(std::string_view s, std::size_t max_bytes) {
  std::string clean;
  clean.reserve(std::min(s.size(), max_bytes + 4));
  while (!s.empty() && clean.size() <= max_bytes) {
    const auto bad = invalid_text_at(s);
    clean.append(s.substr(0, bad));
    if (bad == std::string_view::npos) break;
    clean.append("\xEF\xBF\xBD");  // U+FFFD
    s.remove_prefix(bad + 1);
  }
  if (clean.size() <= max_bytes) return clean;
  constexpr std::string_view kEllipsis = "\xE2\x80\xA6";
  auto cut = std::string(utf8_prefix(clean, max_bytes > kEllipsis.size() ? max_bytes - kEllipsis.size() : 0));
  return cut.append(kEllipsis);
}

}  // namespace leadsync::common
