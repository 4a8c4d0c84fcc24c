// Renders /openapi.json as a readable page (our own code: FastAPI's default /docs loads Swagger UI from a CDN).
"use strict";
function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c])); }
function typeOf(s, spec) {
  if (!s) return "";
  if (s.$ref) return s.$ref.split("/").pop();
  if (s.anyOf) return s.anyOf.map((x) => typeOf(x, spec)).join(" | ");
  if (s.type === "array") return typeOf(s.items, spec) + "[]";
  return s.type || "";
}
function limits(s) {
  const out = [];
  const src = s.anyOf ? s.anyOf.find((x) => x.type !== "null") || s : s;
  for (const [k, l] of [["minimum", "&ge;"], ["exclusiveMinimum", "&gt;"], ["maximum", "&le;"], ["exclusiveMaximum", "&lt;"],
                        ["maxLength", "max length"], ["maxItems", "max items"]]) {
    if (src[k] !== undefined) out.push(`${l} ${src[k]}`);
  }
  if (s.default !== undefined && s.default !== null) out.push("default " + JSON.stringify(s.default));
  return out.join(", ");
}
function schemaTable(name, spec) {
  const s = spec.components.schemas[name];
  if (!s || !s.properties) return "";
  const req = new Set(s.required || []);
  let h = `<h3>${esc(name)}</h3><table><tr><th>field</th><th>type</th><th>limits</th><th>description</th></tr>`;
  for (const [k, v] of Object.entries(s.properties)) {
    h += `<tr><td><code>${esc(k)}</code>${req.has(k) ? " *" : ""}</td><td>${esc(typeOf(v, spec))}</td>` +
         `<td>${limits(v)}</td><td>${esc(v.description || "")}</td></tr>`;
  }
  return h + "</table>";
}
async function main() {
  const spec = await (await fetch("/openapi.json")).json();
  let h = `<p>${esc(spec.info.description || "")}</p>`;
  const shown = new Set();
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const M = method.toUpperCase();
      h += `<section class="op"><h2><span class="method ${M}">${M}</span>${esc(path)}</h2><p>${esc(op.summary || "")}</p>`;
      const body = op.requestBody && op.requestBody.content["application/json"];
      if (body) {
        const name = typeOf(body.schema, spec);
        h += schemaTable(name, spec);
        shown.add(name);
        if (name === "NotesRequest") shown.add("Note");
      }
      h += `<p>responses: ${Object.keys(op.responses).map(esc).join(", ")} (422: invalid input, with the reason; 413: body over 256 KiB)</p></section>`;
    }
  }
  for (const extra of ["Note", "GenerateResponse"]) if (spec.components.schemas[extra]) h += `<section class="op">${schemaTable(extra, spec)}</section>`;
  h += `<section class="op"><h3>Example</h3><pre>curl -s localhost:8000/api/models
curl -s -X POST localhost:8000/api/generate -H 'Content-Type: application/json' \\
     -d '{"model": "vae", "sliders": [1.5, -0.5], "tempo": 100}'</pre></section>`;
  document.getElementById("api").innerHTML = h;
}
main();
