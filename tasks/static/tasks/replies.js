// How the labeling pages read the server's answer to a fetch: JSON from our views, or something else when
// the session ended (the sign-in page, reached by a redirect) or the page's CSRF token went stale (403).
// Either way the worker gets a sentence and a link that works, not "could not reach the server".
(function () {
  "use strict";
  function read(response) {
    var type = response.headers.get("content-type") || "";
    if (type.indexOf("application/json") !== -1) {
      return response.json().then(function (data) {
        if (data && data.reload) { data.link = { href: window.location.href, text: "Reload the page" }; }
        return { ok: response.ok, data: data };
      });
    }
    var data;
    if (response.redirected) {
      data = {
        error: "You were signed out, so nothing was saved. Sign in again to go on with this task.",
        link: { href: response.url, text: "Sign in" }
      };
    } else if (response.status === 403) {
      data = {
        error: "This page is out of date, so nothing was saved. Reload it and try again.",
        link: { href: window.location.href, text: "Reload the page" }
      };
    } else {
      data = {
        error: "The server could not take this (error " + response.status + "), so nothing was saved. Reload the page and try again.",
        link: { href: window.location.href, text: "Reload the page" }
      };
    }
    return Promise.resolve({ ok: false, data: data });
  }

  // The error box: the sentence, and the link when there is one (textContent only: no HTML injection).
  function show(box, message, link) {
    box.textContent = message || "";
    if (message && link) {
      var a = document.createElement("a");
      a.href = link.href;
      a.textContent = link.text;
      box.appendChild(document.createTextNode(" "));
      box.appendChild(a);
    }
    box.hidden = !message;
  }

  // " answered pos, neg", or " chose no label" for an empty (multi-label) answer
  function said(answer) {
    var given = [].concat(answer).filter(function (v) { return v !== null && v !== undefined && v !== ""; });
    return given.length ? " answered " + given.join(", ") : " chose no label";
  }

  // Training mode: the box naming the right answer of each missed gold question, pointing at the instructions
  // (opened above: they are the job's Markdown, not repeated here), with a Continue button that calls
  // ``onContinue``. ``prefix(m)`` starts each line ("You", or "Item 2: you" on a page of several items).
  function feedbackBox(feedback, prefix, onContinue) {
    var box = document.createElement("section");
    box.className = "card feedback";
    box.setAttribute("role", "alert");
    var title = document.createElement("h2");
    title.textContent = "Not quite";
    box.appendChild(title);
    feedback.missed.forEach(function (m) {
      var p = document.createElement("p");
      p.textContent = prefix(m) + said(m.your_answer) + "; the correct answer is " + [].concat(m.correct).join(", ") + ".";
      box.appendChild(p);
    });
    var instructions = document.querySelector("details.instructions");
    if (instructions) {
      instructions.open = true;
      var hint = document.createElement("p");
      hint.textContent = "The instructions are open above; read them again before you go on.";
      box.appendChild(hint);
    }
    var next = document.createElement("button");
    next.className = "primary";
    next.type = "button";
    next.textContent = "Continue";
    next.addEventListener("click", function () { box.remove(); onContinue(); });
    box.appendChild(next);
    return { box: box, button: next };
  }

  window.CrowdOpsReplies = { read: read, show: show, feedbackBox: feedbackBox };
})();
