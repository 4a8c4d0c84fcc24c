// node tests/abcjs_read.js ABCJS_FILE TUNE.abc...: parse each tune with the bundled abcjs (no DOM needed) and
// print one JSON line per file: warnings, notes (note elements, rests excluded), bars, metre, key.
"use strict";
const ABCJS = require(process.argv[2]);
const fs = require("fs");
for (const f of process.argv.slice(3)) {
  const t = ABCJS.parseOnly(fs.readFileSync(f, "utf8"))[0];
  let notes = 0, bars = 0;
  for (const line of t.lines) for (const staff of (line.staff || [])) for (const voice of staff.voices) for (const el of voice) {
    if (el.el_type === "note" && !el.rest) notes++;
    if (el.el_type === "bar") bars++;
  }
  const k = t.getKeySignature(), m = t.getMeterFraction();
  console.log(JSON.stringify({file: f, warnings: t.warnings || [], notes, bars, metre: `${m.num}/${m.den}`,
                              key: k.root + k.acc + (k.mode || "")}));
}
