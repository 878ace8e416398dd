#include "workers/targets/postgres_target.h"

#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>

#include "common/errors.h"
#include "common/pg.h"
#include "common/runs.h"
#include "workers/collapse.h"
#include "workers/validate.h"

namespace leadsync::workers {
namespace {

using common::ErrorClass;

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

std::string field_named_in(const std::string& problem) {
  const auto a = problem.find("field '");
  if (a == std::string::npos) return "";
  const auto b = problem.find('\'', a + 7);
  return b == std::string::npos ? "" : problem.substr(a + 7, b - a - 7);
}

// 53200 (out of memory) and 54xxx (program limit exceeded) fail a statement for its size: a
// smaller piece of the batch may well pass.
bool fails_for_size(const std::exception& e) {
  const auto state = common::pg_sqlstate(e);
  return state == "53200" || state.rfind("54", 0) == 0;
}

bool same_partition(const Record& a, const Record& b) {
  if (!a.message || !b.message) return !a.message && !b.message;
  return a.message->partition() == b.message->partition() && topic_handle(*a.message) == topic_handle(*b.message);
}

// Calls `f(first, last)` for each run of consecutive records of one partition (a batch holds runs
// of one partition in offset order): per run, not per record, the topic name is copied. Records
// without a Kafka message (built by a caller, not consumed) form runs of their own, not passed.
template <typename F>
void for_each_partition_run(const std::vector<Record*>& records, F f) {
  std::size_t begin = 0;
  for (std::size_t i = 1; i <= records.size(); ++i) {
    if (i < records.size() && same_partition(*records[begin], *records[i])) continue;
    if (begin < records.size() && records[begin]->message) f(begin, i);
    begin = i;
  }
}

std::vector<std::string> runs_of(const RunCounts& per_run) {
  std::vector<std::string> out;
  for (const auto& [run, c] : per_run) {
    if (!run.empty()) out.push_back(run);
  }
  return out;
}

// The statements every batch runs, prepared on each new connection (parsed once, not per batch).
constexpr const char* kStoredOffsets = "leadsync_stored_offsets";
constexpr const char* kWriteOffsets = "leadsync_write_offsets";
constexpr const char* kRunStats = "leadsync_run_stats";
constexpr const char* kMarkOrigin = "leadsync_mark_origin";

void prepare_statements(pqxx::connection_base& conn) {
  // Marks the transaction as leadsync's (SET LOCAL): the capture triggers of the reverse
  // direction neither stamp nor capture what it writes, so no change travels back (design.md §9).
  conn.prepare(kMarkOrigin, "SELECT set_config('leadsync.origin', 'worker', true)");
  // A row per partition (created at 0), locked until the commit, with its stored next offset.
  // Sorted, so that two transactions lock shared rows in one order.
  conn.prepare(kStoredOffsets,
               "INSERT INTO leadsync.applied_offsets AS o (consumer_group, topic, partition, next_offset) "
               "SELECT DISTINCT $1::text, u.t, u.p, 0::bigint FROM unnest($2::text[], $3::int[]) AS u(t, p) ORDER BY 2, 3 "
               "ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET next_offset = o.next_offset "
               "RETURNING topic, partition, next_offset");
  // Never backwards: a worker that lost its partition (a zombie) must not undo its new owner's.
  conn.prepare(kWriteOffsets,
               "INSERT INTO leadsync.applied_offsets AS o (consumer_group, topic, partition, next_offset) "
               "SELECT $1::text, u.t, u.p, u.n FROM unnest($2::text[], $3::int[], $4::bigint[]) AS u(t, p, n) "
               "ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET "
               "next_offset = greatest(o.next_offset, excluded.next_offset), at = now()");
  conn.prepare(kRunStats,
               "INSERT INTO leadsync.run_apply_stats (run_id, inserted, updated, deleted, unchanged, stale, failed) "
               "VALUES ($1, $2, $3, $4, $5, $6, $7)");
}

std::vector<Record*> without_failure(const std::vector<Record*>& records) {
  std::vector<Record*> out;
  for (auto* r : records) {
    if (!r->failure) out.push_back(r);
  }
  return out;
}

}  // namespace

PostgresTarget::PostgresTarget(const common::Config& config, WorkerMetrics& metrics)
    : config_(config), metrics_(metrics) {
  if (const char* v = std::getenv("LEADSYNC_TEST_CRASH_AFTER_BATCHES"); v && *v) {
    crash_after_batches_ = std::strtol(v, nullptr, 10);
    spdlog::warn("worker: test hook LEADSYNC_TEST_CRASH_AFTER_BATCHES={}: killing this process after the database "
                 "commit of batch {}",
                 crash_after_batches_, crash_after_batches_);
  }
}

void PostgresTarget::set_up(bool up) {
  up_ = up;
  metrics_.database_up.Set(up ? 1 : 0);
}

bool PostgresTarget::connect() {
  try {
    conn_ = common::pg_connect(config_.postgres, "leadsync-worker");
    prepare_statements(*conn_);
    if (appliers_.empty()) {
      for (const auto& [name, entity] : config_.entities) {
        appliers_.emplace(name, EntityApplier(config_, entity));
        resolvers_.emplace(name, IdentityResolver(config_, entity));
      }
    }
    set_up(true);
    return true;
  } catch (const std::exception& e) {
    spdlog::warn("worker: cannot connect to PostgreSQL at {}: {}", common::redact_url(config_.postgres.url),
                 first_line(e.what()));
    set_up(false);
    return false;
  }
}

// The server going away (class 08 connection exception, 57 operator intervention) or a connection
// that libpq no longer holds is an outage: reconnect. Anything else classified as infrastructure
// (42 and 3F: the schema does not fit; XX000, 53: the server cannot run it now) happens on a
// working connection: keep it, back off and try again.
void PostgresTarget::unavailable(const std::exception& e) {
  const auto state = common::pg_sqlstate(e);
  const bool outage = !conn_ || !conn_->is_open() || dynamic_cast<const pqxx::broken_connection*>(&e) ||
                      dynamic_cast<const pqxx::in_doubt_error*>(&e) || state.rfind("08", 0) == 0 ||
                      state.rfind("57", 0) == 0;
  if (outage) set_up(false);
  throw TargetUnavailable(outage ? Unavailability::kOutage : Unavailability::kMisfit,
                          (state.empty() ? "" : "SQLSTATE " + state + ": ") + first_line(e.what()));
}

// ------------------------------------------------------------------ calls into validate, collapse, identity

void PostgresTarget::validate(const std::vector<Record*>& records) const {
  for (auto* r : records) {
    if (r->failure) continue;
    if (auto problem = validate_event(config_, *r->event); !problem.empty()) {
      r->failure = Failure{ErrorClass::kPermanent, "validation", problem, field_named_in(problem)};
    }
  }
}

// Re-keys events that belong to a record known under another key (R1), before the batch is
// collapsed per key, so that both spellings of one record meet in one row. The records keep the
// keys they came with (a retried batch resolves again); the copies live for this batch.
void PostgresTarget::resolve_identities(pqxx::transaction_base& tx, const std::vector<Record*>& records) {
  rekeyed_.clear();
  for (const auto& [name, resolver] : resolvers_) {
    if (!resolver.enabled()) continue;
    std::vector<Record*> of_entity;
    std::vector<const common::ChangeEvent*> events;
    for (auto* r : records) {
      if (r->event->entity() != name) continue;
      of_entity.push_back(r);
      events.push_back(r->event.get());
    }
    for (const auto& link : resolver.resolve(tx, events)) {
      auto& copy = rekeyed_.insert_or_assign(of_entity[link.index], *of_entity[link.index]->event).first->second;
      copy.set_key(link.to_key);
      if (link.field.empty()) continue;
      metrics_.identity_links.Increment();
      spdlog::info("worker: {} key '{}' linked to existing record '{}' by {} = '{}'", name, link.from_key,
                   link.to_key, link.field, link.value);
    }
  }
}

const common::ChangeEvent& PostgresTarget::applied_event(const Record* r) const {
  const auto it = rekeyed_.find(r);
  return it == rekeyed_.end() ? *r->event : it->second;
}

// Applies the batch in the rounds the collapse plans (workers/collapse.h): when an event fails, the
// next newest of its key is applied in the next round.
void PostgresTarget::apply_newest(pqxx::dbtransaction& tx, const std::vector<Record*>& records, RunCounts& per_run) {
  std::vector<const common::ChangeEvent*> events;
  events.reserve(records.size());
  for (auto* r : records) events.push_back(&applied_event(r));
  BatchPlan plan(config_, events);
  for (auto round = plan.next_round(); !round.empty(); round = plan.next_round()) {
    for (const auto& [entity, indexes] : round) {
      std::vector<Record*> chosen;
      chosen.reserve(indexes.size());
      for (const auto i : indexes) chosen.push_back(records[i]);
      apply_isolating(tx, appliers_.at(entity), chosen, per_run);
      for (const auto i : indexes) {
        if (records[i]->failure) plan.failed(i);
      }
    }
  }
  plan.count_unoffered(per_run);
}

void PostgresTarget::apply_one_entity(pqxx::dbtransaction& tx, const EntityApplier& applier,
                                      const std::vector<Record*>& records, RunCounts& per_run) {
  std::vector<const common::ChangeEvent*> events;
  events.reserve(records.size());
  for (auto* r : records) events.push_back(&applied_event(r));
  for (auto& [run, c] : applier.apply(tx, events)) per_run[run] += c;
}

// ------------------------------------------------------------------ the batch transaction

RunCounts PostgresTarget::apply(const std::vector<Record*>& records) {
  validate(records);
  pending_.clear();
  std::vector<Record*> todo = records;  // until the stored offsets were read, nothing is skipped
  try {
    return apply_batch(records, todo);
  } catch (const TargetUnavailable&) {
    throw;
  } catch (const std::exception& e) {
    // An error outside the savepoints (identity resolution, run statistics, SAVEPOINT, COMMIT)
    // names no record. Replaying the batch would fail the same way forever, so each record gets a
    // transaction of its own: the one that causes the error fails alone, the others apply.
    const auto good = without_failure(todo);
    spdlog::warn("worker: batch of {} failed outside record isolation ({}); applying its records one by one",
                 good.size(), first_line(e.what()));
    // Their partitions' offsets are stored by settle(), once the failed records are forwarded.
    for_each_partition_run(todo, [&](std::size_t first, std::size_t last) {
      auto& next = pending_[todo[first]->partition()];
      next = std::max(next, todo[last - 1]->offset() + 1);
    });
    return apply_one_by_one(good);
  }
}

RunCounts PostgresTarget::apply_batch(const std::vector<Record*>& records, std::vector<Record*>& todo) {
  RunCounts per_run;
  try {
    pqxx::work tx(*conn_);
    tx.exec_prepared(kMarkOrigin);  // a leadsync transaction: the capture triggers leave it alone
    todo = skip_applied(tx, records);
    const auto good = without_failure(todo);
    if (!good.empty()) {
      resolve_identities(tx, good);
      apply_newest(tx, good, per_run);
    }
    write_run_stats(tx, per_run);
    write_offsets(tx, done_offsets(todo));
    common::close_applied(tx, runs_of(per_run));
    tx.commit();
  } catch (const TargetUnavailable&) {
    throw;
  } catch (const std::exception& e) {
    if (common::classify_pg_error(e) == ErrorClass::kInfrastructure) unavailable(e);
    throw;
  }
  after_batch_commit();
  return per_run;
}

std::vector<Record*> PostgresTarget::skip_applied(pqxx::transaction_base& tx, const std::vector<Record*>& records) {
  common::TextArrayLiteral topics, partitions;
  for_each_partition_run(records, [&](std::size_t first, std::size_t) {
    topics.add(records[first]->message->topic_name());
    partitions.add(std::to_string(records[first]->message->partition()));
  });
  if (topics.size() == 0) return records;
  // One statement per batch: the stored next offset of each partition, its row locked to the commit.
  const auto rows = tx.exec_prepared(kStoredOffsets, config_.kafka.group, topics.str(), partitions.str());
  std::map<TopicPartition, int64_t> stored;
  for (const auto& r : rows) stored[{r[0].as<std::string>(), r[1].as<int32_t>()}] = r[2].as<int64_t>();
  std::vector<Record*> todo;
  todo.reserve(records.size());
  for (auto* r : records) {
    if (!r->message) todo.push_back(r);  // not consumed from Kafka: nothing to compare
  }
  std::size_t skipped = 0;
  for_each_partition_run(records, [&](std::size_t first, std::size_t last) {
    const auto it = stored.find(records[first]->partition());
    const int64_t next = it == stored.end() ? 0 : it->second;
    for (auto i = first; i < last; ++i) {
      auto* r = records[i];
      if (r->offset() >= next) {
        todo.push_back(r);
        continue;
      }
      // Applied (or forwarded) and counted by an earlier transaction: its offset is stored again
      // with the batch's, nothing else happens to it.
      r->failure.reset();
      ++skipped;
    }
  });
  if (skipped > 0) {
    spdlog::info("worker: {} record(s) of the batch were applied before (read again after a crash or a rebalance); "
                 "skipped, not counted again",
                 skipped);
  }
  return todo;
}

std::map<TopicPartition, int64_t> PostgresTarget::done_offsets(const std::vector<Record*>& records) {
  struct Span {
    int64_t end = 0;
    std::optional<int64_t> first_failed;
  };
  std::map<TopicPartition, Span> spans;
  for_each_partition_run(records, [&](std::size_t first, std::size_t last) {
    auto& span = spans[records[first]->partition()];
    for (auto i = first; i < last; ++i) {
      const auto offset = records[i]->offset();
      span.end = std::max(span.end, offset + 1);
      if (records[i]->failure && (!span.first_failed || offset < *span.first_failed)) span.first_failed = offset;
    }
  });
  std::map<TopicPartition, int64_t> next;
  for (const auto& [tp, span] : spans) {
    next[tp] = span.first_failed.value_or(span.end);
    if (span.first_failed) pending_[tp] = span.end;
  }
  return next;
}

void PostgresTarget::write_offsets(pqxx::transaction_base& tx, const std::map<TopicPartition, int64_t>& next) {
  if (next.empty()) return;
  common::TextArrayLiteral topics, partitions, offsets;
  for (const auto& [tp, offset] : next) {
    topics.add(tp.first);
    partitions.add(std::to_string(tp.second));
    offsets.add(std::to_string(offset));
  }
  tx.exec_prepared(kWriteOffsets, config_.kafka.group, topics.str(), partitions.str(), offsets.str());
}

void PostgresTarget::after_batch_commit() {
  ++batches_committed_;
  if (crash_after_batches_ > 0 && batches_committed_ == crash_after_batches_) {
    spdlog::critical("worker: test hook: killed after the database commit of batch {}", batches_committed_);
    spdlog::default_logger()->flush();
    std::raise(SIGKILL);
  }
}

RunCounts PostgresTarget::apply_in_one_transaction(const std::vector<Record*>& records) {
  RunCounts per_run;
  try {
    pqxx::work tx(*conn_);
    tx.exec_prepared(kMarkOrigin);  // a leadsync transaction: the capture triggers leave it alone
    resolve_identities(tx, records);
    apply_newest(tx, records, per_run);
    write_run_stats(tx, per_run);
    common::close_applied(tx, runs_of(per_run));
    tx.commit();
  } catch (const TargetUnavailable&) {
    throw;
  } catch (const std::exception& e) {
    if (common::classify_pg_error(e) == ErrorClass::kInfrastructure) unavailable(e);
    throw;
  }
  return per_run;
}

RunCounts PostgresTarget::apply_one_by_one(const std::vector<Record*>& records) {
  RunCounts per_run;
  for (auto* r : records) {
    try {
      for (const auto& [run, c] : apply_in_one_transaction({r})) per_run[run] += c;
    } catch (const TargetUnavailable&) {
      throw;  // records applied so far are committed; replaying them is harmless
    } catch (const std::exception& e) {
      r->failure = Failure{common::classify_pg_error(e), "database", first_line(e.what()), ""};
    }
  }
  return per_run;
}

void PostgresTarget::apply_isolating(pqxx::dbtransaction& tx, const EntityApplier& applier,
                                     std::vector<Record*>& records, RunCounts& per_run) {
  if (records.empty()) return;
  // A savepoint per attempt, so that a failing piece leaves the batch's transaction usable.
  // (Explicit SQL: libpqxx 6.4's subtransaction left the transaction aborted after an error.)
  tx.exec("SAVEPOINT leadsync_apply");
  try {
    apply_one_entity(tx, applier, records, per_run);
    tx.exec("RELEASE SAVEPOINT leadsync_apply");
    return;
  } catch (const std::exception& e) {
    const auto cls = common::classify_pg_error(e);
    if (cls == ErrorClass::kInfrastructure && !(fails_for_size(e) && records.size() > 1)) unavailable(e);
    // ROLLBACK TO keeps the savepoint; release it so that splits do not stack savepoints.
    tx.exec("ROLLBACK TO SAVEPOINT leadsync_apply");
    tx.exec("RELEASE SAVEPOINT leadsync_apply");
    if (records.size() == 1) {
      records[0]->failure = Failure{cls, "database", first_line(e.what()), ""};
      return;
    }
  }
  // A data error in a batch, or a batch too big for the server: split until the bad records are
  // found (or the pieces fit), so the good ones apply.
  const auto half = static_cast<std::ptrdiff_t>(records.size() / 2);
  std::vector<Record*> left(records.begin(), records.begin() + half);
  std::vector<Record*> right(records.begin() + half, records.end());
  apply_isolating(tx, applier, left, per_run);
  apply_isolating(tx, applier, right, per_run);
}

void PostgresTarget::write_run_stats(pqxx::transaction_base& tx, const RunCounts& per_run) {
  for (const auto& [run, c] : per_run) {
    if (run.empty()) continue;
    tx.exec_prepared(kRunStats, run, c.inserted, c.updated, c.deleted, c.unchanged, c.stale, c.failed);
  }
}

void PostgresTarget::count_dead_letters(const RunCounts& per_run) {
  if (runs_of(per_run).empty()) return;
  try {
    pqxx::work tx(*conn_);
    write_run_stats(tx, per_run);
    common::close_applied(tx, runs_of(per_run));
    tx.commit();
  } catch (const std::exception& e) {
    spdlog::warn("worker: could not record dead-letter counts: {}", e.what());
  }
}

void PostgresTarget::settle(const RunCounts& dead_lettered, const std::map<TopicPartition, int64_t>& rewind) {
  auto next = pending_;
  for (const auto& [tp, offset] : rewind) {
    // Read again from there: what follows is not done (records after it that were applied will be
    // applied again, harmlessly, and counted again: a forward Kafka did not acknowledge is rare).
    if (auto it = next.find(tp); it != next.end()) it->second = std::min(it->second, offset);
  }
  const auto runs = runs_of(dead_lettered);
  if (next.empty() && runs.empty()) return;
  try {
    if (!conn_ || !conn_->is_open()) throw pqxx::broken_connection("the connection to PostgreSQL is closed");
    pqxx::work tx(*conn_);
    write_run_stats(tx, dead_lettered);
    write_offsets(tx, next);
    common::close_applied(tx, runs);
    tx.commit();
    pending_.clear();
  } catch (const TargetUnavailable&) {
    throw;
  } catch (const std::exception& e) {
    spdlog::warn("worker: could not record the batch's dead letters and offsets: {}", first_line(e.what()));
    unavailable(e);
  }
}

}  // namespace leadsync::workers
