// Text that goes into events and into PostgreSQL must be valid UTF-8 without NUL bytes (protobuf
// strings and PostgreSQL text reject anything else, far from where the bytes came from). Sources
// check or convert their text here, and messages are cut only between characters.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace leadsync::common {

// How a text source's bytes become UTF-8 (a source's `encoding:`): checked, or converted.
enum class TextEncoding { kUtf8, kCp1252, kLatin1 };

const char* text_encoding_name(TextEncoding e) noexcept;

// Offset of the first byte that is a NUL or not part of well-formed UTF-8 (no overlong forms, no
// surrogates, nothing above U+10FFFF); std::string_view::npos when the text is clean.
std::size_t invalid_text_at(std::string_view s) noexcept;

// `s` decoded from cp1252 or latin1, as UTF-8, replacing `out`. (cp1252's five unassigned bytes
// map to the C1 controls of the same value, as the WHATWG encoding standard does.) NUL bytes are
// kept: check the result with invalid_text_at.
void to_utf8(std::string_view s, TextEncoding from, std::string& out);

// The longest prefix of `s` of at most `max_bytes` bytes that does not end inside a UTF-8 character.
std::string_view utf8_prefix(std::string_view s, std::size_t max_bytes) noexcept;

// `s` as PostgreSQL text can hold it, for error texts and reports: NUL bytes and bytes that are
// not UTF-8 replaced by U+FFFD, cut to at most `max_bytes` between characters (with "…" when cut).
std::string storable_text(std::string_view s, std::size_t max_bytes);

}  // namespace leadsync::common
