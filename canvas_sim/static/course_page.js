// The simulator's course page, without inline script (its CSP is script-src 'self'):
//  - the language choice goes into every start form's hidden `locale` field (without script the language form
//    reloads the page with ?locale=, which the server writes into those fields);
//  - links the tool places by deep linking appear under "Lenker i emnet" as soon as the answer page in the tool's
//    frame says so (links_placed.js), as Canvas adds them to the course;
//  - on a narrow screen, where the navigation stands above the tool, a launch scrolls the tool's frame into view.
(function () {
  "use strict";

  var select = document.querySelector("[data-sim-locale-select]");

  function syncLocale() {
    if (!select) {
      return;
    }
    var fields = document.querySelectorAll("input[data-sim-locale]");
    for (var i = 0; i < fields.length; i++) {
      fields[i].value = select.value;
    }
  }

  if (select) {
    select.addEventListener("change", function () {
      syncLocale();
      // A reload (or a copied address) keeps the choice.
      var url = new URL(window.location.href);
      url.searchParams.set("locale", select.value);
      window.history.replaceState(null, "", url.toString());
    });
    // The browser may restore the select's value (back/forward, reload) but not the hidden fields.
    window.addEventListener("pageshow", syncLocale);
    syncLocale();
  }

  var status = document.getElementById("sim-links-status");

  function refreshLinks() {
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (resp) {
        return resp.ok ? resp.text() : Promise.reject(new Error(String(resp.status)));
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("sim-links-list");
        var current = document.getElementById("sim-links-list");
        if (!fresh || !current) {
          return;
        }
        current.replaceWith(document.importNode(fresh, true));
        syncLocale();
        if (status) {
          var count = document.querySelectorAll("#sim-links-list li").length;
          status.textContent = "Lenker i emnet er oppdatert: " + count + (count === 1 ? " lenke." : " lenker.");
        }
      })
      .catch(function () {
        if (status) {
          status.textContent = "Lenkene i emnet kunne ikke hentes. Last siden på nytt for å se dem.";
        }
      });
  }

  window.addEventListener("message", function (event) {
    if (event.origin !== window.location.origin || !event.data || event.data.subject !== "canvas_sim.links_placed") {
      return;
    }
    refreshLinks();
  });

  var frame = document.getElementById("tool_frame");
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!frame || !form || form.getAttribute("target") !== "tool_frame") {
      return;
    }
    // Side by side the frame is in view already; stacked it starts below the navigation.
    if (frame.getBoundingClientRect().top > window.innerHeight / 2) {
      frame.scrollIntoView({ block: "start" });
    }
  });
})();
