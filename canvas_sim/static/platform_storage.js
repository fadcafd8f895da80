// LTI Platform Storage responder (1EdTech "LTI Client Side postMessages").
//
// The tool runs in the `tool_frame` iframe and, because third-party cookies
// may be blocked, stores its OIDC state/nonce with the platform through
// postMessage. Config comes from data- attributes so no inline script is needed.
(function () {
  "use strict";

  var script = document.currentScript;
  var toolOrigin = script ? script.getAttribute("data-tool-origin") : "";
  // Values are kept per sender origin, as the spec requires, and only in memory.
  var store = {};

  function respond(event, payload) {
    event.source.postMessage(payload, event.origin);
  }

  function fail(event, msg, code, text) {
    respond(event, {
      subject: msg.subject + ".response",
      message_id: msg.message_id,
      error: { code: code, message: text },
    });
  }

  function originStore(origin) {
    if (!Object.prototype.hasOwnProperty.call(store, origin)) {
      store[origin] = Object.create(null);
    }
    return store[origin];
  }

  window.addEventListener("message", function (event) {
    if (!toolOrigin || event.origin !== toolOrigin || !event.source) {
      return;
    }
    var msg = event.data;
    if (typeof msg === "string") {
      try {
        msg = JSON.parse(msg);
      } catch (e) {
        return;
      }
    }
    if (!msg || typeof msg !== "object" || typeof msg.subject !== "string") {
      return;
    }
    var subject = msg.subject;
    if (subject.indexOf("lti.") !== 0 || /\.response$/.test(subject)) {
      return;
    }
    var data = originStore(event.origin);

    if (subject === "lti.capabilities") {
      respond(event, {
        subject: "lti.capabilities.response",
        message_id: msg.message_id,
        supported_messages: [{ subject: "lti.put_data" }, { subject: "lti.get_data" }],
      });
    } else if (subject === "lti.put_data") {
      if (typeof msg.key !== "string" || msg.key === "") {
        fail(event, msg, "bad_request", "Nøkkel (key) mangler");
      } else if (msg.value === undefined || msg.value === null) {
        fail(event, msg, "bad_request", "Verdi (value) mangler");
      } else {
        data[msg.key] = msg.value;
        respond(event, {
          subject: "lti.put_data.response",
          message_id: msg.message_id,
          key: msg.key,
          value: msg.value,
        });
      }
    } else if (subject === "lti.get_data") {
      if (typeof msg.key !== "string" || msg.key === "") {
        fail(event, msg, "bad_request", "Nøkkel (key) mangler");
      } else if (!(msg.key in data)) {
        fail(event, msg, "bad_request", "Ingen verdi lagret for denne nøkkelen");
      } else {
        respond(event, {
          subject: "lti.get_data.response",
          message_id: msg.message_id,
          key: msg.key,
          value: data[msg.key],
        });
      }
    } else {
      fail(event, msg, "unsupported_subject", "Ukjent melding: " + subject);
    }
  });
})();
