#include "ctl/sorted_source.h"

#include <algorithm>
#include <filesystem>
#include <random>
#include <stdexcept>

#include "producers/mapper.h"
#include "producers/registry.h"

namespace leadsync::ctl {
namespace {

// What one entry costs beside its bytes (two strings and the vector slot).
constexpr std::size_t kEntryOverhead = 96;

bool before(const std::string& ka, uint64_t pa, const std::string& kb, uint64_t pb) {
  const int c = ka.compare(kb);  // char_traits<char>: unsigned byte order, as COLLATE "C"
  return c < 0 || (c == 0 && pa < pb);
}

void write_u64(std::ostream& out, uint64_t v) { out.write(reinterpret_cast<const char*>(&v), sizeof v); }
void write_bytes(std::ostream& out, const std::string& s) {
  write_u64(out, s.size());
  out.write(s.data(), static_cast<std::streamsize>(s.size()));
}
bool read_u64(std::istream& in, uint64_t& v) { return static_cast<bool>(in.read(reinterpret_cast<char*>(&v), sizeof v)); }
bool read_bytes(std::istream& in, std::string& s) {
  uint64_t n = 0;
  if (!read_u64(in, n)) return false;
  s.resize(n);
  return static_cast<bool>(in.read(s.data(), static_cast<std::streamsize>(n)));
}

std::string trimmed(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

}  // namespace

// One spilled run being merged: its file and the entry at its head.
struct SortedSource::Run {
  std::ifstream in;
  Packed head;
  bool valid = false;
  void advance() {
    valid = read_bytes(in, head.match_key) && read_u64(in, head.position) && read_bytes(in, head.blob);
  }
};

SortedSource::SortedSource(const common::Config& config, const common::SourceConfig& source,
                           const std::unordered_map<std::string, std::string>& links, SortedSourceOptions options)
    : options_(std::move(options)) {
  const auto& entity = config.entity(source.entity);
  auto adapter = producers::make_adapter(source, std::filesystem::temp_directory_path().string());
  adapter->open();
  producers::Mapper mapper(source, entity, *adapter);
  auto match = [&](const std::string& key) -> const std::string& {
    const auto it = links.find(key);
    return it == links.end() ? key : it->second;
  };
  auto wanted = [&](const std::string& key) { return options_.keys.empty() || options_.keys.count(key) > 0; };

  producers::SourceRecord record;
  std::optional<std::string> parse_error;
  common::ChangeEvent event;
  producers::RowError row_error;
  std::string blob;
  while (adapter->next(record, parse_error)) {
    if (producers::Mapper::is_blank(record)) continue;
    if (parse_error) {
      // The producer keeps whatever record this row held (a malformed line is no deletion): any
      // of its cells may be that record's key.
      ++rejected_;
      for (const auto& cell : record.cells) {
        const auto key = trimmed(cell);
        if (key.empty() || !wanted(key)) continue;
        add(SourceEntry::Kind::kMaybeKey, match(key), record.position, std::string(1, '\2') + key + '\0');
      }
      continue;
    }
    if (!mapper.map(record, event, row_error)) {
      ++rejected_;
      if (!row_error.key.empty() && wanted(row_error.key)) {
        add(SourceEntry::Kind::kRejected, match(row_error.key), record.position,
            std::string(1, '\1') + row_error.key + '\0' + row_error.message);
      }
      continue;
    }
    ++records_;
    if (!wanted(event.key())) continue;
    blob.assign(1, '\0');
    blob += event.SerializeAsString();
    add(SourceEntry::Kind::kRecord, match(event.key()), record.position, std::move(blob));
  }
  if (files_.empty()) {
    std::sort(buffer_.begin(), buffer_.end(),
              [](const Packed& a, const Packed& b) { return before(a.match_key, a.position, b.match_key, b.position); });
    return;
  }
  spill();
  for (const auto& f : files_) {
    auto run = std::make_unique<Run>();
    run->in.open(f, std::ios::binary);
    if (!run->in) throw std::runtime_error("verify: cannot read back the sorted run " + f);
    run->advance();
    runs_.push_back(std::move(run));
  }
}

SortedSource::~SortedSource() {
  runs_.clear();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

void SortedSource::add(SourceEntry::Kind, const std::string& match_key, uint64_t position, std::string blob) {
  buffered_bytes_ += match_key.size() + blob.size() + kEntryOverhead;
  buffer_.push_back({match_key, position, std::move(blob)});
  if (buffered_bytes_ >= options_.memory_budget) spill();
}

void SortedSource::spill() {
  if (buffer_.empty()) return;
  if (dir_.empty()) {
    std::random_device rd;
    dir_ = (std::filesystem::temp_directory_path() / ("leadsync-sort-" + std::to_string(rd()))).string();
    std::filesystem::create_directories(dir_);
  }
  std::sort(buffer_.begin(), buffer_.end(),
            [](const Packed& a, const Packed& b) { return before(a.match_key, a.position, b.match_key, b.position); });
  const auto path = dir_ + "/run-" + std::to_string(files_.size());
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    for (const auto& p : buffer_) {
      write_bytes(out, p.match_key);
      write_u64(out, p.position);
      write_bytes(out, p.blob);
    }
    out.flush();
    if (!out) throw std::runtime_error("verify: cannot write the sorted run " + path + " (disk full?)");
  }
  files_.push_back(path);
  buffer_.clear();
  buffer_.shrink_to_fit();
  buffered_bytes_ = 0;
}

void SortedSource::unpack(const Packed& p, SourceEntry& out) {
  out.match_key = p.match_key;
  out.position = p.position;
  out.reason.clear();
  out.event.Clear();
  const char kind = p.blob.empty() ? '\0' : p.blob[0];
  if (kind == '\0') {
    out.kind = SourceEntry::Kind::kRecord;
    if (!out.event.ParseFromArray(p.blob.data() + 1, static_cast<int>(p.blob.size() - 1))) {
      throw std::runtime_error("verify: a sorted run is corrupt");
    }
    return;
  }
  out.kind = kind == '\1' ? SourceEntry::Kind::kRejected : SourceEntry::Kind::kMaybeKey;
  const auto nul = p.blob.find('\0', 1);
  out.event.set_key(p.blob.substr(1, nul - 1));
  if (nul != std::string::npos) out.reason = p.blob.substr(nul + 1);
}

bool SortedSource::next(SourceEntry& out) {
  if (runs_.empty()) {
    if (next_in_buffer_ >= buffer_.size()) return false;
    unpack(buffer_[next_in_buffer_++], out);
    return true;
  }
  Run* best = nullptr;
  for (auto& r : runs_) {
    if (r->valid && (!best || before(r->head.match_key, r->head.position, best->head.match_key, best->head.position))) {
      best = r.get();
    }
  }
  if (!best) return false;
  unpack(best->head, out);
  best->advance();
  return true;
}

}  // namespace leadsync::ctl
