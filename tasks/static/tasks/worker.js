// The labeling page: keyboard shortcuts, the lease timer, and submit/skip without a page load.
// Plain JavaScript, no dependencies. Without JavaScript the form posts and the server redirects.
(function () {
  "use strict";
  var form = document.getElementById("task-form");
  if (!form) { return; }
  var returnForm = document.getElementById("return-form");
  var itemsBox = document.getElementById("task-items");
  var errorBox = document.getElementById("task-error");
  var countBox = document.getElementById("task-count");
  var timer = document.getElementById("timer");
  var labels = JSON.parse(document.getElementById("job-labels").textContent);
  var multilabel = form.dataset.multilabel === "1";
  var isImage = form.dataset.image === "1";
  var workList = form.dataset.workList;
  var items = [];
  var active = 0;
  var busy = false;
  var done = 0;
  var deadline = 0;

  function collectItems() {
    items = Array.prototype.slice.call(itemsBox.querySelectorAll("fieldset.item"));
    activate(0);
  }

  // The highlighted item is the one the digit keys answer. A click in an item or keyboard focus on one of its
  // labels (Tab, Shift+Tab) highlights it; Tab itself is left to the browser, so it reaches every control.
  function activate(index, takeFocus) {
    if (!items.length) { return; }
    active = Math.max(0, Math.min(items.length - 1, index));
    items.forEach(function (el, i) { el.classList.toggle("active", i === active); });
    if (takeFocus) {
      var choice = items[active].querySelector("input:checked") || items[active].querySelector("input");
      if (choice) { choice.focus({ preventScroll: true }); }
    }
    items[active].scrollIntoView({ block: "nearest" });
  }

  function itemOf(node) {
    var fieldset = node && node.closest ? node.closest("fieldset.item") : null;
    return fieldset ? items.indexOf(fieldset) : -1;
  }
  itemsBox.addEventListener("click", function (event) {
    var i = itemOf(event.target);
    if (i >= 0 && i !== active) { activate(i); }
  });
  itemsBox.addEventListener("focusin", function (event) {
    var i = itemOf(event.target);
    if (i >= 0 && i !== active) { activate(i); }
  });

  function answered(fieldset) {
    return multilabel || fieldset.querySelector("input:checked") !== null;
  }

  function showError(message, link) {
    window.CrowdOpsReplies.show(errorBox, message, link);
  }

  // Build one item exactly like the server's template does (textContent only: no HTML injection; the text's
  // line breaks show through .item-text's white-space: pre-line, as in the server-rendered page).
  function renderItem(item, index, count) {
    var fieldset = document.createElement("fieldset");
    fieldset.className = "card item";
    fieldset.dataset.item = item.id;
    var legend = document.createElement("legend");
    legend.textContent = "Item " + (index + 1) + " of " + count;
    fieldset.appendChild(legend);
    if (isImage) {
      var img = document.createElement("img");
      img.className = "item-image";
      img.alt = "Image to label";
      img.src = item.image_url;
      fieldset.appendChild(img);
    } else {
      var quote = document.createElement("blockquote");
      quote.className = "item-text";
      quote.textContent = String(item.text).replace(/\r\n?/g, "\n");  // shown with white-space: pre-line
      fieldset.appendChild(quote);
    }
    var group = document.createElement("div");
    group.className = "labels";
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", "Labels");
    labels.forEach(function (label, i) {
      var wrap = document.createElement("label");
      wrap.className = "label-btn";
      var input = document.createElement("input");
      input.type = multilabel ? "checkbox" : "radio";
      input.name = "answer-" + item.id;
      input.value = label;
      if (!multilabel) { input.required = true; }
      var suggested = item.prelabel !== undefined &&
        (multilabel ? [].concat(item.prelabel).indexOf(label) >= 0 : item.prelabel === label);
      if (suggested) { input.checked = true; input.dataset.prelabel = "1"; }
      wrap.appendChild(input);
      if (i < 9) {
        var kbd = document.createElement("kbd");
        kbd.textContent = String(i + 1);
        wrap.appendChild(kbd);
      }
      wrap.appendChild(document.createTextNode(" " + label));
      if (suggested) {
        var tag = document.createElement("span");
        tag.className = "prelabel";
        tag.textContent = "suggested";
        wrap.appendChild(document.createTextNode(" "));
        wrap.appendChild(tag);
      }
      group.appendChild(wrap);
    });
    fieldset.appendChild(group);
    return fieldset;
  }

  function showTask(task) {
    form.action = task.submit_url;
    returnForm.action = task.return_url;
    itemsBox.textContent = "";
    task.items.forEach(function (item, i) { itemsBox.appendChild(renderItem(item, i, task.items.length)); });
    collectItems();
    startTimer(task.seconds_left);
    window.history.replaceState(null, "", task.url);
    countBox.textContent = done ? done + " submitted in this session." : "";
    window.scrollTo(0, 0);
  }

  function post(target, body) {
    if (busy) { return; }
    busy = true;
    showError("");
    fetch(target.action, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-Requested-With": "fetch" }
    }).then(window.CrowdOpsReplies.read).then(function (result) {
      busy = false;
      var data = result.data;
      if (!result.ok) {
        showError(data.error || "The server refused this submission.", data.link);
        // the job list shows the same sentence (the server flashed it) once the page has moved on
        if (data.redirect) { window.location.assign(data.redirect); }
        return;
      }
      if (target === form) { done += 1; }
      var go = function () {
        if (data.next) { showTask(data.next); } else { window.location.assign(data.redirect || workList); }
      };
      if (data.feedback) { showFeedback(data.feedback, go); } else { go(); }
    }).catch(function () {
      busy = false;
      showError("Could not reach the server. Check your connection and press Enter to try again.");
    });
  }

  // Training mode: a missed gold question shows the right answer and the instructions before moving on.
  function showFeedback(feedback, then) {
    var several = items.length > 1;
    feedback.missed.forEach(function (m) {
      var missed = several && m.item ? items[m.item - 1] : null;
      if (missed) { missed.classList.add("missed"); }
    });
    var shown = window.CrowdOpsReplies.feedbackBox(
      feedback,
      function (m) { return several && m.item ? "Item " + m.item + ": you" : "You"; },
      function () { busy = false; then(); }
    );
    busy = true;  // keys wait until the worker has read it
    itemsBox.parentNode.insertBefore(shown.box, itemsBox);
    shown.button.focus();
  }

  form.addEventListener("submit", function (event) {
    if (!window.fetch) { return; }  // plain form post
    event.preventDefault();
    post(form, new FormData(form));
  });
  returnForm.addEventListener("submit", function (event) {
    if (!window.fetch) { return; }
    event.preventDefault();
    post(returnForm, new FormData(returnForm));
  });

  // Where a key belongs to the control that has focus, the browser does its default: Enter or Space on a
  // button (Skip, Continue), a link or the Instructions toggle; anything typed into a text field or menu.
  function typing(el) {
    if (!el || !el.tagName) { return false; }
    if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") { return true; }
    return el.tagName === "INPUT" && ["checkbox", "radio", "button", "submit", "reset", "image", "file", "range", "color", "hidden"].indexOf(el.type) < 0;
  }
  function labelChoice(el) {
    return el && el.tagName === "INPUT" && (el.type === "radio" || el.type === "checkbox") && itemOf(el) >= 0;
  }

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || event.defaultPrevented) { return; }
    var target = event.target;
    if (typing(target)) { return; }
    if (event.key >= "1" && event.key <= "9") {
      var inputs = items[active] ? items[active].querySelectorAll("input") : [];
      var input = inputs[parseInt(event.key, 10) - 1];
      if (!input) { return; }
      event.preventDefault();
      if (multilabel) { input.checked = !input.checked; } else { input.checked = true; }
      // keyboard focus on a label follows the highlight, so Space and the arrows act on the item it shows
      if (!multilabel && active < items.length - 1) { activate(active + 1, labelChoice(target)); }
    } else if (event.key === "Enter") {
      // Enter submits from the page itself or a label choice; on a button, link or toggle it does what they do
      var onPage = target === document.body || target === document.documentElement || !target;
      if (!onPage && !labelChoice(target)) { return; }
      event.preventDefault();
      var missing = items.findIndex(function (el) { return !answered(el); });
      if (missing >= 0) { activate(missing, labelChoice(target)); showError("Pick a label for every item first."); return; }
      if (form.requestSubmit) { form.requestSubmit(); } else { form.dispatchEvent(new Event("submit", { cancelable: true })); }
    }
  });

  var ticking = null;
  function startTimer(secondsLeft) {
    if (!timer) { return; }
    deadline = Date.now() + secondsLeft * 1000;
    if (ticking) { window.clearTimeout(ticking); }
    var tick = function () {
      var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      var m = Math.floor(left / 60), s = left % 60;
      timer.textContent = left > 0 ? "Time left " + m + ":" + (s < 10 ? "0" : "") + s : "Time is up: this task went back to the pool";
      timer.classList.toggle("low", left < 60);
      if (left > 0) { ticking = window.setTimeout(tick, 1000); }
    };
    tick();
  }

  collectItems();
  startTimer(parseInt(timer ? timer.dataset.secondsLeft : "0", 10));
})();
