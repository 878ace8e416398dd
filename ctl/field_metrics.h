// Field-level counters as metrics (issue 11 item 5, R6), served by `leadsyncctl exporter`: per
// entity and mapped field, how many applied events wrote the field, how many of them changed its
// stored value, and how many source records were rejected because of its column. Labels are the
// entity and field names of the configuration only, never record data.
//
// They are read from what the database already records, the same rows `leadsyncctl status --fields`
// reads (ctl/field_counts.h), so the dashboard and status agree:
//   applied  — leadsync.run_apply_stats: inserted + updated + unchanged events of a run of one of the
//              entity's sources, counted for every mapped field (a full image writes every field);
//   changed  — leadsync.field_changes (the audit's view, one row per field an applied update changed;
//              read by the ids of its table, leadsync.record_changes);
//   rejected — leadsync.run_errors rows that name a column, counted for the field the column maps to.
// Why here and not in the worker: rejections happen in the producer, the audit is the record the
// numbers must match, and one exporter gives one series per field however many workers run.
//
// Each table is read incrementally by id, once per row, so the counters only rise: the retention
// cleanup deleting old rows cannot make them go back. An id is not a commit order (a transaction can
// take id 10 and commit after another took 11), so a range of ids is counted only once it is settled:
// the sequences' ends are read at one sample, and that range is counted once every transaction in
// progress at the next sample's snapshot has finished. Counting starts at the exporter's start.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <pqxx/pqxx>

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>

#include "common/config.h"

namespace leadsync::ctl {

struct FieldMetrics {
  explicit FieldMetrics(prometheus::Registry& registry);
  prometheus::Family<prometheus::Counter>& applied;   // by entity, field
  prometheus::Family<prometheus::Counter>& changed;   // by entity, field (audited entities only)
  prometheus::Family<prometheus::Counter>& rejected;  // by entity, field
  prometheus::Counter& errors;                        // samples that failed (database unreachable)
};

class FieldCounter {
 public:
  // Creates every entity/field series of the configuration at 0.
  FieldCounter(const common::Config& config, FieldMetrics& metrics);

  // One step: counts every settled range, then marks the tables' current ends. Throws on a database
  // error; the next call carries on from what was counted.
  void sample(pqxx::connection& conn);

 private:
  struct Ends {
    int64_t changes = 0, errors = 0, stats = 0;  // last id handed out by each table's sequence
  };
  struct Mark {
    Ends ends;
    std::optional<std::string> snapshot;  // taken at the sample after `ends` were read
  };
  void count(pqxx::transaction_base& tx, const Ends& from, const Ends& to);

  const common::Config& config_;
  FieldMetrics& metrics_;
  std::optional<Ends> counted_;  // every row up to these ids is counted
  std::deque<Mark> pending_;
  // Bounded by the mapping: entity -> its fields; source -> (entity, column -> field).
  std::map<std::string, std::map<std::string, bool>> fields_of_entity_;
  std::map<std::string, std::pair<std::string, std::map<std::string, std::string>>> source_;
};

}  // namespace leadsync::ctl
