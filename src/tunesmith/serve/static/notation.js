// Sheet music of the piece on screen, next to the piano roll: ABC made by the server (POST /api/abc from
// serve/notation.py), engraved in the page by the bundled abcjs (static/vendor/abcjs-basic-min.js, MIT;
// nothing is fetched at run time), plus "Download ABC" and "Download MusicXML".
// Uses only the window.tunesmith hooks of app.js; exposes its state as window.tunesmith.notation for tests.
"use strict";
(function () {
  const ABCJS_VERSION = "6.7.2";
  const ts = window.tunesmith;
  const $ = (id) => document.getElementById(id);
  const box = $("notation");
  if (!ts || !box) return;
  const state = {abc: null, version: 0, rendered: 0, inflight: false, pending: null, error: null, abcjs: ABCJS_VERSION};
  ts.notation = state;

  function request(piece) {
    const m = ts.model();
    const body = {notes: piece.notes.map((n) => ({p: n.p, s: n.s, d: n.d, v: n.v || 90})),
                  tempo: Math.round(piece.tempo || 120)};
    // the piece's own metre (a conditioned piece: metre=3/4 in its condition), else the model's, else 4/4
    const cond = /(?:^|,)\s*met(?:re|er)\s*=\s*(\d{1,2}\/\d{1,2})/.exec(String(piece.condition || ""));
    const metre = piece.metre || (Array.isArray(piece.time_signature) ? piece.time_signature.join("/") : null) ||
                  (cond && cond[1]) || (m && m.metre);
    if (metre) body.metre = metre;
    if (piece.pickup !== undefined) body.pickup = piece.pickup;
    else if (m && m.kind === "lstm") body.pickup = "auto";   // a sampled melody has no bar lines: infer them
    const name = (m && (m.title || m.name)) || piece.model || "tunesmith";
    body.title = (name + (piece.seed !== undefined ? ` (seed ${piece.seed})` : "")).slice(0, 80);
    return body;
  }

  function message(text) {
    box.textContent = "";
    const p = document.createElement("p");
    p.className = "notation-msg";
    p.textContent = text;
    box.appendChild(p);
  }

  // One request in flight; a newer piece waits and replaces any older waiting one.
  async function show(piece) {
    if (state.inflight) { state.pending = piece; return; }
    state.inflight = true;
    const version = ts.state.version;
    try {
      if (!piece.notes.length) { state.abc = null; message("(no notes)"); }
      else {
        const r = await ts.api("/api/abc", request(piece));
        state.abc = await r.text();
        if (typeof ABCJS === "undefined") throw new Error("abcjs did not load");
        // abcjs re-flows the lines to the panel's width (about 6 bars a line on a wide screen)
        const width = Math.max(360, (box.clientWidth || 1000) - 30);
        ABCJS.renderAbc(box, state.abc, {add_classes: true, staffwidth: width, paddingleft: 0, paddingright: 0,
                                         wrap: {minSpacing: 1.6, maxSpacing: 2.6, preferredMeasuresPerLine: 6}});
      }
      state.error = null;
    } catch (e) {
      state.error = e.message;
      message("no sheet music for this piece: " + e.message);
    } finally {
      state.rendered = version;
      box.dataset.version = String(version);
      state.inflight = false;
      if (state.pending) { const p = state.pending; state.pending = null; show(p); }
    }
  }

  async function download(path, filename) {
    const piece = ts.piece();
    if (!piece) return;
    try {
      ts.status("preparing " + filename + "...");
      const r = await ts.api(path, request(piece));
      const url = URL.createObjectURL(await r.blob());
      const a = document.createElement("a");
      a.href = url; a.download = filename;
      document.body.appendChild(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 5000);
      ts.status("saved " + filename);
    } catch (e) {
      ts.status("error: " + e.message, true);
    }
  }

  $("download-abc").onclick = () => download("/api/abc", "tunesmith.abc");
  $("download-musicxml").onclick = () => download("/api/musicxml", "tunesmith.musicxml");
  ts.onPieceChange(show);
  if (ts.piece()) show(ts.piece());
})();
