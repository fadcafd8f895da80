// Progressive enhancement of the CSV import: while the apply request runs (a large file takes some seconds), show a
// progress indicator and keep the button from being pressed twice. Without this script the form works the same.
(function () {
  "use strict";
  var form = document.querySelector("form[data-progress]");
  if (!form) { return; }
  form.addEventListener("submit", function () {
    var progress = form.querySelector(".progress");
    var button = form.querySelector("button[type=submit]");
    if (progress) { progress.hidden = false; }
    form.setAttribute("aria-busy", "true");
    // After the submission has started: a disabled button would otherwise not submit in some browsers.
    window.setTimeout(function () { if (button) { button.disabled = true; } }, 0);
  });
})();
