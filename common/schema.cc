#include "common/schema.h"

#include <algorithm>
#include <map>

#include "common/errors.h"
#include "common/pg.h"
#include "common/capture_schema.h"

namespace leadsync::common {
namespace {

struct Migration {
  int version;
  const char* description;
  const char* sql;
};

// Append only: an applied migration is never edited, a change is a new entry.
const Migration kMigrations[] = {
    {1, "runs, source state, audit, identities, backups",
     R"sql(
CREATE TABLE leadsync.sync_runs (
  run_id            text PRIMARY KEY,
  source            text NOT NULL,
  status            text NOT NULL CHECK (status IN ('queued','running','completed','failed','cancelled')),
  created_at        timestamptz NOT NULL DEFAULT now(),
  started_at        timestamptz,
  finished_at       timestamptz,
  heartbeat_at      timestamptz,
  rows_read         bigint NOT NULL DEFAULT 0,
  rows_total        bigint,
  events_published  bigint NOT NULL DEFAULT 0,
  new_records       bigint NOT NULL DEFAULT 0,
  changed_records   bigint NOT NULL DEFAULT 0,
  deleted_records   bigint NOT NULL DEFAULT 0,
  unchanged_records bigint NOT NULL DEFAULT 0,
  failed_records    bigint NOT NULL DEFAULT 0,
  progress_percent  real,
  message           text,
  snapshot_hash     text
);
-- At most one active run per source, whatever process or restart (R3).
CREATE UNIQUE INDEX sync_runs_one_active ON leadsync.sync_runs (source) WHERE status IN ('queued','running');
CREATE INDEX sync_runs_source_created ON leadsync.sync_runs (source, created_at DESC);

CREATE TABLE leadsync.source_state (
  source   text NOT NULL,
  key      text NOT NULL,
  checksum bigint NOT NULL,
  version  bigint NOT NULL,
  run_id   text,
  PRIMARY KEY (source, key)
);

-- What the workers did with each run's events, one row per applied batch and run (insert-only, so
-- parallel workers never wait on each other's counter row).
CREATE TABLE leadsync.run_apply_stats (
  run_id    text NOT NULL,
  inserted  bigint NOT NULL DEFAULT 0,
  updated   bigint NOT NULL DEFAULT 0,
  deleted   bigint NOT NULL DEFAULT 0,
  unchanged bigint NOT NULL DEFAULT 0,
  stale     bigint NOT NULL DEFAULT 0,
  failed    bigint NOT NULL DEFAULT 0,
  at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX run_apply_stats_run ON leadsync.run_apply_stats (run_id);

-- Records a source run could not map, with where and why (R2).
CREATE TABLE leadsync.run_errors (
  id          bigserial PRIMARY KEY,
  run_id      text NOT NULL,
  source      text NOT NULL,
  line        bigint,
  key         text,
  column_name text,
  value       text,
  message     text NOT NULL,
  at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX run_errors_run ON leadsync.run_errors (run_id);

-- Field-level audit (R6): one row per changed field of an update, one row ('*') per insert.
CREATE TABLE leadsync.field_changes (
  id        bigserial PRIMARY KEY,
  entity    text NOT NULL,
  key       text NOT NULL,
  field     text NOT NULL,
  old_value text,
  new_value text,
  source    text,
  event_id  text,
  at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX field_changes_record ON leadsync.field_changes (entity, key, at);

CREATE TABLE leadsync.identities (
  entity    text NOT NULL,
  field     text NOT NULL,
  value     text NOT NULL,
  key       text NOT NULL,
  linked_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (entity, field, value)
);

CREATE TABLE leadsync.backups (
  id         bigserial PRIMARY KEY,
  backup_id  text NOT NULL,
  entity     text NOT NULL,
  key        text NOT NULL,
  row_data   jsonb,
  reason     text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX backups_backup ON leadsync.backups (backup_id);
)sql"},
    {2, "dead-letter replay cursor",
     R"sql(
-- How far `leadsyncctl dlq replay` has replayed each dead-letter partition, so that a dead letter
-- is replayed once.
CREATE TABLE leadsync.dlq_replay_cursor (
  topic       text NOT NULL,
  partition   int NOT NULL,
  next_offset bigint NOT NULL,
  replayed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (topic, partition)
);
)sql"},
    {3, "run versions",
     R"sql(
-- The source_version a run stamped on its events: the next run of the source stamps a higher one
-- even if the clock went back, so its changes are never mistaken for stale ones.
ALTER TABLE leadsync.sync_runs ADD COLUMN source_version bigint;
)sql"},
    {4, "runs as a state machine: trigger, single runner, controls, checkpoints",
     R"sql(
-- One running run per source, and beside it at most one queued run (a trigger with --queue); the
-- runner also holds a session advisory lock on the source, so a crashed runner frees it at once.
DROP INDEX leadsync.sync_runs_one_active;
CREATE UNIQUE INDEX sync_runs_one_running ON leadsync.sync_runs (source) WHERE status = 'running';
CREATE UNIQUE INDEX sync_runs_one_queued ON leadsync.sync_runs (source) WHERE status = 'queued';
ALTER TABLE leadsync.sync_runs
  ADD COLUMN trigger text NOT NULL DEFAULT 'schedule' CHECK (trigger IN ('schedule','manual','repair','full')),
  ADD COLUMN runner_pid int,
  ADD COLUMN heartbeat_ms int,
  ADD COLUMN error text,
  ADD COLUMN checkpoint text,
  ADD COLUMN checkpoint_at timestamptz,
  ADD COLUMN resumed_from text,
  ADD COLUMN published_at timestamptz;

-- Pause is a property of the source (it stops its schedule), kept across restarts.
CREATE TABLE leadsync.source_controls (
  source     text PRIMARY KEY,
  paused     boolean NOT NULL DEFAULT false,
  changed_at timestamptz NOT NULL DEFAULT now()
);

-- Requests to a running run that its runner reads between batches (cancel, pause).
CREATE TABLE leadsync.run_controls (
  id           bigserial PRIMARY KEY,
  run_id       text NOT NULL,
  action       text NOT NULL CHECK (action IN ('cancel','pause')),
  requested_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX run_controls_run ON leadsync.run_controls (run_id);

-- Producer services announce themselves, so that a trigger can say when nobody will start its run.
CREATE TABLE leadsync.producer_instances (
  instance     text PRIMARY KEY,
  sources      text[] NOT NULL,
  heartbeat_ms int NOT NULL,
  heartbeat_at timestamptz NOT NULL DEFAULT now()
);
)sql"},
    {5, "source state bound to its target",
     R"sql(
-- The target (entity, table and its identity) a completed run's state was built against: a run
-- that finds another target (a new, recreated or restored table) publishes every record again.
ALTER TABLE leadsync.sync_runs ADD COLUMN target_stamp text;
)sql"},
    {6, "keys an interrupted read had seen",
     R"sql(
-- What a source's interrupted read had seen up to its stored checkpoint, written with each
-- checkpoint: the run that resumes from it does not mistake these keys for deleted ones and
-- stores their new checksums when it completes. Emptied when a run completes or starts afresh.
CREATE TABLE leadsync.run_progress_keys (
  source   text NOT NULL,
  key      text NOT NULL,
  checksum bigint,              -- the new checksum of a new or changed record; NULL: as stored
  line     bigint NOT NULL,     -- where the record was, for duplicate-key messages
  deleted  boolean NOT NULL DEFAULT false,  -- an incremental read's delete
  run_id   text NOT NULL,
  PRIMARY KEY (source, key)
);
)sql"},
    {7, "scoring and segment rule sets",
     R"sql(
-- Each rule set an entity was scored with, by version (common/scoring.h), and the version each run
-- used: an audited change of a score or segment names its run, and the run names its rules.
CREATE TABLE leadsync.rule_sets (
  entity        text NOT NULL,
  version       text NOT NULL,
  definition    text NOT NULL,
  first_run_id  text,
  first_used_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (entity, version)
);
ALTER TABLE leadsync.sync_runs ADD COLUMN rules_version text;
-- (Which run's event made an audited change is field_changes.run_id, migration 8.)
)sql"},
    {8, "repair backups, retention, the run of an audited change",
     R"sql(
-- `leadsyncctl repair` backs up the rows it is about to re-sync (row_data: each column as text, so
-- that `leadsyncctl rollback` restores them byte for byte; NULL when the row did not exist).
ALTER TABLE leadsync.backups
  ADD COLUMN source      text,
  ADD COLUMN run_id      text,
  ADD COLUMN restored_at timestamptz;
-- Retention (leadsyncctl cleanup) deletes the oldest rows in batches.
CREATE INDEX backups_created ON leadsync.backups (created_at);
CREATE INDEX field_changes_at ON leadsync.field_changes (at);
CREATE INDEX run_errors_at ON leadsync.run_errors (at);
CREATE INDEX run_apply_stats_at ON leadsync.run_apply_stats (at);
-- Which run's event changed a field (leadsyncctl explain, status --fields).
ALTER TABLE leadsync.field_changes ADD COLUMN run_id text;
CREATE INDEX field_changes_run ON leadsync.field_changes (run_id);
)sql"},
    {9, "reverse direction: outbox, application-edit stamps, conflict decisions",
     R"sql(
-- Changes applications make to a captured table (design.md §9), written by a trigger in the
-- application's own transaction; the capture publishes them to Kafka and deletes them once Kafka
-- has acknowledged them. Rows of leadsync's own transactions never enter it (echo suppression).
CREATE TABLE leadsync.outbox (
  id             bigserial PRIMARY KEY,
  relation       text NOT NULL,  -- schema.table the change was made to
  aggregate_type text NOT NULL,
  aggregate_id   text NOT NULL,
  type           text NOT NULL CHECK (type IN ('upsert','delete')),
  payload        jsonb NOT NULL,
  version        bigint NOT NULL,
  txid           bigint NOT NULL DEFAULT txid_current(),
  created_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX outbox_relation ON leadsync.outbox (relation, id);

-- Every conflict decision between PostgreSQL and the CRM, both directions, with both values (R11).
CREATE TABLE leadsync.conflict_decisions (
  id               bigserial PRIMARY KEY,
  entity           text NOT NULL,
  key              text NOT NULL,
  field            text NOT NULL,
  direction        text NOT NULL CHECK (direction IN ('to_postgres','to_crm')),
  postgres_value   text,
  crm_value        text,
  postgres_version bigint,
  crm_version      bigint,
  winner           text NOT NULL CHECK (winner IN ('postgres','crm')),
  rule             text NOT NULL CHECK (rule IN ('last_write_wins','priority')),
  at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conflict_decisions_record ON leadsync.conflict_decisions (entity, key, at);

-- leadsync's workers say who they are per transaction (SET LOCAL leadsync.origin); an application's
-- transaction does not. Logical decoding would not see the setting, a trigger does.
CREATE FUNCTION leadsync.in_leadsync_transaction() RETURNS boolean LANGUAGE sql STABLE AS
$f$ SELECT coalesce(current_setting('leadsync.origin', true), '') <> '' $f$;

CREATE FUNCTION leadsync.now_micros() RETURNS bigint LANGUAGE sql VOLATILE AS
$f$ SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint $f$;

-- BEFORE INSERT OR UPDATE on a captured table. Arguments: 0 source name of application edits,
-- 1 the CRM's origin, 2 entity, 3 key column, 4 fields PostgreSQL owns, 5 fields the CRM owns,
-- 6 every field that travels to the CRM (array literals).
-- An application's edit is stamped (_origin 'postgres', _version from the clock, newer than the
-- row's). leadsync's write of a CRM change onto a row keeps the fields PostgreSQL owns, and every
-- decision against a PostgreSQL value is audited.
CREATE FUNCTION leadsync.stamp_row() RETURNS trigger LANGUAGE plpgsql AS $f$
DECLARE
  f       text;
  old_row jsonb;
  new_row jsonb;
  pg_owns text[] := TG_ARGV[4]::text[];
  crm_owns text[] := TG_ARGV[5]::text[];
BEGIN
  IF NOT leadsync.in_leadsync_transaction() THEN
    NEW._origin := 'postgres';
    NEW._event_id := NULL;
    IF TG_OP = 'INSERT' THEN
      NEW._source := coalesce(NEW._source, TG_ARGV[0]);
      NEW._version := leadsync.now_micros();
    ELSE
      NEW._version := greatest(leadsync.now_micros(), OLD._version + 1);
    END IF;
    RETURN NEW;
  END IF;
  IF TG_OP <> 'UPDATE' OR NEW._origin IS DISTINCT FROM TG_ARGV[1] THEN
    RETURN NEW;
  END IF;
  old_row := to_jsonb(OLD);
  new_row := to_jsonb(NEW);
  FOREACH f IN ARRAY TG_ARGV[6]::text[] || pg_owns LOOP
    CONTINUE WHEN (new_row -> f) IS NOT DISTINCT FROM (old_row -> f);
    IF f = ANY (pg_owns) THEN
      INSERT INTO leadsync.conflict_decisions
        (entity, key, field, direction, postgres_value, crm_value, postgres_version, crm_version, winner, rule)
      VALUES (TG_ARGV[2], old_row ->> TG_ARGV[3], f, 'to_postgres', old_row ->> f, new_row ->> f, OLD._version,
              NEW._version, 'postgres', 'priority');
      NEW := jsonb_populate_record(NEW, jsonb_build_object(f, old_row -> f));
    ELSIF OLD._origin = 'postgres' THEN
      INSERT INTO leadsync.conflict_decisions
        (entity, key, field, direction, postgres_value, crm_value, postgres_version, crm_version, winner, rule)
      VALUES (TG_ARGV[2], old_row ->> TG_ARGV[3], f, 'to_postgres', old_row ->> f, new_row ->> f, OLD._version,
              NEW._version, 'crm', CASE WHEN f = ANY (crm_owns) THEN 'priority' ELSE 'last_write_wins' END);
    END IF;
  END LOOP;
  RETURN NEW;
END $f$;

-- AFTER INSERT OR UPDATE OR DELETE on a captured table. Arguments: 0 entity, 1 key column.
-- Only applications' changes enter the outbox; an update that changed no field does not.
CREATE FUNCTION leadsync.capture_row() RETURNS trigger LANGUAGE plpgsql AS $f$
DECLARE
  bookkeeping CONSTANT text[] := ARRAY['_version','_event_id','_source','_origin','_synced_at','_field_versions','_incomplete'];
  new_row jsonb;
BEGIN
  IF leadsync.in_leadsync_transaction() THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' THEN
    INSERT INTO leadsync.outbox (relation, aggregate_type, aggregate_id, type, payload, version)
    VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, TG_ARGV[0], to_jsonb(OLD) ->> TG_ARGV[1], 'delete', to_jsonb(OLD),
            greatest(leadsync.now_micros(), OLD._version + 1));
    RETURN NULL;
  END IF;
  new_row := to_jsonb(NEW);
  IF TG_OP = 'UPDATE' AND (new_row - bookkeeping) = (to_jsonb(OLD) - bookkeeping) THEN
    RETURN NULL;
  END IF;
  INSERT INTO leadsync.outbox (relation, aggregate_type, aggregate_id, type, payload, version)
  VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, TG_ARGV[0], new_row ->> TG_ARGV[1], CASE WHEN NEW._deleted THEN 'delete' ELSE 'upsert' END, new_row,
          NEW._version);
  RETURN NULL;
END $f$;
)sql"},
    {10, "runs complete when applied; offsets the workers applied",
     R"sql(
-- A run is `completed` once every event it published is applied or dead-lettered (issue 10 item
-- 4). Publishing done is published_at: from then on the run stays `running` while the workers
-- apply it, and the next run of the source may start, so one runner per source means one run
-- still publishing.
DROP INDEX leadsync.sync_runs_one_running;
CREATE UNIQUE INDEX sync_runs_one_publishing ON leadsync.sync_runs (source)
  WHERE status = 'running' AND published_at IS NULL;
-- published_at now means "publishing finished and the run's state was stored" (what the next run
-- compares against); earlier versions set it before storing the state, so on a run that then
-- failed or was cancelled it means nothing.
UPDATE leadsync.sync_runs SET published_at = NULL WHERE status IN ('failed','cancelled');
-- The next Kafka offset the workers of a consumer group have applied, per topic and partition,
-- written in the transaction that applies the batch: a batch read again after a worker crashed
-- between its database commit and its offset commit is skipped, neither applied nor counted twice.
CREATE TABLE leadsync.applied_offsets (
  consumer_group text NOT NULL,
  topic          text NOT NULL,
  partition      int NOT NULL,
  next_offset    bigint NOT NULL,
  at             timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer_group, topic, partition)
);
)sql"},
    {11, "reverse direction: CRM changes known by their source, rollbacks restored as they were",
     R"sql(
-- As in migration 9, with two changes (issue 9):
--  - a change leadsync applies from the CRM is recognised by the row's _origin being the CRM origin
--    (argument 1) or one of the CRM's inbound sources (argument 7, an array literal; absent on
--    triggers installed before this version): the `kind: twenty` adapter stamps its source name;
--  - a rollback (leadsync.origin = 'rollback') puts rows back exactly as backed up: no field kept;
--  - a CRM value refused for a field PostgreSQL owns is answered: the kept row goes to the outbox, so
--    the sink writes PostgreSQL's value back into the CRM and both sides converge.
CREATE OR REPLACE FUNCTION leadsync.stamp_row() RETURNS trigger LANGUAGE plpgsql AS $f$
DECLARE
  f       text;
  old_row jsonb;
  new_row jsonb;
  pg_owns text[] := TG_ARGV[4]::text[];
  crm_owns text[] := TG_ARGV[5]::text[];
  crm_sources text[] := coalesce(TG_ARGV[7], '{}')::text[];
  refused boolean := false;
BEGIN
  IF NOT leadsync.in_leadsync_transaction() THEN
    NEW._origin := 'postgres';
    NEW._event_id := NULL;
    IF TG_OP = 'INSERT' THEN
      NEW._source := coalesce(NEW._source, TG_ARGV[0]);
      NEW._version := leadsync.now_micros();
    ELSE
      NEW._version := greatest(leadsync.now_micros(), OLD._version + 1);
    END IF;
    RETURN NEW;
  END IF;
  IF TG_OP <> 'UPDATE' OR current_setting('leadsync.origin', true) = 'rollback' OR NEW._origin IS NULL
     OR NOT (NEW._origin = TG_ARGV[1] OR NEW._origin = ANY (crm_sources)) THEN
    RETURN NEW;
  END IF;
  old_row := to_jsonb(OLD);
  new_row := to_jsonb(NEW);
  FOREACH f IN ARRAY TG_ARGV[6]::text[] || pg_owns LOOP
    CONTINUE WHEN (new_row -> f) IS NOT DISTINCT FROM (old_row -> f);
    IF f = ANY (pg_owns) THEN
      INSERT INTO leadsync.conflict_decisions
        (entity, key, field, direction, postgres_value, crm_value, postgres_version, crm_version, winner, rule)
      VALUES (TG_ARGV[2], old_row ->> TG_ARGV[3], f, 'to_postgres', old_row ->> f, new_row ->> f, OLD._version,
              NEW._version, 'postgres', 'priority');
      NEW := jsonb_populate_record(NEW, jsonb_build_object(f, old_row -> f));
      refused := true;
    ELSIF OLD._origin = 'postgres' THEN
      INSERT INTO leadsync.conflict_decisions
        (entity, key, field, direction, postgres_value, crm_value, postgres_version, crm_version, winner, rule)
      VALUES (TG_ARGV[2], old_row ->> TG_ARGV[3], f, 'to_postgres', old_row ->> f, new_row ->> f, OLD._version,
              NEW._version, 'crm', CASE WHEN f = ANY (crm_owns) THEN 'priority' ELSE 'last_write_wins' END);
    END IF;
  END LOOP;
  IF refused THEN
    INSERT INTO leadsync.outbox (relation, aggregate_type, aggregate_id, type, payload, version)
    VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, TG_ARGV[2], old_row ->> TG_ARGV[3], 'upsert', to_jsonb(NEW),
            NEW._version);
  END IF;
  RETURN NEW;
END $f$;
)sql"},
    {12, "an id for run_apply_stats rows",
     R"sql(
-- leadsyncctl exporter counts applied events per field from run_apply_stats incrementally, by id
-- (ctl/field_metrics.h), like field_changes and run_errors.
ALTER TABLE leadsync.run_apply_stats ADD COLUMN id bigserial;
CREATE INDEX run_apply_stats_id ON leadsync.run_apply_stats (id);
)sql"},
    {13, "the audit's run index: a BRIN bloom index instead of a B-tree",
     R"sql(
-- Only `leadsyncctl status --fields` looks audit rows up by run (ctl/field_counts.cc: run_id = $1).
-- A run's rows are written together, so they lie in few block ranges: a BRIN bloom index finds
-- them, and costs the sink's update path far less per audit row than a B-tree entry (bench/README.md,
-- "Issue 12 — the update path"). Ranges written since the last summary are always scanned.
DROP INDEX leadsync.field_changes_run;
CREATE INDEX field_changes_run ON leadsync.field_changes
  USING brin (run_id text_bloom_ops (n_distinct_per_range = 100)) WITH (autosummarize = on);
)sql"},
    {14, "the audit: one row per changed record; field_changes is its view, one row per field",
     R"sql(
-- An update that changes three fields wrote three audit rows and three entries in each of their
-- indexes; it now writes one row holding its changed fields, one [field, old value, new value] row of
-- a two-dimensional text[] per field (bench/README.md, "Issue 12 — one audit row per changed
-- record"). leadsync.field_changes stays what readers query: a view with one row per changed field
-- and the table's columns, fields in the order the record's change listed them.
CREATE TABLE leadsync.record_changes (
  id       bigserial PRIMARY KEY,
  entity   text NOT NULL,
  key      text NOT NULL,
  changes  text[] NOT NULL CHECK (array_ndims(changes) = 2 AND array_length(changes, 2) = 3),
  source   text,
  event_id text,
  at       timestamptz NOT NULL DEFAULT now(),
  run_id   text
);
-- Every audited field change moves over, under its own id, so that the exporter's count by id goes
-- on where it stopped.
INSERT INTO leadsync.record_changes (id, entity, key, changes, source, event_id, at, run_id)
  SELECT id, entity, key, ARRAY[[field, old_value, new_value]], source, event_id, at, run_id
  FROM leadsync.field_changes;
SELECT setval(pg_get_serial_sequence('leadsync.record_changes', 'id'), last_value, is_called)
  FROM leadsync.field_changes_id_seq;
DROP TABLE leadsync.field_changes;
CREATE INDEX record_changes_record ON leadsync.record_changes (entity, key, at);
-- Retention deletes by `at`: rows are written in time order, so a BRIN index finds the old ones.
CREATE INDEX record_changes_at ON leadsync.record_changes USING brin (at) WITH (autosummarize = on);
CREATE INDEX record_changes_run ON leadsync.record_changes
  USING brin (run_id text_bloom_ops (n_distinct_per_range = 100)) WITH (autosummarize = on);
CREATE VIEW leadsync.field_changes AS
  SELECT r.id, r.entity, r.key, r.changes[i][1] AS field, r.changes[i][2] AS old_value,
         r.changes[i][3] AS new_value, r.source, r.event_id, r.at, r.run_id
  FROM leadsync.record_changes r CROSS JOIN LATERAL generate_series(1, array_length(r.changes, 1)) AS i;
)sql"},
};

// The row's record of its creation (design.md §4): the creating event's version, id and run, and
// when it was applied. Set by the insert, never by an update.
constexpr const char* kCreationColumns =
    "_created_version bigint, _created_event text, _created_run text, _created_at timestamptz";

std::string column_definition(pqxx::connection& c, const FieldConfig& f) {
  return c.quote_name(f.name) + " " + field_sql_type(f.type);
}

// Existing columns of a table: name -> formatted type as PostgreSQL prints it.
std::map<std::string, std::string> existing_columns(pqxx::work& tx, const std::string& schema, const std::string& table) {
  std::map<std::string, std::string> out;
  const auto rows = tx.exec_params(
      "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
      "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
      schema, table);
  for (const auto& r : rows) out[r[0].as<std::string>()] = r[1].as<std::string>();
  return out;
}

const char* printed_type(FieldType t) {
  switch (t) {
    case FieldType::kText: return "text";
    case FieldType::kInt: return "bigint";
    case FieldType::kFloat: return "double precision";
    case FieldType::kBool: return "boolean";
    case FieldType::kTimestamp: return "timestamp with time zone";
    case FieldType::kDate: return "date";
    case FieldType::kTextList: return "text[]";
    case FieldType::kJson: return "jsonb";
  }
  return "text";
}

// An entity that starts accepting partial events: every existing row was written by full images,
// so each field's version is the row's (without it a replayed older image would win every field).
// Entries written before versions carried event ids (bare numbers) become [version, ""].
std::vector<std::string> ensure_field_versions(pqxx::work& tx, const std::string& table, const EntityConfig& e,
                                               const std::map<std::string, std::string>& existing) {
  std::vector<std::string> report;
  std::string names, required;
  for (const auto& f : e.fields) {
    names += (names.empty() ? "" : ", ") + quote_literal(f.name);
    if (f.required) required += (required.empty() ? "" : " OR ") + quote_ident(f.name) + " IS NULL";
  }
  if (!existing.count("_field_versions")) {
    tx.exec("ALTER TABLE " + table + " ADD COLUMN _field_versions jsonb NOT NULL DEFAULT '{}'");
    const auto filled = tx.exec(
        "UPDATE " + table + " SET _field_versions = (SELECT jsonb_object_agg(n, jsonb_build_array(_version, "
        "coalesce(_event_id, ''))) FROM unnest(ARRAY[" + names + "]::text[]) n)").affected_rows();
    report.push_back("added per-field versions to " + e.table + ", " + std::to_string(filled) +
                     " row(s) filled from _version");
  } else {
    tx.exec("UPDATE " + table + " SET _field_versions = (SELECT coalesce(jsonb_object_agg(v.key, CASE WHEN "
            "jsonb_typeof(v.value) = 'number' THEN jsonb_build_array(v.value, '') ELSE v.value END), '{}') FROM "
            "jsonb_each(_field_versions) v) WHERE EXISTS (SELECT 1 FROM jsonb_each(_field_versions) v WHERE "
            "jsonb_typeof(v.value) = 'number')");
  }
  if (!existing.count("_incomplete")) {
    // A row a partial event created before the required fields arrived is not a record yet.
    tx.exec("ALTER TABLE " + table + " ADD COLUMN _incomplete boolean NOT NULL DEFAULT false");
    if (!required.empty()) tx.exec("UPDATE " + table + " SET _incomplete = true WHERE " + required);
    report.push_back("added the incomplete-row flag to " + e.table);
  }
  return report;
}

std::vector<std::string> ensure_entity_table(pqxx::connection& conn, const Config& config, const EntityConfig& e) {
  std::vector<std::string> report;
  pqxx::work tx(conn);
  tx.exec("SELECT pg_advisory_xact_lock(hashtext('leadsync.migrate'))");
  const auto table = qualified(conn, config.postgres.schema, e.table);
  tx.exec("CREATE SCHEMA IF NOT EXISTS " + conn.quote_name(config.postgres.schema));
  const auto existing = existing_columns(tx, config.postgres.schema, e.table);
  if (existing.empty()) {
    std::string ddl = "CREATE TABLE " + table + " (" + conn.quote_name(e.key) + " text PRIMARY KEY";
    for (const auto& f : e.fields) ddl += ", " + column_definition(conn, f);
    ddl +=
        ", _version bigint NOT NULL, _event_id text, _deleted boolean NOT NULL DEFAULT false, _source text, "
        "_origin text, _synced_at timestamptz";
    if (e.partial_events) ddl += ", _field_versions jsonb NOT NULL DEFAULT '{}', _incomplete boolean NOT NULL DEFAULT false";
    ddl += ", " + std::string(kCreationColumns) + ")";
    tx.exec(ddl);
    report.push_back("created table " + config.postgres.schema + "." + e.table);
  } else {
    for (const auto& f : e.fields) {
      const auto it = existing.find(f.name);
      if (it == existing.end()) {
        tx.exec("ALTER TABLE " + table + " ADD COLUMN " + column_definition(conn, f));
        report.push_back("added column " + e.table + "." + f.name);
      } else if (it->second != printed_type(f.type)) {
        throw ConfigError("entities." + e.name + ".fields." + f.name + ": column " + config.postgres.schema + "." +
                          e.table + "." + f.name + " exists with type " + it->second + ", config says " +
                          field_type_name(f.type) + " (" + printed_type(f.type) + "); migrate the column by hand");
      }
    }
    if (!existing.count("_event_id")) {
      // Equal versions are decided by event id (workers/collapse.h): the row keeps the winner's.
      tx.exec("ALTER TABLE " + table + " ADD COLUMN _event_id text");
      report.push_back("added event ids to " + e.table);
    }
    if (!existing.count("_created_version")) {
      // A record's creation (which event, version and run made it, and when) is kept on the row, not
      // as an audit row. Rows created before this keep their creation in leadsync.field_changes
      // (field '*'), where `leadsyncctl explain` still finds it.
      std::string add;
      std::string columns = kCreationColumns;
      for (std::size_t from = 0; from < columns.size();) {
        const auto to = std::min(columns.find(", ", from), columns.size());
        add += (add.empty() ? "ADD COLUMN " : ", ADD COLUMN ") + columns.substr(from, to - from);
        from = to + 2;
      }
      tx.exec("ALTER TABLE " + table + " " + add);
      report.push_back("added creation columns to " + e.table);
    }
    if (e.partial_events) {
      auto r = ensure_field_versions(tx, table, e, existing);
      report.insert(report.end(), r.begin(), r.end());
    }
    if (!existing.count(e.key) || !existing.count("_version")) {
      throw ConfigError("entities." + e.name + ": table " + config.postgres.schema + "." + e.table +
                        " exists but lacks the key column '" + e.key + "' or leadsync's _version column");
    }
  }
  // Alternate keys are looked up on every apply that meets an unknown key (R1): index them.
  for (const auto& field : e.match_on) {
    const auto index = e.table + "_" + field + "_match";
    if (index.size() <= 63) {
      tx.exec("CREATE INDEX IF NOT EXISTS " + conn.quote_name(index) + " ON " + table + " (" + conn.quote_name(field) +
              ")");
    }
  }
  tx.commit();
  return report;
}

}  // namespace

int schema_version() { return static_cast<int>(std::size(kMigrations)); }

std::vector<std::string> migrate_leadsync_schema(pqxx::connection& conn, int up_to) {
  std::vector<std::string> report;
  pqxx::work tx(conn);
  // One migrator at a time across processes; released at commit.
  tx.exec("SELECT pg_advisory_xact_lock(hashtext('leadsync.migrate'))");
  tx.exec("CREATE SCHEMA IF NOT EXISTS leadsync");
  tx.exec(
      "CREATE TABLE IF NOT EXISTS leadsync.schema_migrations (version int PRIMARY KEY, description text NOT NULL, "
      "applied_at timestamptz NOT NULL DEFAULT now())");
  const int current = tx.exec1("SELECT coalesce(max(version), 0) FROM leadsync.schema_migrations")[0].as<int>();
  for (const auto& m : kMigrations) {
    if (m.version <= current || m.version > up_to) continue;
    tx.exec(m.sql);
    tx.exec_params("INSERT INTO leadsync.schema_migrations (version, description) VALUES ($1, $2)", m.version,
                   std::string(m.description));
    report.push_back("applied migration " + std::to_string(m.version) + ": " + m.description);
  }
  tx.commit();
  return report;
}

std::vector<std::string> migrate(pqxx::connection& conn, const Config& config) {
  auto report = migrate_leadsync_schema(conn, schema_version());
  for (const auto& [name, entity] : config.entities) {
    auto r = ensure_entity_table(conn, config, entity);
    report.insert(report.end(), r.begin(), r.end());
  }
  if (config.reverse.enabled) report.push_back(install_capture_triggers(conn, config));
  if (report.empty()) report.push_back("schema is up to date (version " + std::to_string(schema_version()) + ")");
  return report;
}

}  // namespace leadsync::common
