// The read side of the fake Twenty store: Twenty's filter grammar (the subset leadsync uses plus the
// usual comparison operators), ordering by (updatedAt, id) and keyset cursors. A cursor encodes the
// last record's (updatedAt, id) rather than a position, as Twenty's do: when a record is updated
// during a read it moves behind the cursor's page boundary and is read again on a later page, and
// the pages after it shift — the case an adapter's cursor handling must survive.
#include <memory>

#include "tests/fakes/twenty/twenty_store.h"

namespace leadsync::fakes::twenty {
namespace {

const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64(const std::string& in) {
  std::string out;
  int val = 0, bits = -6;
  for (unsigned char c : in) {
    val = (val << 8) + c;
    bits += 8;
    while (bits >= 0) {
      out.push_back(kB64[(val >> bits) & 0x3F]);
      bits -= 6;
    }
  }
  if (bits > -6) out.push_back(kB64[((val << 8) >> (bits + 8)) & 0x3F]);
  while (out.size() % 4) out.push_back('=');
  return out;
}

std::optional<std::string> unbase64(const std::string& in) {
  std::string out;
  int val = 0, bits = -8;
  for (char c : in) {
    if (c == '=') break;
    const char* p = std::char_traits<char>::find(kB64, 64, c);
    if (!p) return std::nullopt;
    val = (val << 6) + static_cast<int>(p - kB64);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xFF));
      bits -= 8;
    }
  }
  return out;
}

WriteError bad(const std::string& message) { return WriteError{400, message}; }

struct Filter {
  enum class Kind { kLeaf, kAnd, kOr, kNot } kind = Kind::kLeaf;
  std::string field, op;
  std::vector<std::string> values;  // one, or several for `in`
  std::vector<std::unique_ptr<Filter>> children;
};

class FilterParser {
 public:
  explicit FilterParser(const std::string& text) : s_(text) {}

  std::unique_ptr<Filter> parse() {
    auto f = expr();
    if (i_ != s_.size()) throw bad("filter: unexpected \"" + s_.substr(i_) + "\"");
    return f;
  }

 private:
  std::unique_ptr<Filter> expr() {
    for (auto [word, kind] : {std::pair{"and(", Filter::Kind::kAnd}, std::pair{"or(", Filter::Kind::kOr},
                              std::pair{"not(", Filter::Kind::kNot}}) {
      std::string w = word;
      if (s_.compare(i_, w.size(), w) == 0) {
        i_ += w.size();
        auto f = std::make_unique<Filter>();
        f->kind = kind;
        for (;;) {
          f->children.push_back(expr());
          if (i_ < s_.size() && s_[i_] == ',') {
            ++i_;
            continue;
          }
          if (i_ < s_.size() && s_[i_] == ')') {
            ++i_;
            break;
          }
          throw bad("filter: expected ',' or ')' at " + std::to_string(i_));
        }
        if (kind == Filter::Kind::kNot && f->children.size() != 1) throw bad("filter: not() takes one condition");
        return f;
      }
    }
    return leaf();
  }

  std::unique_ptr<Filter> leaf() {
    auto f = std::make_unique<Filter>();
    auto open = s_.find('[', i_);
    auto close = s_.find("]:", i_);
    if (open == std::string::npos || close == std::string::npos || close < open) {
      throw bad("filter: expected field[op]:value at \"" + s_.substr(i_) + "\"");
    }
    f->field = s_.substr(i_, open - i_);
    f->op = s_.substr(open + 1, close - open - 1);
    i_ = close + 2;
    if (i_ < s_.size() && s_[i_] == '[') {
      ++i_;
      while (i_ < s_.size() && s_[i_] != ']') {
        f->values.push_back(value());
        if (i_ < s_.size() && s_[i_] == ',') ++i_;
      }
      if (i_ >= s_.size()) throw bad("filter: unterminated list");
      ++i_;
    } else {
      f->values.push_back(value());
    }
    static const std::set<std::string> kOps = {"eq", "neq", "gt", "gte", "lt", "lte", "in", "is", "like", "ilike"};
    if (!kOps.count(f->op)) throw bad("filter: unknown operator \"" + f->op + "\"");
    return f;
  }

  std::string value() {
    std::string out;
    if (i_ < s_.size() && s_[i_] == '"') {
      for (++i_; i_ < s_.size() && s_[i_] != '"'; ++i_) {
        if (s_[i_] == '\\' && i_ + 1 < s_.size()) ++i_;
        out.push_back(s_[i_]);
      }
      if (i_ >= s_.size()) throw bad("filter: unterminated string");
      ++i_;
      return out;
    }
    while (i_ < s_.size() && s_[i_] != ',' && s_[i_] != ')' && s_[i_] != ']') out.push_back(s_[i_++]);
    return out;
  }

  const std::string& s_;
  std::size_t i_ = 0;
};

bool mentions(const Filter& f, const std::string& field) {
  if (f.kind == Filter::Kind::kLeaf) return f.field == field;
  for (const auto& c : f.children) {
    if (mentions(*c, field)) return true;
  }
  return false;
}

const json* lookup(const json& record, const std::string& path) {
  const json* cur = &record;
  std::size_t start = 0;
  for (;;) {
    auto dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!cur->is_object() || !cur->contains(part)) return nullptr;
    cur = &(*cur)[part];
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

// <0, 0, >0 like strcmp; timestamps by time, numbers by value, the rest as text.
int compare(const std::string& field, const json& have, const std::string& want) {
  if (field == "createdAt" || field == "updatedAt" || field == "deletedAt") {
    auto a = have.is_string() ? parse_iso_ms(have.get<std::string>()) : std::nullopt;
    auto b = parse_iso_ms(want);
    if (!b) throw bad("filter: \"" + want + "\" is not a timestamp for " + field);
    if (!a) return -1;
    return *a < *b ? -1 : (*a > *b ? 1 : 0);
  }
  if (have.is_number()) {
    double a = have.get<double>(), b = std::stod(want);
    return a < b ? -1 : (a > b ? 1 : 0);
  }
  std::string a = have.is_string() ? have.get<std::string>() : have.dump();
  return a.compare(want);
}

bool like(std::string text, std::string pattern, bool fold) {
  if (fold) {
    for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (auto& c : pattern) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  // '%' only, which is what Twenty's clients send.
  std::size_t pos = 0;
  std::size_t start = 0;
  bool anchored = true;
  while (start <= pattern.size()) {
    auto pct = pattern.find('%', start);
    std::string part = pattern.substr(start, pct == std::string::npos ? std::string::npos : pct - start);
    if (pct == std::string::npos) {
      return anchored ? text.substr(pos) == part
                      : text.size() >= pos + part.size() && text.compare(text.size() - part.size(), part.size(), part) == 0;
    }
    auto found = anchored ? (text.compare(pos, part.size(), part) == 0 ? pos : std::string::npos) : text.find(part, pos);
    if (found == std::string::npos) return false;
    pos = found + part.size();
    anchored = false;
    start = pct + 1;
  }
  return true;
}

bool matches(const Filter& f, const json& record) {
  switch (f.kind) {
    case Filter::Kind::kAnd:
      for (const auto& c : f.children) {
        if (!matches(*c, record)) return false;
      }
      return true;
    case Filter::Kind::kOr:
      for (const auto& c : f.children) {
        if (matches(*c, record)) return true;
      }
      return false;
    case Filter::Kind::kNot:
      return !matches(*f.children[0], record);
    case Filter::Kind::kLeaf:
      break;
  }
  const json* have = lookup(record, f.field);
  if (f.op == "is") {
    bool is_null = !have || have->is_null();
    if (f.values[0] == "NULL") return is_null;
    if (f.values[0] == "NOT_NULL") return !is_null;
    throw bad("filter: is takes NULL or NOT_NULL, not \"" + f.values[0] + "\"");
  }
  if (!have || have->is_null()) return false;
  if (f.op == "in") {
    for (const auto& v : f.values) {
      if (compare(f.field, *have, v) == 0) return true;
    }
    return false;
  }
  if (f.op == "like" || f.op == "ilike") {
    return have->is_string() && like(have->get<std::string>(), f.values[0], f.op == "ilike");
  }
  int c = compare(f.field, *have, f.values[0]);
  if (f.op == "eq") return c == 0;
  if (f.op == "neq") return c != 0;
  if (f.op == "gt") return c > 0;
  if (f.op == "gte") return c >= 0;
  if (f.op == "lt") return c < 0;
  return c <= 0;  // lte
}

std::string encode_cursor(int64_t updated_ms, const std::string& id) {
  return base64(json{{"updatedAt", format_iso_ms(updated_ms)}, {"id", id}}.dump());
}

std::pair<int64_t, std::string> decode_cursor(const std::string& cursor) {
  auto text = unbase64(cursor);
  json j = text ? json::parse(*text, nullptr, false) : json();
  if (!j.is_object() || !j.contains("updatedAt") || !j.contains("id") || !j["updatedAt"].is_string() ||
      !j["id"].is_string()) {
    throw bad("starting_after: \"" + cursor + "\" is not a cursor of this API");
  }
  auto ms = parse_iso_ms(j["updatedAt"].get<std::string>());
  if (!ms) throw bad("starting_after: bad cursor timestamp");
  return {*ms, j["id"].get<std::string>()};
}

void check_order(const std::string& order_by) {
  if (order_by.empty()) return;  // the fake's only order is (updatedAt, id) ascending
  auto first = order_by.substr(0, order_by.find(','));
  if (first != "updatedAt" && first != "updatedAt[AscNullsFirst]" && first != "updatedAt[AscNullsLast]") {
    throw bad("order_by: the fake Twenty orders only by updatedAt ascending (then id), not \"" + order_by + "\"");
  }
}

}  // namespace

ListResult TwentyStore::list(Object object, const ListQuery& query) const {
  if (query.limit < 0 || query.limit > 200) throw bad("limit must be between 0 and 200");
  check_order(query.order_by);
  std::unique_ptr<Filter> filter;
  if (!query.filter.empty()) filter = FilterParser(query.filter).parse();
  bool with_deleted = filter && mentions(*filter, "deletedAt");
  std::optional<std::pair<int64_t, std::string>> after;
  if (!query.starting_after.empty()) after = decode_cursor(query.starting_after);

  std::lock_guard lock(mu_);
  const Table& t = table(object);
  ListResult result;
  for (const auto& key : t.order) {
    const Stored& s = t.records.at(key.second);
    if (s.deleted_ms && !with_deleted) continue;
    if (filter && !matches(*filter, s.data)) continue;
    ++result.total_count;
    if (after && !(key > *after)) continue;
    if (static_cast<int>(result.records.size()) < query.limit) {
      if (result.records.empty()) result.start_cursor = encode_cursor(key.first, key.second);
      result.records.push_back(s.data);
      result.end_cursor = encode_cursor(key.first, key.second);
    } else {
      result.has_next_page = true;
    }
  }
  return result;
}

}  // namespace leadsync::fakes::twenty
