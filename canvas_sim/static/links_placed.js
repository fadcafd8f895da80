// On the deep-linking answer page inside the course page's tool frame: the course page has new links to show.
// Only a parent on this page's own origin (the simulator's course page) receives the message.
(function () {
  "use strict";
  if (window.parent !== window) {
    window.parent.postMessage({ subject: "canvas_sim.links_placed" }, window.location.origin);
  }
})();
