// Audio panel (serve/audio.py): for a model that makes audio (GET /api/models "audio"), pick the instrument
// family and the pitch on a small keyboard, hear the note, download the WAV. A model that is not
// pitch-conditioned shows no keyboard: its pitch is its own, reported after each note.
// Uses only the window.tunesmith hooks of app.js; exposes its state as window.tunesmith.audio for tests.
"use strict";
(function () {
  const T = window.tunesmith;
  if (!T) return;
  const $ = (id) => document.getElementById(id);
  const box = $("audio-panel");
  if (!box) return;
  const NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"];
  const BLACK = new Set([1, 3, 6, 8, 10]);
  const noteName = (p) => NAMES[p % 12] + (Math.floor(p / 12) - 1);
  const st = {model: null, family: null, pitch: null, seed: null, made: null, url: null, bytes: 0, notes: 0,
              inflight: false};
  T.audio = st;

  function el(tag, props, ...kids) {
    const e = Object.assign(document.createElement(tag), props || {});
    for (const k of kids) e.append(k);
    return e;
  }

  function build(m) {
    const a = m.audio;
    box.innerHTML = "";
    st.model = m; st.family = a.families.length ? a.families[0] : null; st.made = null;
    st.pitch = a.pitch && a.pitch_range ? Math.max(a.pitch_range[0], Math.min(a.pitch_range[1], 60)) : null;
    const row = el("div", {className: "au-row"});
    if (a.families.length) {
      const sel = el("select", {id: "au-family", ariaLabel: "instrument family"});
      for (const f of a.families) sel.append(el("option", {value: f, textContent: f.replace("_", " ")}));
      sel.onchange = () => { st.family = sel.value; play(); };
      row.append(el("label", {}, "Instrument ", sel));
    }
    const out = el("output", {id: "au-pitch-out"});
    row.append(el("span", {}, "Pitch ", out));
    const go = el("button", {id: "au-play", textContent: "\u25B6 Play note", title: "make and play the note (a new take each time)"});
    go.onclick = () => play();
    const dl = el("a", {id: "au-download", textContent: "Download WAV", className: "button disabled",
                        ariaDisabled: "true"});
    row.append(go, dl);
    box.append(el("h2", {textContent: "Play a note"}), row);
    if (a.pitch && a.pitch_range) {
      const keys = el("div", {id: "au-keys", className: "au-keys", role: "group",
                              ariaLabel: `keyboard, MIDI ${a.pitch_range[0]}-${a.pitch_range[1]}`});
      for (let p = a.pitch_range[0]; p <= a.pitch_range[1]; p++) {
        const k = el("button", {className: "au-key" + (BLACK.has(p % 12) ? " black" : ""), title: `${noteName(p)} (MIDI ${p})`,
                                ariaLabel: `${noteName(p)}, MIDI ${p}`});
        k.dataset.pitch = p;
        if (p % 12 === 0) k.textContent = noteName(p);
        k.onclick = () => { st.pitch = p; play(); };
        keys.append(k);
      }
      box.append(keys);
    } else {
      box.append(el("p", {className: "au-note", textContent: "This model is not pitch-conditioned: it chooses the pitch itself; " +
                                                             "the pitch found in each note is reported below."}));
    }
    const player = el("audio", {id: "au-player", controls: true, preload: "auto"});
    box.append(player, el("p", {id: "au-info", className: "au-note", ariaLive: "polite"}));
    mark();
  }

  function mark() {
    const out = $("au-pitch-out");
    if (out) out.textContent = st.pitch === null ? "chosen by the model" : `${noteName(st.pitch)} (${st.pitch})`;
    document.querySelectorAll("#au-keys .au-key").forEach((k) =>
      k.classList.toggle("on", Number(k.dataset.pitch) === st.pitch));
  }

  async function play() {
    const m = st.model;
    if (!m || st.inflight) return;
    mark();
    const body = {model: m.name};
    if (st.family) body.family = st.family;
    if (st.pitch !== null) body.pitch = st.pitch;
    const lock = $("seed-lock"), seedBox = $("seed");
    if (lock && lock.checked && seedBox && seedBox.value !== "") body.seed = Number(seedBox.value);
    st.inflight = true;
    $("au-play").disabled = true;
    T.status(`${m.title || m.name}: making the note\u2026`);
    try {
      const t0 = performance.now();
      const r = await T.api("/api/audio/note", body);
      const blob = await r.blob();
      if (T.model() !== m) return;
      const h = (k) => r.headers.get(k);
      st.seed = Number(h("X-Tunesmith-Seed"));
      st.made = {family: h("X-Tunesmith-Family"), pitch: Number(h("X-Tunesmith-Pitch")), seed: st.seed};
      if (seedBox && !(lock && lock.checked)) seedBox.value = st.seed;
      if (st.url) URL.revokeObjectURL(st.url);
      st.url = URL.createObjectURL(blob);
      st.bytes = blob.size;
      const name = `tunesmith-${m.name}-${st.made.family || "note"}-${st.made.pitch}-${st.seed}.wav`;
      const dl = $("au-download");
      dl.href = st.url; dl.download = name; dl.classList.remove("disabled"); dl.removeAttribute("aria-disabled");
      const player = $("au-player");
      player.src = st.url;
      try { await player.play(); } catch (e) { /* autoplay refused: the player's own button plays it */ }
      st.notes++;
      const what = `${st.made.family || "note"} at ` + (st.made.pitch >= 0 ? `${noteName(st.made.pitch)} (MIDI ${st.made.pitch})` : "the model's own pitch");
      $("au-info").textContent = `${what}, seed ${st.seed}.`;
      T.status(`${m.title || m.name}: ${what}; seed ${st.seed}; server ${h("X-Tunesmith-Ms")} ms, ` +
               `round trip ${(performance.now() - t0).toFixed(0)} ms`);
    } catch (e) {
      T.status(e.message, true);
    } finally {
      st.inflight = false;
      $("au-play").disabled = false;
    }
  }

  T.onModelChange((m) => {
    const on = !!(m && m.kind === "audio" && m.audio);
    box.classList.toggle("hidden", !on);
    document.body.classList.toggle("audio-model", on);   // audio.css hides the note-only controls
    if (!on) { st.model = null; return; }
    build(m);
    T.status(`${m.title || m.name}: pick an instrument and a key to hear a note`);
  });
})();
