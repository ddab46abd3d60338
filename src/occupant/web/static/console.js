// Occupant console: small progressive enhancements. Everything works without this file.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // Links with data-dialog="id" open that <dialog> as a modal instead of the confirmation page.
  document.addEventListener("click", function (event) {
    var opener = event.target.closest("[data-dialog]");
    if (!opener) return;
    var dialog = document.getElementById(opener.getAttribute("data-dialog"));
    if (!dialog || typeof dialog.showModal !== "function") return;
    event.preventDefault();
    dialog.returnFocusTo = opener;
    dialog.showModal();
  });

  // Focus goes back to what opened a dialog when it closes (Cancel, Escape).
  document.addEventListener("close", function (event) {
    var dialog = event.target;
    if (dialog.tagName === "DIALOG" && dialog.returnFocusTo && document.contains(dialog.returnFocusTo)) {
      dialog.returnFocusTo.focus();
    }
  }, true);

  // The chosen user is marked in the list at once (the details follow from the server).
  document.addEventListener("click", function (event) {
    var link = event.target.closest("[data-select]");
    if (!link) return;
    var list = link.closest("ul");
    if (!list) return;
    list.querySelectorAll("[aria-current]").forEach(function (el) { el.removeAttribute("aria-current"); });
    link.setAttribute("aria-current", "true");
  });

  // After htmx puts new content in, move focus where the content asks (an error summary, a form's first field).
  function autofocus(root) {
    var target = root.querySelector && root.querySelector("[data-autofocus]");
    if (target) target.focus({ preventScroll: false });
  }
  document.addEventListener("htmx:afterSettle", function (event) {
    var elt = event.detail && event.detail.elt;
    if (elt && elt.id !== "flash" && elt.id !== "user-results" && elt.id !== "occupier-results") autofocus(elt);
  });
  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.querySelector(".error-summary, .key-created, .flash.error[data-autofocus]");
    if (summary) summary.focus();
  });

  // A secret shown once is selected when focused, ready to copy.
  document.addEventListener("focusin", function (event) {
    if (event.target.matches && event.target.matches("[data-select-on-focus]")) event.target.select();
  });
})();
