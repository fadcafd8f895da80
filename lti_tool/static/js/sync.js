// "Oppdater nå": follow the requested progress sync until it is done or failed. The launch token goes in the
// X-Launch-Token header (never in the address); the status text is a live region, so screen readers hear it.
(function () {
  "use strict";
  var box = document.getElementById("sync");
  if (!box || !window.fetch) { return; }
  var url = box.getAttribute("data-status-url");
  var bar = document.getElementById("sync-progress");
  var message = document.getElementById("sync-message");
  var token = document.body.getAttribute("data-launch-token");
  if (!token) {
    try { token = window.history.state && window.history.state["kurspakke.launch-token"]; } catch (e) { token = null; }
  }
  var tries = 0;
  function poll() {
    tries += 1;
    fetch(url, { method: "POST", headers: { "X-Launch-Token": token || "" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (state) {
        if (!state) { return; }
        if (message.textContent !== state.message) { message.textContent = state.message; }
        if (state.status === "done" || state.status === "failed") {
          bar.max = 1; bar.value = 1;
          return;
        }
        if (tries < 150) { window.setTimeout(poll, 2000); }
      })
      .catch(function () { if (tries < 150) { window.setTimeout(poll, 5000); } });
  }
  window.setTimeout(poll, 1000);
})();
