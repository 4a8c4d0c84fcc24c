// tunesmith web app: our own code, no external scripts (works offline).
// State lives in one object, exposed as window.tunesmith for tests and curious users.
"use strict";

const $ = (id) => document.getElementById(id);
const app = {
  models: [], model: null, piece: null, version: 0, sliders: [], pending: false, inflight: false,
  ctx: null, voices: [], playing: false, playToken: 0, startBeat: 0, startTime: 0, position: 0, master: null,
  lastMs: null, errors: 0,
};

// ------------------------------------------------------------------------------------------ hooks for features
// Feature scripts (static/<feature>.js, loaded after this file) plug in through window.tunesmith:
//   tunesmith.model()          the current model entry from GET /api/models ({name, kind, title, ...}) or null
//   tunesmith.piece()          the piece on screen: {notes: [{p, s, d, v}], length (beats), tempo, model, seed, ...}
//   tunesmith.setPiece(piece)  show / play a piece you made (notes in beats; length optional); it becomes current
//   tunesmith.onPieceChange(cb)  cb(piece) after every new piece (generated, uploaded, or set by a feature)
//   tunesmith.onModelChange(cb)  cb(model) after the user picks a model (and once at start)
//   tunesmith.api(path, body)  fetch JSON (POST when body given); throws Error(one short sentence) on a 4xx/5xx
//   tunesmith.status(msg, isError)  one line in the status bar
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
  state: app,
};

// ------------------------------------------------------------------------------------------ server calls
async function api(path, body) {
  const r = await fetch(path, body === undefined ? {} : {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { const j = await r.json(); msg = typeof j.detail === "string" ? j.detail : JSON.stringify(j.detail); } catch (e) {}
    throw new Error(msg);
  }
  return r;
}

function status(msg, error) {
  const s = $("status");
  s.textContent = msg;
  s.classList.toggle("error", !!error);
  if (error) app.errors++;
}

function tempo() { return Number($("tempo").value); }

function request(extra) {
  const m = app.model, body = {model: m.name, tempo: tempo()};
  if (m.kind === "vae") {
    if (!extra || !extra.random) body.sliders = app.sliders.slice();
    if (m.labels && m.labels.length) body.condition = $("condition").value;
    if (m.output !== "softmax") body.threshold = Number($("threshold").value);
  } else if (m.kind === "lstm") {
    const p = $("primer").value.trim();
    if (p) body.primer = p;
    body.temperature = Number($("temperature").value);
    body.steps = Number($("steps").value);
  }
  return body;
}

// Slider moves come faster than answers: keep one request in flight and send the latest state after it.
async function regenerate(extra) {
  if (!app.model) return;
  if (app.inflight) { app.pending = true; return; }
  app.inflight = true;
  const t0 = performance.now();
  try {
    const r = await api("/api/generate", request(extra));
    const piece = await r.json();
    if (piece.sliders && app.model.kind === "vae") setSliders(piece.sliders);
    setPiece(piece);
    app.lastMs = performance.now() - t0;
    status(`${app.model.name}: ${piece.notes.length} notes, ${piece.length.toFixed(1)} beats; ` +
           `server ${piece.ms.toFixed(1)} ms, round trip ${app.lastMs.toFixed(0)} ms` + (piece.truncated ? " (truncated)" : ""));
  } catch (e) {
    status("error: " + e.message, true);
  } finally {
    app.inflight = false;
    if (app.pending) { app.pending = false; regenerate(); }
  }
}

function setPiece(piece) {
  const wasPlaying = app.playing, pos = currentBeat();
  app.piece = piece;
  app.version++;
  document.body.dataset.version = app.version;
  emit("piece", piece);
  if (wasPlaying) {               // hear the change at once: reschedule from where we are
    stopVoices();
    app.playing = false;
    play(pos < piece.length ? pos : 0);
  } else {
    draw();
  }
}

// ------------------------------------------------------------------------------------------ controls
function buildModels() {
  const sel = $("model");
  sel.innerHTML = "";
  for (const m of app.models) {
    const o = document.createElement("option");
    o.value = m.name; o.textContent = `${m.name} (${m.family || m.kind})`;
    sel.appendChild(o);
  }
  sel.onchange = () => chooseModel(sel.value);
}

function chooseModel(name) {
  stop();
  app.model = app.models.find((m) => m.name === name);
  const m = app.model;
  $("kind").textContent = m.kind === "vae" ? "latent sliders" : m.kind === "lstm" ? "primer + temperature" : "sampler";
  document.querySelectorAll(".vae-only").forEach((el) => el.classList.toggle("hidden", m.kind !== "vae"));
  document.querySelectorAll(".lstm-only").forEach((el) => el.classList.toggle("hidden", m.kind !== "lstm"));
  $("tempo").value = m.tempo || 120; $("tempo-out").textContent = $("tempo").value;
  if (m.kind === "vae") {
    buildSliders(m.sliders, m.slider_range);
    const c = $("condition");
    c.innerHTML = "";
    for (const l of m.labels || []) { const o = document.createElement("option"); o.value = l; o.textContent = l; c.appendChild(o); }
    $("condition-wrap").classList.toggle("hidden", !(m.labels && m.labels.length));
    $("threshold-wrap").classList.toggle("hidden", m.output === "softmax");
    $("threshold").value = m.threshold || 0.5; $("threshold-out").textContent = $("threshold").value;
  } else if (m.kind === "lstm") {
    $("primer").value = m.primer || "";
    $("temperature").value = m.temperature || 1; $("temperature-out").textContent = $("temperature").value;
    $("steps").value = m.steps || 256;
  }
  emit("model", m);
  regenerate();
}

function buildSliders(n, range) {
  const box = $("sliders");
  box.innerHTML = "";
  app.sliders = new Array(n).fill(0);
  for (let i = 0; i < n; i++) {
    const d = document.createElement("div");
    d.className = "slider";
    const inp = document.createElement("input");
    Object.assign(inp, {type: "range", min: -range, max: range, step: 0.05, value: 0, id: "slider-" + i});
    inp.setAttribute("aria-label", "slider " + (i + 1));
    inp.addEventListener("input", () => { app.sliders[i] = Number(inp.value); regenerate(); });
    const lab = document.createElement("span");
    lab.textContent = i + 1;
    d.appendChild(inp); d.appendChild(lab);
    box.appendChild(d);
  }
}

function setSliders(values) {
  values.forEach((v, i) => {
    app.sliders[i] = v;
    const el = $("slider-" + i);
    if (el) el.value = v;
  });
}

function bind() {
  $("play").onclick = () => play(app.playing ? currentBeat() : app.position);
  $("pause").onclick = pause;
  $("stop").onclick = stop;
  $("generate").onclick = () => regenerate(app.model && app.model.kind === "vae" ? {random: true} : undefined);
  $("random").onclick = () => regenerate({random: true});
  $("reset").onclick = () => { setSliders(app.sliders.map(() => 0)); regenerate(); };
  $("download-midi").onclick = () => download("/api/midi", "tunesmith.mid");
  $("download-wav").onclick = () => download("/api/wav", "tunesmith.wav");
  $("tempo").oninput = () => {
    $("tempo-out").textContent = $("tempo").value;
    if (app.playing) { const b = currentBeat(); stopVoices(); app.playing = false; play(b); }
    if (app.piece) app.piece.tempo = tempo();
  };
  $("temperature").oninput = () => { $("temperature-out").textContent = $("temperature").value; };
  $("threshold").oninput = () => { $("threshold-out").textContent = $("threshold").value; regenerate(); };
  $("condition").onchange = () => regenerate();
  document.addEventListener("keydown", (e) => {
    if (e.code === "Space" && e.target === document.body) { e.preventDefault(); app.playing ? pause() : play(app.position); }
  });
  window.addEventListener("resize", draw);
}

async function download(path, filename) {
  if (!app.piece) return;
  try {
    status("preparing " + filename + "...");
    const r = await api(path, {notes: app.piece.notes, tempo: tempo()});
    const url = URL.createObjectURL(await r.blob());
    const a = document.createElement("a");
    a.href = url; a.download = filename;
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 5000);
    status("saved " + filename);
  } catch (e) {
    status("error: " + e.message, true);
  }
}

// ------------------------------------------------------------------------------------------ audio
function audio() {
  if (!app.ctx) {
    const AC = window.AudioContext || window.webkitAudioContext;
    app.ctx = new AC();
    app.master = app.ctx.createGain();
    app.master.gain.value = 0.25;
    app.master.connect(app.ctx.destination);
  }
  if (app.ctx.state === "suspended") app.ctx.resume();
  return app.ctx;
}

function currentBeat() {
  if (!app.playing) return app.position;
  return app.startBeat + (app.ctx.currentTime - app.startTime) * tempo() / 60;
}

function play(fromBeat) {
  if (!app.piece || app.playing) return;
  const ctx = audio(), spb = 60 / tempo();
  const start = Math.max(0, Math.min(fromBeat || 0, app.piece.length));
  app.startBeat = start;
  app.startTime = ctx.currentTime + 0.05;
  for (const n of app.piece.notes) {
    if (n.s + n.d <= start) continue;
    const on = app.startTime + Math.max(0, n.s - start) * spb;
    const off = app.startTime + (n.s + n.d - start) * spb;
    const osc = ctx.createOscillator(), g = ctx.createGain();
    osc.type = "triangle";
    osc.frequency.value = 440 * Math.pow(2, (n.p - 69) / 12);
    const peak = 0.15 + 0.5 * (n.v / 127);
    g.gain.setValueAtTime(0, on);
    g.gain.linearRampToValueAtTime(peak, on + 0.01);
    g.gain.exponentialRampToValueAtTime(peak * 0.5, Math.max(on + 0.02, off - 0.03));
    g.gain.linearRampToValueAtTime(0, off + 0.02);
    osc.connect(g); g.connect(app.master);
    osc.start(on); osc.stop(off + 0.05);
    app.voices.push(osc);
  }
  app.playing = true;
  setButtons();
  const token = ++app.playToken;
  requestAnimationFrame(() => tick(token));
}

function stopVoices() {
  for (const v of app.voices) { try { v.stop(); v.disconnect(); } catch (e) {} }
  app.voices = [];
}

function pause() {
  if (!app.playing) return;
  app.position = currentBeat();
  stopVoices();
  app.playing = false;
  setButtons();
  draw();
}

function stop() {
  stopVoices();
  app.playing = false;
  app.position = 0;
  setButtons();
  draw();
}

function setButtons() {
  $("play").classList.toggle("on", app.playing);
  $("pause").classList.toggle("on", !app.playing && app.position > 0);
  document.body.dataset.playing = app.playing ? "1" : "0";
}

async function tick(token) {
  if (!app.playing || token !== app.playToken) return;
  const b = currentBeat();
  app.position = b;
  draw(b);
  if (b >= app.piece.length) {
    stopVoices();
    app.playing = false;
    app.position = 0;
    setButtons();
    if (mode() === "autonomous") {       // keep generating and playing
      await regenerate(app.model.kind === "vae" ? {random: true} : undefined);
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
function draw(beat) {
  const cv = $("roll"), dpr = window.devicePixelRatio || 1;
  const W = cv.clientWidth || 1200, H = cv.clientHeight || 420;
  if (cv.width !== Math.round(W * dpr)) { cv.width = Math.round(W * dpr); cv.height = Math.round(H * dpr); }
  const g = cv.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.fillStyle = "#0e0f12"; g.fillRect(0, 0, W, H);
  const piece = app.piece;
  if (!piece) return;
  const notes = piece.notes, KEY = 46;
  let lo = 60, hi = 72;
  if (notes.length) { lo = Math.min(...notes.map((n) => n.p)); hi = Math.max(...notes.map((n) => n.p)); }
  lo = Math.max(0, lo - 2); hi = Math.min(127, hi + 2);
  const rows = hi - lo + 1, rh = H / rows, len = Math.max(piece.length, 1), px = (W - KEY) / len;
  const pos = beat === undefined ? app.position : beat;
  const active = new Set();
  if (app.playing || pos > 0) for (const n of notes) if (n.s <= pos && pos < n.s + n.d) active.add(n.p);
  // keyboard and row shading
  for (let p = lo; p <= hi; p++) {
    const y = H - (p - lo + 1) * rh, black = [1, 3, 6, 8, 10].includes(p % 12);
    g.fillStyle = black ? "#15171c" : "#1b1e24";
    g.fillRect(KEY, y, W - KEY, rh);
    g.fillStyle = active.has(p) ? "#e0893a" : black ? "#222" : "#ddd";
    g.fillRect(0, y + 0.5, black ? KEY * 0.62 : KEY - 2, rh - 1);
    if (p % 12 === 0 && rh > 6) { g.fillStyle = "#555"; g.font = `${Math.min(11, rh)}px sans-serif`; g.fillText("C" + (p / 12 - 1), KEY * 0.64, y + rh - 1); }
  }
  // bar lines (4 beats) and beat lines
  for (let b = 0; b <= len; b++) {
    g.fillStyle = b % 4 === 0 ? "#3a3f4a" : "#23262d";
    g.fillRect(KEY + b * px, 0, b % 4 === 0 ? 1.2 : 0.6, H);
  }
  // notes
  for (const n of notes) {
    const y = H - (n.p - lo + 1) * rh, on = active.has(n.p) && n.s <= pos && pos < n.s + n.d;
    g.fillStyle = on ? "#ffd08a" : `hsl(${200 - (n.p % 12) * 6}, 60%, ${45 + n.v / 8}%)`;
    g.fillRect(KEY + n.s * px + 0.5, y + 1, Math.max(1.5, n.d * px - 1), Math.max(1.5, rh - 2));
  }
  // playhead
  if (pos > 0 || app.playing) {
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
    status("error: cannot load the model list: " + e.message, true);
    return;
  }
  if (!app.models.length) { status("no models loaded", true); return; }
  buildModels();
  chooseModel(app.models[0].name);
}

main();
