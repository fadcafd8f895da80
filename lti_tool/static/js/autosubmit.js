(function () {
  "use strict";
  var form = document.querySelector("form[data-autosubmit='true']");
  if (form) { form.submit(); }
})();
