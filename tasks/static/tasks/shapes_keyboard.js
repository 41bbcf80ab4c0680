// Drawing with the keyboard alone (WCAG 2.1.1), for the editor in shapes.js. Plain JavaScript, no dependencies.
//
// The canvas is reached with Tab like any control. Reached so (not clicked), it shows a crosshair, in the
// image's own pixel coordinates as everything else:
//   arrows move the crosshair one image pixel (more when zoomed out), Shift+arrow ten times as far;
//   Enter or Space places a box's first corner, then its opposite corner (box jobs), or a polygon's next point
//   (polygon jobs); Enter on the first point, or Shift+Enter, closes the polygon; Escape cancels the shape
//   being drawn, then the selection;
//   Tab and Shift+Tab select the shapes one after another (Tab after the last one leaves the canvas, so focus
//   is never trapped); arrows move the selected shape, Delete or Backspace removes it, 1-9 or the class menu
//   (C opens it, Enter or Escape comes back) change its class;
//   + and - zoom around the crosshair, 0 fits; Ctrl+Enter submits (Enter itself draws here).
// A click or touch on the canvas hands it back to the pointer: Enter then closes a polygon or submits, as
// before. What happened is said in the editor's live region (.shape-status).
// Loaded once per editor by the template, before or after shapes.js: the first copy to run installs itself.
(function () {
  "use strict";
  if (window.CrowdShapesKeyboard) { return; }
  var BIG = 10;  // Shift+arrow moves this many steps
  var MARGIN = 24;  // screen pixels the crosshair keeps from the canvas's edge when it pans the view
  var HANDLE = 7;  // screen pixels within which Enter is "on the first point" (shapes.js's grab distance)

  function install(api) {
    var Editor = api.Editor;
    HANDLE = api.HANDLE || HANDLE;
    var draw = Editor.prototype.draw, setClass = Editor.prototype.setClass, undo = Editor.prototype.undo;
    Editor.prototype.draw = function () { draw.call(this); if (this.kb) { overlay(this); } };
    Editor.prototype.setClass = function (label) {
      var before = this.selected;
      setClass.call(this, label);
      if (this.kb && document.activeElement === this.canvas) {
        say(this, before >= 0 ? title(this, before) + " is now " + label + "." : "New shapes: " + label + ".");
      }
    };
    Editor.prototype.undo = function () {
      var kb = this.kb;
      if (kb && kb.corner) { kb.corner = null; this.draw(); say(this, "Box cancelled."); return; }
      undo.call(this);
      if (kb) { kb.grabbed = false; if (document.activeElement === this.canvas) { say(this, "Undone: " + count(this) + "."); } }
    };
    api.editors.forEach(function (ed) { if (!ed.readonly) { setUp(ed, api); } });
  }
  window.CrowdShapesKeyboard = install;
  if (window.CrowdShapes) { install(window.CrowdShapes); }

  function setUp(ed, api) {
    var canvas = ed.canvas;
    var kb = ed.kb = {
      on: false,  // the keyboard draws (the canvas was reached with Tab, or an arrow was pressed on it)
      at: [Math.round(ed.width / 2), Math.round(ed.height / 2)],  // the crosshair, in image pixels
      corner: null,  // a box's first corner, placed
      grabbed: false,  // the selected shape was picked with Tab: arrows move it
      moving: false,  // arrows are moving it (one undo step for the whole move)
      space: false, panned: false,  // Space held; a pointer panned while it was (Space+drag): no point placed
      fromMenu: false,  // C opened the class menu: Enter or Escape there comes back
      status: ed.root.querySelector(".shape-status"), flip: false, timer: null
    };
    canvas.addEventListener("focus", function () { if (!canvas.classList.contains("pointer-focus")) { kb.on = true; } ed.draw(); });
    canvas.addEventListener("blur", function () { ed.draw(); });
    canvas.addEventListener("pointerdown", function (e) {
      if (kb.space) { kb.panned = true; }
      var r = canvas.getBoundingClientRect();
      kb.at = ed.clamp(ed.toImage(e.clientX - r.left, e.clientY - r.top)).map(Math.round);
      kb.on = false; kb.corner = null; kb.grabbed = false;
      ed.draw();
    });
    canvas.addEventListener("keydown", function (e) { key(ed, api, e); });
    canvas.addEventListener("keyup", function (e) {
      if (e.key !== " " || !kb.space) { return; }
      kb.space = false;
      if (kb.on && !kb.panned) { place(ed); }
    });
    ed.classSelect.addEventListener("keydown", function (e) {
      if (kb.fromMenu && (e.key === "Enter" || e.key === "Escape")) { e.preventDefault(); canvas.focus(); }
    });
    ed.classSelect.addEventListener("blur", function () { kb.fromMenu = false; });
  }

  // Keys on the canvas. A key this function takes is preventDefault()ed, which shapes.js's handler skips;
  // the rest (1-9, 0, Ctrl+Z, and Enter or Delete for the pointer) go on to it.
  function key(ed, api, e) {
    var kb = ed.kb, k = e.key;
    if (e.altKey || e.metaKey || k === "Shift" || k === "Control") { return; }
    if (e.ctrlKey) { if (k === "Enter") { e.preventDefault(); api.submit(); } return; }
    if (k !== "ArrowLeft" && k !== "ArrowRight" && k !== "ArrowUp" && k !== "ArrowDown") { kb.moving = false; }
    if (k.indexOf("Arrow") === 0) { e.preventDefault(); arrow(ed, k, e.shiftKey); }
    else if (k === "Enter" && e.shiftKey && ed.draft) { e.preventDefault(); finish(ed); }
    else if (k === "Enter" && kb.on) { e.preventDefault(); place(ed); }
    else if (k === " " && kb.on) { if (!e.repeat) { kb.space = true; kb.panned = false; } }  // placed on keyup
    else if (k === "Tab" && !e.shiftKey) { forward(ed, e); }
    else if (k === "Tab") { backward(ed, e); }
    else if (k === "Escape") { e.preventDefault(); escape(ed); }
    else if (k === "Delete" || k === "Backspace") { remove(ed, e); }
    else if (k === "c" || k === "C") { e.preventDefault(); kb.fromMenu = true; ed.classSelect.focus(); }
    else if (k === "+" || k === "=") { e.preventDefault(); zoom(ed, 1.25); }
    else if (k === "-") { e.preventDefault(); zoom(ed, 1 / 1.25); }
  }

  function arrow(ed, k, shift) {
    var kb = ed.kb;
    var step = Math.max(1, Math.round(1 / ed.view.scale)) * (shift ? BIG : 1);
    var dx = k === "ArrowLeft" ? -step : k === "ArrowRight" ? step : 0;
    var dy = k === "ArrowUp" ? -step : k === "ArrowDown" ? step : 0;
    kb.on = true;
    if (kb.grabbed && ed.selected >= 0 && !ed.draft && !kb.corner) {
      if (!kb.moving) { ed.remember(); kb.moving = true; }
      var at = nudge(ed.shapes[ed.selected], dx, dy, ed.width, ed.height);
      ed.sync();
      later(ed, function () { return title(ed, ed.selected) + " moved to " + xy(at) + "."; });
      return;
    }
    kb.at = ed.clamp([kb.at[0] + dx, kb.at[1] + dy]);
    follow(ed);
    ed.draw();
    later(ed, function () { return "Crosshair at " + xy(kb.at) + "."; });
  }

  // Moves a shape by (dx, dy) image pixels, as far as the image allows; its new top-left corner.
  function nudge(s, dx, dy, width, height) {
    var pts = s.box ? [[s.box[0], s.box[1]], [s.box[2], s.box[3]]] : s.points;
    var xs = pts.map(function (p) { return p[0]; }), ys = pts.map(function (p) { return p[1]; });
    dx = Math.min(Math.max(dx, -Math.min.apply(null, xs)), width - Math.max.apply(null, xs));
    dy = Math.min(Math.max(dy, -Math.min.apply(null, ys)), height - Math.max.apply(null, ys));
    if (s.box) { s.box = [s.box[0] + dx, s.box[1] + dy, s.box[2] + dx, s.box[3] + dy]; }
    else { s.points = s.points.map(function (p) { return [p[0] + dx, p[1] + dy]; }); }
    return [Math.min.apply(null, xs) + dx, Math.min.apply(null, ys) + dy];
  }

  // Enter or Space: a corner or a point where the crosshair is.
  function place(ed) {
    var kb = ed.kb, p = kb.at.slice();
    if (ed.kind === "image_boxes") {
      if (!kb.corner) {
        kb.corner = p; ed.selected = -1; kb.grabbed = false; ed.draw();
        say(ed, "First corner at " + xy(p) + ". Move to the opposite corner and press Enter.");
        return;
      }
      var c = kb.corner;
      var box = [Math.min(c[0], p[0]), Math.min(c[1], p[1]), Math.max(c[0], p[0]), Math.max(c[1], p[1])];
      if (box[2] - box[0] < 1 || box[3] - box[1] < 1) { say(ed, "No box yet: move the crosshair away from the first corner, across and down or up."); return; }
      kb.corner = null;
      ed.remember();
      ed.shapes.push({ label: ed.classSelect.value, box: box });
      ed.selected = ed.shapes.length - 1; kb.grabbed = false;
      ed.sync();
      say(ed, "Box " + ed.shapes.length + " added, " + n(box[2] - box[0]) + " by " + n(box[3] - box[1]) + ", " + ed.classSelect.value + ".");
      return;
    }
    if (ed.draft && ed.draft.length >= 3 && near(ed, ed.draft[0], p)) { finish(ed); return; }
    if (ed.draft) {
      var last = ed.draft[ed.draft.length - 1];
      if (last[0] === p[0] && last[1] === p[1]) { say(ed, "Point " + ed.draft.length + " is already here: move the crosshair first."); return; }
      ed.draft.push(p);
    } else {
      ed.draft = [p]; ed.selected = -1; kb.grabbed = false;
    }
    ed.draw();
    var k = ed.draft.length;
    say(ed, "Point " + k + " at " + xy(p) + (k === 1 ? ", polygon started." : k >= 3 ? ". Enter on the first point or Shift+Enter closes the polygon." : "."));
  }

  function finish(ed) {
    var d = ed.draft;
    if (d.length < 3) { say(ed, "A polygon needs at least 3 points; this one has " + d.length + "."); return; }
    if (area(d) === 0) { say(ed, "These points enclose no area: place one more off their line."); return; }
    ed.closeDraft();
    ed.kb.grabbed = false;
    say(ed, "Polygon " + ed.shapes.length + " closed, " + d.length + " points, " + ed.shapes[ed.shapes.length - 1].label + ".");
  }

  function escape(ed) {
    var kb = ed.kb;
    if (kb.corner) { kb.corner = null; say(ed, "Box cancelled."); }
    else if (ed.draft) { ed.draft = null; say(ed, "Polygon dropped."); }
    else if (ed.selected >= 0) { ed.selected = -1; kb.grabbed = false; say(ed, "Nothing selected: arrows move the crosshair."); }
    ed.draw();
  }

  // Tab selects the next shape (the first one, unless the selection was Tab's own: a shape just drawn or clicked
  // is selected too); after the last one it lets focus leave the canvas. Shift+Tab goes back, to no selection,
  // then out. While a shape is being drawn Tab is the browser's.
  function forward(ed, e) {
    if (ed.kb.corner || ed.draft) { return; }
    var next = (ed.kb.grabbed ? ed.selected : -1) + 1;
    if (next >= ed.shapes.length) { ed.selected = -1; ed.kb.grabbed = false; ed.draw(); return; }
    e.preventDefault();
    select(ed, next);
  }
  function backward(ed, e) {
    if (ed.kb.corner || ed.draft || ed.selected < 0 || !ed.kb.grabbed) { return; }
    e.preventDefault();
    if (ed.selected === 0) { ed.selected = -1; ed.kb.grabbed = false; ed.draw(); say(ed, "Nothing selected: arrows move the crosshair."); return; }
    select(ed, ed.selected - 1);
  }
  function select(ed, i) {
    var s = ed.shapes[i];
    ed.selected = i;
    ed.classSelect.value = s.label;
    ed.kb.grabbed = true; ed.kb.on = true;
    ed.draw();
    var size = s.box ? ", " + n(s.box[2] - s.box[0]) + " by " + n(s.box[3] - s.box[1]) + " at " + xy([s.box[0], s.box[1]]) : ", " + s.points.length + " points";
    say(ed, title(ed, i) + " of " + ed.shapes.length + " selected, " + s.label + size + ". Arrows move it, Delete removes it, C changes its class.");
  }

  function remove(ed, e) {
    var kb = ed.kb;
    if (ed.draft && e.key === "Backspace" && kb.on) {  // the last point placed
      e.preventDefault();
      ed.draft.pop();
      if (!ed.draft.length) { ed.draft = null; }
      ed.draw();
      say(ed, ed.draft ? "Point removed, " + ed.draft.length + " left." : "Polygon dropped.");
      return;
    }
    if (ed.selected < 0) { return; }
    e.preventDefault();
    var name = title(ed, ed.selected);
    ed.remember();
    ed.shapes.splice(ed.selected, 1);
    ed.selected = -1; kb.grabbed = false;
    ed.sync();
    say(ed, name + " deleted, " + count(ed) + " left.");
  }

  function zoom(ed, factor) {
    var kb = ed.kb, ip = kb.at, sp = ed.toScreen(ip[0], ip[1]);
    ed.view.scale = Math.min(Math.max(ed.view.scale * factor, 0.05), 40);
    ed.view.x = sp[0] - ip[0] * ed.view.scale;
    ed.view.y = sp[1] - ip[1] * ed.view.scale;
    ed.draw();
  }

  // Pans the view so that the crosshair stays on the canvas (when zoomed in).
  function follow(ed) {
    var p = ed.toScreen(ed.kb.at[0], ed.kb.at[1]), w = ed.canvas.width, h = ed.canvas.height;
    var m = Math.min(MARGIN, w / 4, h / 4);
    if (p[0] < m) { ed.view.x += m - p[0]; } else if (p[0] > w - m) { ed.view.x -= p[0] - (w - m); }
    if (p[1] < m) { ed.view.y += m - p[1]; } else if (p[1] > h - m) { ed.view.y -= p[1] - (h - m); }
  }

  // The crosshair, and the box or polygon edge it would make, over the drawing (screen pixels).
  function overlay(ed) {
    var kb = ed.kb, ctx = ed.ctx;
    if (!kb.on || document.activeElement !== ed.canvas) { return; }
    var p = ed.toScreen(kb.at[0], kb.at[1]);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.lineWidth = 2;
    ctx.setLineDash([6, 4]);
    ctx.strokeStyle = "#ffeb3b";
    if (kb.corner) {
      var c = ed.toScreen(kb.corner[0], kb.corner[1]);
      ctx.strokeRect(c[0], c[1], p[0] - c[0], p[1] - c[1]);
    } else if (ed.draft) {
      var last = ed.draft[ed.draft.length - 1], q = ed.toScreen(last[0], last[1]);
      ctx.beginPath(); ctx.moveTo(q[0], q[1]); ctx.lineTo(p[0], p[1]); ctx.stroke();
    }
    ctx.setLineDash([]);
    [["#000", 4], ["#fff", 2]].forEach(function (pen) {  // white on black: seen on light and dark images
      ctx.strokeStyle = pen[0]; ctx.lineWidth = pen[1];
      ctx.beginPath();
      ctx.moveTo(p[0] - 14, p[1]); ctx.lineTo(p[0] - 4, p[1]); ctx.moveTo(p[0] + 4, p[1]); ctx.lineTo(p[0] + 14, p[1]);
      ctx.moveTo(p[0], p[1] - 14); ctx.lineTo(p[0], p[1] - 4); ctx.moveTo(p[0], p[1] + 4); ctx.lineTo(p[0], p[1] + 14);
      ctx.stroke();
    });
    var text = xy(kb.at);
    ctx.font = "12px system-ui, sans-serif";
    var tw = ctx.measureText(text).width + 8;
    var tx = p[0] + 16 + tw > ed.canvas.width ? p[0] - 16 - tw : p[0] + 16;
    var ty = p[1] - 34 < 0 ? p[1] + 16 : p[1] - 34;
    ctx.fillStyle = "rgba(0, 0, 0, 0.75)"; ctx.fillRect(tx, ty, tw, 18);
    ctx.fillStyle = "#fff"; ctx.fillText(text, tx + 4, ty + 13);
  }

  // The live region: a message now, or one once the arrows rest (not one per key press).
  function say(ed, text) {
    var kb = ed.kb;
    window.clearTimeout(kb.timer);
    if (!kb.status) { return; }
    kb.flip = !kb.flip;  // the same words twice in a row are still read out
    kb.status.textContent = text + (kb.flip ? "" : "\u00a0");
  }
  function later(ed, message) {
    window.clearTimeout(ed.kb.timer);
    ed.kb.timer = window.setTimeout(function () { say(ed, message()); }, 600);
  }

  function near(ed, a, b) {
    var p = ed.toScreen(a[0], a[1]), q = ed.toScreen(b[0], b[1]);
    return Math.abs(p[0] - q[0]) <= HANDLE && Math.abs(p[1] - q[1]) <= HANDLE;
  }
  function area(pts) {
    var s = 0;
    for (var i = 0, j = pts.length - 1; i < pts.length; j = i++) { s += pts[j][0] * pts[i][1] - pts[i][0] * pts[j][1]; }
    return Math.abs(s) / 2;
  }
  function n(v) { return String(Math.round(v * 100) / 100); }
  function xy(p) { return n(p[0]) + ", " + n(p[1]); }
  function title(ed, i) { return (ed.shapes[i].box ? "Box " : "Polygon ") + (i + 1); }
  function count(ed) { var k = ed.shapes.length; return k + (k === 1 ? " shape" : " shapes"); }
})();
