// The run page: keep its actions in step with the live status, and open a step named in the URL.
(function () {
  "use strict";

  // When the live region says the run ended, show only the actions its new status allows.
  function syncActions() {
    var badge = document.getElementById("run-status");
    if (!badge) { return; }
    var status = badge.getAttribute("data-status");
    document.querySelectorAll("[data-show-for]").forEach(function (el) {
      var allowed = el.getAttribute("data-show-for").split(/\s+/);
      el.hidden = allowed.indexOf(status) < 0;
    });
  }

  // A link to a step (#step-…) opens its details and brings it into view.
  function openStep() {
    var id = window.location.hash.slice(1);
    if (!id || id.indexOf("step-") !== 0) { return; }
    var step = document.getElementById(id);
    if (!step) { return; }
    var more = step.querySelector(":scope > details");
    if (more) { more.open = true; }
    step.scrollIntoView({ block: "center" });
    step.classList.add("flash");
  }

  document.addEventListener("studio:run-ended", syncActions);
  window.addEventListener("hashchange", openStep);
  document.addEventListener("DOMContentLoaded", openStep);
})();
