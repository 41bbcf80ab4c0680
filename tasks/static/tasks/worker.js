// Keyboard shortcuts and the lease timer for the labeling page. Plain JavaScript, no dependencies.
(function () {
  "use strict";
  var form = document.getElementById("task-form");
  if (!form) { return; }
  var multilabel = form.dataset.multilabel === "1";
  var items = Array.prototype.slice.call(form.querySelectorAll("fieldset.item"));
  var active = 0;

  function activate(index) {
    if (!items.length) { return; }
    active = Math.max(0, Math.min(items.length - 1, index));
    items.forEach(function (el, i) { el.classList.toggle("active", i === active); });
    items[active].scrollIntoView({ block: "nearest" });
  }
  items.forEach(function (el, i) {
    el.addEventListener("click", function () { activate(i); });
  });

  function answered(fieldset) {
    return multilabel || fieldset.querySelector("input:checked") !== null;
  }

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey) { return; }
    var target = event.target;
    if (target && (target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && target.type === "text"))) { return; }
    if (event.key >= "1" && event.key <= "9") {
      var inputs = items[active].querySelectorAll("input");
      var input = inputs[parseInt(event.key, 10) - 1];
      if (!input) { return; }
      event.preventDefault();
      if (multilabel) { input.checked = !input.checked; } else { input.checked = true; }
      if (!multilabel && active < items.length - 1) { activate(active + 1); }
    } else if (event.key === "Tab" && items.length > 1) {
      event.preventDefault();
      activate(active + (event.shiftKey ? -1 : 1));
    } else if (event.key === "Enter") {
      event.preventDefault();
      var missing = items.findIndex(function (el) { return !answered(el); });
      if (missing >= 0) { activate(missing); return; }
      if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
    }
  });

  var submitted = false;
  form.addEventListener("submit", function (event) {
    if (submitted) { event.preventDefault(); }  // no double submit
    submitted = true;
  });

  var timer = document.getElementById("timer");
  if (timer) {
    var deadline = Date.now() + parseInt(timer.dataset.secondsLeft, 10) * 1000;
    var tick = function () {
      var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      var m = Math.floor(left / 60), s = left % 60;
      timer.textContent = left > 0 ? "Time left " + m + ":" + (s < 10 ? "0" : "") + s : "Time is up: this task went back to the pool";
      timer.classList.toggle("low", left < 60);
      if (left > 0) { window.setTimeout(tick, 1000); }
    };
    tick();
  }
})();
