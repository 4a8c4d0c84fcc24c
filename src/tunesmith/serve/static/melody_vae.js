// Melody VAE controls (serve/melody_vae.py): attribute sliders on top of the latent sliders, and
// interpolation between two melodies (held-out songs, or the piece on screen, e.g. an uploaded MIDI); a
// conditioned melody VAE (GET /api/models "vae_conditions") also gets one choice per label kind, a guidance
// slider and a "New phrase" button (POST /api/melody-vae/sample).
"use strict";
(function () {
  const T = window.tunesmith;
  if (!T) return;
  const $ = (id) => document.getElementById(id);
  const box = $("melody-vae-panel");
  if (!box) return;
  const st = {model: null, attrs: {}, songs: [], inflight: false, pending: null, ours: 0, a: null, b: null, seed: null};

  function attrValues() { const o = {}; for (const [k, v] of Object.entries(st.attrs)) if (v) o[k] = v; return o; }

  // One request at a time; the latest gesture wins.
  async function send(path, body) {
    if (st.inflight) { st.pending = [path, body]; return; }
    st.inflight = true;
    const model = st.model;
    try {
      const t0 = performance.now();
      const j = await T.api(path, body);
      if (T.model() !== model) return;
      st.ours++;
      T.setPiece({...j, model: model.name, melodyVae: st.ours});
      T.status(`${model.title || model.name}: ${j.notes.length} notes; server ${j.ms.toFixed(0)} ms, ` +
               `round trip ${(performance.now() - t0).toFixed(0)} ms`);
    } catch (e) {
      T.status(e.message, true);
    } finally {
      st.inflight = false;
      if (st.pending) { const [p, b] = st.pending; st.pending = null; send(p, b); }
    }
  }

  function decode() {
    const m = st.model;
    send("/api/melody-vae/decode", {model: m.name, sliders: T.state.sliders.slice(), attributes: attrValues(),
                                    tempo: Number($("tempo").value) || 120});
  }

  function slider(label, name, min, max, step, value, oninput) {
    const wrap = document.createElement("label");
    wrap.className = "mv-slider";
    const inp = document.createElement("input");
    Object.assign(inp, {type: "range", min, max, step, value});
    inp.dataset.attr = name;
    inp.setAttribute("aria-label", label);
    const out = document.createElement("output");
    out.textContent = Number(value).toFixed(1);
    inp.addEventListener("input", () => { out.textContent = Number(inp.value).toFixed(1); oninput(Number(inp.value)); });
    const span = document.createElement("span");
    span.textContent = label;
    wrap.append(span, inp, out);
    return wrap;
  }

  // a conditioned melody VAE: "metre=3/4,mode=minor" from the picked labels ("any" leaves a kind free)
  function conditionValue() {
    return [...box.querySelectorAll("select[data-kind]")].filter((s) => s.value)
      .map((s) => `${s.dataset.kind}=${s.value}`).join(",");
  }

  function sample(fresh) {
    const m = st.model;
    if (fresh || st.seed === null) st.seed = Math.floor(Math.random() * 2147483647);
    const scales = [...box.querySelectorAll("input[data-guidance]")].map((g) => `${g.dataset.guidance}=${g.value}`);
    const body = {model: m.name, guidance: scales.join(","), seed: st.seed, tempo: Number($("tempo").value) || 120};
    const c = conditionValue();
    if (c) body.condition = c;
    send("/api/melody-vae/sample", body);
  }

  function conditionControls(m) {
    const h = document.createElement("h2");
    h.textContent = "Condition";
    h.title = "a phrase from the prior in the metre and mode you pick (the model was trained with these labels)";
    const row = document.createElement("div");
    row.className = "mv-cond";
    for (const [kind, values] of Object.entries(m.vae_conditions)) {
      const lab = document.createElement("label");
      lab.textContent = kind[0].toUpperCase() + kind.slice(1) + " ";
      const sel = document.createElement("select");
      sel.id = "mv-cond-" + kind; sel.dataset.kind = kind;
      sel.setAttribute("aria-label", kind);
      for (const v of ["", ...values]) {
        const o = document.createElement("option"); o.value = v; o.textContent = v || "any"; sel.appendChild(o);
      }
      sel.onchange = () => sample(false);
      lab.appendChild(sel);
      row.appendChild(lab);
    }
    const gs = [];
    for (const kind of Object.keys(m.vae_conditions)) {   // one guidance scale per kind
      const w = (m.vae_guidance || {})[kind] || 1;
      const g = slider(`Guidance (${kind})`, "guidance-" + kind, 0, 20, 0.5, w, () => sample(false));
      g.title = "classifier-free guidance: 1 = plain conditional, higher follows the label more strictly";
      const inp = g.querySelector("input");
      inp.id = "mv-guidance-" + kind; inp.dataset.guidance = kind;
      gs.push(g);
    }
    const btn = document.createElement("button");
    btn.type = "button"; btn.id = "mv-sample"; btn.textContent = "New phrase";
    btn.onclick = () => sample(true);
    row.append(...gs, btn);
    box.append(h, row);
  }

  function melodyPicker(which) {
    const sel = document.createElement("select");
    sel.id = `mv-${which}`;
    sel.setAttribute("aria-label", `melody ${which.toUpperCase()}`);
    const cur = document.createElement("option");
    cur.value = "piece"; cur.textContent = "the piece on screen (or your MIDI)";
    sel.appendChild(cur);
    st.songs.forEach((s) => {
      const o = document.createElement("option");
      o.value = String(s.index); o.textContent = `held-out: ${s.title}`;
      sel.appendChild(o);
    });
    sel.value = st.songs.length > (which === "a" ? 0 : 1) ? String(which === "a" ? 0 : 1) : "piece";
    sel.onchange = () => { st[which] = null; interpolate(); };
    return sel;
  }

  function melody(which) {
    const v = $(`mv-${which}`).value;
    if (v !== "piece") return {song: Number(v)};
    if (!st[which]) {             // freeze the piece on screen when it is picked
      const p = T.piece();
      if (!p || !p.notes.length) throw new Error("there is no piece on screen to use as " + which.toUpperCase());
      st[which] = {notes: p.notes.slice(0, 4000).map((n) => ({p: n.p, s: n.s, d: n.d, v: n.v || 90}))};
    }
    return st[which];
  }

  function interpolate() {
    const m = st.model;
    try {
      send("/api/melody-vae/interpolate", {model: m.name, a: melody("a"), b: melody("b"),
                                           t: Number($("mv-t").value), tempo: Number($("tempo").value) || 120});
    } catch (e) { T.status(e.message, true); }
  }

  async function build(m) {
    st.model = m;
    st.attrs = {};
    box.innerHTML = "";
    const show = !!(m && m.attributes);
    box.classList.toggle("hidden", !show);
    if (!show) return;
    const h = document.createElement("h2");
    h.textContent = "Attributes";
    h.title = "directions in the latent space from the training phrases (top quarter minus bottom quarter of each attribute)";
    const attrs = document.createElement("div");
    attrs.className = "mv-attrs";
    const r = m.attribute_range || 3;
    for (const a of m.attributes) {
      attrs.appendChild(slider(a.label, a.name, -r, r, 0.1, 0, (v) => { st.attrs[a.name] = v; decode(); }));
    }
    box.append(h, attrs);
    st.seed = null;
    if (m.vae_conditions) conditionControls(m);
    if (m.interpolate) {
      try { st.songs = await T.api("/api/melody-vae/songs?model=" + encodeURIComponent(m.name)); }
      catch (e) { st.songs = []; }
      if (T.model() !== m) return;
      const h2 = document.createElement("h2");
      h2.textContent = "Interpolate";
      const row = document.createElement("div");
      row.className = "mv-interp";
      const la = document.createElement("label"); la.textContent = "A ";
      la.appendChild(melodyPicker("a"));
      const lb = document.createElement("label"); lb.textContent = "B ";
      lb.appendChild(melodyPicker("b"));
      const t = slider("A \u2192 B", "t", 0, 1, 0.05, 0, () => interpolate());
      t.querySelector("input").id = "mv-t";
      row.append(la, t, lb);
      box.append(h2, row);
    }
  }

  T.onModelChange((m) => { build(m); });
  // a latent slider moved (the page made the piece): keep the attribute offsets on top of it
  T.onPieceChange((p) => {
    if (!st.model || !st.model.attributes || p.melodyVae || T.model() !== st.model) return;
    if (Object.keys(attrValues()).length) decode();
  });
})();
