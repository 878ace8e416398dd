#include "common/runs_json.h"

#include <algorithm>

namespace leadsync::common {
namespace {

nlohmann::json text_or_null(const std::string& s) { return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s); }

}  // namespace

nlohmann::json applied_to_json(const AppliedCounts& a, int64_t published) {
  return {{"inserted", a.inserted},
          {"updated", a.updated},
          {"deleted", a.deleted},
          {"unchanged", a.unchanged},
          {"stale", a.stale},
          {"dead_lettered", a.dead_lettered},
          {"pending", std::max<int64_t>(0, published - a.total())}};
}

nlohmann::json run_to_json(const RunInfo& r) {
  const auto& p = r.progress;
  const auto& c = r.counters;
  const auto& a = r.applied;
  return {{"run_id", r.run_id},
          {"source", r.source},
          {"status", std::string(run_status_name(r.status))},
          {"trigger", run_trigger_name(r.trigger)},
          {"created_at", text_or_null(r.created_at)},
          {"started_at", text_or_null(r.started_at)},
          {"heartbeat_at", text_or_null(r.heartbeat_at)},
          {"finished_at", text_or_null(r.finished_at)},
          {"progress",
           {{"rows_done", p.rows_done},
            {"rows_total", p.rows_total ? nlohmann::json(*p.rows_total) : nlohmann::json(nullptr)},
            {"percent", p.percent ? nlohmann::json(*p.percent) : nlohmann::json(nullptr)},
            {"message", text_or_null(p.message)}}},
          {"counters",
           {{"read", c.rows_read},
            {"new", c.new_records},
            {"changed", c.changed_records},
            {"unchanged", c.unchanged_records},
            {"deleted", c.deleted_records},
            {"rejected", c.rejected_records},
            {"published", c.events_published}}},
          {"applied", applied_to_json(a, c.events_published)},
          {"error", text_or_null(r.error)},
          {"checkpoint", text_or_null(r.checkpoint)},
          {"resumed_from", text_or_null(r.resumed_from)}};
}

nlohmann::json source_state_to_json(const SourceRunState& s) {
  return {{"source", s.source},
          {"paused", s.paused},
          {"state", s.paused ? std::string("paused")
                    : s.active ? std::string(run_status_name(s.active->status))
                               : std::string("idle")},
          {"active_run", s.active ? run_to_json(*s.active) : nlohmann::json(nullptr)},
          {"last_run", s.last ? run_to_json(*s.last) : nlohmann::json(nullptr)},
          {"last_completed_at", text_or_null(s.last_completed_at)}};
}

}  // namespace leadsync::common
