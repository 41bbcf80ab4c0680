// The qualification test page: a countdown that submits the answers when it reaches 0.
// The server enforces the deadline on its own; this only saves the worker from typing into the void.
(function () {
  "use strict";
  // Back (or Forward) to a copy of this page kept in memory: the attempt may be submitted or over by now, and
  // the copy's timer and form would run on regardless. Load it again: the server shows the result instead.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) { window.location.reload(); }
  });
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
