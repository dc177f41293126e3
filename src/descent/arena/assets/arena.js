/* The Descent Arena's player: plays a computed run back in the browser. No physics happens here.
 *
 * The server sends each run as frame data in the `anim-store`, with the map figure only when the
 * map's structure changes, and the slower figures (3-D surface, curves, histogram, all drawn in their
 * final state) when the player asks for them (`views-request`) after the run's first frame. The map
 * figure carries a key (`layout.meta.key`) of everything but its run: when a new run comes with the
 * key of the map on the page, the player puts the run into that figure itself (paths, names,
 * `meta.run`) in the one restyle it makes anyway when a run starts; while it plays, its first frame is
 * drawn on the canvas (the figure's stale paths hidden, no Plotly call) and the restyle follows in the
 * next task. The player advances a clock of simulation steps with requestAnimationFrame. While it
 * plays, the moving things (trails, balls, update arrows, a swarm) are drawn on a canvas laid over the
 * map's plot area, in the map's own axis coordinates, so a frame costs a few milliseconds whatever the
 * size of the contour underneath; the slower views (3-D surface, swarm histogram) are restyled on a
 * time budget. Whenever it stops (pause, step, seek, end) the figures' own traces are restyled to the
 * current step, so the figure data always tells where the balls are at rest. Trace indices come from
 * each figure's `layout.meta`.
 */
(function () {
  "use strict";

  var ARROW_COLORS = { force: "#ff9f0a", coast: "#64d2ff", update: "#ffffff" };
  var SLOW_SHARE = 6; // a slow view may run again after SLOW_SHARE times its own cost
  var SWARM_SURFACE_MS = 1000; // a playing swarm's 3-D view is restyled at most this often

  function decode(spec) {
    if (!spec) return null;
    if (Array.isArray(spec)) return Float64Array.from(spec);
    var raw = atob(spec.bdata);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return spec.dtype === "f4" ? new Float32Array(bytes.buffer) : new Float64Array(bytes.buffer);
  }

  // the theory at the ball as the server sends it (descent.arena.readout.typed_theory), decoded
  function theoryOf(th) {
    if (!th) return null;
    return { rule: th.rule, lr: th.lr, formula: th.formula, where: th.where, state: th.state,
             lamMin: decode(th.lamMin), lamMax: decode(th.lamMax), edge: th.edge ? decode(th.edge) : null,
             kappa: decode(th.kappa), lrRatio: decode(th.lrRatio), shape: decode(th.shape),
             shapes: th.shapes || [] };
  }

  function graph(id) {
    return document.querySelector("#" + id + " .js-plotly-plot");
  }

  // Plotly is read only through its public face: a figure's `gd.data` and `gd.layout` (which holds the
  // axis ranges, the server's and any zoom's) and the DOM it draws; nothing with an underscore.

  // the plot area of a drawn 2-D figure, in px from the top left of its .svg-container: the drag
  // rectangle Plotly lays over it (null before the figure is drawn, and for a 3-D one)
  function plotArea(gd) {
    var drag = gd && gd.querySelector(".draglayer .nsewdrag");
    if (!drag) return null;
    var area = { l: +drag.getAttribute("x"), t: +drag.getAttribute("y"),
                 w: +drag.getAttribute("width"), h: +drag.getAttribute("height") };
    return area.w > 0 && area.h > 0 ? area : null;
  }

  // the drawn 2-D figure's data -> px maps (px from the plot area's top left) for its linear axes,
  // over the ranges in its public layout (``y`` null without a y range); null before it is drawn
  function axes(gd) {
    var area = plotArea(gd), lay = gd && gd.layout;
    var xr = lay && lay.xaxis && lay.xaxis.range, yr = lay && lay.yaxis && lay.yaxis.range;
    if (!area || !xr || !(xr[1] !== xr[0])) return null;
    var out = {
      area: area,
      x: function (v) { return (v - xr[0]) / (xr[1] - xr[0]) * area.w; },
      xOf: function (px) { return xr[0] + px / area.w * (xr[1] - xr[0]); },
      y: null,
      yOf: null,
    };
    if (yr && yr[1] !== yr[0]) {
      out.y = function (v) { return (yr[1] - v) / (yr[1] - yr[0]) * area.h; };
      out.yOf = function (py) { return yr[1] - py / area.h * (yr[1] - yr[0]); };
    }
    return out;
  }

  // a figure of run `run` is drawn: a 2-D one has its plot area, a 3-D one its scene's canvas (a
  // figure with only a scene has no 2-D plot area)
  function ready(gd, run) {
    if (!(gd && gd.layout && gd.layout.meta && gd.layout.meta.run === run)) return false;
    return !!(plotArea(gd) || (gd.layout.scene && gd.querySelector(".gl-container canvas")));
  }

  // the SVG group of scatter trace `i` of a figure, by the uid the server gives it (null for WebGL
  // traces and traces without one)
  function traceNode(gd, i) {
    var uid = gd.data && gd.data[i] && gd.data[i].uid;
    return uid !== undefined && uid !== null ? gd.querySelector(".trace" + CSS.escape(String(uid))) : null;
  }

  // the map can show run `a`: it is drawn with a's structure (maybe still with another run in it)
  function mapReady(gd, a) {
    var ax = gd && gd.layout && gd.layout.meta && gd.layout.meta.key === a.mapKey && axes(gd);
    return !!(ax && ax.y);
  }

  function frameAt(steps, s) {
    // index of the last recorded step <= s (binary search)
    var lo = 0, hi = steps.length - 1;
    if (hi < 0 || s >= steps[hi]) return Math.max(hi, 0);
    while (lo < hi) {
      var mid = (lo + hi + 1) >> 1;
      if (steps[mid] <= s) lo = mid; else hi = mid - 1;
    }
    return lo;
  }

  function fmt(v, digits) {
    if (v === null || v === undefined || !isFinite(v)) return "—";
    var a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
    return Number(v.toPrecision(digits || 4)).toString();
  }

  function setText(id, text) {
    var el = document.getElementById(id);
    if (el && el.textContent !== text) el.textContent = text;
  }

  function hidden(gd, index) {
    var trace = gd.data && gd.data[index];
    return !trace || trace.visible === "legendonly" || trace.visible === false;
  }

  // the page's own things kept per graph element (its layers; whether its clicks are heard)
  var LAYERS = new WeakMap(), HEARD = new WeakSet();

  // a layer laid over a graph's plot area `size` (canvas for the map, a line for the curves' "now")
  function overlay(gd, kind, size) {
    var host = gd.querySelector(".svg-container");
    var layers = LAYERS.get(gd) || {};
    var el = layers[kind];
    if (!host || !size) return null;
    if (!el || el.parentNode !== host) {
      el = document.createElement(kind === "canvas" ? "canvas" : "div");
      el.className = "da-" + kind;
      el.style.position = "absolute";
      el.style.pointerEvents = "none";
      host.appendChild(el);
      layers[kind] = el;
      LAYERS.set(gd, layers);
    }
    el.style.left = size.l + "px";
    el.style.top = size.t + "px";
    if (kind === "canvas") {
      var dpr = window.devicePixelRatio || 1;
      el.style.width = size.w + "px";
      el.style.height = size.h + "px";
      if (el.width !== Math.round(size.w * dpr) || el.height !== Math.round(size.h * dpr)) {
        el.width = Math.round(size.w * dpr);
        el.height = Math.round(size.h * dpr);
      }
      el.dataset.dpr = String(dpr);
    } else {
      el.style.height = size.h + "px";
    }
    return el;
  }

  var DA = {
    anim: null,
    step: 0,
    playing: false,
    speed: 250,
    autoplay: true,
    lastTs: null,
    overlayOn: false,
    slow: {},
    stats: { drawn: {}, loaded: {}, frames: [], frameCost: [], runs: 0 },

    load: function (anim) {
      if (!anim || !anim.run) return;
      if (this.anim && this.anim.run === anim.run) return;
      var a = { run: anim.run, mapKey: anim.mapKey, maxStep: anim.maxStep, playEnd: anim.playEnd || anim.maxStep,
                target: anim.target, lrLog: anim.lrLog, racers: [], swarm: null, arrows: null,
                frameEvery: anim.frameEvery || 1, theory: theoryOf(anim.theory) };
      anim.racers.forEach(function (r) {
        a.racers.push({ label: r.label, color: r.color, steps: r.steps, x: decode(r.x), y: decode(r.y),
                        loss: decode(r.loss), diverged: r.diverged, outcome: r.outcome,
                        outcomeStep: r.outcomeStep });
      });
      if (anim.swarm) {
        var s = anim.swarm;
        a.swarm = { n: s.n, color: s.color, steps: s.steps, x: decode(s.x), y: decode(s.y),
                    loss: decode(s.loss), share: s.share, boltzShare: s.boltzShare };
      }
      a.ballSteps = a.racers.length ? a.racers[0].steps : (a.swarm ? a.swarm.steps : [0]);
      this.anim = a;
      setText("arrow-note", "");  // until this run's arrows come (never, for a swarm)
      if (this.pendingArrows && this.pendingArrows.run === a.run) this.setArrows(a, this.pendingArrows);
      this.step = 0;
      this.overlayOn = false;
      this.slow = {};
      this.stats.runs += 1;
      this.stats.loaded[a.run] = performance.now();
      delete this.stats.drawn[a.run];  // a run shown again (back to an earlier state) is drawn again
      if (this.autoplay) this.play(true); else { this.playing = false; this.kick(); }
    },

    loadArrows: function (data) {
      if (!data || !data.run) return;
      if (!this.anim || this.anim.run !== data.run) { this.pendingArrows = data; return; }
      this.setArrows(this.anim, data);
      if (!this.playing) this.kick();
    },

    setArrows: function (a, ar) {
      // an adaptive rule's theory reads its running scale: it comes with the arrows (the probed run)
      if (ar.theory) a.theory = theoryOf(ar.theory);
      a.arrows = { scale: ar.scale, note: ar.note };
      ["origin", "force", "coast", "update", "lookahead", "adaptive"].forEach(function (k) {
        if (ar[k]) a.arrows[k] = decode(ar[k]);
      });
      setText("arrow-note", ar.note || "");
    },

    play: function (fromStart) {
      if (!this.anim) return;
      this.stats.plays = (this.stats.plays || 0) + 1;
      if (fromStart || this.step >= this.anim.playEnd) this.step = 0;
      if (this.speed === 0) { this.step = this.anim.playEnd; this.playing = false; this.kick(); return; }
      this.playing = true;
      this.lastTs = null;
      this.stats.frames = [];
      this.stats.frameCost = [];
      this.status();  // "playing" from now, not from the next frame (a "finished" must be this play's)
      this.kick();
    },

    pause: function () { this.playing = false; this.kick(); },

    // one optimizer step forward (every step is recorded up to the server's frame cap; beyond it the
    // next recorded frame, and the step text says how far apart the frames are)
    stepOnce: function () {
      if (!this.anim) return;
      this.playing = false;
      var steps = this.anim.ballSteps, last = steps[steps.length - 1];
      var next = Math.floor(this.step) + 1;
      var i = frameAt(steps, this.step);
      if (i + 1 < steps.length && steps[i + 1] > next) next = steps[i + 1];
      this.step = Math.min(next, last);
      this.kick();
    },

    // the progress bar spans the whole run (its step budget)
    seek: function (fraction) {
      if (!this.anim) return;
      this.playing = false;
      this.step = Math.round(Math.max(0, Math.min(1, fraction)) * this.anim.maxStep);
      this.kick();
    },

    kick: function () {
      if (this.scheduled) return;
      this.scheduled = true;
      var self = this;
      requestAnimationFrame(function (ts) { self.scheduled = false; self.tick(ts); });
    },

    listen: function (gd) {
      if (HEARD.has(gd) || !gd.on) return;
      HEARD.add(gd);
      gd.on("plotly_click", function (data) {
        var e = data && data.event, ax = axes(gd), x, y;
        var drag = gd.querySelector(".draglayer .nsewdrag");
        if (e && drag && ax && ax.y) {
          var box = drag.getBoundingClientRect();  // the plot area on the screen
          x = ax.xOf((e.clientX - box.left) * ax.area.w / box.width);
          y = ax.yOf((e.clientY - box.top) * ax.area.h / box.height);
        } else if (data && data.points && data.points.length) {
          x = data.points[0].x; y = data.points[0].y;
        }
        if (isFinite(x) && isFinite(y) && window.dash_clientside.set_props) {
          window.dash_clientside.set_props("map-click", { data: { x: x, y: y, t: Date.now() } });
        }
      });
    },

    tick: function (ts) {
      var a = this.anim;
      if (!a) return;
      var gd = graph("map-graph");
      if (!mapReady(gd, a)) { this.lastTs = null; this.kick(); return; }  // figure not drawn yet
      this.listen(gd);
      var t0 = performance.now();
      if (this.playing) {
        if (this.lastTs !== null) {
          var dt = Math.min(0.1, (ts - this.lastTs) / 1000);
          this.step = Math.min(a.playEnd, this.step + this.speed * dt);
        }
        this.lastTs = ts;
        if (this.step >= a.playEnd) this.playing = false;
      }
      if (this.playing) {
        if (!this.overlayOn) this.startOverlay(gd);
        this.drawOverlay(gd, this.step);
        this.renderText(this.step);
        this.slowViews(false);
        this.stats.frames.push(ts);
        this.stats.frameCost.push(performance.now() - t0);
      } else {
        this.settle(gd);
      }
      // the first frame that shows this run on the map, in the figure or on the canvas over it (the
      // latency benchmark reads it)
      if (this.stats.drawn[a.run] === undefined) {
        this.stats.drawn[a.run] = performance.now();
        this.requestViews(a.run);
      }
      this.status();
      if (this.playing) this.kick();
    },

    // --- at rest: the figures' own traces hold the current step -----------------------------------
    settle: function (gd) {
      var s = this.step;
      this.restyleMap(gd, s);
      this.unhide();
      this.clearOverlay(gd);
      this.renderText(s);
      this.slowViews(true);
    },

    startOverlay: function (gd) {
      // hide the moving traces of the figure; the canvas draws them while playing
      var meta = gd.layout.meta, idx = [], empty = { x: [], y: [] };
      meta.trail.concat(meta.ball).forEach(function (i) { idx.push(i); });
      Object.keys(meta.arrows || {}).forEach(function (k) { idx.push(meta.arrows[k]); });
      if (meta.swarm !== null && meta.swarm !== undefined) idx.push(meta.swarm);
      // one gap point, not an empty trace: an empty trace would drop out of the legend
      idx.forEach(function () { empty.x.push([null]); empty.y.push([null]); });
      this.overlayOn = true;
      if (meta.run !== this.anim.run && (meta.swarm === null || meta.swarm === undefined)) {
        // a new run in the figure of the last one: hide the figure's moving traces for now (their SVG
        // groups: no redraw), so the first frame (the canvas, ghost paths included) costs no Plotly
        // call; the figure takes the run in the next task, after that frame is painted
        this.unhide();
        var nodes = idx.concat(meta.ghost || []).map(function (i) { return traceNode(gd, i); });
        this.hidden = nodes.filter(Boolean);
        this.hidden.forEach(function (el) { el.style.display = "none"; });
        var self = this, run = this.anim.run;
        setTimeout(function () {
          var g = graph("map-graph");
          if (self.anim && self.anim.run === run && self.playing && mapReady(g, self.anim) &&
              g.layout.meta.run !== run) {
            self.updateMap(g, empty, idx);
          }
          if (!self.anim || self.anim.run === run) self.unhide();
        }, 0);
        return;
      }
      this.updateMap(gd, empty, idx);
    },

    // ask the server for the run's slower views (3-D surface, curves, histogram, arrows) after the
    // map shows its first frame: in the next task, so that this frame is painted first
    requestViews: function (run) {
      var self = this;
      setTimeout(function () {
        if (self.anim && self.anim.run === run && window.dash_clientside.set_props) {
          window.dash_clientside.set_props("views-request", { data: run });
          self.awaitViews(run);
        }
      }, 0);
    },

    // the slower views come after the first frame, maybe after the player has stopped: once they are
    // drawn, show the current step in them (while playing, the frames do it)
    awaitViews: function (run) {
      var self = this, tries = 0;
      function poll() {
        if (!self.anim || self.anim.run !== run) return;
        if (ready(graph("surface-graph"), run) || ready(graph("loss-graph"), run)) {
          if (!self.playing) { self.renderText(self.step); self.slowViews(true); }
          if (ready(graph("surface-graph"), run) && ready(graph("loss-graph"), run)) return;
        }
        if (++tries < 600) setTimeout(poll, 50);
      }
      setTimeout(poll, 50);
    },

    unhide: function () {
      (this.hidden || []).forEach(function (el) { el.style.display = ""; });
      this.hidden = null;
    },

    // one Plotly call for the map's moving traces `idx` (update: {x: [...], y: [...]}), which also puts
    // this run into the figure when it still holds another one: the faint whole paths, the names, meta.run
    updateMap: function (gd, update, idx) {
      var a = this.anim, meta = gd.layout.meta, layout = {};
      if (meta.run !== a.run) {
        var unset = function (v) { return v === undefined ? null : v; };  // null: the default
        update.name = idx.map(function (i) { return gd.data[i].name; });
        update.hovertemplate = idx.map(function (i) { return unset(gd.data[i].hovertemplate); });
        var put = function (i, name, hover, x, y) {
          var j = idx.indexOf(i);
          if (j < 0) {
            if (x === undefined) return;
            j = idx.push(i) - 1;
            update.x.push(x); update.y.push(y);
            update.name.push(null); update.hovertemplate.push(null);
          }
          update.name[j] = name;
          update.hovertemplate[j] = unset(hover);
        };
        a.racers.forEach(function (r, k) {
          var g = meta.ghost ? meta.ghost[k] : undefined;
          if (g !== undefined) put(g, r.label + " (path)", gd.data[g].hovertemplate, r.x, r.y);
          if (meta.trail[k] !== undefined) put(meta.trail[k], r.label, gd.data[meta.trail[k]].hovertemplate);
          if (meta.ball[k] !== undefined) {
            put(meta.ball[k], r.label + " (ball)", r.label + "<br>(%{x:.4f}, %{y:.4f})<extra></extra>");
          }
        });
        layout.meta = Object.assign({}, meta, { run: a.run });
      }
      if (idx.length) Plotly.update(gd, update, layout, idx);
    },

    clearOverlay: function (gd) {
      var c = (LAYERS.get(gd) || {}).canvas;
      if (c) c.getContext("2d").clearRect(0, 0, c.width, c.height);
      this.overlayOn = false;
    },

    restyleMap: function (gd, s) {
      var a = this.anim, meta = gd.layout.meta;
      var update = { x: [], y: [] }, idx = [];
      function put(i, x, y) { idx.push(i); update.x.push(x); update.y.push(y); }
      a.racers.forEach(function (r, k) {
        var i = frameAt(r.steps, s);
        if (meta.trail[k] !== undefined) put(meta.trail[k], r.x.slice(0, i + 1), r.y.slice(0, i + 1));
        if (meta.ball[k] !== undefined) put(meta.ball[k], [r.x[i]], [r.y[i]]);
      });
      var arrows = this.arrowsAt(s);
      Object.keys(meta.arrows || {}).forEach(function (k) {
        var v = arrows && arrows[k];
        if (!v) put(meta.arrows[k], [null], [null]);
        else if (k === "lookahead") put(meta.arrows[k], [v[0]], [v[1]]);
        else put(meta.arrows[k], [v[0], v[2]], [v[1], v[3]]);
      });
      var sw = a.swarm;
      if (sw && meta.swarm !== null && meta.swarm !== undefined) {
        var si = frameAt(sw.steps, s);
        put(meta.swarm, sw.x.slice(si * sw.n, (si + 1) * sw.n), sw.y.slice(si * sw.n, (si + 1) * sw.n));
      }
      this.updateMap(gd, update, idx);
    },

    // the ball's arrows at step s: {kind: [x0, y0, x1, y1]} and lookahead [x, y]: the step that led to
    // the frame (the engine's update_parts probe), drawn from where it started; none where not finite
    arrowsAt: function (s) {
      var a = this.anim;
      if (!a.arrows || !a.racers.length) return null;
      var r0 = a.racers[0], i = frameAt(r0.steps, s), out = {};
      var o = a.arrows.origin, x0 = o ? o[2 * i] : r0.x[i], y0 = o ? o[2 * i + 1] : r0.y[i];
      if (!isFinite(x0) || !isFinite(y0)) return out;
      ["force", "coast", "update"].forEach(function (k) {
        var v = a.arrows[k];
        if (v && isFinite(v[2 * i]) && isFinite(v[2 * i + 1])) out[k] = [x0, y0, x0 + v[2 * i], y0 + v[2 * i + 1]];
      });
      var la = a.arrows.lookahead;
      if (la && isFinite(la[2 * i]) && isFinite(la[2 * i + 1])) out.lookahead = [la[2 * i], la[2 * i + 1]];
      return out;
    },

    // --- while playing: the canvas over the map --------------------------------------------------
    drawOverlay: function (gd, s) {
      var a = this.anim, meta = gd.layout.meta, ax = axes(gd);
      var canvas = ax && ax.y && overlay(gd, "canvas", ax.area);
      if (!canvas) return;
      var ctx = canvas.getContext("2d"), dpr = +canvas.dataset.dpr, size = ax.area;
      var xa = { l2p: ax.x }, ya = { l2p: ax.y };  // data -> px in the plot area
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, size.w, size.h);
      ctx.save();
      ctx.beginPath(); ctx.rect(0, 0, size.w, size.h); ctx.clip();
      var sw = a.swarm;
      if (sw && meta.swarm !== null && meta.swarm !== undefined && !hidden(gd, meta.swarm)) {
        var si = frameAt(sw.steps, s), base = si * sw.n;
        ctx.globalAlpha = 0.8;
        ctx.fillStyle = sw.color;
        ctx.beginPath();
        for (var b = 0; b < sw.n; b++) {
          var px = xa.l2p(sw.x[base + b]), py = ya.l2p(sw.y[base + b]);
          if (!isFinite(px) || !isFinite(py)) continue;
          ctx.moveTo(px + 2.6, py);
          ctx.arc(px, py, 2.6, 0, 2 * Math.PI);
        }
        ctx.fill();
        ctx.globalAlpha = 1;
      }
      if (meta.run !== a.run) {
        // the figure still holds the last run: draw this one's whole paths faintly, as the figure will
        a.racers.forEach(function (r, k) {
          var g = meta.ghost ? meta.ghost[k] : undefined;
          if (g === undefined || hidden(gd, g)) return;
          ctx.save();
          ctx.globalAlpha = 0.45;
          ctx.strokeStyle = r.color;
          ctx.lineWidth = 1.2;
          ctx.setLineDash([3, 3]);
          ctx.beginPath();
          ctx.moveTo(xa.l2p(r.x[0]), ya.l2p(r.y[0]));
          for (var j = 1; j < r.x.length; j++) ctx.lineTo(xa.l2p(r.x[j]), ya.l2p(r.y[j]));
          ctx.stroke();
          ctx.restore();
        });
      }
      a.racers.forEach(function (r, k) {
        if (meta.trail[k] === undefined || hidden(gd, meta.trail[k])) return;
        var i = frameAt(r.steps, s);
        ctx.strokeStyle = r.color;
        ctx.lineWidth = 2.6;
        ctx.lineJoin = "round";
        ctx.beginPath();
        ctx.moveTo(xa.l2p(r.x[0]), ya.l2p(r.y[0]));
        for (var j = 1; j <= i; j++) ctx.lineTo(xa.l2p(r.x[j]), ya.l2p(r.y[j]));
        ctx.stroke();
      });
      var arrows = this.arrowsAt(s);
      if (arrows) {
        ["force", "coast", "update"].forEach(function (k) {
          var v = arrows[k];
          if (!v || meta.arrows[k] === undefined || hidden(gd, meta.arrows[k])) return;
          var x0 = xa.l2p(v[0]), y0 = ya.l2p(v[1]), x1 = xa.l2p(v[2]), y1 = ya.l2p(v[3]);
          var len = Math.hypot(x1 - x0, y1 - y0);
          if (!(len > 0.5)) return;
          var ux = (x1 - x0) / len, uy = (y1 - y0) / len, head = Math.min(11, 0.6 * len + 4);
          ctx.strokeStyle = ctx.fillStyle = ARROW_COLORS[k];
          ctx.lineWidth = 3;
          ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x1 - ux * head * 0.8, y1 - uy * head * 0.8); ctx.stroke();
          ctx.beginPath(); ctx.moveTo(x1, y1);
          ctx.lineTo(x1 - ux * head - uy * head * 0.5, y1 - uy * head + ux * head * 0.5);
          ctx.lineTo(x1 - ux * head + uy * head * 0.5, y1 - uy * head - ux * head * 0.5);
          ctx.closePath(); ctx.fill();
        });
        if (arrows.lookahead && meta.arrows.lookahead !== undefined && !hidden(gd, meta.arrows.lookahead)) {
          var lx = xa.l2p(arrows.lookahead[0]), ly = ya.l2p(arrows.lookahead[1]);
          ctx.strokeStyle = ARROW_COLORS.coast; ctx.lineWidth = 2;
          ctx.beginPath(); ctx.arc(lx, ly, 6, 0, 2 * Math.PI); ctx.stroke();
          ctx.beginPath(); ctx.moveTo(lx - 4, ly - 4); ctx.lineTo(lx + 4, ly + 4);
          ctx.moveTo(lx + 4, ly - 4); ctx.lineTo(lx - 4, ly + 4); ctx.stroke();
        }
      }
      a.racers.forEach(function (r, k) {
        if (meta.ball[k] === undefined || hidden(gd, meta.trail[k])) return;
        var i = frameAt(r.steps, s), px = xa.l2p(r.x[i]), py = ya.l2p(r.y[i]);
        ctx.fillStyle = r.color; ctx.strokeStyle = "#ffffff"; ctx.lineWidth = 2;
        ctx.beginPath(); ctx.arc(px, py, 7.5, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
      });
      ctx.restore();
    },

    // --- the slower views, on a time budget while playing -----------------------------------------
    slowViews: function (force) {
      var self = this, now = performance.now();
      var views = [["surface", function () { self.renderSurface(self.step); }]];
      if (this.anim.swarm) views.push(["histogram", function () { self.renderHistogram(self.step); }]);
      for (var v = 0; v < views.length; v++) {
        var name = views[v][0], slot = this.slow[name] || (this.slow[name] = { next: 0 });
        if (!force && now < slot.next) continue;
        var t0 = performance.now();
        views[v][1]();
        var cost = performance.now() - t0;
        // a swarm's 3-D view (its WebGL scene redraws for many frames after a restyle) at most once a
        // second while playing: more often halves the map's frame rate (59.5 -> 29.9 frames/s)
        var floor = name === "surface" && this.anim.swarm ? SWARM_SURFACE_MS : 150;
        slot.next = performance.now() + Math.max(floor, SLOW_SHARE * cost);
        if (!force) break;  // at most one slow view per frame while playing
      }
    },

    renderSurface: function (s) {
      var a = this.anim, gd = graph("surface-graph");
      if (!ready(gd, a.run)) return;
      var meta = gd.layout.meta, zmax = meta.zmax, lift = meta.lift, box = meta.box;
      var update = { x: [], y: [], z: [] }, idx = [];
      // points lifted onto the surface; outside the box they become gaps
      function lifted(xs, ys, zs, from, to) {
        var n = to - from, x = new Array(n), y = new Array(n), z = new Array(n);
        for (var j = from; j < to; j++) {
          var inside = xs[j] >= box[0] && xs[j] <= box[1] && ys[j] >= box[2] && ys[j] <= box[3];
          x[j - from] = inside ? xs[j] : null;
          y[j - from] = inside ? ys[j] : null;
          z[j - from] = inside ? Math.min(zs[j], zmax) + lift : null;
        }
        return [x, y, z];
      }
      function put(i, p) { idx.push(i); update.x.push(p[0]); update.y.push(p[1]); update.z.push(p[2]); }
      a.racers.forEach(function (r, k) {
        var i = frameAt(r.steps, s);
        put(meta.trail[k], lifted(r.x, r.y, r.loss, 0, i + 1));
        put(meta.ball[k], lifted(r.x, r.y, r.loss, i, i + 1));
      });
      var sw = a.swarm;
      if (sw && meta.swarm !== null && meta.swarm !== undefined) {
        var si = frameAt(sw.steps, s);
        put(meta.swarm, lifted(sw.x, sw.y, sw.loss, si * sw.n, (si + 1) * sw.n));
      }
      if (idx.length) Plotly.restyle(gd, update, idx);
    },

    renderHistogram: function (s) {
      var gd = graph("swarm-graph"), sw = this.anim.swarm;
      if (!sw || !ready(gd, this.anim.run) || gd.layout.meta.hist === null) return;
      var si = frameAt(sw.steps, s);
      Plotly.restyle(gd, { x: [sw.x.slice(si * sw.n, (si + 1) * sw.n)] }, [gd.layout.meta.hist]);
    },

    renderCursor: function (id, s) {
      var gd = graph(id);
      if (!ready(gd, this.anim.run)) return;
      var ax = axes(gd), line = ax && overlay(gd, "cursor", ax.area);
      if (!line) return;
      var px = ax.x(s);
      line.style.left = (ax.area.l + px) + "px";
      line.style.display = isFinite(px) ? "block" : "none";
    },

    // --- text: player, leaderboard, theory --------------------------------------------------------
    status: function () {
      var a = this.anim;
      if (!a) return;
      var done = this.step >= a.playEnd;
      var el = document.getElementById("player-status");
      var text = this.playing ? "playing" : (done ? "finished" : "paused");
      if (el) { el.textContent = text; el.dataset.run = a.run; el.dataset.state = text; }
    },

    renderText: function (s) {
      var a = this.anim;
      var settled = a.playEnd < a.maxStep && s >= a.playEnd;
      var thinned = a.frameEvery > 1 ? " · a frame every " + a.frameEvery + " steps" : "";
      setText("frame-text", "step " + Math.floor(s) + " / " + a.maxStep + (settled ? " · all settled" : "") + thinned);
      var fill = document.getElementById("progress-fill");
      if (fill) fill.style.width = (a.maxStep ? Math.min(100, 100 * s / a.maxStep) : 100).toFixed(2) + "%";
      this.renderCursor("loss-graph", s);
      this.renderCursor("energy-graph", s);
      var rows = a.racers.map(function (r, k) {
        var i = frameAt(r.steps, s), gone = r.diverged && s >= r.outcomeStep;
        return { k: k, loss: r.loss[i], bad: gone || !isFinite(r.loss[i]) };
      });
      rows.forEach(function (row) { setText("lb-loss-" + row.k, row.bad ? "diverged" : fmt(row.loss, 5)); });
      // the banner: where each ball is at the shown step, before the run's final result
      a.racers.forEach(function (r, k) {
        var now;
        if (r.outcome === "moving") now = "step " + Math.floor(s) + ", rolling · ";
        else if (s < r.outcomeStep) now = "step " + Math.floor(s) + ", on its way · ";
        else now = "";
        setText("outcome-now-" + k, now);
      });
      var sw = a.swarm;
      if (sw && sw.share) setText("swarm-share-now", (100 * sw.share[frameAt(sw.steps, s)]).toFixed(1) + "%");
      this.renderTheory(s);
    },

    // the theory at the ball, in words: every number comes with the run (the engine's Hessian, the
    // rule's edge, their ratios: descent.arena.readout); the page only picks the frame and words
    renderTheory: function (s) {
      var a = this.anim, th = a.theory;
      if (!th) {
        // an adaptive rule's theory comes with the ball's probed run (a moment after its first frame),
        // a swarm's with the run: until then the panel shows no other run's numbers
        ["theory-eigs", "theory-eigs-words", "theory-kappa", "theory-kappa-words", "theory-edge", "theory-lr",
         "edge-warning", "adaptive-scale"].forEach(function (id) { setText(id, ""); });
        setText("theory-step", "step " + Math.floor(s));
        return;
      }
      var i = Math.min(frameAt(a.ballSteps, s), th.lamMax.length - 1);
      var lo = th.lamMin[i], hi = th.lamMax[i];
      var shape = th.shapes[th.shape ? th.shape[i] : 0] || "unknown";
      setText("theory-step", "step " + Math.floor(s));
      if (shape === "unknown") {
        setText("theory-eigs", "—");
        setText("theory-eigs-words", "no curvature here (the ball has left the map or diverged)");
      } else {
        setText("theory-eigs", "steepest " + fmt(hi) + ", flattest " + fmt(lo));
        setText("theory-eigs-words", {
          bowl: "the hill curves up in every direction: a valley floor around the ball",
          "flat-bowl": "one direction is flat (zero curvature): the slope there does not change, the ball " +
            "moves along it at a steady pace",
          saddle: "the hill curves up one way and down the other: a saddle, the ball leaves it along " +
            "the downward direction",
          "flat-ridge": "one direction is flat and the other curves down: the ball slides off sideways",
          hilltop: "the hill curves down in every direction: a hilltop, any push sends the ball away",
          flat: "flat in every direction: no curvature, only the slope moves the ball",
        }[shape] || "");
      }
      var k = th.kappa ? th.kappa[i] : NaN, kappa, kwords;
      if (isFinite(k)) {
        kappa = fmt(k, 4);
        // the thresholds of descent.arena.readout.KAPPA_WORDS
        kwords = "steepest ÷ flattest: " + (k < 2 ? "nearly round, one lr suits every direction"
          : k < 10 ? "mildly stretched" : k < 100 ? "stretched; an lr safe across it is slow along it"
          : "a narrow valley; an lr safe across it crawls along it (momentum or an adaptive rule helps)");
      } else {
        kappa = {
          "flat-bowl": "flat direction: no finite condition number",
          saddle: "saddle: no finite condition number (negative curvature)",
          "flat-ridge": "no finite condition number (negative and zero curvature)",
          hilltop: "hilltop: no finite condition number (negative curvature)",
          flat: "flat: no condition number",
        }[shape] || "—";
        kwords = {
          "flat-bowl": "κ = steepest ÷ flattest is finite only where the hill curves up both ways; along " +
            "the flat direction only the slope moves the ball (momentum speeds that up)",
          saddle: "κ = steepest ÷ flattest is finite only where the hill curves up both ways; here the " +
            "ball should leave along the downward direction (noise or momentum help it off)",
        }[shape] || (shape === "unknown" ? "" : "κ = steepest ÷ flattest is finite only where the hill " +
          "curves up both ways");
      }
      setText("theory-kappa", kappa);
      setText("theory-kappa-words", kwords);
      var badge = document.getElementById("saddle-badge");
      if (badge) {
        var label = shape === "saddle" ? "SADDLE" : (shape === "hilltop" ? "HILLTOP" : "");
        if (badge.textContent !== label) badge.textContent = label;
        badge.className = "badge saddle" + (label ? "" : " hidden");
      }
      var warn = "", lrWords = "";
      var marker = document.getElementById("edge-marker");
      if (th.edge && th.state === "fresh") {
        // an adaptive rule's edge reads its running scale, which no probe records: a fresh state's
        var ef = isFinite(th.edge[i]) ? th.edge[i] : null;
        setText("theory-edge", th.formula + " = " + (ef === null ? "none (no positive curvature here)" : fmt(ef)) +
          "  with a fresh state (" + th.where + " = eps: no probe records the running scale; " +
          "not this run's edge)");
        if (marker) marker.style.display = "none";
      } else if (th.edge && th.formula) {
        var e = isFinite(th.edge[i]) ? th.edge[i] : null;
        var ratio = th.lrRatio && isFinite(th.lrRatio[i]) ? th.lrRatio[i] : null;
        var none = th.state === "running" && i === 0 ? "— (the running scale forms with the first step)"
          : "none here (nothing curves up, so no step size overshoots)";
        setText("theory-edge", e === null ? none : th.formula + " = " + fmt(e));
        if (ratio !== null) {
          if (shape === "saddle" || shape === "hilltop" || shape === "flat-ridge") {
            lrWords = "your lr " + fmt(th.lr) + " is " + fmt(100 * ratio, 3) + "% of the edge across the " +
              "upward curve, but the hill curves down the other way: unstable along the downhill direction, " +
              "whatever the lr";
          } else if (ratio > 1) {
            lrWords = "your lr " + fmt(th.lr) + " is " + fmt(ratio, 3) + "× this edge: each step overshoots " +
              "across the steepest direction and the overshoot grows; lower the lr below " + fmt(e);
          } else if (ratio > 0.8) {
            lrWords = "your lr " + fmt(th.lr) + " is " + fmt(100 * ratio, 3) + "% of this edge: close; the " +
              "ball rattles across the steep direction before it settles";
          } else {
            lrWords = "your lr " + fmt(th.lr) + " is " + fmt(100 * ratio, 3) + "% of this edge: stable here, " +
              "every step shrinks the error; an lr above " + fmt(e) + " would overshoot";
          }
        } else if (e === null && th.state !== "running") {
          lrWords = "your lr " + fmt(th.lr) + ": no edge to compare it with at this point";
        }
        if (th.state === "running") {
          // an adaptive rule's edge on its running scale: along a direction that has had no gradient
          // yet the scale is eps and the edge tiny; shown, not warned about
          warn = "";
        } else if (ratio !== null && ratio > 1) {
          warn = "⚠ lr " + fmt(th.lr) + " > the edge at the ball " + fmt(e) + ": each step overshoots here";
        }
        if (marker && a.lrLog) {
          if (e === null) marker.style.display = "none";
          else {
            var pos = (Math.log10(e) - a.lrLog[0]) / (a.lrLog[1] - a.lrLog[0]);
            marker.style.display = "block";
            var pct = 100 * Math.max(0, Math.min(1, pos));  // the slider insets its ends by 8px
            marker.style.left = "calc(" + pct.toFixed(2) + "% + " + (8 - 0.16 * pct).toFixed(2) + "px)";
            marker.className = "edge-marker" + (ratio !== null && ratio > 1 ? " over" : "");
          }
        }
      } else {
        setText("theory-edge", th.rule + " declares no stability edge");
        if (marker) marker.style.display = "none";
      }
      setText("theory-lr", lrWords);
      setText("edge-warning", warn);
      var scale = "";
      if (a.arrows && a.arrows.adaptive && a.racers.length) {
        var i0 = frameAt(a.racers[0].steps, s);
        scale = "adaptive scale (its step ÷ the plain GD step) x: " + fmt(a.arrows.adaptive[2 * i0], 3) +
          ", y: " + fmt(a.arrows.adaptive[2 * i0 + 1], 3);
      }
      setText("adaptive-scale", scale);
    },
  };

  window.descentArena = DA;

  document.addEventListener("click", function (event) {
    var bar = event.target.closest && event.target.closest("#progress-bar");
    if (!bar) return;
    var box = bar.getBoundingClientRect();
    DA.seek((event.clientX - box.left) / box.width);
  });

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    arena: {
      load: function (anim) {
        DA.load(anim);
        return window.dash_clientside.no_update;
      },
      arrows: function (data) {
        DA.loadArrows(data);
        return window.dash_clientside.no_update;
      },
      control: function (play, pause, step, speed, options) {
        var triggered = (window.dash_clientside.callback_context.triggered || []).map(function (t) {
          return t.prop_id;
        });
        if (speed !== undefined && speed !== null) DA.speed = speed;
        DA.autoplay = (options || []).indexOf("autoplay") >= 0;
        if (triggered.indexOf("play-button.n_clicks") >= 0) DA.play(false);
        else if (triggered.indexOf("pause-button.n_clicks") >= 0) DA.pause();
        else if (triggered.indexOf("step-button.n_clicks") >= 0) DA.stepOnce();
        else if (triggered.indexOf("speed-dropdown.value") >= 0 && speed === 0) DA.play(false);
        return window.dash_clientside.no_update;
      },
      share: function (search) {
        if (!search) return window.dash_clientside.no_update;
        if (window.location.search !== search) {
          window.history.replaceState(null, "", window.location.pathname + search);
        }
        return window.location.origin + window.location.pathname + search;
      },
      png: function (n) {
        var gd = graph("map-graph");
        if (gd && n) Plotly.downloadImage(gd, { format: "png", filename: "descent-arena-map", scale: 2 });
        return window.dash_clientside.no_update;
      },
    },
  });
})();
