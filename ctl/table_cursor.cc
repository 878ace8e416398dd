#include "ctl/table_cursor.h"

#include <libpq-fe.h>

#include <charconv>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>

#include "common/pg.h"

namespace leadsync::ctl {

std::unordered_map<std::string, std::string> identity_links(pqxx::transaction_base& tx, const std::string& entity) {
  std::unordered_map<std::string, std::string> links;
  for (const auto& l : tx.exec_params("SELECT value, key FROM leadsync.identities WHERE entity = $1 AND field = '_key'",
                                      entity)) {
    links.emplace(l[0].as<std::string>(), l[1].as<std::string>());
  }
  return links;
}

TableCursor::TableCursor(pqxx::connection& conn, const common::Config& config, const common::EntityConfig& entity,
                         const std::string& source, const std::vector<const common::FieldConfig*>& fields,
                         const std::set<std::string>& keys)
    : tx_(conn), fields_(fields) {
  tx_.exec("SET LOCAL TimeZone = 'UTC'");
  tx_.exec("SET LOCAL DateStyle = 'ISO'");
  const auto key = conn.quote_name(entity.key);
  std::string cols = key;
  for (const auto* f : fields_) cols += ", " + conn.quote_name(f->name) + "::text";
  std::string where = entity.partial_events ? " WHERE NOT _incomplete" : " WHERE true";
  if (!keys.empty()) {
    std::string list;
    for (const auto& k : keys) list += (list.empty() ? "" : ", ") + tx_.quote(k);
    where += " AND " + key + " IN (" + list + ")";
  }
  tx_.exec_params("DECLARE table_cursor NO SCROLL CURSOR FOR SELECT " + cols +
                      ", _deleted, _source IS NOT DISTINCT FROM $1, _version FROM " +
                      common::qualified(conn, config.postgres.schema, entity.table) + where + " ORDER BY " + key +
                      " COLLATE \"C\"",
                  source);
}

bool TableCursor::next(TableRow& out) {
  if (at_ >= batch_.size()) {
    if (done_) return false;
    batch_ = tx_.exec("FETCH 10000 FROM table_cursor");
    at_ = 0;
    if (batch_.empty()) {
      done_ = true;
      return false;
    }
  }
  const auto r = batch_[at_++];
  out.key = r[0].c_str();
  out.values.clear();
  for (std::size_t i = 0; i < fields_.size(); ++i) {
    const auto& field = r[static_cast<int>(i) + 1];
    if (field.is_null()) {
      common::Value null;
      null.set_null_value(true);
      out.values.emplace_back(std::move(null));
    } else {
      out.values.push_back(common::value_from_sql_text(*fields_[i], field.c_str()));
    }
  }
  const int n = static_cast<int>(fields_.size());
  out.deleted = r[n + 1].as<bool>();
  out.from_source = r[n + 2].as<bool>();
  out.version = r[n + 3].as<int64_t>();
  return true;
}

namespace {

constexpr std::size_t kChunkBytes = 1u << 20;
constexpr std::size_t kChunksQueued = 8;

// COPY's text format: \b \f \n \r \t \v \\, and octal and \x escapes (PostgreSQL writes only the first ones).
void unescape(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c != '\\' || i + 1 == in.size()) {
      out += c;
      continue;
    }
    const char e = in[++i];
    switch (e) {
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'v': out += '\v'; break;
      case 'x': {
        int v = 0, n = 0;
        while (n < 2 && i + 1 < in.size() && std::isxdigit(static_cast<unsigned char>(in[i + 1]))) {
          const char h = in[++i];
          v = v * 16 + (h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
          ++n;
        }
        if (n == 0) out += 'x';
        else out += static_cast<char>(v);
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          int v = e - '0', n = 1;
          while (n < 3 && i + 1 < in.size() && in[i + 1] >= '0' && in[i + 1] <= '7') {
            v = v * 8 + (in[++i] - '0');
            ++n;
          }
          out += static_cast<char>(v);
        } else {
          out += e;
        }
    }
  }
}

}  // namespace

struct TableStream::Shared {
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<std::string> chunks;
  bool done = false;
  bool stop = false;
  std::string error;
  PGcancel* cancel = nullptr;  // the running COPY's, while there is one

  bool push(std::string&& chunk) {  // false: the reader is gone
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return stop || chunks.size() < kChunksQueued; });
    if (stop) return false;
    chunks.push_back(std::move(chunk));
    changed.notify_all();
    return true;
  }
  void finish(std::string message) {
    std::lock_guard lock(mutex);
    done = true;
    error = std::move(message);
    changed.notify_all();
  }
};

namespace {

void read_table(const std::shared_ptr<TableStream::Shared>& shared, const std::string& url, const std::string& query);

// The thread's body: whatever it meets ends the read with an error for the caller, never the process.
void read_table_thread(const std::shared_ptr<TableStream::Shared>& shared, const std::string& url,
                       const std::string& query) {
  try {
    read_table(shared, url, query);
  } catch (const std::exception& e) {
    shared->finish(std::string("verify: reading the table failed: ") + e.what());
  }
}

void read_table(const std::shared_ptr<TableStream::Shared>& shared, const std::string& url, const std::string& query) {
  // connect_timeout and application_name as common::pg_connect sets them; the URL's own win.
  const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {"5", "leadsyncctl", url.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, 1);
  std::string error;
  auto failed = [&](const std::string& what) {
    std::string m = PQerrorMessage(conn);
    while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
    error = "verify: " + what + ": " + m;
  };
  if (PQstatus(conn) != CONNECTION_OK) {
    failed("cannot connect to PostgreSQL to read the table");
  } else {
    PGresult* set = PQexec(conn, "SET jit = off; SET TimeZone = 'UTC'; SET DateStyle = 'ISO'");
    if (PQresultStatus(set) != PGRES_COMMAND_OK) failed("cannot set up the table read");
    PQclear(set);
  }
  if (error.empty()) {
    // A caller that stops early (verify found the source out of key order) cancels the COPY rather
    // than wait for PostgreSQL to finish sorting before the first row.
    {
      std::lock_guard lock(shared->mutex);
      if (!shared->stop) shared->cancel = PQgetCancel(conn);
    }
    PGresult* copy = PQexec(conn, query.c_str());
    if (PQresultStatus(copy) != PGRES_COPY_OUT) failed("cannot read the table");
    PQclear(copy);
  }
  if (error.empty()) {
    std::string chunk;
    chunk.reserve(kChunkBytes + (1u << 16));
    bool stopped = false;
    for (;;) {
      char* row = nullptr;
      const int n = PQgetCopyData(conn, &row, 0);
      if (n > 0) {
        chunk.append(row, static_cast<std::size_t>(n));
        PQfreemem(row);
        if (chunk.size() >= kChunkBytes) {
          if (!shared->push(std::move(chunk))) {
            stopped = true;
            break;
          }
          chunk = std::string();
          chunk.reserve(kChunkBytes + (1u << 16));
        }
        continue;
      }
      if (n == -2) {
        failed("reading the table failed");
        break;
      }
      // -1: the COPY is over; its result says whether it succeeded.
      while (PGresult* end = PQgetResult(conn)) {
        if (PQresultStatus(end) != PGRES_COMMAND_OK && error.empty()) failed("reading the table failed");
        PQclear(end);
      }
      break;
    }
    if (!stopped && error.empty() && !chunk.empty()) shared->push(std::move(chunk));
  }
  {
    std::lock_guard lock(shared->mutex);
    if (shared->cancel) PQfreeCancel(shared->cancel);
    shared->cancel = nullptr;
  }
  PQfinish(conn);  // a COPY cut short (the caller stopped): the server sees the connection close
  shared->finish(std::move(error));
}

}  // namespace

TableStream::TableStream(pqxx::connection& conn, const common::Config& config, const common::EntityConfig& entity,
                         const std::string& source, const std::vector<const common::FieldConfig*>& fields,
                         const std::set<std::string>& keys)
    : shared_(std::make_shared<Shared>()), source_(source), fields_(fields.size()), unescaped_(fields.size() + 4) {
  const auto key = conn.quote_name(entity.key);
  std::string cols = key;
  for (const auto* f : fields) cols += ", " + conn.quote_name(f->name) + "::text";
  std::string where = entity.partial_events ? " WHERE NOT _incomplete" : " WHERE true";
  if (!keys.empty()) {
    std::string list;
    for (const auto& k : keys) list += (list.empty() ? "'" : ", '") + conn.esc(k) + "'";
    where += " AND " + key + " IN (" + list + ")";
  }
  // _source is compared here, not in SQL: COPY takes no parameters.
  const std::string query = "COPY (SELECT " + cols + ", _deleted, _source, _version FROM " +
                            common::qualified(conn, config.postgres.schema, entity.table) + where + " ORDER BY " +
                            key + " COLLATE \"C\") TO STDOUT";
  thread_ = std::thread(read_table_thread, shared_, config.postgres.url, query);
}

TableStream::~TableStream() {
  {
    std::lock_guard lock(shared_->mutex);
    shared_->stop = true;
    shared_->changed.notify_all();
    if (!shared_->done && shared_->cancel) {
      char why[256];
      PQcancel(shared_->cancel, why, sizeof why);  // best effort: closing the connection ends it too
    }
  }
  thread_.join();
}

bool TableStream::next(RawRow& out) {
  if (at_ >= chunk_.size()) {
    std::unique_lock lock(shared_->mutex);
    shared_->changed.wait(lock, [&] { return !shared_->chunks.empty() || shared_->done; });
    if (shared_->chunks.empty()) {
      if (!shared_->error.empty()) throw std::runtime_error(shared_->error);
      return false;
    }
    chunk_ = std::move(shared_->chunks.front());
    shared_->chunks.pop_front();
    shared_->changed.notify_all();
    at_ = 0;
  }
  const char* line = chunk_.data() + at_;
  const auto* end = static_cast<const char*>(std::memchr(line, '\n', chunk_.size() - at_));
  if (!end) throw std::runtime_error("verify: the table's COPY output ends inside a row");
  at_ = static_cast<std::size_t>(end - chunk_.data()) + 1;
  const std::size_t columns = fields_ + 4;
  out.values.resize(fields_);
  std::size_t column = 0;
  for (const char* p = line;; ++column) {
    const auto* tab = static_cast<const char*>(std::memchr(p, '\t', static_cast<std::size_t>(end - p)));
    const char* stop = tab ? tab : end;
    if (column >= columns) throw std::runtime_error("verify: the table's COPY output has more columns than asked for");
    RawField field;
    std::string_view text(p, static_cast<std::size_t>(stop - p));
    if (text == "\\N") {
      field.null = true;
    } else {
      if (text.find('\\') != std::string_view::npos) {
        unescape(text, unescaped_[column]);
        text = unescaped_[column];
      }
      field.text = text;
    }
    if (column == 0) {
      out.key = field.text;
    } else if (column <= fields_) {
      out.values[column - 1] = field;
    } else if (column == fields_ + 1) {
      out.deleted = field.text == "t";
    } else if (column == fields_ + 2) {
      out.from_source = !field.null && field.text == source_;
    } else {
      const auto r = std::from_chars(field.text.data(), field.text.data() + field.text.size(), out.version);
      if (r.ec != std::errc() || r.ptr != field.text.data() + field.text.size()) {
        throw std::runtime_error("verify: the table's _version is not an integer: " + std::string(field.text));
      }
    }
    if (!tab) break;
    p = tab + 1;
  }
  if (column + 1 != columns) throw std::runtime_error("verify: the table's COPY output has fewer columns than asked for");
  return true;
}

}  // namespace leadsync::ctl
