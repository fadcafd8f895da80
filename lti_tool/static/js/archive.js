// "Download all as ZIP" of a large set: follow the worker's build until the file is ready (or failed). Like
// sync.js, the launch token goes in the X-Launch-Token header, never in the address. Beside sync.js because this
// one also moves a <progress> by done/total and shows the download button when the file is there. Only the
// message (pending → running → ready/failed) is a live region: the numbers change every poll and are not read out.
(function () {
  "use strict";
  var box = document.getElementById("archive");
  if (!box || !window.fetch) { return; }
  var url = box.getAttribute("data-status-url");
  var bar = document.getElementById("archive-progress");
  var count = document.getElementById("archive-count");
  var message = document.getElementById("archive-message");
  var download = document.getElementById("archive-download");
  var again = document.getElementById("archive-again");
  var token = document.body.getAttribute("data-launch-token");
  if (!token) {
    try { token = window.history.state && window.history.state["kurspakke.launch-token"]; } catch (e) { token = null; }
  }
  var status = box.getAttribute("data-state");
  if (status === "done" || status === "failed") { return; }
  var tries = 0;
  function show(state) {
    if (state.status === "running" || state.status === "done") {
      bar.max = state.total || 1;
      bar.value = state.total ? state.done : 1;
    }
    if (count.textContent !== state.counted) { count.textContent = state.counted; }
    if (message.textContent !== state.message) { message.textContent = state.message; }
    box.setAttribute("data-state", state.status);
  }
  function poll() {
    tries += 1;
    fetch(url, { method: "POST", headers: { "X-Launch-Token": token || "" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (state) {
        if (!state) { return; }
        show(state);
        if (state.status === "done") {
          download.hidden = false;
          if (again) { again.hidden = true; }
          return;
        }
        if (state.status === "failed") { return; }
        // About half an hour of polling; a build of thousands of certificates takes a minute or two.
        if (tries < 900) { window.setTimeout(poll, 2000); }
      })
      .catch(function () { if (tries < 900) { window.setTimeout(poll, 5000); } });
  }
  window.setTimeout(poll, 1000);
})();
