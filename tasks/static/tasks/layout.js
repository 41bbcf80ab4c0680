// The page around an MTurk layout: the sandboxed frame posts its form fields here, we send them with our
// CSRF token. Messages from any other window are ignored; the server validates what arrives.
(function () {
  "use strict";
  var frame = document.getElementById("task-frame");
  var form = document.getElementById("layout-form");
  var input = document.getElementById("layout-fields");
  var timer = document.getElementById("timer");
  if (!frame || !form || !input) { return; }
  var sent = false;
  window.addEventListener("message", function (event) {
    var data = event.data;
    if (sent || event.source !== frame.contentWindow) { return; }
    if (!data || data.type !== "crowdops-answer" || !Array.isArray(data.fields)) { return; }
    sent = true;
    input.value = JSON.stringify(data.fields);
    form.submit();
  });
  if (timer) {
    var deadline = Date.now() + 1000 * parseInt(timer.dataset.secondsLeft || "0", 10);
    var tick = function () {
      var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      timer.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0") + " left";
      if (left > 0) { window.setTimeout(tick, 1000); }
    };
    tick();
  }
})();
