// Run Studio, definitions editor: say at once (with line and column) when the text is not JSON,
// and bring the server's answer into view. The server checks everything again.
(function () {
  "use strict";

  // "line L, column C" of a character offset in text.
  function where(text, offset) {
    var before = text.slice(0, offset).split("\n");
    return "line " + before.length + ", column " + (before[before.length - 1].length + 1);
  }

  // The offset where JSON text first goes wrong (browsers' messages do not always say):
  // a small recursive-descent reader, used only after JSON.parse has refused the text.
  function errorOffset(text) {
    var i = 0;
    function fail() { throw i; }
    function ws() { while (i < text.length && " \t\n\r".indexOf(text[i]) >= 0) { i++; } }
    function literal(word) { if (text.slice(i, i + word.length) !== word) { fail(); } i += word.length; }
    function string() {
      i++;
      while (i < text.length && text[i] !== "\"") {
        if (text.charCodeAt(i) < 32) { fail(); }
        if (text[i] === "\\") {
          i++;
          if (text[i] === "u") { if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) { fail(); } i += 4; }
          else if ("\"\\/bfnrt".indexOf(text[i]) < 0 || i >= text.length) { fail(); }
        }
        i++;
      }
      if (i >= text.length) { fail(); }
      i++;
    }
    function number() {
      var m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
      if (!m || !m[0]) { fail(); }
      i += m[0].length;
    }
    function value() {
      ws();
      var c = text[i];
      if (c === "{") {
        i++; ws();
        if (text[i] === "}") { i++; return; }
        for (;;) {
          ws(); if (text[i] !== "\"") { fail(); } string(); ws();
          if (text[i] !== ":") { fail(); } i++; value(); ws();
          if (text[i] === ",") { i++; continue; }
          if (text[i] === "}") { i++; return; }
          fail();
        }
      } else if (c === "[") {
        i++; ws();
        if (text[i] === "]") { i++; return; }
        for (;;) {
          value(); ws();
          if (text[i] === ",") { i++; continue; }
          if (text[i] === "]") { i++; return; }
          fail();
        }
      } else if (c === "\"") { string(); }
      else if (c === "t") { literal("true"); }
      else if (c === "f") { literal("false"); }
      else if (c === "n") { literal("null"); }
      else { number(); }
    }
    try { value(); ws(); if (i < text.length) { fail(); } } catch (at) { return typeof at === "number" ? at : null; }
    return null;
  }

  function check(area, out) {
    var text = area.value;
    if (!text.trim()) {
      out.textContent = "Write one definition (a JSON object) or a list of them.";
      area.setAttribute("aria-invalid", "true");
      return;
    }
    try {
      var value = JSON.parse(text);
      var ok = (value !== null && typeof value === "object");
      out.textContent = ok ? "" : "Write one definition (a JSON object) or a list of them.";
      area.setAttribute("aria-invalid", ok ? "false" : "true");
    } catch (err) {
      var message = String(err.message || err);
      var at = errorOffset(text);
      out.textContent = "Not JSON" + (at === null ? "" : " at " + where(text, at)) + ": " + message.replace(/\s*\(line \d+ column \d+\)/, "");
      area.setAttribute("aria-invalid", "true");
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var area = document.querySelector("textarea[data-definitions-editor]");
    var out = document.getElementById("d-json");
    if (area && out) {
      var timer = null;
      area.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(function () { check(area, out); }, 250);
      });
    }
    var result = document.getElementById("result");
    if (result) {
      result.scrollIntoView({ block: "start" });
      result.focus({ preventScroll: true });
    } else if (area && location.hash === "#editor" && /[?&]from=/.test(location.search)) {
      area.focus({ preventScroll: true });
    }
  });
})();
