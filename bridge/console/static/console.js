// The console's live parts, without a build step: the overview refreshes itself, the
// resync page follows the running run, and forms marked data-confirm ask first.
"use strict";

function refreshPanel(panel) {
  const every = Number(panel.dataset.every || 5000);
  const tick = async () => {
    try {
      const response = await fetch(panel.dataset.refresh, { credentials: "same-origin" });
      if (response.status === 401) { window.location.reload(); return; }
      if (response.ok) {
        panel.innerHTML = await response.text();
        const stamp = document.getElementById("refreshed");
        if (stamp) stamp.textContent = "refreshed " + new Date().toLocaleTimeString();
      }
    } catch (err) { /* the next tick tries again */ }
    window.setTimeout(tick, every);
  };
  window.setTimeout(tick, every);
}

const ACTIVE = ["queued", "running"];

function text(id, value) {
  const el = document.getElementById(id);
  if (el) el.textContent = value;
}

function describe(drift) {
  const parts = Object.entries(drift || {}).map(([k, v]) => k + " " + v);
  return parts.length ? parts.join(", ") : "none";
}

function followResync(section) {
  const status = document.getElementById("run-status");
  if (!status || !ACTIVE.includes(status.textContent.trim())) return;
  const tick = async () => {
    let run = null;
    try {
      const response = await fetch(section.dataset.status, { credentials: "same-origin" });
      if (response.ok) run = (await response.json()).current;
    } catch (err) { /* try again */ }
    if (run) {
      status.textContent = run.status;
      status.className = "badge badge-" + run.status;
      text("run-phase", run.phase);
      text("run-done", run.done);
      text("run-total", run.total);
      text("run-drift", describe(run.drift));
      text("run-errors", (run.errors || []).length);
      const bar = document.getElementById("run-bar");
      if (bar) { bar.max = run.total || 1; bar.value = run.done; }
      if (!ACTIVE.includes(run.status)) {
        window.setTimeout(() => window.location.reload(), 800);  // buttons and history
        return;
      }
    }
    window.setTimeout(tick, 500);
  };
  window.setTimeout(tick, 500);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-refresh]").forEach(refreshPanel);
  const progress = document.getElementById("progress");
  if (progress) followResync(progress);
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
});
