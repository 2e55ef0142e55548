// The dashboard's shared script: live progress on a sending campaign's page. Every
// page works without it.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function watchProgress(section) {
  const url = section.dataset.progress;
  const bar = document.getElementById("progress-bar");
  const text = document.getElementById("progress-text");
  const status = document.getElementById("campaign-status");
  const tick = async () => {
    let state;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      state = await response.json();
    } catch (_) {
      return;
    }
    bar.value = state.percent;
    bar.textContent = state.percent + " %";
    text.textContent = state.done + " of " + state.total + " handled: " + state.sent +
      " sent, " + state.failed + " failed, " + state.suppressed + " suppressed";
    if (status.textContent !== state.status) {
      status.textContent = state.status;
      status.className = "status " + state.status;
    }
    if (state.status === "done" || state.status === "cancelled" || state.status === "paused") {
      // The results below are now final: show them.
      window.location.reload();
      return;
    }
    setTimeout(tick, 1000);
  };
  setTimeout(tick, 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  const section = document.querySelector("[data-progress]");
  if (section) watchProgress(section);
});

window.mailcast = { csrfToken };
