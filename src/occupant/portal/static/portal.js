// Occupant portal: small progressive enhancements on top of console.js. Everything works without them.
(function () {
  "use strict";

  // A table row with data-href opens that page when clicked anywhere outside its links and buttons.
  document.addEventListener("click", function (event) {
    var row = event.target.closest("tr[data-href]");
    if (!row || event.target.closest("a, button, input, label, select, textarea, dialog")) return;
    if (window.getSelection && String(window.getSelection())) return; // selecting text, not clicking
    window.location.assign(row.getAttribute("data-href"));
  });

  // A form with data-require-valid keeps its [data-needs-valid] buttons disabled until its required
  // fields are filled and well-formed. The server still checks everything.
  function syncValidity(form) {
    var ok = form.checkValidity();
    form.querySelectorAll("[data-needs-valid]").forEach(function (button) {
      button.disabled = !ok;
      button.setAttribute("aria-describedby", ok ? "" : form.getAttribute("data-require-valid"));
    });
    var note = document.getElementById(form.getAttribute("data-require-valid"));
    if (note) note.hidden = ok;
  }
  function syncAll(root) {
    (root.querySelectorAll ? root : document).querySelectorAll("form[data-require-valid]").forEach(syncValidity);
  }
  document.addEventListener("input", function (event) {
    var form = event.target.form;
    if (form && form.hasAttribute("data-require-valid")) syncValidity(form);
  });
  document.addEventListener("change", function (event) {
    var form = event.target.form;
    if (form && form.hasAttribute("data-require-valid")) syncValidity(form);
  });

  // A checkbox with data-toggles="id" shows the fields of that id only while it is ticked.
  function syncToggle(box) {
    var target = document.getElementById(box.getAttribute("data-toggles"));
    if (target) target.hidden = !box.checked;
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("input[data-toggles]")) syncToggle(event.target);
  });

  // A confirmation fetched by htmx into #dialog-slot opens as a modal; focus returns to what asked for it.
  document.addEventListener("htmx:afterSwap", function (event) {
    var slot = event.detail && event.detail.target;
    if (!slot || slot.id !== "dialog-slot") return;
    var dialog = slot.querySelector("dialog");
    if (!dialog || typeof dialog.showModal !== "function") return;
    dialog.returnFocusTo = event.detail.requestConfig && event.detail.requestConfig.elt;
    dialog.addEventListener("close", function () { slot.innerHTML = ""; }, { once: true });
    dialog.showModal();
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("input[data-toggles]").forEach(syncToggle);
    syncAll(document);
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail && event.detail.elt) syncAll(event.detail.elt);
  });
})();
