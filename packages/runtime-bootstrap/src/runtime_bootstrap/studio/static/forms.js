// Forms built from a JSON Schema: "Add item" / "Remove" for arrays, focus on the error summary.
// Without JavaScript the server shows a few empty slots per array instead (see _form.html).
(function () {
  "use strict";

  function directItems(array) {
    var items = array.querySelector(":scope > [data-items]");
    return items ? Array.prototype.filter.call(items.children, function (el) { return el.hasAttribute("data-item"); }) : [];
  }

  // Item numbers shown in labels follow the items' order after an add or a remove.
  function renumber(array) {
    directItems(array).forEach(function (item, n) {
      item.querySelectorAll("[data-item-number]").forEach(function (el) {
        if (el.closest("[data-array]") === array) { el.textContent = String(n + 1); }
      });
    });
  }

  function add(array) {
    var template = array.querySelector(":scope > template[data-item-template]");
    var items = array.querySelector(":scope > [data-items]");
    if (!template || !items) { return; }
    var index = parseInt(array.getAttribute("data-next"), 10) || 0;
    var html = template.innerHTML
      .split(array.getAttribute("data-placeholder")).join(String(index))
      .split(array.getAttribute("data-number-placeholder")).join(String(directItems(array).length + 1));
    array.setAttribute("data-next", String(index + 1));
    items.insertAdjacentHTML("beforeend", html);
    renumber(array);
    var added = directItems(array).pop();
    var first = added && added.querySelector("input, select, textarea");
    if (first) { first.focus(); }
  }

  function remove(button) {
    var item = button.closest("[data-item]");
    var array = item && item.closest("[data-array]");
    if (!item || !array) { return; }
    item.remove();
    renumber(array);
    var again = array.querySelector(":scope > [data-add]");
    if (again) { again.focus(); }
  }

  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    var adder = target && target.closest("[data-add]");
    if (adder) { event.preventDefault(); add(adder.closest("[data-array]")); return; }
    var remover = target && target.closest("[data-remove]");
    if (remover) { event.preventDefault(); remove(remover); }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.getElementById("form-errors");
    if (summary) { summary.focus(); }
  });
})();
