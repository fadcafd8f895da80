// LTI Platform Storage responder (1EdTech "LTI Client Side postMessages").
//
// The tool runs in the `tool_frame` iframe and, because third-party cookies
// may be blocked, stores its OIDC state/nonce with the platform through
// postMessage. Config comes from data- attributes so no inline script is needed.
//
// Two layouts, as configured: the tool posts to this page directly (lti_storage_target "_parent"), or, as in
// hosted Canvas, to the post_message_forwarding frame on the sso origin, which hands the message on to this page
// and relays the answer (data-forwarder-origin names that frame's origin).
(function () {
  "use strict";

  var script = document.currentScript;
  var toolOrigin = script ? script.getAttribute("data-tool-origin") : "";
  var forwarderOrigin = script ? script.getAttribute("data-forwarder-origin") : "";
  // Values are kept per tool origin, as the spec requires, and only in memory.
  var store = {};

  function originStore(origin) {
    if (!Object.prototype.hasOwnProperty.call(store, origin)) {
      store[origin] = Object.create(null);
    }
    return store[origin];
  }

  function parse(msg) {
    if (typeof msg === "string") {
      try {
        msg = JSON.parse(msg);
      } catch (e) {
        return null;
      }
    }
    if (!msg || typeof msg !== "object" || typeof msg.subject !== "string") {
      return null;
    }
    return msg;
  }

  // Answer one message of the tool at `origin`; `reply` sends the answer back the way the message came.
  function handle(origin, msg, reply) {
    var subject = msg.subject;
    if (subject.indexOf("lti.") !== 0 || /\.response$/.test(subject)) {
      return;
    }
    var data = originStore(origin);

    function fail(code, text) {
      reply({
        subject: subject + ".response",
        message_id: msg.message_id,
        error: { code: code, message: text },
      });
    }

    if (subject === "lti.capabilities") {
      var storageFrame = forwarderOrigin ? { frame: "post_message_forwarding" } : {};
      reply({
        subject: "lti.capabilities.response",
        message_id: msg.message_id,
        supported_messages: [
          Object.assign({ subject: "lti.put_data" }, storageFrame),
          Object.assign({ subject: "lti.get_data" }, storageFrame),
        ],
      });
    } else if (subject === "lti.put_data") {
      if (typeof msg.key !== "string" || msg.key === "") {
        fail("bad_request", "Nøkkel (key) mangler");
      } else if (msg.value === undefined) {
        fail("bad_request", "Verdi (value) mangler");
      } else {
        // As Canvas: an empty value (null) deletes the key.
        if (msg.value === null) {
          delete data[msg.key];
        } else {
          data[msg.key] = msg.value;
        }
        reply({ subject: "lti.put_data.response", message_id: msg.message_id, key: msg.key, value: msg.value });
      }
    } else if (subject === "lti.get_data") {
      if (typeof msg.key !== "string" || msg.key === "") {
        fail("bad_request", "Nøkkel (key) mangler");
      } else {
        // As Canvas: a key with nothing stored answers with value null, not an error.
        reply({
          subject: "lti.get_data.response",
          message_id: msg.message_id,
          key: msg.key,
          value: msg.key in data ? data[msg.key] : null,
        });
      }
    } else {
      fail("unsupported_subject", "Ukjent melding: " + subject);
    }
  }

  window.addEventListener("message", function (event) {
    if (!event.source) {
      return;
    }
    if (toolOrigin && event.origin === toolOrigin) {
      var direct = parse(event.data);
      if (direct) {
        handle(event.origin, direct, function (payload) {
          event.source.postMessage(payload, event.origin);
        });
      }
    } else if (forwarderOrigin && event.origin === forwarderOrigin && event.data && event.data.kp_forwarded_from) {
      // The forwarding frame checked the sender; only the tool's own origin has storage here.
      if (event.data.kp_forwarded_from !== toolOrigin) {
        return;
      }
      var forwarded = parse(event.data.message);
      if (forwarded) {
        handle(toolOrigin, forwarded, function (payload) {
          event.source.postMessage({ kp_forwarded_reply: payload }, event.origin);
        });
      }
    }
  });
})();
