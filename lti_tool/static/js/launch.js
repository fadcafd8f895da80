// The launch token never sits in an address (people copy addresses into chats; proxies log them). A page that
// knows the token (data-launch-token) keeps it in its session history entry (history.state, which a reload keeps
// and no other document or tab can read) and in this frame's sessionStorage where the browser allows a
// cross-site frame one, and shows its own address without it; moving between pages posts the token; a reload of
// an address (a GET without a token) gets a small page that posts the kept token back to the same address. A new
// tab has neither: it asks the person to open the tool again from Canvas.
(function () {
  "use strict";
  var KEY = "kurspakke.launch-token";
  var body = document.body;

  function remember(token) {
    // Blocked in a cross-site frame when the browser blocks third-party storage; history.state still holds it.
    try { window.sessionStorage.setItem(KEY, token); } catch (e) { /* nothing else to do */ }
  }

  function recall() {
    var state = window.history && window.history.state;
    if (state && typeof state[KEY] === "string") { return state[KEY]; }
    try { return window.sessionStorage.getItem(KEY); } catch (e) { return null; }
  }

  function post(url, token) {
    var form = document.createElement("form");
    form.method = "post";
    form.action = url;
    form.hidden = true;
    var field = document.createElement("input");
    field.type = "hidden";
    field.name = "lt";
    field.value = token;
    form.appendChild(field);
    body.appendChild(form);
    form.submit();
  }

  var token = body.getAttribute("data-launch-token");
  if (token) { remember(token); }

  if (body.hasAttribute("data-resume")) {
    // A page that knows the token and where to go (the language switcher's answer) posts it there; a reload's
    // page posts the kept token back to its own address.
    var stored = token || recall();
    if (stored) {
      post(body.getAttribute("data-resume-to") || window.location.pathname, stored);
    } else {
      document.getElementById("resume-status").hidden = true;
      document.getElementById("resume-failed").hidden = false;
    }
    return;
  }

  // The page is the answer to a POST; give it its GET address (without the token) so a reload loads it again
  // instead of re-posting.
  var url = body.getAttribute("data-canonical-url");
  if (url && window.history && window.history.replaceState) {
    var state = {};
    if (token) { state[KEY] = token; }
    window.history.replaceState(state, "", url);
  }
  // The language switcher comes back to this page's own address (an answer to a form's POST may stand at the
  // form's action, which a GET cannot open).
  if (url && document.querySelectorAll) {
    var nexts = document.querySelectorAll("form[data-locale-switch] input[name=next]");
    for (var i = 0; i < nexts.length; i++) { nexts[i].value = url; }
  }

  // Links between the tool's pages carry the token in a POST, not in their address.
  document.addEventListener("click", function (event) {
    var link = event.target && event.target.closest ? event.target.closest("a[data-app-link]") : null;
    if (!link || event.defaultPrevented || event.button !== 0) { return; }
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) { return; }
    var current = token || recall();
    if (!current) { return; }
    event.preventDefault();
    post(link.getAttribute("href"), current);
  });

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
