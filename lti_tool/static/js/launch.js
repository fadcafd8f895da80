// After a launch the page is the answer to a POST; give it its GET address so reload and "open in new tab"
// load the page again instead of re-posting a used id_token.
(function () {
  "use strict";
  var url = document.body.getAttribute("data-canonical-url");
  if (url && window.history && window.history.replaceState) {
    window.history.replaceState(null, "", url);
  }
  // The login also left its proof in the platform's storage (LTI Platform Storage), though the cookie bound
  // it: clear that key, the platform keeps only a little per tool. No answer is awaited.
  var clear = document.getElementById("kp-storage-clear");
  var parent = window.parent !== window ? window.parent : null;
  if (clear && parent) {
    var target = clear.getAttribute("data-target");
    var win = null;
    try { win = target === "_parent" ? parent : parent.frames[target]; } catch (e) { win = null; }
    if (win) {
      var id = Date.now().toString(36) + Math.random().toString(36).slice(2);
      win.postMessage(
        { subject: "lti.put_data", message_id: id, key: clear.getAttribute("data-key"), value: null },
        clear.getAttribute("data-platform-origin")
      );
    }
  }
})();
