#!/usr/bin/env node
// summary.mjs: the means of judge.mjs's per-pair lines for one direction of
// translation, as one JSON object (README.md defines each field); with
// --label, also a readable line on stderr.
import fs from 'node:fs';

const USAGE = `usage: node eval/judge/summary.mjs --expect older|younger [--label TEXT] < PAIRS.jsonl
One JSON object: pairs, faces (pairs with a face found in both images), face_share,
age_in, age_out, age_change (means over faces), moved_3y (share of faces judged >= 3
years older, or younger, as --expect says), identity (mean distance), same_person
(share under 0.6), detail, checker, checker_out (means over pairs).`;

function fail(msg, code = 1) {
    process.stderr.write(`summary: ${msg}\n`);
    process.exit(code);
}

const args = process.argv.slice(2);
let sign = 0, label = null;
for (let i = 0; i < args.length; i++) {
    if (args[i] === '--help' || args[i] === '-h') { process.stdout.write(USAGE + '\n'); process.exit(0); }
    else if (args[i] === '--expect') sign = { older: 1, younger: -1 }[args[++i]] ?? fail('--expect older or younger', 2);
    else if (args[i] === '--label') label = args[++i] ?? fail('--label needs a value', 2);
    else fail(`unknown argument ${args[i]}`, 2);
}
if (!sign) fail('--expect older|younger is needed', 2);

const rows = fs.readFileSync(0, 'utf8').split('\n').filter((l) => l.trim()).map((l, n) => {
    try {
        return JSON.parse(l);
    } catch {
        return fail(`line ${n + 1} is not JSON`);
    }
});
if (!rows.length) fail('no pairs');
const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
const share = (xs, f) => (xs.length ? xs.filter(f).length / xs.length : null);
const r4 = (v) => (v === null ? null : Number(v.toFixed(4)));
const faces = rows.filter((r) => r.face_in && r.face_out);
const change = faces.map((r) => r.age_out - r.age_in);
const s = {
    pairs: rows.length,
    faces: faces.length,
    face_share: r4(faces.length / rows.length),
    age_in: r4(mean(faces.map((r) => r.age_in))),
    age_out: r4(mean(faces.map((r) => r.age_out))),
    age_change: r4(mean(change)),
    moved_3y: r4(share(change, (d) => sign * d >= 3)),
    identity: r4(mean(faces.map((r) => r.identity))),
    same_person: r4(share(faces, (r) => r.identity < 0.6)),
    detail: r4(mean(rows.filter((r) => r.detail !== null).map((r) => r.detail))),
    checker: r4(mean(rows.map((r) => r.checker))),
    checker_out: r4(mean(rows.map((r) => r.checker_out))),
};
process.stdout.write(JSON.stringify(s) + '\n');
if (label !== null) {
    const f = (v, d = 1) => (v === null ? '-' : v.toFixed(d));
    const pct = (v) => (v === null ? '-' : `${Math.round(100 * v)}%`);
    const sg = (v) => (v === null ? '-' : (v >= 0 ? '+' : '') + v.toFixed(1));
    process.stderr.write(`${label}: ${s.pairs} pairs, a face in both of ${s.faces}; judged age ${f(s.age_in)} -> `
        + `${f(s.age_out)} (${sg(s.age_change)}), ${pct(s.moved_3y)} moved >= 3 years ${sign > 0 ? 'older' : 'younger'}; `
        + `identity distance ${f(s.identity, 3)} (${pct(s.same_person)} under 0.6); detail ratio ${f(s.detail, 3)}; `
        + `checkerboard of the change ${f(s.checker, 2)} (of the output ${f(s.checker_out, 2)})\n`);
}
