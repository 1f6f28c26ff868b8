// Tiny progressive enhancements; every page works without them.
(function () {
  "use strict";
  // A submit button with data-busy shows that text and stops double submits while waiting.
  document.addEventListener("submit", function (event) {
    var button = event.target.querySelector("button[data-busy]");
    if (!button) return;
    button.textContent = button.getAttribute("data-busy");
    setTimeout(function () { button.disabled = true; }, 0);
  });
  // Live count of pasted serials in the batch lookup box.
  var box = document.querySelector("textarea[data-count]");
  if (box) {
    var out = document.querySelector(box.getAttribute("data-count"));
    var update = function () {
      var n = box.value.split(/[\s,;，；、]+/).filter(Boolean).length;
      out.textContent = n ? out.getAttribute("data-template").replace("{n}", n) : "";
    };
    box.addEventListener("input", update);
    update();
  }
})();
