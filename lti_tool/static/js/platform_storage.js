// LTI Platform Storage (1EdTech "LTI Client Side postMessages"): keep the login's proof in the platform's storage
// when the browser blocks third-party cookies.
// Login: put the proof under the login's key, then go to the platform's authorize URL (the Partitioned cookie set
// with this page binds the login too, for browsers that keep it).
// Check (after a cookieless launch): read the proof back and post it to the tool, which compares it and only then
// hands out the launch token. The page itself never knows the proof; an id_token and state posted from anywhere
// else therefore open nothing.
(function () {
  "use strict";
  var body = document.body;
  var mode = body.getAttribute("data-storage-mode");
  var targetName = body.getAttribute("data-target");
  var origin = body.getAttribute("data-platform-origin");
  var key = body.getAttribute("data-key");
  // Canvas relays every message through a forwarding frame to the Canvas page, which may load its handler on
  // demand: allow it time, and ask twice.
  var TIMEOUT_MS = parseInt(body.getAttribute("data-timeout-ms") || "5000", 10);
  var ATTEMPTS = 2;

  function platformWindow(frameName) {
    var parent = window.parent !== window ? window.parent : window.opener;
    if (!parent) { return null; }
    if (!frameName || frameName === "_parent") { return parent; }
    // The named frame lives beside the tool in the platform's page. Without it there is no one to answer
    // (the parent has another origin than the storage), so fail at once instead of waiting.
    try { return parent.frames[frameName] || null; } catch (e) { return null; }
  }

  function messageId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function sendOnce(message, frameName) {
    return new Promise(function (resolve, reject) {
      var win = platformWindow(frameName);
      if (!win) { reject(new Error("no_frame")); return; }
      var id = messageId();
      var expected = message.subject + ".response";
      var timer = setTimeout(function () { cleanup(); reject(new Error("timeout")); }, TIMEOUT_MS);
      function onMessage(event) {
        var data = event.data;
        if (event.origin !== origin || !data || data.message_id !== id || data.subject !== expected) { return; }
        cleanup();
        if (data.error) { reject(new Error(data.error.code || "error")); } else { resolve(data); }
      }
      function cleanup() { clearTimeout(timer); window.removeEventListener("message", onMessage); }
      window.addEventListener("message", onMessage);
      var sent = { subject: message.subject, message_id: id };
      if ("key" in message) { sent.key = message.key; }
      if ("value" in message) { sent.value = message.value; }
      win.postMessage(sent, origin);
    });
  }

  function send(message, frameName, attempt) {
    attempt = attempt || 1;
    return sendOnce(message, frameName).catch(function (error) {
      if (error.message === "timeout" && attempt < ATTEMPTS) { return send(message, frameName, attempt + 1); }
      throw error;
    });
  }

  // The frame the platform names for a message in its capabilities answer, else the login's storage target.
  function frameFor(caps, subject) {
    var list = (caps && caps.supported_messages) || [];
    for (var i = 0; i < list.length; i++) {
      if (list[i] && list[i].subject === subject) { return list[i].frame || targetName; }
    }
    return null;
  }

  if (mode === "login") {
    var next = body.getAttribute("data-next");
    var proof = body.getAttribute("data-value");
    send({ subject: "lti.capabilities" }, targetName)
      .then(function (caps) {
        var frame = frameFor(caps, "lti.put_data");
        if (!frame) { return null; }
        return send({ subject: "lti.put_data", key: key, value: proof }, frame);
      })
      .catch(function () { return null; })  // no answer: the cookie is the only binding left
      .then(function () { window.location.replace(next); });
  } else if (mode === "check") {
    // Ask in the frames the platform names for each message, as the login did when it stored the proof.
    var capabilities = null;
    send({ subject: "lti.capabilities" }, targetName)
      .then(function (caps) {
        capabilities = caps;
        var frame = frameFor(caps, "lti.get_data");
        if (!frame) { throw new Error("unsupported"); }
        return send({ subject: "lti.get_data", key: key }, frame);
      })
      .then(function (reply) {
        if (typeof reply.value !== "string" || !reply.value) { throw new Error("missing"); }
        // Used once: clear it, so the platform's storage (limited per tool) does not fill up.
        var putFrame = frameFor(capabilities, "lti.put_data");
        if (putFrame) { sendOnce({ subject: "lti.put_data", key: key, value: null }, putFrame).catch(function () {}); }
        var form = document.getElementById("storage-confirm");
        form.elements.proof.value = reply.value;
        form.submit();
      })
      .catch(function () {
        document.getElementById("storage-status").hidden = true;
        document.getElementById("storage-failed").hidden = false;
      });
  }
})();
