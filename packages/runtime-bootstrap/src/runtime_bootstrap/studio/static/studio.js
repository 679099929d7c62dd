// Run Studio's progressive enhancements. Every page reads fine without them.
(function () {
  "use strict";

  // Instants: the server writes UTC; show the viewer's local time, keep UTC on hover.
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when.getTime())) {
        el.textContent = when.toLocaleString(undefined, {
          year: "numeric", month: "short", day: "numeric",
          hour: "2-digit", minute: "2-digit", second: "2-digit"
        });
      }
    });
  }

  // Filters in local time: tell the server the browser's UTC offset (minutes).
  function timeZones(root) {
    root.querySelectorAll("[data-tz-offset]").forEach(function (el) {
      el.value = String(-new Date().getTimezoneOffset());
    });
  }

  // JSON editors: say at once when the text is not JSON (or not an object), and, when the
  // editor names a check URL, what the server's schema check says, before anything is sent.
  function jsonEditors(root) {
    root.querySelectorAll("textarea[data-json-editor]").forEach(function (area) {
      var form = area.form;
      var out = form && form.querySelector("[data-json-error]");
      var timer = null;
      function show(messages) {
        if (!out) { return; }
        out.textContent = "";
        messages.forEach(function (m) {
          var line = document.createElement("div");
          line.textContent = m;
          out.appendChild(line);
        });
        area.setAttribute("aria-invalid", messages.length ? "true" : "false");
        var submit = form.querySelector("button[type=submit]");
        if (submit) { submit.disabled = messages.length > 0; }
      }
      function check() {
        var value;
        try {
          value = JSON.parse(area.value || "{}");
        } catch (err) {
          show(["Not JSON: " + err.message]);
          return;
        }
        if (area.hasAttribute("data-json-object") && (value === null || typeof value !== "object" || Array.isArray(value))) {
          show(["The payload must be a JSON object."]);
          return;
        }
        var url = area.getAttribute("data-check-url");
        if (!url) { show([]); return; }
        var body = new FormData();
        body.append("csrf", (form.querySelector("input[name=csrf]") || {}).value || "");
        body.append("payload", area.value);
        fetch(url, { method: "POST", body: body, credentials: "same-origin", headers: { "Accept": "application/json" } })
          .then(function (r) { return r.ok ? r.json() : { errors: [] }; })
          .then(function (answer) {
            show((answer.errors || []).map(function (e) { return (e.path ? e.path + ": " : "") + e.message; }));
          })
          .catch(function () { show([]); });
      }
      area.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(check, 250);
      });
      check();
    });
  }

  // Confirmation for forms that change something irreversible.
  function confirms(root) {
    root.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
  }

  function enhance(root) {
    localTimes(root);
    timeZones(root);
    jsonEditors(root);
    confirms(root);
  }

  // Live regions: while a run is active its page re-reads itself every two seconds and swaps
  // the region in place (no full reload; open <details> stay open).
  function live() {
    var region = document.querySelector("[data-live-url]");
    if (!region || region.getAttribute("data-live-active") !== "true") { return; }
    var url = region.getAttribute("data-live-url");
    var timer = setInterval(function () {
      fetch(url, { credentials: "same-origin", headers: { "X-Studio-Fragment": "1" } })
        .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.text(); })
        .then(function (html) {
          var open = Array.prototype.map.call(region.querySelectorAll("details[open][id]"), function (d) { return d.id; });
          var next = document.createElement("div");
          next.innerHTML = html;
          var fresh = next.querySelector("[data-live-url]") || next;
          region.innerHTML = fresh.innerHTML;
          open.forEach(function (id) { var d = document.getElementById(id); if (d) { d.open = true; } });
          enhance(region);
          if (fresh.getAttribute && fresh.getAttribute("data-live-active") !== "true") {
            clearInterval(timer);
            region.setAttribute("data-live-active", "false");
            document.dispatchEvent(new CustomEvent("studio:run-ended"));
          }
        })
        .catch(function () { /* keep the last view; try again next tick */ });
    }, 2000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    enhance(document);
    live();
  });
})();
