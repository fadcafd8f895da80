// Canvas's post_message_forwarding frame, simulated: it lives on the platform's sso origin beside the tool's
// frame in the Canvas page, takes the tool's LTI postMessages, hands them to the Canvas page (another origin),
// and relays the answers back to the tool, which therefore sees them come from the sso origin.
(function () {
  "use strict";
  var script = document.currentScript;
  var toolOrigin = script.getAttribute("data-tool-origin");
  var parentOrigin = script.getAttribute("data-parent-origin");
  var waiting = Object.create(null);

  window.addEventListener("message", function (event) {
    var data = event.data;
    if (!data || typeof data !== "object") { return; }
    if (event.origin === toolOrigin && typeof data.subject === "string" && typeof data.message_id === "string") {
      waiting[data.message_id] = event.source;
      window.parent.postMessage({ kp_forwarded_from: event.origin, message: data }, parentOrigin);
    } else if (event.origin === parentOrigin && event.source === window.parent && data.kp_forwarded_reply) {
      var reply = data.kp_forwarded_reply;
      var tool = waiting[reply.message_id];
      if (tool) {
        delete waiting[reply.message_id];
        tool.postMessage(reply, toolOrigin);
      }
    }
  });
})();
