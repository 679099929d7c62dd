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

  // Action popovers: one open at a time; Escape closes it and gives the focus back to its button.
  function popovers() {
    var all = document.querySelectorAll("details.action");
    all.forEach(function (d) {
      d.addEventListener("toggle", function () {
        if (!d.open) { return; }
        all.forEach(function (other) { if (other !== d) { other.open = false; } });
        var first = d.querySelector("input:not([type=hidden]), textarea, button");
        if (first) { first.focus(); }
      });
      d.addEventListener("keydown", function (event) {
        if (event.key === "Escape" && d.open) {
          d.open = false;
          d.querySelector("summary").focus();
        }
      });
    });
  }

  document.addEventListener("studio:run-ended", syncActions);
  document.addEventListener("DOMContentLoaded", popovers);
  window.addEventListener("hashchange", openStep);
  document.addEventListener("DOMContentLoaded", openStep);
})();
