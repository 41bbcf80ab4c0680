// The drawing page: boxes and polygons on a canvas, in the image's own pixel coordinates.
// Plain JavaScript, no dependencies. Each .shape-editor keeps its shapes in a hidden input
// (answer-<item>) as {"shapes": [...]}, which the server checks again on submit.
//
// Mouse, pen or finger (Pointer Events): drag on empty space draws a box (box jobs); click or tap adds a polygon
// vertex, click the first vertex (or Enter) closes it (polygon jobs). Drag a shape to move it, a box corner or
// polygon vertex to reshape it; Alt+click a vertex deletes it. Wheel zooms around the pointer; Space+drag or the
// middle button pans.
// Keys: 1-9 pick the class (of the selected shape too), Delete removes the selected shape, Ctrl+Z undoes,
// Escape drops an unfinished polygon, 0 fits the image, Enter submits. Enter and Space on a button, link or
// toggle do what they do there (Skip, follow, fold), and keys typed into the class menu stay there.
// Drawing with the keyboard alone (a crosshair moved by the arrows) is shapes_keyboard.js, which the editor's
// template loads: it takes the keys it uses on a focused canvas first, and this file skips a key it took
// (defaultPrevented). It works through window.CrowdShapes, set at the end of this file.
// The same editor runs on the MTurk ExternalQuestion page (form data-submit="post": a plain form post,
// fields place:<n>); its preview (data-readonly on the editor) only pans and zooms.
(function () {
  "use strict";
  var form = document.querySelector("form[data-shapes='1']");
  if (!form) { return; }
  var plainPost = form.dataset.submit === "post";
  var labels = JSON.parse(document.getElementById("job-labels").textContent);
  var errorBox = document.getElementById("task-error");
  var timer = document.getElementById("timer");
  var HANDLE = 7;  // screen pixels within which a corner or vertex is grabbed
  var TOUCH_HANDLE = 16;  // the same for a finger
  var COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324", "#469990"];
  var editors = [];

  function loaded(text) {
    var shapes;
    try { shapes = JSON.parse(text).shapes; } catch (e) { return []; }
    if (!Array.isArray(shapes)) { return []; }
    return shapes.filter(function (s) {
      return s && typeof s.label === "string" && (Array.isArray(s.box) ? s.box.length === 4 : Array.isArray(s.points));
    }).map(function (s) { return s.box ? { label: s.label, box: s.box.slice() } : { label: s.label, points: s.points.slice() }; });
  }

  function Editor(root) {
    var self = this;
    this.root = root;
    this.kind = root.dataset.kind;  // "image_boxes" or "image_polygons"
    this.readonly = root.dataset.readonly === "1";
    this.width = parseFloat(root.dataset.width);
    this.height = parseFloat(root.dataset.height);
    this.input = root.querySelector("input[type=hidden]");
    this.canvas = root.querySelector("canvas");
    this.ctx = this.canvas.getContext("2d");
    this.classSelect = root.querySelector("select.shape-class");
    this.shapes = loaded(this.input.value);  // a drawing sent back with the server's refusal stays on screen
    this.history = [];
    this.selected = -1;
    this.draft = null;       // a polygon being drawn: [[x, y], ...]
    this.drag = null;        // what the pointer is doing
    this.pointerId = null;   // the one pointer (mouse, pen or finger) that drags; others are ignored till it lifts
    this.view = { scale: 1, x: 0, y: 0 };
    this.spaceDown = false;
    this.image = new Image();
    this.image.onload = function () { self.draw(); };
    this.image.src = root.dataset.image;
    this.resize();
    this.fit();
    // Pointer Events, captured by the canvas: the drag goes on outside it and ends where the pointer lifts.
    this.canvas.tabIndex = 0;  // keys act on the drawing once it was touched or reached with Tab
    this.canvas.addEventListener("pointerdown", function (e) {
      if (self.pointerId !== null && self.drag) { return; }  // a second finger while one draws
      self.pointerId = e.pointerId;
      try { self.canvas.setPointerCapture(e.pointerId); } catch (err) { /* the pointer is already gone */ }
      self.canvas.classList.add("pointer-focus");  // no focus ring for a click or touch; Tab shows one
      self.canvas.focus({ preventScroll: true });
      self.down(e);
    });
    this.canvas.addEventListener("blur", function () { self.canvas.classList.remove("pointer-focus"); });
    this.canvas.addEventListener("pointermove", function (e) { if (e.pointerId === self.pointerId) { self.move(e); } });
    this.canvas.addEventListener("pointerup", function (e) { if (e.pointerId === self.pointerId) { self.pointerId = null; self.up(e); } });
    this.canvas.addEventListener("pointercancel", function (e) { if (e.pointerId === self.pointerId) { self.pointerId = null; self.cancel(); } });
    // A finger's drag on the drawing is the drawing's: consumed, the browser makes no scroll or fling of it. A
    // fling (a drag lifted while moving) would take the next tap, on Submit say, as "stop the fling" and drop it.
    this.canvas.addEventListener("touchmove", function (e) { e.preventDefault(); }, { passive: false });
    this.canvas.addEventListener("wheel", function (e) { self.wheel(e); }, { passive: false });
    this.canvas.addEventListener("contextmenu", function (e) { e.preventDefault(); });
    this.classSelect.addEventListener("change", function () { self.setClass(self.classSelect.value); });
    window.addEventListener("resize", function () { self.resize(); self.draw(); });
    this.sync();
  }

  Editor.prototype.resize = function () {
    var w = this.root.clientWidth || 800;
    this.canvas.width = w;
    this.canvas.height = Math.round(Math.min(w * this.height / this.width, window.innerHeight * 0.7));
  };
  Editor.prototype.fit = function () {
    var s = Math.min(this.canvas.width / this.width, this.canvas.height / this.height);
    this.view = { scale: s, x: (this.canvas.width - this.width * s) / 2, y: (this.canvas.height - this.height * s) / 2 };
    this.draw();
  };
  Editor.prototype.toImage = function (sx, sy) {
    return [(sx - this.view.x) / this.view.scale, (sy - this.view.y) / this.view.scale];
  };
  Editor.prototype.toScreen = function (ix, iy) {
    return [ix * this.view.scale + this.view.x, iy * this.view.scale + this.view.y];
  };
  Editor.prototype.pointer = function (e) {
    var r = this.canvas.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  };
  Editor.prototype.clamp = function (p) {
    return [Math.min(Math.max(p[0], 0), this.width), Math.min(Math.max(p[1], 0), this.height)];
  };
  Editor.prototype.remember = function () {
    this.history.push(JSON.stringify(this.shapes));
    if (this.history.length > 200) { this.history.shift(); }
  };
  Editor.prototype.undo = function () {
    if (this.draft) { this.draft.pop(); if (!this.draft.length) { this.draft = null; } this.draw(); return; }
    if (!this.history.length) { return; }
    this.shapes = JSON.parse(this.history.pop());
    this.selected = -1;
    this.sync();
  };
  Editor.prototype.setClass = function (label) {
    this.classSelect.value = label;
    if (this.selected >= 0 && this.shapes[this.selected].label !== label) {
      this.remember();
      this.shapes[this.selected].label = label;
      this.sync();
    }
  };
  Editor.prototype.sync = function () {
    var out = this.shapes.map(function (s) {
      var r = function (v) { return Math.round(v * 100) / 100; };
      if (s.box) { return { label: s.label, box: s.box.map(r) }; }
      return { label: s.label, points: s.points.map(function (p) { return [r(p[0]), r(p[1])]; }) };
    });
    this.input.value = JSON.stringify({ shapes: out });
    this.root.dataset.count = String(out.length);
    this.draw();
  };

  // What is under the pointer: a handle (corner/vertex) of the selected shape first, then any shape.
  Editor.prototype.hit = function (sp) {
    var self = this;
    var reach = this.reach || HANDLE;
    var near = function (ip) { var q = self.toScreen(ip[0], ip[1]); return Math.abs(q[0] - sp[0]) <= reach && Math.abs(q[1] - sp[1]) <= reach; };
    var order = this.selected >= 0 ? [this.selected] : [];
    for (var i = this.shapes.length - 1; i >= 0; i--) { if (i !== this.selected) { order.push(i); } }
    for (var k = 0; k < order.length; k++) {
      var s = this.shapes[order[k]];
      var corners = s.box ? [[s.box[0], s.box[1]], [s.box[2], s.box[1]], [s.box[2], s.box[3]], [s.box[0], s.box[3]]] : s.points;
      for (var c = 0; c < corners.length; c++) { if (near(corners[c])) { return { index: order[k], handle: c }; } }
    }
    var ip = this.toImage(sp[0], sp[1]);
    for (var j = this.shapes.length - 1; j >= 0; j--) {
      if (inside(this.shapes[j], ip)) { return { index: j, handle: -1 }; }
    }
    return null;
  };

  function inside(s, p) {
    if (s.box) { return p[0] >= s.box[0] && p[0] <= s.box[2] && p[1] >= s.box[1] && p[1] <= s.box[3]; }
    var pts = s.points, c = false;
    for (var i = 0, j = pts.length - 1; i < pts.length; j = i++) {
      if ((pts[i][1] > p[1]) !== (pts[j][1] > p[1]) &&
          p[0] < (pts[j][0] - pts[i][0]) * (p[1] - pts[i][1]) / (pts[j][1] - pts[i][1]) + pts[i][0]) { c = !c; }
    }
    return c;
  }

  Editor.prototype.down = function (e) {
    var sp = this.pointer(e);
    e.preventDefault();
    this.reach = e.pointerType === "touch" ? TOUCH_HANDLE : HANDLE;
    if (e.button === 1 || e.button === 2 || this.spaceDown || this.readonly) {
      this.drag = { kind: "pan", start: sp, view: { x: this.view.x, y: this.view.y } };
      return;
    }
    var ip = this.clamp(this.toImage(sp[0], sp[1]));
    if (this.kind === "image_polygons" && this.draft) {
      var first = this.toScreen(this.draft[0][0], this.draft[0][1]);
      if (this.draft.length >= 3 && Math.abs(first[0] - sp[0]) <= this.reach && Math.abs(first[1] - sp[1]) <= this.reach) {
        this.closeDraft();
      } else {
        this.draft.push(ip);
        this.draw();
      }
      return;
    }
    var found = this.hit(sp);
    if (found && found.handle >= 0 && e.altKey && this.shapes[found.index].points) {
      var pts = this.shapes[found.index].points;
      if (pts.length > 3) { this.remember(); pts.splice(found.handle, 1); this.sync(); }
      return;
    }
    if (found) {
      this.selected = found.index;
      this.classSelect.value = this.shapes[found.index].label;
      this.remember();
      this.drag = { kind: found.handle >= 0 ? "handle" : "move", index: found.index, handle: found.handle, last: ip, moved: false };
      this.draw();
      return;
    }
    this.selected = -1;
    if (this.kind === "image_boxes") {
      this.drag = { kind: "new-box", start: ip, end: ip };
    } else {
      this.draft = [ip];
    }
    this.draw();
  };

  Editor.prototype.move = function (e) {
    if (!this.drag) { return; }
    var sp = this.pointer(e);
    var ip = this.clamp(this.toImage(sp[0], sp[1]));
    var d = this.drag;
    if (d.kind === "pan") {
      this.view.x = d.view.x + sp[0] - d.start[0];
      this.view.y = d.view.y + sp[1] - d.start[1];
    } else if (d.kind === "new-box") {
      d.end = ip;
    } else if (d.kind === "move") {
      var s = this.shapes[d.index], dx = ip[0] - d.last[0], dy = ip[1] - d.last[1];
      if (s.box) {
        dx = Math.min(Math.max(dx, -s.box[0]), this.width - s.box[2]);
        dy = Math.min(Math.max(dy, -s.box[1]), this.height - s.box[3]);
        s.box = [s.box[0] + dx, s.box[1] + dy, s.box[2] + dx, s.box[3] + dy];
      } else {
        var self = this;
        s.points = s.points.map(function (p) { return self.clamp([p[0] + dx, p[1] + dy]); });
      }
      d.last = ip;
      d.moved = true;
    } else if (d.kind === "handle") {
      var t = this.shapes[d.index];
      if (t.box) {
        var b = t.box.slice();
        if (d.handle === 0 || d.handle === 3) { b[0] = ip[0]; } else { b[2] = ip[0]; }
        if (d.handle === 0 || d.handle === 1) { b[1] = ip[1]; } else { b[3] = ip[1]; }
        t.box = [Math.min(b[0], b[2]), Math.min(b[1], b[3]), Math.max(b[0], b[2]), Math.max(b[1], b[3])];
        if (b[0] > b[2]) { d.handle = [1, 0, 3, 2][d.handle]; }
        if (b[1] > b[3]) { d.handle = [3, 2, 1, 0][d.handle]; }
      } else {
        t.points[d.handle] = ip;
      }
      d.moved = true;
    }
    this.draw();
  };

  Editor.prototype.up = function () {
    var d = this.drag;
    if (!d) { return; }
    this.drag = null;
    if (d.kind === "new-box") {
      var box = [Math.min(d.start[0], d.end[0]), Math.min(d.start[1], d.end[1]), Math.max(d.start[0], d.end[0]), Math.max(d.start[1], d.end[1])];
      if ((box[2] - box[0]) * this.view.scale >= 4 && (box[3] - box[1]) * this.view.scale >= 4) {
        this.remember();
        this.shapes.push({ label: this.classSelect.value, box: box });
        this.selected = this.shapes.length - 1;
      }
      this.sync();
    } else if (d.kind === "move" || d.kind === "handle") {
      if (!d.moved) { this.history.pop(); }
      this.sync();
    }
    this.draw();
  };

  // The browser took the pointer back (a system gesture, the finger left the screen's edge): a box being drawn is
  // dropped; a move or reshape keeps where it got to.
  Editor.prototype.cancel = function () {
    var d = this.drag;
    if (!d) { return; }
    this.drag = null;
    if (d.kind === "move" || d.kind === "handle") {
      if (!d.moved) { this.history.pop(); }
      this.sync();
    }
    this.draw();
  };

  Editor.prototype.closeDraft = function () {
    if (!this.draft || this.draft.length < 3) { return false; }
    this.remember();
    this.shapes.push({ label: this.classSelect.value, points: this.draft });
    this.selected = this.shapes.length - 1;
    this.draft = null;
    this.sync();
    return true;
  };

  Editor.prototype.wheel = function (e) {
    e.preventDefault();
    var sp = this.pointer(e);
    var ip = this.toImage(sp[0], sp[1]);
    var factor = e.deltaY < 0 ? 1.2 : 1 / 1.2;
    this.view.scale = Math.min(Math.max(this.view.scale * factor, 0.05), 40);
    this.view.x = sp[0] - ip[0] * this.view.scale;
    this.view.y = sp[1] - ip[1] * this.view.scale;
    this.draw();
  };

  Editor.prototype.draw = function () {
    var ctx = this.ctx, self = this;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.setTransform(this.view.scale, 0, 0, this.view.scale, this.view.x, this.view.y);
    if (this.image.complete && this.image.naturalWidth) { ctx.drawImage(this.image, 0, 0, this.width, this.height); }
    ctx.lineWidth = 2 / this.view.scale;
    this.shapes.forEach(function (s, i) {
      ctx.strokeStyle = COLORS[Math.max(0, labels.indexOf(s.label)) % COLORS.length];
      ctx.fillStyle = ctx.strokeStyle + "33";
      ctx.beginPath();
      if (s.box) { ctx.rect(s.box[0], s.box[1], s.box[2] - s.box[0], s.box[3] - s.box[1]); }
      else { s.points.forEach(function (p, k) { if (k) { ctx.lineTo(p[0], p[1]); } else { ctx.moveTo(p[0], p[1]); } }); ctx.closePath(); }
      ctx.fill();
      ctx.stroke();
      if (i === self.selected) {
        var corners = s.box ? [[s.box[0], s.box[1]], [s.box[2], s.box[1]], [s.box[2], s.box[3]], [s.box[0], s.box[3]]] : s.points;
        var h = HANDLE / self.view.scale;
        ctx.fillStyle = "#fff";
        corners.forEach(function (p) { ctx.fillRect(p[0] - h / 2, p[1] - h / 2, h, h); ctx.strokeRect(p[0] - h / 2, p[1] - h / 2, h, h); });
      }
    });
    var d = this.drag;
    if (d && d.kind === "new-box") {
      ctx.strokeStyle = "#ffeb3b";
      ctx.strokeRect(d.start[0], d.start[1], d.end[0] - d.start[0], d.end[1] - d.start[1]);
    }
    if (this.draft) {
      ctx.strokeStyle = "#ffeb3b";
      ctx.beginPath();
      this.draft.forEach(function (p, k) { if (k) { ctx.lineTo(p[0], p[1]); } else { ctx.moveTo(p[0], p[1]); } });
      ctx.stroke();
    }
  };

  function showError(message, link) {
    if (window.CrowdOpsReplies) { window.CrowdOpsReplies.show(errorBox, message, link); return; }
    errorBox.textContent = message || ""; errorBox.hidden = !message;
  }

  // One post at a time: a double click (or Enter pressed twice) sends the drawing once. After a success the page
  // moves on, so it stays busy; a refusal or a lost connection frees it for another try.
  var busy = false;
  function submit() {
    if (busy) { return; }
    var unfinished = editors.filter(function (ed) { return ed.draft; });
    if (unfinished.length) { showError("Close or drop (Escape) the polygon you are drawing first."); return; }
    busy = true;
    showError("");
    fetch(form.action, {
      method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: { "Accept": "application/json", "X-Requested-With": "fetch" }
    }).then(window.CrowdOpsReplies.read).then(function (result) {
      var data = result.data;
      if (!result.ok) {
        showError(data.error || "The server refused this drawing.", data.link);
        if (data.redirect) { window.location.assign(data.redirect); } else { busy = false; }
        return;
      }
      window.location.assign(data.next ? data.next.url : (data.redirect || form.dataset.workList));
    }).catch(function () { busy = false; showError("Could not reach the server. Press Enter to try again."); });
  }
  // Back to this page from the next one (the back/forward cache keeps the script's state): it may post again.
  window.addEventListener("pageshow", function (event) { if (event.persisted) { busy = false; } });

  form.addEventListener("submit", function (event) {
    if (plainPost) {  // MTurk: the page posts itself; only an unfinished polygon holds it back
      var unfinished = editors.filter(function (ed) { return ed.draft; });
      if (unfinished.length) { event.preventDefault(); showError("Close or drop (Escape) the polygon you are drawing first."); }
      return;
    }
    if (!window.fetch) { return; }
    event.preventDefault();
    submit();
  });

  // The editor a key is for: the one holding focus (a page may show several images), else the first.
  var current = function (target) {
    for (var i = 0; i < editors.length; i++) { if (target && editors[i].root.contains(target)) { return editors[i]; } }
    return editors[0];
  };
  function send() { if (form.requestSubmit) { form.requestSubmit(); } else { submit(); } }
  // Keys typed into a text field or menu (the class menu) are theirs. Enter and Space are the drawing's only
  // when focus is on the page itself or on a canvas; on a button, link or toggle the browser does its default.
  function typing(el) {
    if (!el || !el.tagName) { return false; }
    if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") { return true; }
    return el.tagName === "INPUT" && ["checkbox", "radio", "button", "submit", "reset", "image", "file", "range", "color", "hidden"].indexOf(el.type) < 0;
  }
  function onDrawing(el) {
    return !el || el === document.body || el === document.documentElement || el.tagName === "CANVAS";
  }
  document.addEventListener("keydown", function (event) {
    var ed = current(event.target);
    if (!ed || event.defaultPrevented || typing(event.target)) { return; }
    if ((event.key === "Enter" || event.key === " ") && !onDrawing(event.target)) { return; }
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z" && !ed.readonly) { event.preventDefault(); ed.undo(); return; }
    if (event.altKey || event.ctrlKey || event.metaKey) { return; }
    if (ed.readonly) { if (event.key === "0") { ed.fit(); } return; }
    if (event.key === " ") { ed.spaceDown = true; event.preventDefault(); }
    else if (event.key >= "1" && event.key <= "9" && labels[parseInt(event.key, 10) - 1] !== undefined) { ed.setClass(labels[parseInt(event.key, 10) - 1]); }
    else if (event.key === "Delete" || event.key === "Backspace") {
      if (ed.selected >= 0) { event.preventDefault(); ed.remember(); ed.shapes.splice(ed.selected, 1); ed.selected = -1; ed.sync(); }
    } else if (event.key === "Escape") { ed.draft = null; ed.selected = -1; ed.draw(); }
    else if (event.key === "0") { ed.fit(); }
    else if (event.key === "Enter") {
      event.preventDefault();
      if (ed.draft) { ed.closeDraft(); } else { send(); }
    }
  });
  document.addEventListener("keyup", function (event) { if (event.key === " ") { editors.forEach(function (ed) { ed.spaceDown = false; }); } });

  Array.prototype.forEach.call(document.querySelectorAll(".shape-editor"), function (root) { editors.push(new Editor(root)); });
  window.crowdShapes = editors;  // for keyboard-free automation and browser tests
  // What shapes_keyboard.js builds on, whichever of the two scripts runs first.
  window.CrowdShapes = { editors: editors, Editor: Editor, labels: labels, submit: send, HANDLE: HANDLE };
  if (window.CrowdShapesKeyboard) { window.CrowdShapesKeyboard(window.CrowdShapes); }

  if (timer) {
    var deadline = Date.now() + parseInt(timer.dataset.secondsLeft || "0", 10) * 1000;
    var tick = function () {
      var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      var m = Math.floor(left / 60), s = left % 60;
      timer.textContent = left > 0 ? "Time left " + m + ":" + (s < 10 ? "0" : "") + s : "Time is up: this task went back to the pool";
      if (left > 0) { window.setTimeout(tick, 1000); }
    };
    tick();
  }
})();
