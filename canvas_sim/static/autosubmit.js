// Submits the login-initiation / form_post form without inline script, so the
// pages work under `script-src 'self'`.
(function () {
  "use strict";
  var form = document.querySelector("form[data-autosubmit]");
  if (form) {
    form.submit();
  }
})();
