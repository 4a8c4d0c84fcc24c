// Chorale harmoniser panel (serve/harmonize.py): pick a held-out soprano, or upload a MIDI melody with
// "Your melody (MIDI)", and get four voices; play them with the transport, download them as a 4-track MIDI
// (one track per voice, soprano first) or as WAV (the page's Download WAV).
"use strict";
(function () {
  const T = window.tunesmith;
  if (!T) return;
  const $ = (id) => document.getElementById(id);
  const box = $("harmonize-panel");
  if (!box) return;
  const st = {model: null, sopranos: [], voices: null, inflight: false, uploaded: null, ours: 0};

  function el(tag, props, ...kids) {
    const e = Object.assign(document.createElement(tag), props || {});
    for (const k of kids) e.append(k);
    return e;
  }

  async function run() {
    const m = st.model;
    if (!m || st.inflight) return;
    const src = $("hz-source").value;
    const body = {model: m.name, tempo: Number($("tempo").value) || 80,
                  temperature: Number($("hz-temp").value), gibbs_steps: Number($("hz-steps").value)};
    const seed = $("seed") && $("seed-lock") && $("seed-lock").checked ? Number($("seed").value) : null;
    if (seed !== null && Number.isFinite(seed)) body.seed = seed;
    if (src === "piece") {
      if (!st.uploaded) { T.status("upload a MIDI melody first (Your melody (MIDI) above)", true); return; }
      body.notes = st.uploaded.notes.slice(0, 4000);
    } else {
      body.soprano = Number(src);
    }
    st.inflight = true;
    $("hz-go").disabled = true;
    T.status("harmonising\u2026 (Gibbs sampling, a few seconds)");
    try {
      const t0 = performance.now();
      const j = await T.api("/api/harmonize", body);
      if (T.model() !== m) return;
      st.voices = j.voices;
      st.ours++;
      T.setPiece({notes: j.notes, length: j.length, tempo: j.tempo, model: m.name, seed: j.seed, harmonized: st.ours});
      $("hz-midi").disabled = false;
      const counts = j.voices.map((v) => v.length).join(" / ");
      T.status(`four voices (notes S / A / T / B: ${counts}); seed ${j.seed}; server ${(j.ms / 1000).toFixed(1)} s, ` +
               `round trip ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } catch (e) {
      T.status(e.message, true);
    } finally {
      st.inflight = false;
      $("hz-go").disabled = false;
    }
  }

  async function downloadMidi() {
    if (!st.voices) return;
    try {
      const r = await T.api("/api/harmonize/midi", {voices: st.voices, tempo: Number($("tempo").value) || 80});
      const url = URL.createObjectURL(await r.blob());
      const a = el("a", {href: url, download: "chorale.mid"});
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 5000);
    } catch (e) { T.status(e.message, true); }
  }

  async function build(m) {
    st.model = m;
    st.voices = null;
    box.innerHTML = "";
    const show = !!(m && m.harmonize);
    box.classList.toggle("hidden", !show);
    if (!show) return;
    try { st.sopranos = await T.api("/api/harmonize/sopranos?model=" + encodeURIComponent(m.name)); }
    catch (e) { st.sopranos = []; T.status(e.message, true); }
    if (T.model() !== m) return;
    const sel = el("select", {id: "hz-source"});
    sel.setAttribute("aria-label", "melody to harmonise");
    sel.append(el("option", {value: "piece", textContent: "your melody (upload a MIDI above)"}));
    st.sopranos.forEach((s) => sel.append(el("option", {value: String(s.index),
      textContent: `held-out soprano: ${s.title} (${Math.round(s.beats)} beats)`})));
    sel.value = st.sopranos.length ? "0" : "piece";
    const temp = el("input", {id: "hz-temp", type: "range", min: "0.5", max: "1.5", step: "0.05", value: "1"});
    const tempOut = el("output", {textContent: "1.00"});
    temp.oninput = () => { tempOut.textContent = Number(temp.value).toFixed(2); };
    const steps = el("input", {id: "hz-steps", type: "number", min: "1", max: "200", step: "1",
                               value: String(m.gibbs_steps || 64)});
    const go = el("button", {id: "hz-go", type: "button", textContent: "Harmonise"});
    go.onclick = run;
    const midi = el("button", {id: "hz-midi", type: "button", textContent: "Download 4-voice MIDI", disabled: true});
    midi.onclick = downloadMidi;
    box.append(
      el("h2", {textContent: "Harmonise a melody in four voices"}),
      el("div", {className: "hz-row"}, el("label", {textContent: "Melody "}, sel), go, midi),
      el("div", {className: "hz-row"},
         el("label", {textContent: "Temperature ", title: "below 1: safer, more common chords"}, temp, tempOut),
         el("label", {textContent: " Gibbs steps ", title: "more steps: slower, more settled voice leading"}, steps)),
      el("p", {className: "help", textContent: "The melody is kept exactly as the soprano; alto, tenor and bass " +
        "are sampled by the model (Coconet-style Gibbs sampling). Play it with the transport; Download WAV " +
        "renders all four voices."}));
  }

  T.onModelChange((m) => { build(m); });
  T.onPieceChange((p) => {
    if (p && p.uploaded) {
      st.uploaded = {notes: p.notes.map((n) => ({p: n.p, s: n.s, d: n.d, v: n.v || 90})), name: p.uploaded};
      const sel = $("hz-source");
      if (sel) {
        sel.options[0].textContent = `your melody: ${p.uploaded}`;
        sel.value = "piece";
      }
    }
  });
})();
