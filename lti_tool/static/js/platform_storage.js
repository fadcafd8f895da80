// LTI Platform Storage (LTI Client Side postMessages): keep the login state in the platform's storage when the
// browser blocks third-party cookies. Login: put the state's binding, then go to the platform's authorize URL.
// Check (after a cookieless launch): read the state back; only if it is there does the tool open.
(function () {
  "use strict";
  var body = document.body;
  var mode = body.getAttribute("data-storage-mode");
  var targetName = body.getAttribute("data-target");
  var origin = body.getAttribute("data-platform-origin");
  var state = body.getAttribute("data-state");
  var next = body.getAttribute("data-next");
  var TIMEOUT_MS = 1500;

  function targetWindow() {
    var parent = window.parent;
    if (!parent || parent === window) { return null; }
    if (targetName === "_parent") { return parent; }
    try { return parent.frames[targetName] || parent; } catch (e) { return parent; }
  }

  function send(message) {
    return new Promise(function (resolve, reject) {
      var win = targetWindow();
      if (!win) { reject(new Error("no platform window")); return; }
      var id = Math.random().toString(36).slice(2) + Date.now().toString(36);
      message.message_id = id;
      var timer = setTimeout(function () { cleanup(); reject(new Error("timeout")); }, TIMEOUT_MS);
      function onMessage(event) {
        if (event.origin !== origin || !event.data || event.data.message_id !== id) { return; }
        cleanup();
        if (event.data.error) { reject(new Error(event.data.error.code || "error")); } else { resolve(event.data); }
      }
      function cleanup() { clearTimeout(timer); window.removeEventListener("message", onMessage); }
      window.addEventListener("message", onMessage);
      win.postMessage(message, origin);
    });
  }

  function supports(caps, subject) {
    var list = (caps && caps.supported_messages) || [];
    for (var i = 0; i < list.length; i++) { if (list[i].subject === subject) { return true; } }
    return false;
  }

  function go() { window.location.replace(next); }

  if (mode === "login") {
    send({ subject: "lti.capabilities" })
      .then(function (caps) {
        if (!supports(caps, "lti.put_data")) { return null; }
        return send({ subject: "lti.put_data", key: "kp_state_" + state, value: state });
      })
      .catch(function () { return null; })  // no answer: the Partitioned cookie set with this page still binds
      .then(go);
  } else if (mode === "check") {
    send({ subject: "lti.get_data", key: "kp_state_" + state })
      .then(function (reply) {
        if (reply.value === state) { go(); } else { throw new Error("mismatch"); }
      })
      .catch(function () {
        document.getElementById("storage-status").hidden = true;
        document.getElementById("storage-failed").hidden = false;
      });
  }
})();
