// The qualification test page: a countdown that submits the answers when it reaches 0.
// The server enforces the deadline on its own; this only saves the worker from typing into the void.
(function () {
  "use strict";
  var timer = document.getElementById("timer");
  var form = document.getElementById("test-form");
  if (!timer || !form) return;
  var deadline = Date.now() + 1000 * parseInt(timer.dataset.secondsLeft || "0", 10);
  var submitted = false;
  form.addEventListener("submit", function () { submitted = true; });
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function tick() {
    var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    timer.textContent = Math.floor(left / 60) + ":" + pad(left % 60) + " left";
    timer.classList.toggle("low", left <= 30);
    if (left === 0) {
      if (!submitted) { submitted = true; form.submit(); }
      return;
    }
    window.setTimeout(tick, 500);
  }
  tick();
})();
