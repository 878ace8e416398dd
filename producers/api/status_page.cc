// The status page at / : plain HTML, inline styles and one small script that polls /api/v1 once a
// second (sources with their dead letters by class, runs with progress bars, the workers' consumer
// lag per topic with the group's members). Nothing is loaded from elsewhere, so it works offline;
// data is inserted as text only.
#include "producers/api/pages.h"

namespace leadsync::producers::api {

const char* status_page() {
  return R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>leadsync runs</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
  h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #ddd; vertical-align: middle; }
  .st-running { color: #0657b8; } .st-completed { color: #17803d; } .st-failed { color: #b3261e; }
  .st-cancelled { color: #8a6d00; } .st-queued, .st-paused { color: #666; }
  progress { width: 12em; }
  #notice { min-height: 1.4em; color: #b3261e; }
  button { margin-right: 4px; }
  .dl span { margin-right: 0.8em; } .dl-permanent, .dl-other { color: #b3261e; } .dl-retryable { color: #8a6d00; }
  .dl-infrastructure { color: #6a3d9a; } .muted { color: #666; } .lag-behind { color: #b3261e; font-weight: 600; }
</style>
</head>
<body>
<h1>leadsync — sync runs</h1>
<p>Token for control: <input id="token" type="password" size="30" autocomplete="off">
   <span id="updated"></span></p>
<div id="notice" role="status"></div>
<h2>Sources</h2>
<table id="sources"><thead><tr><th>Source</th><th>State</th><th>Last run</th><th>Last completed</th>
<th>Next scheduled</th><th>Dead letters</th><th>Control</th></tr></thead><tbody></tbody></table>
<p id="dead-letter-topic" class="muted"></p>
<h2>Runs</h2>
<table id="runs"><thead><tr><th>Run</th><th>Source</th><th>Status</th><th>Trigger</th><th>Progress</th>
<th>Rows</th><th>Published</th><th>Started</th><th>Message</th></tr></thead><tbody></tbody></table>
<h2>Consumer lag</h2>
<p id="lag-summary"></p>
<table id="lag"><thead><tr><th>Topic</th><th>Lag</th><th>Committed</th><th>Lag per partition</th></tr></thead>
<tbody></tbody></table>
<script>
"use strict";
const tokenInput = document.getElementById("token");
tokenInput.value = sessionStorage.getItem("leadsync-token") || "";
tokenInput.addEventListener("change", () => sessionStorage.setItem("leadsync-token", tokenInput.value));

function headers() {
  return tokenInput.value ? { "Authorization": "Bearer " + tokenInput.value } : {};
}
function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text == null ? "" : String(text);
  if (cls) td.className = cls;
  return td;
}
function notice(text) { document.getElementById("notice").textContent = text; }

async function control(source, action) {
  const res = await fetch("/api/v1/sources/" + encodeURIComponent(source) + "/" + action,
                          { method: "POST", headers: headers() });
  const body = await res.json().catch(() => ({}));
  notice(res.ok ? action + " " + source + ": done" : (body.title || res.status) + ": " + (body.detail || ""));
  refresh();
}

function nextScheduled(s) {
  if (s.paused) return "paused";
  const last = s.last_run && (s.last_run.finished_at || s.last_run.started_at);
  if (!last) return "now";
  return new Date(Date.parse(last) + s.schedule_seconds * 1000).toISOString().replace(".000", "");
}

// {class: count} as one span per class, or "none".
function deadLetters(td, counts) {
  td.className = "dl";
  const classes = Object.keys(counts || {}).sort();
  if (classes.length === 0) { td.textContent = "none"; td.classList.add("muted"); return; }
  for (const c of classes) {
    const span = document.createElement("span");
    span.className = "dl-" + c;
    span.dataset.class = c;
    span.dataset.count = String(counts[c]);
    span.textContent = c + ": " + counts[c];
    td.appendChild(span);
  }
}

function renderDeadLetterTopic(t) {
  const p = document.getElementById("dead-letter-topic");
  if (!t) { p.textContent = ""; return; }
  let text = "Dead-letter topic " + t.topic + ": " + t.total + " in all";
  const un = Object.keys(t.unattributed || {}).sort();
  if (un.length) text += "; of no configured source (payload not a change event): " +
                         un.map(c => c + " " + t.unattributed[c]).join(", ");
  if (!t.caught_up) text += " (still counting)";
  if (t.error) text += " — cannot read: " + t.error;
  p.textContent = text;
}

function renderLag(l) {
  const summary = document.getElementById("lag-summary");
  summary.dataset.members = l.members == null ? "" : String(l.members);
  summary.dataset.lag = l.lag == null ? "" : String(l.lag);
  if (l.members == null) {
    summary.textContent = "group " + l.group + ": " + (l.error ? "cannot read: " + l.error : "not sampled yet");
  } else {
    summary.textContent = "group " + l.group + ": " + l.members + " member(s), " + l.lag +
      " message(s) behind" + (l.members === 0 && l.lag > 0 ? " and no worker consuming" : "") +
      ", sampled " + l.sampled_at + (l.error ? " — last sample failed: " + l.error : "");
  }
  const body = document.querySelector("#lag tbody");
  body.replaceChildren();
  for (const t of l.topics || []) {
    const row = body.insertRow();
    row.dataset.topic = t.topic;
    row.dataset.lag = String(t.lag);
    cell(row, t.topic);
    cell(row, t.lag, t.lag > 0 ? "lag-behind" : "");
    cell(row, t.committed);
    cell(row, t.partitions.map(p => "[" + p.partition + "] " + p.lag).join(", "));
  }
}

function renderSources(sources) {
  const body = document.querySelector("#sources tbody");
  body.replaceChildren();
  for (const s of sources) {
    const row = body.insertRow();
    row.dataset.source = s.source;
    cell(row, s.source);
    cell(row, s.state, "st-" + s.state);
    cell(row, s.last_run ? s.last_run.status + " (" + s.last_run.run_id + ")" : "never");
    cell(row, s.last_completed_at || "never");
    cell(row, nextScheduled(s));
    deadLetters(row.insertCell(), s.dead_letters);
    const td = row.insertCell();
    for (const action of ["trigger", "pause", "resume", "cancel"]) {
      const b = document.createElement("button");
      b.textContent = action;
      b.dataset.action = action;
      b.dataset.source = s.source;
      b.addEventListener("click", () => control(s.source, action));
      td.appendChild(b);
    }
  }
}

function renderRuns(runs) {
  const body = document.querySelector("#runs tbody");
  body.replaceChildren();
  for (const r of runs) {
    const row = body.insertRow();
    row.dataset.run = r.run_id;
    row.dataset.status = r.status;
    cell(row, r.run_id);
    cell(row, r.source);
    cell(row, r.status, "st-" + r.status);
    cell(row, r.trigger);
    const p = r.progress;
    const bar = document.createElement("progress");
    bar.max = 100;
    // Without a percent, only a running run shows the moving "indeterminate" bar.
    if (p.percent != null) bar.value = p.percent; else if (r.status !== "running") bar.value = 0;
    if (r.status === "completed") bar.value = 100;
    const td = row.insertCell();
    td.appendChild(bar);
    td.appendChild(document.createTextNode(p.percent != null ? " " + p.percent.toFixed(1) + "%" : ""));
    cell(row, p.rows_done + (p.rows_total != null ? " / " + p.rows_total : ""));
    cell(row, r.counters.published);
    cell(row, r.started_at || "");
    cell(row, r.error || p.message || "");
  }
}

async function refresh() {
  try {
    const [s, r, l] = await Promise.all([
      fetch("/api/v1/sources", { headers: headers() }).then(x => x.json()),
      fetch("/api/v1/runs?limit=25", { headers: headers() }).then(x => x.json()),
      fetch("/api/v1/lag", { headers: headers() }).then(x => x.json())]);
    if (s.sources) renderSources(s.sources); else notice(s.detail || "cannot read sources");
    renderDeadLetterTopic(s.dead_letter_topic);
    if (r.runs) renderRuns(r.runs);
    if (l.topics) renderLag(l);
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    notice("cannot reach the producer: " + e);
  }
}
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
)html";
}

}  // namespace leadsync::producers::api
