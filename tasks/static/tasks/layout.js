// The page around an MTurk layout: the sandboxed frame posts its form fields here, we send them with our
// CSRF token. Messages from any other window are ignored; the server validates what arrives.
// The fields go by fetch, asking for JSON (as the labeling page does): a refusal is shown under the frame,
// which stays as it was, so nothing the worker typed or picked is lost and they can fix it and submit again.
// Without fetch the form posts itself and the server redirects.
(function () {
  "use strict";
  var frame = document.getElementById("task-frame");
  var form = document.getElementById("layout-form");
  var input = document.getElementById("layout-fields");
  var errorBox = document.getElementById("task-error");
  var timer = document.getElementById("timer");
  if (!frame || !form || !input) { return; }
  var busy = false;

  function showError(message, link) {  // only with fetch, so replies.js is there
    if (!errorBox) { return; }
    window.CrowdOpsReplies.show(errorBox, message, link);
    if (message) { errorBox.scrollIntoView({ block: "nearest" }); }
  }

  // Training mode: a missed gold question shows the right answer (and opens the instructions) before moving on.
  function showFeedback(feedback, then) {
    var shown = window.CrowdOpsReplies.feedbackBox(feedback, function () { return "You"; }, then);
    frame.parentNode.insertBefore(shown.box, frame);
    shown.button.focus();
  }

  function send() {
    busy = true;
    showError("");
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-Requested-With": "fetch" }
    }).then(window.CrowdOpsReplies.read).then(function (result) {
      var data = result.data;
      if (!result.ok) {
        showError(data.error || "The server refused this submission.", data.link);
        // the job list shows the same sentence (the server flashed it) once the page has moved on
        if (data.redirect) { window.location.assign(data.redirect); } else { busy = false; }
        return;
      }
      var go = function () { window.location.assign(data.next ? data.next.url : (data.redirect || form.dataset.workList)); };
      if (data.feedback) { showFeedback(data.feedback, go); } else { go(); }
    }).catch(function () {
      busy = false;
      showError("Could not reach the server. Check your connection and submit again.");
    });
  }

  window.addEventListener("message", function (event) {
    var data = event.data;
    if (busy || event.source !== frame.contentWindow) { return; }
    if (!data || data.type !== "crowdops-answer" || !Array.isArray(data.fields)) { return; }
    input.value = JSON.stringify(data.fields);
    if (!window.fetch || !window.CrowdOpsReplies) { busy = true; form.submit(); return; }  // plain form post
    send();
  });
  // Back to this page from the next one (the back/forward cache keeps the script's state): it may post again.
  window.addEventListener("pageshow", function (event) { if (event.persisted) { busy = false; } });

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
