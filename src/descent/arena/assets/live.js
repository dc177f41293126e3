/* Live redraw while a slider is dragged (the server's POST /api/ball, descent/arena/live.py).
 *
 * The page's sliders send their value to Dash on release only (Dash drops a callback answer that is out
 * of date when it comes, so a slider that updated while dragged would draw nothing until released).
 * While the mouse is held on the learning-rate or momentum slider, this asks the server for the ball's
 * path at each new value the slider shows (its thumb's aria-valuenow) and draws the newest answer into
 * the map's own traces of the ball (its faint whole path, its trail and the ball at the end) with one
 * Plotly.animate call without transition or redraw (a data update of those traces only), in an
 * animation frame. Newer values supersede older ones: at most two requests are in
 * flight (the server has two threads), a value that comes while both are busy waits in a one-place
 * queue (a newer one replaces it), an answer older than one already drawn is dropped, and a request
 * overtaken by a drawn answer (or in flight longer than STALE_MS, or when the slider is released) is
 * aborted. The page never waits for every answer. The note under the slider names the values the
 * drawn path is for. On release the page's callback runs the state as before; if the released value
 * leaves the state as it was (no new run comes), the map's traces are put back as they were.
 *
 * Hooks for tests and the latency benchmark: window.__liveDraws (one entry per drawn path: its value,
 * the server's hyper-parameters, a digest of the path, the page-clock times of the slider change and
 * of the frame that drew it) and window.descentLive (digest(), the state).
 */
(function () {
  "use strict";

  var ROUTE = "/api/ball";
  var SLIDERS = { "lr-slider": "lr-slider", "momentum-slider": "momentum-slider" }; // element id -> control
  var MAX_IN_FLIGHT = 2;
  var STALE_MS = 1000;
  var KEEP_DRAWS = 2000;
  var WATCHDOG_MS = 300;

  var draws = (window.__liveDraws = window.__liveDraws || []);
  var hooked = new WeakSet();

  // FNV-1a over the float64 bytes of the path (x then y; null as NaN): a digest to tell paths apart
  function digest(xs, ys) {
    var n = xs.length, f = new Float64Array(2 * n);
    for (var i = 0; i < n; i++) {
      f[i] = xs[i] === null || xs[i] === undefined ? NaN : xs[i];
      f[n + i] = ys[i] === null || ys[i] === undefined ? NaN : ys[i];
    }
    var words = new Uint32Array(f.buffer), h = 0x811c9dc5;
    for (var j = 0; j < words.length; j++) {
      h ^= words[j];
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    return n + ":" + ("00000000" + h.toString(16)).slice(-8);
  }

  function mapGraph() {
    return document.querySelector("#map-graph .js-plotly-plot");
  }

  function playerState() {
    var el = document.getElementById("player-status");
    return el ? { state: el.dataset.state, run: el.dataset.run } : { state: null, run: null };
  }

  // the ?s= token of the page's state (the share link follows every change of the state)
  function stateToken() {
    var box = document.getElementById("share-link");
    var text = (box && box.value) || window.location.href;
    try {
      return new URL(text, window.location.href).searchParams.get("s");
    } catch (e) {
      return null;
    }
  }

  function decodeToken(token) {
    try {
      var b64 = token.replace(/-/g, "+").replace(/_/g, "/");
      var raw = atob(b64 + "===".slice((b64.length + 3) % 4));
      var bytes = new Uint8Array(raw.length);
      for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch (e) {
      return null;
    }
  }

  function sameBall(racer, answer) {
    if (!racer || !answer || racer.optimizer !== answer.optimizer) return false;
    var a = racer.hyper || {}, b = answer.hyper || {}, keys = Object.keys(a);
    if (keys.length !== Object.keys(b).length) return false;
    return keys.every(function (k) { return a[k] === b[k]; });
  }

  function lastFinite(xs, ys) {
    for (var i = xs.length - 1; i >= 0; i--) {
      if (xs[i] !== null && ys[i] !== null && isFinite(xs[i]) && isFinite(ys[i])) return [xs[i], ys[i]];
    }
    return [null, null];
  }

  var L = {
    client: Math.random().toString(36).slice(2, 10),
    seq: 0,
    drag: null,      // the drag in progress: {id, control, value, token, ball, run, eventTs, snapshot, ...}
    inFlight: [],    // [{seq, controller, sent}]
    queued: null,    // {value, t0}: waits for a free request
    pending: null,   // the newest answer not drawn yet
    drawnSeq: -1,
    frame: false,
    repaint: false,  // a repaint of the live path is scheduled
    busy: false,     // a path is being put into the figure
    draws: draws,
    digest: digest,

    // --- the drag --------------------------------------------------------------------------------
    start: function (id, event) {
      var gd = mapGraph(), meta = gd && gd.layout && gd.layout.meta;
      var root = document.getElementById(id);
      var thumb = root && root.querySelector("[role=slider]");
      var token = stateToken();
      if (!meta || !meta.trail || meta.trail[0] === undefined || !thumb || !token) return;
      var disabled = root.querySelector("[data-disabled]") || root.querySelector("[aria-disabled=true]");
      if (disabled) return;
      var state = decodeToken(token);
      this.abortAll();
      this.queued = null;
      this.pending = null;
      this.busy = false;
      this.drag = {
        id: id, control: SLIDERS[id], token: token, value: parseFloat(thumb.getAttribute("aria-valuenow")),
        startValue: parseFloat(thumb.getAttribute("aria-valuenow")),
        ball: state && state.racers ? state.racers[0] : null, run: playerState().run,
        eventTs: event.timeStamp, snapshot: this.snapshot(gd, meta), gd: gd, drawn: 0, last: null,
        paused: false, pausedAt: 0,
      };
      this.hook(gd);
      this.note(id, "");
    },

    // the pointer moved or the thumb changed: a new value goes to the server
    changed: function (value) {
      var d = this.drag;
      if (!d || !isFinite(value) || value === d.value) return;
      d.value = value;
      this.send(value, d.eventTs);
    },

    release: function () {
      var d = this.drag;
      if (!d) return;
      this.drag = null;
      this.abortAll();
      this.queued = null;
      this.pending = null;
      this.note(d.id, "");
      if (!d.drawn) {
        if (d.paused) this.restore(d);
        return;
      }
      var thumb = document.querySelector("#" + d.id + " [role=slider]");
      var final = thumb ? parseFloat(thumb.getAttribute("aria-valuenow")) : d.value;
      // the page's callback runs the released value; if it leaves the state as it was, no new run comes
      // to replace the live path: put the map back as it was. Else the path of the released value
      // shows until the new run comes.
      if (final === d.startValue) { this.restore(d); return; }
      var self = this;
      this.request(d, final).then(function (answer) {
        if (!answer || answer.error || answer.superseded || self.drag || playerState().run !== d.run) return;
        if (sameBall(d.ball, answer)) self.restore(d);
        else if (mapGraph() === d.gd) self.put(d.gd, answer.x, answer.y, false);
      }).catch(function () {});
    },

    // --- requests ----------------------------------------------------------------------------
    send: function (value, t0) {
      this.reap();
      if (this.inFlight.length >= MAX_IN_FLIGHT) { this.queued = { value: value, t0: t0 }; return; }
      var d = this.drag, self = this, seq = ++this.seq;
      var controller = new AbortController();
      var entry = { seq: seq, controller: controller, sent: performance.now() };
      this.inFlight.push(entry);
      this.request(d, value, seq, controller.signal).then(function (answer) {
        self.settle(entry);
        if (!answer || answer.superseded || self.drag !== d) return;
        if (answer.error) { self.note(d.id, "live: " + answer.error); return; }
        if (seq <= self.drawnSeq || (self.pending && self.pending.seq > seq)) return;
        // every request sent before this one is out of date now
        self.inFlight.slice().forEach(function (e) { if (e.seq < seq) { e.controller.abort(); self.settle(e); } });
        self.pending = { seq: seq, answer: answer, value: value, t0: t0, received: performance.now() };
        self.draw();  // now: an animation frame more would only add to the latency
      }).catch(function () { self.settle(entry); });
    },

    request: function (d, value, seq, signal) {
      var body = { s: d.token, control: d.control, value: value, client: this.client };
      if (seq !== undefined) body.seq = seq;
      return fetch(ROUTE, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
        signal: signal, cache: "no-store",
      }).then(function (r) { return r.json(); });
    },

    // a request is done (answered, failed or aborted): send the queued value, if any
    settle: function (entry) {
      var i = this.inFlight.indexOf(entry);
      if (i >= 0) this.inFlight.splice(i, 1);
      if (this.queued && this.drag && this.inFlight.length < MAX_IN_FLIGHT) {
        var q = this.queued;
        this.queued = null;
        this.send(q.value, q.t0);
      }
    },

    // abort requests in flight longer than STALE_MS (a slow run must not hold the newest value back)
    reap: function () {
      var now = performance.now(), self = this;
      this.inFlight.slice().forEach(function (e) {
        if (now - e.sent > STALE_MS) { e.controller.abort(); self.settle(e); }
      });
    },

    abortAll: function () {
      this.inFlight.forEach(function (e) { e.controller.abort(); });
      this.inFlight = [];
    },

    // --- drawing -----------------------------------------------------------------------------
    schedule: function () {
      if (this.frame) return;
      this.frame = true;
      var self = this;
      requestAnimationFrame(function () { self.frame = false; self.draw(); });
    },

    draw: function () {
      var p = this.pending, d = this.drag;
      if (!p || !d || this.busy) return;
      var gd = mapGraph();
      if (!gd || !gd.layout || !gd.layout.meta || gd !== d.gd) return;
      if (playerState().state === "playing") {
        // the player draws its run on a canvas over the map while it plays: pause it first (its
        // button; again if a new run started playing since), and draw once its traces are at rest
        var now = performance.now();
        if (!d.pausedAt || now - d.pausedAt > 250) {
          d.paused = true;
          d.pausedAt = now;
          var pause = document.getElementById("pause-button");
          if (pause) pause.click();
        }
        this.schedule();
        return;
      }
      this.pending = null;
      this.busy = true;
      var a = p.answer, t1 = performance.now(), self = this, finished = false;
      // a promise that never settles (Plotly's animation interrupted by the player's own update of the
      // figure) must not stop the drawing: after WATCHDOG_MS the path is tried again with a restyle,
      // unless a newer one waits
      function finish(drawn) {
        if (finished) return;
        finished = true;
        self.busy = false;
        if (!drawn && !self.pending && self.drag === d) self.pending = p;
        if (drawn && self.drag === d) self.record(d, p, a, t1, gd);
        if (self.pending) self.schedule();
      }
      p.tries = (p.tries || 0) + 1;
      this.put(gd, a.x, a.y, !d.drawn, p.tries > 1).then(function () { finish(true); },
                                                        function () { finish(false); });
      setTimeout(function () { finish(false); }, WATCHDOG_MS);
    },

    // a path is on the map: its entry in window.__liveDraws, and the note under the slider
    record: function (d, p, a, t1, gd) {
      this.drawnSeq = p.seq;
      var now = performance.now(), meta = gd.layout.meta, shown = gd.data[meta.trail[0]];
      var entry = {
        seq: p.seq, control: d.control, value: p.value, optimizer: a.optimizer, hyper: a.hyper,
        label: a.label, steps: a.steps, every: a.every, points: a.x.length, digest: digest(shown.x, shown.y),
        t0: p.t0, received: p.received, drawn: now, latency: now - p.t0, drawMs: now - t1, serverMs: a.ms,
        backend: a.backend, x: a.x, y: a.y,
      };
      draws.push(entry);
      if (draws.length > KEEP_DRAWS) draws.splice(0, draws.length - KEEP_DRAWS);
      d.drawn += 1;
      d.last = entry;
      var every = a.every > 1 ? ", a point every " + a.every + " steps" : "";
      this.note(d.id, "live: " + a.label + " · its " + a.steps + " steps drawn on the map" + every +
                " (release to play it)", entry);
    },

    // the ball's traces in the map's figure: its trail takes the whole path and the ball sits at its
    // end; the faint whole path of the page's run and its update arrows are emptied at the first
    // draw of a drag (they belong to that run). Plotly.animate with no transition and no redraw puts
    // the new data into these traces and redraws only them; a Plotly.restyle of x and y recomputes and
    // redraws the whole figure (its hover heatmap alone costs ~40 ms a time in software rendering). A
    // promise, resolved once the traces show the path (``restyle``: by Plotly.restyle, the sure way).
    put: function (gd, xs, ys, first, restyle) {
      var meta = gd.layout.meta, end = lastFinite(xs, ys);
      var data = [], idx = [];
      function set(i, x, y) { if (i !== undefined && gd.data[i]) { idx.push(i); data.push({ x: x, y: y }); } }
      set(meta.trail[0], xs, ys);
      set(meta.ball ? meta.ball[0] : undefined, [end[0]], [end[1]]);
      if (first) {
        set(meta.ghost ? meta.ghost[0] : undefined, [null], [null]);
        Object.keys(meta.arrows || {}).forEach(function (k) { set(meta.arrows[k], [null], [null]); });
      }
      if (restyle) {
        var xs2 = data.map(function (t) { return t.x; }), ys2 = data.map(function (t) { return t.y; });
        return Plotly.restyle(gd, { x: xs2, y: ys2 }, idx);
      }
      return Plotly.animate(gd, { data: data, traces: idx }, {
        mode: "immediate", transition: { duration: 0 }, frame: { duration: 0, redraw: false },
      });
    },

    // the faint whole path as it is before the drag (the player puts the trail, the ball and the
    // arrows at its current step whenever it settles; the whole path only with a new run)
    snapshot: function (gd, meta) {
      var g = meta.ghost ? meta.ghost[0] : undefined;
      return g !== undefined && gd.data[g] ? { idx: [g], x: [gd.data[g].x], y: [gd.data[g].y] } : null;
    },

    // put the map back as the page's run has it: its whole path, and the player's step (its buttons:
    // Play if this drag paused it, else Pause, which draws the current step at rest)
    restore: function (d) {
      var gd = mapGraph();
      if (!gd || gd !== d.gd || playerState().run !== d.run) return;
      if (d.snapshot) Plotly.restyle(gd, { x: d.snapshot.x, y: d.snapshot.y }, d.snapshot.idx);
      var button = document.getElementById(d.paused ? "play-button" : "pause-button");
      if (button) button.click();
    },

    // while dragging, a restyle of the map by someone else (the player settling when the arrows of its
    // run come) puts the live path back in the next frame
    hook: function (gd) {
      if (hooked.has(gd) || !gd.on) return;
      hooked.add(gd);
      var self = this;
      function again() {
        var d = self.drag, meta = gd.layout && gd.layout.meta;
        if (!d || !d.last || d.gd !== gd || !meta || !gd.data[meta.trail[0]]) return;
        if (gd.data[meta.trail[0]].x === d.last.x || self.repaint) return;  // still the live path
        self.repaint = true;
        requestAnimationFrame(function () {
          self.repaint = false;
          if (self.drag === d && !self.pending && mapGraph() === gd) self.put(gd, d.last.x, d.last.y, true);
        });
      }
      gd.on("plotly_restyle", again);
      gd.on("plotly_update", again);
    },

    // the note under the dragged slider: which values the drawn path is for
    note: function (id, text, entry) {
      var root = document.getElementById(id);
      var field = root && (root.closest(".field") || root.parentNode);
      if (!field) return;
      var el = document.getElementById("live-note");
      if (!el) {
        el = document.createElement("div");
        el.id = "live-note";
        el.className = "hint live-note";
      }
      if (el.parentNode !== field) field.appendChild(el);
      if (el.textContent !== text) el.textContent = text;
      el.dataset.seq = entry ? String(entry.seq) : "";
      el.dataset.value = entry ? String(entry.value) : "";
    },
  };

  window.descentLive = L;

  function sliderOf(target) {
    for (var id in SLIDERS) {
      var root = document.getElementById(id);
      if (root && target && root.contains(target)) return id;
    }
    return null;
  }

  document.addEventListener("pointerdown", function (event) {
    if (event.button !== 0) return;
    var id = sliderOf(event.target);
    if (id) L.start(id, event);
  }, true);
  window.addEventListener("pointermove", function (event) {
    if (L.drag) L.drag.eventTs = event.timeStamp;
  }, true);
  window.addEventListener("pointerup", function () { L.release(); }, true);
  window.addEventListener("pointercancel", function () { L.release(); }, true);

  // the thumb's value as the slider shows it (it moves with the pointer while dragged)
  new MutationObserver(function (mutations) {
    var d = L.drag;
    if (!d) return;
    for (var i = mutations.length - 1; i >= 0; i--) {
      var el = mutations[i].target;
      if (el.getAttribute && el.getAttribute("role") === "slider" && sliderOf(el) === d.id) {
        L.changed(parseFloat(el.getAttribute("aria-valuenow")));
        return;
      }
    }
  }).observe(document.documentElement, { attributes: true, subtree: true, attributeFilter: ["aria-valuenow"] });
})();
