// LTI Platform Storage (1EdTech "LTI Client Side postMessages"): keep the login's proof in the platform's storage
// when the browser blocks third-party cookies.
// Login: when this frame keeps cookies (the login's probe cookie is readable), the state cookie binds the login:
// go to the platform's authorize URL at once. Otherwise put the proof under the login's key first, waiting for
// the platform a second or two at most, then go.
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
  // Canvas answers in tens of milliseconds, but some platforms name a storage target and never answer (Canvas's
  // mobile apps): wait for each answer STEP_MS at most (two messages: at most 2 s in all). A message that reaches
  // the platform before its forwarding frame or handler has loaded is lost, so ask again every RESEND_MS.
  var STEP_MS = 1000;
  var RESEND_MS = 250;

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

  function post(win, message) {
    var sent = { subject: message.subject, message_id: messageId() };
    if ("key" in message) { sent.key = message.key; }
    if ("value" in message) { sent.value = message.value; }
    win.postMessage(sent, origin);
    return sent.message_id;
  }

  // Send without waiting for an answer (nothing depends on it).
  function tell(message, frameName) {
    try {
      var win = platformWindow(frameName);
      if (win) { post(win, message); }
    } catch (e) { /* nothing waits for it */ }
  }

  // Send, and again every RESEND_MS; resolve with the first answer to any copy. Rejects with "timeout" after
  // STEP_MS, "no_frame" at once when there is no one to ask, or the platform's error code.
  function ask(message, frameName) {
    return new Promise(function (resolve, reject) {
      var win = platformWindow(frameName);
      if (!win) { reject(new Error("no_frame")); return; }
      var ids = Object.create(null);
      var expected = message.subject + ".response";
      var resend = null;
      var timer = setTimeout(function () { cleanup(); reject(new Error("timeout")); }, STEP_MS);
      function again() {
        ids[post(win, message)] = true;
        resend = setTimeout(again, RESEND_MS);
      }
      function onMessage(event) {
        var data = event.data;
        if (event.origin !== origin || !data || data.subject !== expected) { return; }
        if (typeof data.message_id !== "string" || !ids[data.message_id]) { return; }
        cleanup();
        if (data.error) { reject(new Error(data.error.code || "error")); } else { resolve(data); }
      }
      function cleanup() {
        clearTimeout(timer);
        clearTimeout(resend);
        window.removeEventListener("message", onMessage);
      }
      window.addEventListener("message", onMessage);
      again();
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

  // The login's response set a probe cookie with the state cookie's attributes. If this document can read it, the
  // browser keeps this frame's cookies, and the state cookie will come back with the launch. The probe has done
  // its work once read: delete it.
  function cookiesKept(name) {
    if (!name) { return false; }
    try {
      var found = document.cookie.split(";").some(function (c) { return c.trim() === name + "=1"; });
      if (found) { document.cookie = name + "=; Max-Age=0; Path=/lti/; Secure; SameSite=None; Partitioned"; }
      return found;
    } catch (e) {
      return false;  // a sandboxed document may not touch cookies: ask the platform
    }
  }

  function text(id) {
    var element = document.getElementById(id);
    return element ? element.textContent : "";
  }

  // The check failed: say so in the heading and title, and in the alert (announced by screen readers) with what
  // to do. "no-answer": the platform did not answer (or there was no frame to ask); "not-confirmed": it answered,
  // but without this login's proof (not stored, or the browser kept it from the platform).
  function fail(cause) {
    document.getElementById("storage-status").hidden = true;
    document.getElementById("storage-heading").textContent = text("storage-text-heading");
    document.title = text("storage-text-title");
    var alert = document.getElementById("storage-failed");
    alert.className = "notice notice-error";
    alert.textContent = text("storage-text-" + cause);
  }

  if (mode === "login") {
    var next = body.getAttribute("data-next");
    var proof = body.getAttribute("data-value");
    var go = function () { window.location.replace(next); };
    if (cookiesKept(body.getAttribute("data-probe"))) {
      // No waiting on the platform. The proof still goes to its storage, unawaited, in case the launch arrives
      // without the cookie after all; a cookie-bound landing page clears it.
      tell({ subject: "lti.put_data", key: key, value: proof }, targetName);
      go();
    } else {
      ask({ subject: "lti.capabilities" }, targetName)
        .then(function (caps) {
          var frame = frameFor(caps, "lti.put_data");
          if (!frame) { return null; }
          return ask({ subject: "lti.put_data", key: key, value: proof }, frame);
        })
        .catch(function () { return null; })  // no answer: the launch's check page will say so
        .then(go);
    }
  } else if (mode === "check") {
    // Ask in the frames the platform names for each message, as the login did when it stored the proof.
    var capabilities = null;
    ask({ subject: "lti.capabilities" }, targetName)
      .then(function (caps) {
        capabilities = caps;
        var frame = frameFor(caps, "lti.get_data");
        if (!frame) { throw new Error("unsupported"); }
        return ask({ subject: "lti.get_data", key: key }, frame);
      })
      .then(function (reply) {
        if (typeof reply.value !== "string" || !reply.value) { throw new Error("missing"); }
        // Used once: clear it, so the platform's storage (limited per tool) does not fill up.
        var putFrame = frameFor(capabilities, "lti.put_data");
        if (putFrame) { tell({ subject: "lti.put_data", key: key, value: null }, putFrame); }
        var form = document.getElementById("storage-confirm");
        form.elements.proof.value = reply.value;
        form.submit();
      })
      .catch(function (error) {
        var silent = error && (error.message === "timeout" || error.message === "no_frame");
        fail(silent ? "no-answer" : "not-confirmed");
      });
  }
})();
