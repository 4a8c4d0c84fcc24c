// tunesmith web app: our own code, no external scripts (works offline).
// State lives in one object (`app`), exposed read-only as window.tunesmith.state for tests and feature scripts.
"use strict";

const $ = (id) => document.getElementById(id);
const app = {
  models: [], model: null, piece: null, version: 0, sliders: [], touched: new Set(),
  inflight: false, pending: null, seed: null, seedLocked: false,
  ctx: null, master: null, voices: [], source: null, playing: false, playToken: 0,
  startBeat: 0, startTime: 0, playTempo: 120, position: 0, loop: false,
  sound: null,                 // what is sounding while playing: "gm" (the server's FluidSynth render) or "synth"
  gm: {key: null, buffer: null, blob: null, loading: null},  // the General MIDI render of the current piece
  renderRate: 0.05,            // seconds of server time per second of audio (learnt from each render)
  rendering: 0, lastMs: null, errors: 0, restoring: null,
};
const BEATS_PER_BAR = 4;
const NOTE_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"];
const noteName = (p) => NOTE_NAMES[p % 12] + (Math.floor(p / 12) - 1);

// ------------------------------------------------------------------------------------------ hooks for features
// Feature scripts (static/<feature>.js, loaded after this file) plug in through window.tunesmith:
//   tunesmith.model()          the current model entry from GET /api/models ({name, kind, title, ...}) or null
//   tunesmith.piece()          the piece on screen: {notes: [{p, s, d, v}], length (beats), tempo, model, seed, ...}
//   tunesmith.setPiece(piece)  show / play a piece you made (notes in beats; length optional); it becomes current
//   tunesmith.onPieceChange(cb)  cb(piece) after every new piece (generated, uploaded, or set by a feature);
//                              a melody the user uploaded has piece.uploaded = its file name (e.g. to harmonise it)
//   tunesmith.onModelChange(cb)  cb(model) after the user picks a model (and once at start)
//   tunesmith.api(path, body)  fetch JSON (POST when body given); throws Error(one short sentence) on a 4xx/5xx
//   tunesmith.status(msg, isError)  one line in the status bar
//   tunesmith.beat()           the playhead's position in beats (moves while playing)
//   tunesmith.setSliders(values)  move the VAE sliders (e.g. to an encoded melody) and redraw from them
//   tunesmith.state            the page's state object (read-only for features; tests read it)
const hooks = {piece: [], model: []};
function emit(kind, arg) { for (const cb of hooks[kind]) { try { cb(arg); } catch (e) { console.warn(e); } } }
window.tunesmith = {
  model: () => app.model,
  piece: () => app.piece,
  setPiece: (piece) => {
    const notes = (piece.notes || []).map((n) => ({p: n.p, s: n.s, d: n.d, v: n.v || 90}));
    const length = piece.length || notes.reduce((m, n) => Math.max(m, n.s + n.d), 0);
    setPiece({...piece, notes, length, tempo: piece.tempo || tempo(), model: piece.model || (app.model && app.model.name)});
  },
  onPieceChange: (cb) => { hooks.piece.push(cb); },
  onModelChange: (cb) => { hooks.model.push(cb); if (app.model) cb(app.model); },
  api: (path, body) => api(path, body).then((r) => (r.headers.get("content-type") || "").includes("json") ? r.json() : r),
  status: (msg, error) => status(msg, error),
  beat: () => currentBeat(),
  setSliders: (values) => { setSliders(values); app.touched.clear(); regenerate(); },
  state: app,
};

// ------------------------------------------------------------------------------------------ server calls
// Every refusal from the server is {"detail": one short sentence}; the page shows that sentence only.
async function api(path, body, raw) {
  let r;
  try {
    r = await fetch(path, body === undefined ? {} : raw ? {method: "POST", body} : {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  } catch (e) {
    throw new Error("the server did not answer (is tunesmith serve still running?)");
  }
  if (!r.ok) {
    let msg = `the server refused (${r.status})`;
    try {
      const j = await r.json();
      if (typeof j.detail === "string") msg = j.detail;
      else if (Array.isArray(j.detail) && j.detail.length) msg = j.detail.map((d) => d.msg || String(d)).join("; ");
    } catch (e) {}
    throw new Error(msg.length > 160 ? msg.slice(0, 159) + "\u2026" : msg);
  }
  return r;
}

function status(msg, error) {
  const s = $("status");
  s.textContent = msg;
  s.title = msg;
  s.classList.toggle("error", !!error);
  if (error) app.errors++;
}

function tempo() { return Number($("tempo").value); }

function stepsFor(m) {         // LSTM: the length in bars (primer included) as a number of steps to generate
  const step = m.step || 0.25, bars = Math.max(1, Math.min(64, Number($("bars").value) || 8));
  const primed = $("primer").value.trim().split(/\s+/).filter(Boolean).length;
  return Math.max(4, Math.min(2000, Math.round(bars * BEATS_PER_BAR / step) - primed));
}

function request(intent) {
  const m = app.model, body = {model: m.name, tempo: tempo()};
  if (app.seedLocked) {
    if (intent && intent.fresh) { app.seed = randomSeed(); $("seed").value = app.seed; }
    if (app.seed !== null) body.seed = app.seed;
  }
  if (m.kind === "vae") {
    if (!intent || !intent.fresh) body.sliders = app.sliders.slice();
    if (m.labels && m.labels.length) body.condition = $("condition").value;
    if (m.output !== "softmax") body.threshold = Number($("threshold").value);
  } else if (m.kind === "lstm") {
    const p = $("primer").value.trim();
    if (p) body.primer = p;
    body.temperature = Number($("temperature").value);
    body.steps = stepsFor(m);
    if (m.conditions) {   // a conditioned model: the picked labels ("any" leaves a kind free) and the guidance
      const picked = [...document.querySelectorAll("#lstm-cond-selects select")].filter((s) => s.value)
        .map((s) => `${s.dataset.kind}=${s.value}`);
      if (picked.length) body.condition = picked.join(",");
      body.guidance = Number($("guidance").value);
    }
  }
  return body;
}

function randomSeed() { return Math.floor(Math.random() * 2147483647); }

// One request in flight; gestures made meanwhile are kept (pending) and sent when it answers, so the latest
// slider values always win. `intent.fresh`: a new piece (VAE: random sliders; others: a new seed unless locked).
async function regenerate(intent) {
  if (!app.model || app.model.kind === "audio") return;   // audio models: the audio panel (audio.js) asks itself
  if (intent && intent.fresh && app.model.kind === "vae") app.touched.clear();  // moves after this click win
  if (app.inflight) {
    app.pending = {fresh: !!((app.pending && app.pending.fresh) || (intent && intent.fresh))};
    return;
  }
  app.inflight = true;
  const model = app.model, t0 = performance.now(), body = request(intent);
  saveUrl();
  const slow = setTimeout(() => status(`${model.title || model.name}: generating\u2026`), 300);
  try {
    const r = await api("/api/generate", body);
    const piece = await r.json();
    if (app.model !== model) return;          // the user picked another model meanwhile
    if (model.kind === "vae" && !body.sliders && piece.sliders) {
      // random sliders chosen by the server: take them, except the ones moved since the click
      const mine = app.sliders.slice();
      setSliders(piece.sliders.map((v, i) => app.touched.has(i) ? mine[i] : v));
      if (app.touched.size) app.pending = app.pending || {};
    }
    app.seed = piece.seed;
    $("seed").value = piece.seed;
    setPiece(piece);
    app.lastMs = performance.now() - t0;
    status(`${model.title || model.name}: ${piece.notes.length} notes, ${bars(piece.length)} bars; ` +
           `server ${piece.ms.toFixed(0)} ms, round trip ${app.lastMs.toFixed(0)} ms` + (piece.truncated ? " (cut short)" : ""));
  } catch (e) {
    status(e.message, true);
  } finally {
    clearTimeout(slow);
    app.inflight = false;
    if (app.pending) { const p = app.pending; app.pending = null; regenerate(p); }
    else saveUrl();
  }
}

const bars = (beats) => Math.ceil(beats / BEATS_PER_BAR - 1e-6);

function setPiece(piece) {
  const wasPlaying = app.playing, pos = currentBeat();
  app.piece = piece;
  app.version++;
  document.body.dataset.version = app.version;
  summarise(piece);
  emit("piece", piece);
  if (wasPlaying) {               // hear the change at once: reschedule from where we are
    stopSound();
    app.playing = false;
    play(pos < piece.length ? pos : 0);
  } else {
    app.position = Math.min(app.position, piece.length);
    draw();
  }
}

// A text summary of the piece for screen readers (and anyone): bars, notes, range, opening.
function summarise(piece) {
  const n = piece.notes;
  if (!n.length) { $("summary").textContent = "The piece is silent."; return; }
  const ps = n.map((x) => x.p), lo = Math.min(...ps), hi = Math.max(...ps);
  const counts = {};
  for (const x of n) { const d = Math.round(x.d * 4) / 4; counts[d] = (counts[d] || 0) + 1; }
  const common = Number(Object.keys(counts).sort((a, b) => counts[b] - counts[a])[0]);
  const names = {0.25: "sixteenth", 0.5: "eighth", 0.75: "dotted eighth", 1: "quarter", 1.5: "dotted quarter",
                 2: "half", 3: "dotted half", 4: "whole"};
  const opening = n.slice(0, 8).map((x) => noteName(x.p)).join(" ");
  $("summary").textContent = `${bars(piece.length)} bars, ${n.length} notes from ${noteName(lo)} to ${noteName(hi)}` +
    (names[common] ? `, mostly ${names[common]} notes` : "") + `; it opens ${opening}` +
    (piece.seed !== undefined && piece.seed !== null ? `. Seed ${piece.seed}.` : ".");
}

// ------------------------------------------------------------------------------------------ controls
function buildModels() {
  const sel = $("model");
  sel.innerHTML = "";
  for (const m of app.models) {
    const o = document.createElement("option");
    o.value = m.name; o.textContent = m.title || m.name;
    sel.appendChild(o);
  }
  sel.onchange = () => chooseModel(sel.value);
}

function chooseModel(name, restore) {
  stop();
  app.model = app.models.find((m) => m.name === name) || app.models[0];
  const m = app.model;
  $("model").value = m.name;
  $("model-desc").textContent = m.description + (m.trained_steps ? ` (${m.trained_steps} training steps)` : "");
  $("kind").textContent = m.kind === "vae" ? "latent sliders" : m.kind === "lstm" ? "continues a melody" :
    m.kind === "audio" ? "plays a note (audio panel below)" : "sampler";
  document.querySelectorAll(".vae-only").forEach((el) => el.classList.toggle("hidden", m.kind !== "vae"));
  document.querySelectorAll(".lstm-only").forEach((el) => el.classList.toggle("hidden", m.kind !== "lstm"));
  document.querySelectorAll(".not-vae").forEach((el) => el.classList.toggle("hidden", m.kind === "vae"));
  $("tempo").value = m.tempo || 120;
  if (m.kind === "vae") {
    buildSliders(m.sliders, m.slider_range);
    const c = $("condition");
    c.innerHTML = "";
    for (const l of m.labels || []) { const o = document.createElement("option"); o.value = l; o.textContent = l; c.appendChild(o); }
    $("condition-wrap").classList.toggle("hidden", !(m.labels && m.labels.length));
    $("threshold-wrap").classList.toggle("hidden", m.output === "softmax");
    $("threshold").value = m.threshold || 0.5;
    $("vae-length").textContent = `${bars(m.beats)} bars`;
  } else if (m.kind === "lstm") {
    $("primer").value = m.primer || "";
    $("temperature").value = m.temperature || 1;
    $("bars").value = Math.max(1, Math.min(64, bars((m.steps || 128) * (m.step || 0.25))));
    buildKeyboard(m);
    primerHelp(m);
    buildConditions(m);
  }
  if (restore) applyRestore(restore);
  outputs();
  emit("model", m);
  regenerate();
}

function outputs() {
  for (const id of ["tempo", "temperature", "threshold", "guidance"]) $(id + "-out").textContent = $(id).value;
}

// a conditioned melody model (GET /api/models "conditions": {kind: [values]}): one choice per kind
function buildConditions(m) {
  const box = $("lstm-cond-selects");
  box.innerHTML = "";
  $("lstm-cond").classList.toggle("hidden", !m.conditions);
  if (!m.conditions) return;
  for (const [kind, values] of Object.entries(m.conditions)) {
    const lab = document.createElement("label");
    lab.textContent = kind[0].toUpperCase() + kind.slice(1) + " ";
    const sel = document.createElement("select");
    sel.id = "cond-" + kind; sel.dataset.kind = kind;
    for (const v of ["", ...values]) {
      const o = document.createElement("option"); o.value = v; o.textContent = v || "any"; sel.appendChild(o);
    }
    sel.onchange = () => regenerate();
    lab.appendChild(sel); box.appendChild(lab);
  }
  $("guidance").value = m.guidance || 1;
}

function buildSliders(n, range) {
  const box = $("sliders");
  box.innerHTML = "";
  app.sliders = new Array(n).fill(0);
  app.touched.clear();
  for (let i = 0; i < n; i++) {
    const d = document.createElement("div");
    d.className = "slider";
    const inp = document.createElement("input");
    Object.assign(inp, {type: "range", min: -range, max: range, step: 0.05, value: 0, id: "slider-" + i});
    inp.setAttribute("aria-label", "slider " + (i + 1));
    inp.addEventListener("input", () => { app.sliders[i] = Number(inp.value); app.touched.add(i); regenerate(); });
    const lab = document.createElement("span");
    lab.textContent = i + 1;
    d.appendChild(inp); d.appendChild(lab);
    box.appendChild(d);
  }
}

function setSliders(values) {
  values.forEach((v, i) => {
    if (i >= app.sliders.length) return;
    app.sliders[i] = v;
    const el = $("slider-" + i);
    if (el) el.value = v;
  });
}

// ------------------------------------------------------------------------------------------ primer: help, keyboard
function primerHelp(m) {
  const step = m.step || 0.25;
  const unit = {0.25: "16th note", 0.5: "8th note", 0.125: "32nd note", 1: "quarter note"}[step] || `${step} beat`;
  const [lo, hi] = m.pitch_range || [48, 84];
  $("primer-help").textContent = `One symbol per ${unit}: a MIDI pitch starts a note (60 = middle C; this model ` +
    `knows ${lo}\u2013${hi}), _ holds it one more ${unit}, r starts a rest. Example: 67 _ 67 _ 69 _ _ _ = ` +
    `G, G (eighths), A (quarter).`;
}

function buildKeyboard(m) {
  const box = $("keyboard"), [lo, hi] = m.pitch_range || [55, 79];
  box.innerHTML = "";
  let a = Math.max(lo, 55), b = Math.min(hi, 79);   // at most two octaves around the treble staff
  if (b - a < 12) { a = lo; b = Math.min(hi, lo + 24); }
  for (let p = a; p <= b; p++) {
    const k = document.createElement("button");
    const black = [1, 3, 6, 8, 10].includes(p % 12);
    k.className = "key" + (black ? " black" : "");
    k.dataset.p = p;
    k.type = "button";
    k.title = noteName(p);
    k.setAttribute("aria-label", "add " + noteName(p) + " to the primer");
    k.textContent = p % 12 === 0 ? noteName(p) : "";
    k.onclick = () => addToPrimer(String(p), p);
    box.appendChild(k);
  }
}

function addToPrimer(symbol, pitch) {
  const m = app.model, step = m.step || 0.25;
  const n = Math.max(1, Math.round(Number($("key-dur").value) / step));
  const cur = $("primer").value.trim();
  $("primer").value = (cur ? cur + " " : "") + [symbol].concat(new Array(n - 1).fill("_")).join(" ");
  if (pitch !== undefined) blip(pitch, Number($("key-dur").value));
  saveUrl();
}

function undoPrimer() {             // drop the last note or rest with its holds
  const t = $("primer").value.trim().split(/\s+/).filter(Boolean);
  while (t.length && t[t.length - 1] === "_") t.pop();
  t.pop();
  $("primer").value = t.join(" ");
  saveUrl();
}

// ------------------------------------------------------------------------------------------ your melody (MIDI)
async function uploadMidi(file) {
  if (!file || !app.model) return;
  const m = app.model;
  try {
    if (file.size > 256 * 1024) throw new Error(`${file.name} is larger than 256 KiB`);
    status(`reading ${file.name}\u2026`);
    const j = await (await api("/api/import?model=" + encodeURIComponent(m.name), await file.arrayBuffer(), true)).json();
    if (m.kind === "lstm") {
      $("primer").value = j.primer;
      $("bars").value = Math.min(64, bars(j.primer_beats) + 4);
      $("tempo").value = Math.round(j.tempo); outputs();
      setPiece({...j, model: m.name, uploaded: file.name});
      status(`${file.name}: ${j.notes.length} notes; its first ${bars(j.primer_beats)} bars are the primer ` +
             `\u2014 press New piece to continue it`);
    } else if (m.kind === "vae" && j.sliders) {
      setSliders(j.sliders);
      app.touched.clear();
      status(`${file.name}: placed on the sliders (its code projected on the ${j.sliders.length} slider directions)`);
      regenerate();
    } else {                           // any other model: the melody becomes the piece on screen
      $("tempo").value = Math.round(j.tempo); outputs();
      setPiece({...j, model: m.name, uploaded: file.name});
      status(`${file.name}: ${j.notes.length} notes, now the piece on screen`);
    }
  } catch (e) {
    status(e.message, true);
  } finally {
    $("midi-file").value = "";
  }
}

// ------------------------------------------------------------------------------------------ URL state
function saveUrl() {
  const m = app.model;
  if (!m || app.restoring) return;
  const q = new URLSearchParams();
  q.set("m", m.name);
  q.set("t", $("tempo").value);
  if (app.seedLocked && app.seed !== null) q.set("seed", app.seed);
  if (app.loop) q.set("loop", "1");
  if (m.kind === "vae") {
    q.set("s", app.sliders.map((v) => +v.toFixed(2)).join(","));
    if (m.labels && m.labels.length) q.set("c", $("condition").value);
    if (m.output !== "softmax") q.set("th", $("threshold").value);
  } else if (m.kind === "lstm") {
    q.set("p", $("primer").value.trim());
    q.set("temp", $("temperature").value);
    q.set("bars", $("bars").value);
  }
  history.replaceState(null, "", "#" + q.toString());
}

function readUrl() {
  const q = new URLSearchParams(location.hash.slice(1));
  return q.has("m") ? Object.fromEntries(q.entries()) : null;
}

function applyRestore(q) {
  const m = app.model;
  if (q.m !== m.name) return;
  if (q.t) $("tempo").value = q.t;
  if (q.seed !== undefined && /^\d+$/.test(q.seed)) { app.seed = Number(q.seed); app.seedLocked = true; $("seed").value = q.seed; }
  $("seed-lock").checked = app.seedLocked;
  app.loop = q.loop === "1"; $("loop").checked = app.loop;
  if (m.kind === "vae") {
    if (q.s) setSliders(q.s.split(",").map(Number).map((v) => (isFinite(v) ? Math.max(-3, Math.min(3, v)) : 0)));
    if (q.c) $("condition").value = q.c;
    if (q.th) $("threshold").value = q.th;
  } else if (m.kind === "lstm") {
    if (q.p !== undefined) $("primer").value = q.p.slice(0, 400);
    if (q.temp) $("temperature").value = q.temp;
    if (q.bars) $("bars").value = q.bars;
  }
}

// ------------------------------------------------------------------------------------------ bindings
function editable(t) {
  return t && (t.isContentEditable || t.tagName === "TEXTAREA" || t.tagName === "SELECT" ||
    (t.tagName === "INPUT" && !["range", "button", "submit"].includes(t.type)));
}

function bind() {
  $("play").onclick = () => { if (!app.playing) play(app.position >= (app.piece ? app.piece.length : 0) ? 0 : app.position); };
  $("pause").onclick = pause;
  $("stop").onclick = stop;
  $("generate").onclick = () => regenerate({fresh: true});
  $("random").onclick = () => regenerate({fresh: true});
  $("reset").onclick = () => { setSliders(app.sliders.map(() => 0)); app.touched.clear(); regenerate(); };
  $("download-midi").onclick = () => downloadMidi();
  $("download-wav").onclick = () => downloadWav();
  $("tempo").oninput = () => { outputs(); retempo(); saveUrl(); };
  $("temperature").oninput = outputs;
  $("temperature").onchange = () => regenerate();
  $("guidance").oninput = outputs;
  $("guidance").onchange = () => regenerate();
  $("bars").onchange = () => { $("bars").value = Math.max(1, Math.min(64, Math.round(Number($("bars").value)) || 8)); regenerate(); };
  $("primer").onkeydown = (e) => { if (e.key === "Enter") regenerate({fresh: !app.seedLocked}); };
  $("threshold").oninput = () => { outputs(); regenerate(); };
  $("condition").onchange = () => regenerate();
  $("seed-lock").onchange = () => {
    app.seedLocked = $("seed-lock").checked;
    if (app.seedLocked && /^\d+$/.test($("seed").value)) app.seed = Number($("seed").value);
    saveUrl();
  };
  $("seed").onchange = () => {
    if (!/^\d+$/.test($("seed").value)) { status("a seed is a whole number from 0 to 2147483647", true); return; }
    app.seed = Math.min(2147483647, Number($("seed").value));
    app.seedLocked = true; $("seed-lock").checked = true;
    regenerate();
  };
  $("loop").onchange = () => { app.loop = $("loop").checked; saveUrl(); };
  $("sound").onchange = () => { if (app.playing) { const b = currentBeat(); stopSound(); app.playing = false; play(b); } };
  $("midi-file").onchange = () => uploadMidi($("midi-file").files[0]);
  $("key-rest").onclick = () => addToPrimer("r");
  $("key-undo").onclick = undoPrimer;
  $("key-clear").onclick = () => { $("primer").value = ""; saveUrl(); };
  $("roll").addEventListener("click", seek);
  // Space plays / pauses wherever the focus is, except where it types or chooses (text, menus, checkboxes)
  document.addEventListener("keydown", (e) => {
    if (e.code !== "Space" || e.repeat || editable(e.target) || e.target.type === "checkbox" || e.target.type === "radio") return;
    e.preventDefault();
    app.playing ? pause() : $("play").onclick();
  });
  document.addEventListener("keyup", (e) => {   // a focused button would also "click" on Space's keyup
    if (e.code === "Space" && e.target.tagName === "BUTTON") e.preventDefault();
  });
  window.addEventListener("resize", () => draw());
}

function fileBase() {
  const m = app.model, p = app.piece;
  return `tunesmith-${m ? m.name : "piece"}` + (p && p.seed !== undefined && p.seed !== null ? `-${p.seed}` : "");
}

function save(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url; a.download = filename;
  document.body.appendChild(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 5000);
}

async function downloadMidi() {
  if (!app.piece) return;
  try {
    const r = await api("/api/midi", {notes: app.piece.notes, tempo: tempo()});
    save(await r.blob(), fileBase() + ".mid");
    status("saved " + fileBase() + ".mid");
  } catch (e) { status(e.message, true); }
}

async function downloadWav() {
  if (!app.piece) return;
  try {
    const g = await render();
    save(g.blob, fileBase() + ".wav");
    status("saved " + fileBase() + ".wav");
  } catch (e) { status(e.message, true); }
}

// ------------------------------------------------------------------------------------------ General MIDI render
// The server renders the piece with FluidSynth and the General MIDI soundfont (the sound of the WAV); the page
// decodes it into an AudioBuffer and plays that. One render at a time; until it arrives (and after a tempo or
// piece change) the page's quick synth plays, then hands over at the same beat.
const renderKey = () => `${app.version}@${tempo()}`;

function render() {
  const key = renderKey();
  if (app.gm.key === key) return app.gm.buffer ? Promise.resolve(app.gm) : app.gm.loading;
  const piece = app.piece, t = tempo();
  const seconds = piece.length * 60 / t;
  const prev = app.gm.loading || Promise.resolve();
  app.gm = {key, buffer: null, blob: null, loading: null};
  const job = prev.catch(() => {}).then(async () => {
    if (app.gm.key !== key) throw new Error("superseded");
    const t0 = performance.now();
    progress(true, seconds);
    try {
      const r = await api("/api/wav", {notes: piece.notes, tempo: t});
      const blob = await r.blob();
      app.renderRate = 0.5 * app.renderRate + 0.5 * ((performance.now() - t0) / 1000) / Math.max(1, seconds);
      const buffer = await audio().decodeAudioData(await blob.arrayBuffer());
      if (app.gm.key === key) Object.assign(app.gm, {buffer, blob});
      return {key, buffer, blob};
    } finally {
      progress(false);
    }
  });
  app.gm.loading = job;
  return job;
}

function progress(on, seconds) {
  const bar = $("render-progress");
  clearInterval(app.progressTimer);
  if (!on) { app.rendering = Math.max(0, app.rendering - 1); if (!app.rendering) bar.classList.add("hidden"); return; }
  app.rendering++;
  const t0 = performance.now(), expect = Math.max(0.2, seconds * app.renderRate);
  bar.classList.remove("hidden");
  bar.value = 0;
  bar.title = `rendering ${seconds.toFixed(0)} s of General MIDI audio on the server`;
  app.progressTimer = setInterval(() => { bar.value = Math.min(0.95, (performance.now() - t0) / 1000 / expect); }, 100);
}

function wantGm() { return $("sound").value === "gm"; }

function gmWhenReady() {              // start (or restart) the render; switch to it if still wanted
  if (!wantGm() || !app.piece || !app.piece.notes.length) return;
  clearTimeout(app.renderTimer);
  app.renderTimer = setTimeout(() => {
    const key = renderKey();
    render().then((g) => {
      if (app.playing && app.sound !== "gm" && g.key === renderKey() && key === g.key && wantGm()) {
        const b = currentBeat();
        stopSound(); app.playing = false; play(b);
      }
    }).catch((e) => { if (e.message !== "superseded") status("General MIDI sound unavailable: " + e.message, true); });
  }, 250);                             // a burst of slider moves or tempo changes renders once
}

// ------------------------------------------------------------------------------------------ audio
function audio() {
  if (!app.ctx) {
    const AC = window.AudioContext || window.webkitAudioContext;
    app.ctx = new AC();
    app.master = app.ctx.createGain();
    app.master.gain.value = 0.8;
    app.master.connect(app.ctx.destination);
  }
  if (app.ctx.state === "suspended") app.ctx.resume();
  return app.ctx;
}

function currentBeat() {
  if (!app.playing) return app.position;
  return app.startBeat + Math.max(0, app.ctx.currentTime - app.startTime) * app.playTempo / 60;
}

function play(fromBeat) {
  if (!app.piece || app.playing) return;
  const ctx = audio(), t = tempo(), spb = 60 / t;
  const start = Math.max(0, Math.min(fromBeat || 0, app.piece.length));
  app.startBeat = start;
  app.playTempo = t;
  app.startTime = ctx.currentTime + 0.05;
  const g = app.gm;
  if (wantGm() && g.buffer && g.key === renderKey()) {
    const src = ctx.createBufferSource();
    src.buffer = g.buffer;
    src.connect(app.master);
    src.start(app.startTime, Math.min(start * spb, g.buffer.duration));
    app.source = src;
    app.sound = "gm";
  } else {
    synth(start, spb);
    app.sound = "synth";
    gmWhenReady();
  }
  app.playing = true;
  setButtons();
  const token = ++app.playToken;
  requestAnimationFrame(() => tick(token));
}

function synth(start, spb) {          // the quick synth: triangle voices with an envelope
  const ctx = app.ctx;
  for (const n of app.piece.notes) {
    if (n.s + n.d <= start) continue;
    const on = app.startTime + Math.max(0, n.s - start) * spb;
    const off = app.startTime + (n.s + n.d - start) * spb;
    app.voices.push(voice(n.p, n.v, on, off));
  }
}

function voice(p, v, on, off) {
  const ctx = app.ctx, osc = ctx.createOscillator(), g = ctx.createGain();
  osc.type = "triangle";
  osc.frequency.value = 440 * Math.pow(2, (p - 69) / 12);
  const peak = 0.05 + 0.15 * (v / 127);
  g.gain.setValueAtTime(0, on);
  g.gain.linearRampToValueAtTime(peak, on + 0.01);
  g.gain.exponentialRampToValueAtTime(peak * 0.5, Math.max(on + 0.02, off - 0.03));
  g.gain.linearRampToValueAtTime(0, off + 0.02);
  osc.connect(g); g.connect(app.master);
  osc.start(on); osc.stop(off + 0.05);
  return osc;
}

function blip(p, beats) {            // sound one key of the on-screen keyboard
  const ctx = audio(), on = ctx.currentTime + 0.01;
  voice(p, 90, on, on + Math.min(1, beats * 60 / tempo()));
}

function stopSound() {
  for (const v of app.voices) { try { v.stop(); v.disconnect(); } catch (e) {} }
  app.voices = [];
  if (app.source) { try { app.source.stop(); app.source.disconnect(); } catch (e) {} app.source = null; }
}

function retempo() {                  // a tempo change keeps the beat: re-anchor at the current one
  if (app.piece) app.piece.tempo = tempo();
  if (!app.playing) return;
  const b = currentBeat();
  stopSound(); app.playing = false;
  play(b);
}

function pause() {
  if (!app.playing) return;
  app.position = currentBeat();
  stopSound();
  app.playing = false;
  setButtons();
  draw();
}

function stop() {
  stopSound();
  app.playing = false;
  app.position = 0;
  setButtons();
  draw();
}

function seek(e) {                    // click on the roll: go to that beat
  if (!app.piece) return;
  const cv = $("roll"), r = cv.getBoundingClientRect(), L = layout(r.width, r.height);
  const beat = Math.max(0, Math.min(app.piece.length - 1e-3, (e.clientX - r.left - L.key) / L.px));
  if (app.playing) { stopSound(); app.playing = false; play(beat); }
  else { app.position = beat; setButtons(); draw(); }
}

function setButtons() {
  $("play").classList.toggle("on", app.playing);
  $("play").setAttribute("aria-pressed", app.playing ? "true" : "false");
  $("pause").classList.toggle("on", !app.playing && app.position > 0);
  document.body.dataset.playing = app.playing ? "1" : "0";
  document.body.dataset.sound = app.playing ? app.sound : "";
}

async function tick(token) {
  if (!app.playing || token !== app.playToken) return;
  const b = currentBeat();
  app.position = b;
  draw(b);
  if (b >= app.piece.length) {
    stopSound();
    app.playing = false;
    app.position = 0;
    setButtons();
    if (app.loop) { play(0); return; }
    if (mode() === "autonomous") {       // keep generating and playing
      await regenerate({fresh: true});
      play(0);
    } else {
      draw();
    }
    return;
  }
  requestAnimationFrame(() => tick(token));
}

function mode() { return document.querySelector("input[name=mode]:checked").value; }

// ------------------------------------------------------------------------------------------ piano roll
const TOP = 16;                       // the strip with bar numbers
function layout(W, H) {
  const len = Math.max(app.piece ? app.piece.length : 1, 1), key = W < 500 ? 30 : 46;
  return {key, len, px: (W - key) / len, top: TOP};
}

function draw(beat) {
  const cv = $("roll"), dpr = window.devicePixelRatio || 1;
  const W = cv.clientWidth || 1200, H = cv.clientHeight || 420;
  if (cv.width !== Math.round(W * dpr) || cv.height !== Math.round(H * dpr)) {
    cv.width = Math.round(W * dpr); cv.height = Math.round(H * dpr);
  }
  const g = cv.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.fillStyle = "#0e0f12"; g.fillRect(0, 0, W, H);
  const piece = app.piece;
  if (!piece) return;
  const notes = piece.notes, {key: KEY, len, px} = layout(W, H), RH = H - TOP;
  let lo = 60, hi = 72;
  if (notes.length) { lo = Math.min(...notes.map((n) => n.p)); hi = Math.max(...notes.map((n) => n.p)); }
  lo = Math.max(0, lo - 2); hi = Math.min(127, hi + 2);
  const rows = hi - lo + 1, rh = RH / rows;
  const pos = beat === undefined ? app.position : beat;
  const active = new Set();
  if (app.playing || pos > 0) for (const n of notes) if (n.s <= pos && pos < n.s + n.d) active.add(n.p);
  for (let p = lo; p <= hi; p++) {     // keyboard and row shading
    const y = H - (p - lo + 1) * rh, black = [1, 3, 6, 8, 10].includes(p % 12);
    g.fillStyle = black ? "#15171c" : "#1b1e24";
    g.fillRect(KEY, y, W - KEY, rh);
    g.fillStyle = active.has(p) ? "#e0893a" : black ? "#222" : "#ddd";
    g.fillRect(0, y + 0.5, black ? KEY * 0.62 : KEY - 2, rh - 1);
    if (p % 12 === 0 && rh > 6) { g.fillStyle = "#555"; g.font = `${Math.min(11, rh)}px sans-serif`; g.fillText("C" + (p / 12 - 1), KEY * 0.64, y + rh - 1); }
  }
  const barPx = BEATS_PER_BAR * px, every = Math.max(1, Math.ceil(22 / barPx));
  g.font = "11px sans-serif";
  for (let b = 0; b <= len; b++) {     // bar lines (4 beats), beat lines and bar numbers
    g.fillStyle = b % 4 === 0 ? "#3a3f4a" : "#23262d";
    g.fillRect(KEY + b * px, TOP, b % 4 === 0 ? 1.2 : 0.6, RH);
    const bar = b / BEATS_PER_BAR;
    if (b % 4 === 0 && b < len && bar % every === 0) { g.fillStyle = "#9aa0a6"; g.fillText(String(bar + 1), KEY + b * px + 3, 12); }
  }
  for (const n of notes) {             // notes
    const y = H - (n.p - lo + 1) * rh, on = active.has(n.p) && n.s <= pos && pos < n.s + n.d;
    g.fillStyle = on ? "#ffd08a" : `hsl(${200 - (n.p % 12) * 6}, 60%, ${45 + n.v / 8}%)`;
    g.fillRect(KEY + n.s * px + 0.5, y + 1, Math.max(1.5, n.d * px - 1), Math.max(1.5, rh - 2));
  }
  if (pos > 0 || app.playing) {        // playhead
    g.fillStyle = "#e0893a";
    g.fillRect(KEY + pos * px - 1, 0, 2, H);
  }
}

// ------------------------------------------------------------------------------------------ start
async function main() {
  bind();
  try {
    app.models = await (await api("/api/models")).json();
  } catch (e) {
    status("cannot load the model list: " + e.message, true);
    return;
  }
  if (!app.models.length) { status("no models loaded", true); return; }
  buildModels();
  const q = readUrl();
  const first = q && app.models.some((m) => m.name === q.m) ? q.m : app.models[0].name;
  app.restoring = q;
  try { chooseModel(first, q); } finally { app.restoring = null; }
}

main();
