#include "ctl/sorted_source.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <system_error>

#include "producers/mapper.h"
#include "producers/registry.h"

namespace leadsync::ctl {
namespace {

using common::Value;

enum : uint8_t { kHasKey = 1, kHasMeta = 2 };
constexpr uint16_t kExtraField = 0xFFFF;

[[noreturn]] void corrupt() { throw std::runtime_error("verify: a sorted run is corrupt"); }

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
void put_var(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_bytes(std::string& out, std::string_view s) {
  put_var(out, s.size());
  out.append(s);
}
template <typename T>
void patch(std::string& out, std::size_t at, T v) {
  std::memcpy(out.data() + at, &v, sizeof v);
}

struct Reader {
  const char* p;
  const char* end;
  template <typename T>
  T get() {
    if (static_cast<std::size_t>(end - p) < sizeof(T)) corrupt();
    T v;
    std::memcpy(&v, p, sizeof v);
    p += sizeof v;
    return v;
  }
  uint64_t var() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p == end) corrupt();
      const auto b = static_cast<uint8_t>(*p++);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    corrupt();
  }
  std::string_view bytes() {
    const auto n = var();
    if (static_cast<uint64_t>(end - p) < n) corrupt();
    std::string_view s(p, n);
    p += n;
    return s;
  }
};

void put_value(std::string& out, const Value& v) {
  out.push_back(static_cast<char>(v.kind_case()));
  switch (v.kind_case()) {
    case Value::kNullValue: out.push_back(v.null_value() ? 1 : 0); break;
    case Value::kBoolValue: out.push_back(v.bool_value() ? 1 : 0); break;
    case Value::kIntValue: put<int64_t>(out, v.int_value()); break;
    case Value::kDoubleValue: put<double>(out, v.double_value()); break;
    case Value::kStringValue: put_bytes(out, v.string_value()); break;
    case Value::kTimestampMicros: put<int64_t>(out, v.timestamp_micros()); break;
    case Value::kStringList:
      put_var(out, static_cast<uint64_t>(v.string_list().values_size()));
      for (const auto& item : v.string_list().values()) put_bytes(out, item);
      break;
    case Value::kJsonValue: put_bytes(out, v.json_value()); break;
    case Value::KIND_NOT_SET: break;
  }
}

FlatValue get_value(Reader& r) {
  FlatValue v;
  v.kind = r.get<uint8_t>();
  switch (v.kind) {
    case Value::kNullValue:
    case Value::kBoolValue: v.number = r.get<uint8_t>(); break;
    case Value::kIntValue:
    case Value::kTimestampMicros: v.number = r.get<int64_t>(); break;
    case Value::kDoubleValue: v.real = r.get<double>(); break;
    case Value::kStringValue:
    case Value::kJsonValue: v.bytes = r.bytes(); break;
    case Value::kStringList: {
      v.number = static_cast<int64_t>(r.var());
      const char* begin = r.p;
      for (int64_t i = 0; i < v.number; ++i) r.bytes();
      v.bytes = std::string_view(begin, static_cast<std::size_t>(r.p - begin));
      break;
    }
    case Value::KIND_NOT_SET: break;
    default: corrupt();
  }
  return v;
}

// The header every entry starts with: u32 size | u32 key length | key | u64 position.
std::string_view key_of(std::string_view e) {
  uint32_t n;
  std::memcpy(&n, e.data() + 4, 4);
  return e.substr(8, n);
}
uint64_t position_of(std::string_view e) {
  uint32_t n;
  std::memcpy(&n, e.data() + 4, 4);
  uint64_t p;
  std::memcpy(&p, e.data() + 8 + n, 8);
  return p;
}
// char_traits<char>::compare is memcmp: unsigned byte order, as COLLATE "C".
bool before(std::string_view a, std::string_view b) {
  const int c = key_of(a).compare(key_of(b));
  return c < 0 || (c == 0 && position_of(a) < position_of(b));
}

// Starts an entry in `out`; returns where, for finish().
std::size_t begin_entry(std::string& out, std::string_view match_key, uint64_t position, SourceEntry::Kind kind) {
  const auto start = out.size();
  put<uint32_t>(out, 0);
  put<uint32_t>(out, static_cast<uint32_t>(match_key.size()));
  out.append(match_key);
  put<uint64_t>(out, position);
  out.push_back(static_cast<char>(kind));
  return start;
}
void finish_entry(std::string& out, std::size_t start) {
  const auto size = out.size() - start - 4;
  if (size > UINT32_MAX) throw std::runtime_error("verify: a source record is larger than 4 GiB");
  patch<uint32_t>(out, start, static_cast<uint32_t>(size));
}

std::string trimmed(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

void write_all(int fd, const char* data, std::size_t n, const std::string& path) {
  while (n > 0) {
    const auto w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      throw std::runtime_error("verify: cannot write the sorted run " + path + ": " +
                               std::generic_category().message(errno) + " (disk full?)");
    }
    data += w;
    n -= static_cast<std::size_t>(w);
  }
}

}  // namespace

Value to_value(const FlatValue& f) {
  Value v;
  switch (f.kind) {
    case Value::kNullValue: v.set_null_value(f.number != 0); break;
    case Value::kBoolValue: v.set_bool_value(f.number != 0); break;
    case Value::kIntValue: v.set_int_value(f.number); break;
    case Value::kDoubleValue: v.set_double_value(f.real); break;
    case Value::kStringValue: v.set_string_value(std::string(f.bytes)); break;
    case Value::kTimestampMicros: v.set_timestamp_micros(f.number); break;
    case Value::kStringList: {
      auto* list = v.mutable_string_list();
      Reader r{f.bytes.data(), f.bytes.data() + f.bytes.size()};
      for (int64_t i = 0; i < f.number; ++i) list->add_values(std::string(r.bytes()));
      break;
    }
    case Value::kJsonValue: v.set_json_value(std::string(f.bytes)); break;
    default: break;
  }
  return v;
}

// One sorted run being merged: a spilled file read through a buffer, or the last buffer still in
// memory. `head` is its current entry; it stays valid until advance().
class SortedSource::Run {
 public:
  Run(const std::string& path) : path_(path), buf_(1u << 20, '\0') {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw std::runtime_error("verify: cannot read back the sorted run " + path);
  }
  Run(const SortedSource& memory) : memory_(&memory) {}
  ~Run() {
    if (fd_ >= 0) ::close(fd_);
  }
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  std::string_view head;
  bool valid = false;

  void advance() {
    if (memory_) {
      valid = next_ < memory_->index_.size();
      if (valid) head = memory_->entry_at(memory_->index_[next_++]);
      return;
    }
    if (!fill(4)) {
      if (len_ != pos_) corrupt();  // a partial entry at the end
      valid = false;
      return;
    }
    uint32_t size;
    std::memcpy(&size, buf_.data() + pos_, 4);
    if (!fill(4 + static_cast<std::size_t>(size))) corrupt();
    head = std::string_view(buf_.data() + pos_, 4 + static_cast<std::size_t>(size));
    pos_ += head.size();
    valid = true;
  }

 private:
  // At least n unread bytes in the buffer, unless the file ends first.
  bool fill(std::size_t n) {
    if (len_ - pos_ >= n) return true;
    std::memmove(buf_.data(), buf_.data() + pos_, len_ - pos_);
    len_ -= pos_;
    pos_ = 0;
    if (buf_.size() < n) buf_.resize(std::max(n, 2 * buf_.size()));
    while (len_ < n && !eof_) {
      const auto r = ::read(fd_, buf_.data() + len_, buf_.size() - len_);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) throw std::runtime_error("verify: cannot read back the sorted run " + path_);
      if (r == 0) eof_ = true;
      len_ += static_cast<std::size_t>(r);
    }
    return len_ - pos_ >= n;
  }

  const SortedSource* memory_ = nullptr;
  std::size_t next_ = 0;
  std::string path_;
  int fd_ = -1;
  std::string buf_;
  std::size_t pos_ = 0, len_ = 0;
  bool eof_ = false;
};

void SortedSource::encode_record(const common::EntityConfig& entity, const std::string& source_name,
                                 const std::string& match_key, uint64_t position, const common::ChangeEvent& event,
                                 std::string& out) {
  const auto start = begin_entry(out, match_key, position, SourceEntry::Kind::kRecord);
  // What the mapper sets besides key and fields is the same for every record of the source; an
  // event that holds anything else keeps it, serialized, so that its image comes back exactly.
  const bool plain = event.event_id().empty() && !event.partial() && event.source_version() == 0 &&
                     event.observed_at_micros() == 0 && event.run_id().empty() && event.entity() == entity.name &&
                     event.source() == source_name && event.origin() == source_name &&
                     event.op() == leadsync::v1::OP_UPSERT;
  const bool own_key = event.key() != match_key;
  out.push_back(static_cast<char>((own_key ? kHasKey : 0) | (plain ? 0 : kHasMeta)));
  if (own_key) put_bytes(out, event.key());
  if (!plain) {
    common::ChangeEvent meta = event;
    meta.clear_key();
    meta.clear_fields();
    put_bytes(out, meta.SerializeAsString());
  }
  put<uint64_t>(out, event.checksum());
  const auto count_at = out.size();
  put<uint16_t>(out, 0);
  std::size_t count = 0;
  const auto& fields = event.fields();
  for (std::size_t i = 0; i < entity.fields.size() && i < kExtraField; ++i) {
    const auto it = fields.find(entity.fields[i].name);
    if (it == fields.end()) continue;
    put<uint16_t>(out, static_cast<uint16_t>(i));
    put_value(out, it->second);
    ++count;
  }
  if (count != fields.size()) {  // names the entity does not declare: kept for the image
    for (const auto& [name, value] : fields) {
      const auto* f = entity.field(name);
      if (f && static_cast<std::size_t>(f - entity.fields.data()) < kExtraField) continue;
      put<uint16_t>(out, kExtraField);
      put_bytes(out, name);
      put_value(out, value);
      ++count;
    }
  }
  if (count >= kExtraField) throw std::runtime_error("verify: a record with more than 65534 fields");
  patch<uint16_t>(out, count_at, static_cast<uint16_t>(count));
  finish_entry(out, start);
}

SortedSource::SortedSource(const common::Config& config, const common::SourceConfig& source,
                           const std::unordered_map<std::string, std::string>& links, SortedSourceOptions options)
    : options_(std::move(options)), source_name_(source.name) {
  const auto& entity = config.entity(source.entity);
  entity_ = &entity;
  links_ = &links;
  adapter_ = producers::make_adapter(source, std::filesystem::temp_directory_path().string());
  adapter_->open();
  mapper_ = std::make_unique<producers::Mapper>(source, entity, *adapter_);
  event_ = std::make_unique<common::ChangeEvent>();
  if (options_.stream) return;  // next_encoded() reads

  arena_.reserve(options_.memory_budget + (1u << 16));
  while (read_record()) {
  }
  adapter_.reset();
  mapper_.reset();

  // The last buffer stays in memory as one more run.
  if (!index_.empty() && !run_last_.empty() && before(entry_at(index_.front()), run_last_)) sorted_on_read_ = false;
  if (!buffer_sorted_) {
    std::sort(index_.begin(), index_.end(),
              [this](const Index& a, const Index& b) { return before(entry_at(a), entry_at(b)); });
  }
  if (open_fd_ >= 0) {
    ::close(open_fd_);
    open_fd_ = -1;
  }
  for (const auto& f : files_) runs_.push_back(std::make_unique<Run>(f));
  runs_.push_back(std::make_unique<Run>(*this));
  for (auto& r : runs_) r->advance();
}

bool SortedSource::read_record() {
  auto match = [&](const std::string& key) -> const std::string& {
    const auto it = links_->find(key);
    return it == links_->end() ? key : it->second;
  };
  auto wanted = [&](const std::string& key) { return options_.keys.empty() || options_.keys.count(key) > 0; };
  auto& event = *event_;
  std::optional<std::string> parse_error;
  if (!adapter_->next(record_, parse_error)) return false;
  if (producers::Mapper::is_blank(record_)) return true;
  if (parse_error) {
    // The producer keeps whatever record this row held (a malformed line is no deletion): any
    // of its cells may be that record's key.
    ++rejected_;
    for (const auto& cell : record_.cells) {
      const auto key = trimmed(cell);
      if (key.empty() || !wanted(key)) continue;
      const auto start = begin_entry(arena_, match(key), record_.position, SourceEntry::Kind::kMaybeKey);
      put_bytes(arena_, key);
      finish_entry(arena_, start);
      add_entry(start);
    }
    return true;
  }
  if (!mapper_->map(record_, event, row_error_)) {
    ++rejected_;
    if (!row_error_.key.empty() && wanted(row_error_.key)) {
      const auto start = begin_entry(arena_, match(row_error_.key), record_.position, SourceEntry::Kind::kRejected);
      put_bytes(arena_, row_error_.key);
      put_bytes(arena_, row_error_.message);
      finish_entry(arena_, start);
      add_entry(start);
    }
    return true;
  }
  ++records_;
  if (!wanted(event.key())) return true;
  const auto start = arena_.size();
  encode_record(*entity_, source_name_, match(event.key()), record_.position, event, arena_);
  add_entry(start);
  return true;
}

SortedSource::~SortedSource() {
  runs_.clear();
  if (open_fd_ >= 0) ::close(open_fd_);
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

void SortedSource::add_entry(std::size_t start) {
  const Index i{start, static_cast<uint32_t>(arena_.size() - start)};
  if (buffer_sorted_ && !index_.empty() && before(entry_at(i), entry_at(index_.back()))) {
    buffer_sorted_ = false;
    sorted_on_read_ = false;
  }
  index_.push_back(i);
  if (!options_.stream && arena_.size() + index_.size() * sizeof(Index) >= options_.memory_budget) spill();
}

void SortedSource::spill() {
  if (index_.empty()) return;
  if (dir_.empty()) {
    std::random_device rd;
    dir_ = (std::filesystem::temp_directory_path() / ("leadsync-sort-" + std::to_string(rd()))).string();
    std::filesystem::create_directories(dir_);
  }
  // A buffer in key order that continues the open run is appended to it as it is: no sort.
  const bool continues = !run_last_.empty() && !before(entry_at(index_.front()), run_last_);
  if (!run_last_.empty() && !continues) sorted_on_read_ = false;
  if (!(buffer_sorted_ && continues && open_fd_ >= 0)) {
    if (open_fd_ >= 0) ::close(open_fd_);
    files_.push_back(dir_ + "/run-" + std::to_string(files_.size()));
    open_fd_ = ::open(files_.back().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (open_fd_ < 0) throw std::runtime_error("verify: cannot create the sorted run " + files_.back());
  }
  const auto& path = files_.back();
  if (buffer_sorted_) {
    write_all(open_fd_, arena_.data(), arena_.size(), path);  // arrival order is key order
  } else {
    std::sort(index_.begin(), index_.end(),
              [this](const Index& a, const Index& b) { return before(entry_at(a), entry_at(b)); });
    std::string out;
    out.reserve(1u << 20);
    for (const auto& i : index_) {
      out.append(entry_at(i));
      if (out.size() >= (1u << 20)) {
        write_all(open_fd_, out.data(), out.size(), path);
        out.clear();
      }
    }
    write_all(open_fd_, out.data(), out.size(), path);
  }
  run_last_.assign(entry_at(index_.back()));
  arena_.clear();
  index_.clear();
  buffer_sorted_ = true;
}

bool SortedSource::next_encoded(std::string_view& entry) {
  if (options_.stream) {
    if (streamed_ == index_.size()) {
      arena_.clear();
      index_.clear();
      streamed_ = 0;
      buffer_sorted_ = true;
      while (index_.empty()) {
        if (!adapter_ || !read_record()) {
          adapter_.reset();
          mapper_.reset();
          return false;
        }
      }
      // The entries of one record (the cells of an unparseable row) in order among themselves.
      if (!buffer_sorted_) {
        std::sort(index_.begin(), index_.end(),
                  [this](const Index& a, const Index& b) { return before(entry_at(a), entry_at(b)); });
      }
    }
    entry = entry_at(index_[streamed_++]);
    if (!run_last_.empty() && before(entry, run_last_)) {
      sorted_on_read_ = false;
      throw NotInKeyOrder("verify: the source is not in key order (" + std::string(key_of(entry)) + " after " +
                          std::string(key_of(run_last_)) + ")");
    }
    run_last_.assign(entry);
    return true;
  }
  // The run that gave the previous entry moves on only now: its head was that entry's bytes.
  if (last_ && last_->valid) last_->advance();
  last_ = nullptr;
  for (auto& r : runs_) {
    if (r->valid && (!last_ || before(r->head, last_->head))) last_ = r.get();
  }
  if (!last_) return false;
  entry = last_->head;
  return true;
}

std::string_view SortedSource::match_key(std::string_view entry) { return key_of(entry); }

void SortedSource::decode(const common::EntityConfig& entity, std::string_view entry, FlatEntry& out) {
  Reader r{entry.data() + 4, entry.data() + entry.size()};
  const auto key_size = r.get<uint32_t>();
  if (static_cast<std::size_t>(r.end - r.p) < key_size) corrupt();
  out.encoded = entry;
  out.match_key = std::string_view(r.p, key_size);
  r.p += key_size;
  out.position = r.get<uint64_t>();
  const auto kind = r.get<uint8_t>();
  out.reason = {};
  out.values.assign(entity.fields.size(), FlatValue{});
  switch (kind) {
    case static_cast<uint8_t>(SourceEntry::Kind::kRecord): {
      out.kind = SourceEntry::Kind::kRecord;
      const auto flags = r.get<uint8_t>();
      out.key = (flags & kHasKey) ? r.bytes() : out.match_key;
      if (flags & kHasMeta) r.bytes();
      r.get<uint64_t>();  // checksum
      const auto count = r.get<uint16_t>();
      for (uint16_t n = 0; n < count; ++n) {
        const auto index = r.get<uint16_t>();
        if (index == kExtraField) {
          r.bytes();
          get_value(r);
          continue;
        }
        if (index >= out.values.size()) corrupt();
        out.values[index] = get_value(r);
      }
      return;
    }
    case static_cast<uint8_t>(SourceEntry::Kind::kRejected):
      out.kind = SourceEntry::Kind::kRejected;
      out.key = r.bytes();
      out.reason = r.bytes();
      return;
    case static_cast<uint8_t>(SourceEntry::Kind::kMaybeKey):
      out.kind = SourceEntry::Kind::kMaybeKey;
      out.key = r.bytes();
      return;
    default: corrupt();
  }
}

void SortedSource::image(const common::EntityConfig& entity, const std::string& source_name, std::string_view entry,
                         common::ChangeEvent& out) {
  Reader r{entry.data() + 4, entry.data() + entry.size()};
  const auto key_size = r.get<uint32_t>();
  if (static_cast<std::size_t>(r.end - r.p) < key_size) corrupt();
  const std::string_view match_key(r.p, key_size);
  r.p += key_size;
  r.get<uint64_t>();
  out.Clear();
  if (r.get<uint8_t>() != static_cast<uint8_t>(SourceEntry::Kind::kRecord)) corrupt();
  const auto flags = r.get<uint8_t>();
  const auto key = (flags & kHasKey) ? r.bytes() : match_key;
  if (flags & kHasMeta) {
    const auto meta = r.bytes();
    if (!out.ParseFromArray(meta.data(), static_cast<int>(meta.size()))) corrupt();
  } else {
    out.set_entity(entity.name);
    out.set_source(source_name);
    out.set_origin(source_name);
    out.set_op(leadsync::v1::OP_UPSERT);
  }
  out.set_key(std::string(key));
  out.set_checksum(r.get<uint64_t>());
  auto* fields = out.mutable_fields();
  const auto count = r.get<uint16_t>();
  for (uint16_t n = 0; n < count; ++n) {
    const auto index = r.get<uint16_t>();
    std::string name;
    if (index == kExtraField) {
      name = r.bytes();
    } else {
      if (index >= entity.fields.size()) corrupt();
      name = entity.fields[index].name;
    }
    (*fields)[name] = to_value(get_value(r));
  }
}

bool SortedSource::next(SourceEntry& out) {
  std::string_view entry;
  if (!next_encoded(entry)) return false;
  FlatEntry flat;
  decode(entry, flat);
  out.kind = flat.kind;
  out.match_key.assign(flat.match_key);
  out.position = flat.position;
  out.reason.assign(flat.reason);
  if (flat.kind == SourceEntry::Kind::kRecord) {
    image(entry, out.event);
  } else {
    out.event.Clear();
    out.event.set_key(std::string(flat.key));
  }
  return true;
}

}  // namespace leadsync::ctl
