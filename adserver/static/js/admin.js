// The admin pages' one script (the pages' CSP allows no inline script): copy buttons, on a
// phone the menu scrolled to the current section, and a new creative's form showing only the
// fields of the kind chosen (without script, all of them show, each section saying its kind).
// A button with data-copy="ID" copies the text of the element with that id.
(function () {
  "use strict";
  function copied(button, ok) {
    var status = button.nextElementSibling;
    if (status && status.classList.contains("copy-status")) {
      status.textContent = ok ? "Copied" : "Select the text and copy it";
    }
  }
  function selectText(node) {
    var range = document.createRange();
    range.selectNodeContents(node);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  var current = document.querySelector(".mainnav [aria-current]");
  if (current && current.parentElement.scrollWidth > current.parentElement.clientWidth) {
    current.scrollIntoView({ block: "nearest", inline: "center" });
  }
  var kind = document.getElementById("f-kind");
  if (kind) {
    var showKind = function () {
      document.querySelectorAll(".kind-fields").forEach(function (group) {
        group.hidden = group.getAttribute("data-kinds").split(" ").indexOf(kind.value) < 0;
      });
    };
    kind.addEventListener("change", showKind);
    showKind();
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) return;
    var text = source.textContent;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { copied(button, true); },
        function () { selectText(source); copied(button, false); }
      );
    } else {
      selectText(source);
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      copied(button, ok);
    }
  });
})();
