// After a launch the page is the answer to a POST; give it its GET address so reload and "open in new tab"
// load the page again instead of re-posting a used id_token.
(function () {
  "use strict";
  var url = document.body.getAttribute("data-canonical-url");
  if (url && window.history && window.history.replaceState) {
    window.history.replaceState(null, "", url);
  }
})();
