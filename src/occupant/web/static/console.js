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

// Bulk pages (the "Edit or delete multiple users" dialog, job views). Everything also works without this.
(function () {
  "use strict";

  // A dialog fetched by htmx into a [data-dialog-slot] opens as a modal; focus returns to what asked for it.
  document.addEventListener("htmx:afterSwap", function (event) {
    var slot = event.detail && event.detail.target;
    if (!slot || !slot.hasAttribute || !slot.hasAttribute("data-dialog-slot")) return;
    var dialog = slot.querySelector("dialog");
    if (!dialog || dialog.open || typeof dialog.showModal !== "function") return;
    dialog.returnFocusTo = event.detail.requestConfig && event.detail.requestConfig.elt;
    // Closed, it goes (and with it any polling of a job's progress); the button fetches it afresh.
    dialog.addEventListener("close", function () { slot.innerHTML = ""; }, { once: true });
    dialog.showModal();
  });

  // Buttons that close the dialog they are in (Cancel, Close), and the server's "close-dialog" event.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-close-dialog]");
    if (!button) return;
    var dialog = button.closest("dialog");
    if (dialog && dialog.open) dialog.close();
  });
  document.addEventListener("close-dialog", function (event) {
    var dialog = event.target.closest && event.target.closest("dialog");
    if (dialog && dialog.open) dialog.close();
  });

  // "Select all users" ticks every listed row (and untick clears them): it stands for every user matching the
  // filters, which the summary says; unticking one row makes the selection the rows still ticked.
  function format(n) {
    return Number(n).toLocaleString(document.documentElement.lang || undefined);
  }
  function sync(form) {
    var all = form.querySelector("[data-select-all]");
    var rows = form.querySelectorAll("input[data-bulk-row]");
    var ticked = form.querySelectorAll("input[data-bulk-row]:checked").length;
    var summary = form.querySelector("[data-none]");
    var everyone = all && all.checked;
    var count = everyone ? parseInt(all.getAttribute("data-total"), 10) || rows.length : ticked;
    if (all) all.indeterminate = !everyone && ticked > 0;
    if (summary) {
      var text = everyone ? all.getAttribute("data-all-text")
        : ticked === 0 ? summary.getAttribute("data-none")
        : ticked === 1 ? summary.getAttribute("data-one")
        : summary.getAttribute("data-many").replace("{n}", format(ticked));
      if (summary.textContent !== text) summary.textContent = text;
    }
    form.querySelectorAll("[data-needs-selection]").forEach(function (button) { button.disabled = count === 0; });
  }
  document.addEventListener("change", function (event) {
    var target = event.target;
    var form = target.closest && target.closest("[data-bulk-select]");
    if (!form) return;
    if (target.matches("[data-select-all]")) {
      form.querySelectorAll("input[data-bulk-row]").forEach(function (box) { box.checked = target.checked; });
    } else if (target.matches("input[data-bulk-row]") && !target.checked) {
      var all = form.querySelector("[data-select-all]");
      if (all) all.checked = false;
    }
    sync(form);
  });
  function syncWithin(root) {
    var scope = root && root.querySelectorAll ? root : document;
    var forms = scope.matches && scope.matches("[data-bulk-select]") ? [scope] : scope.querySelectorAll("[data-bulk-select]");
    var owner = root && root.closest && root.closest("[data-bulk-select]");
    if (owner) forms = [owner];
    Array.prototype.forEach.call(forms, function (form) {
      var all = form.querySelector("[data-select-all]");
      if (all && all.checked) {  // rows loaded after "Select all users" are selected too
        form.querySelectorAll("input[data-bulk-row]").forEach(function (box) { box.checked = true; });
      }
      sync(form);
    });
  }
  document.addEventListener("htmx:afterSettle", function (event) { syncWithin(event.detail && event.detail.elt); });
  document.addEventListener("DOMContentLoaded", function () { syncWithin(document); });

  // A "more actions" menu closes when focus or a click goes elsewhere.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });
})();
