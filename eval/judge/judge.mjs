#!/usr/bin/env node
// judge.mjs: judge translated faces the way aging papers do, with nets none of
// this project trained: face-api's age estimator and 128-d face descriptor
// (tfjs on its WebAssembly backend), plus two image metrics of our own.
// Evaluation only: nothing in the tools depends on it.  See README.md for the
// definitions; `node judge.mjs --help` for the usage.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { decode, crop, detailEnergy, checkerboard, resize, toBytes } from './image.mjs';

const USAGE = `usage: node eval/judge/judge.mjs [options] [IN OUT]...
Judge each pair (input face, translated face), one JSON line per pair:
  in, out           the two files
  face_in, face_out whether face-api's detector found a face in each
  age_in, age_out   the age its estimator gives each face (null: no face); the input is
                    judged at the output's framing (--crop) and size
  identity          euclidean distance of the two faces' 128-d descriptors
                    (< 0.6: the same person for face-api; null: a face missing)
  detail            detail ratio: DoG energy of OUT (resized to IN's size) over IN's
  checker           checkerboard amplitude (8-bit levels) of the change: OUT minus IN
                    resized to OUT's size (0: OUT adds no period-2 pattern)
  checker_out       the same of OUT alone (natural texture has some: ~0.2-1)

  --pairs FILE      read pairs from FILE too, one "IN<TAB>OUT[<TAB>CROP]" a line (- : stdin)
  --crop F          compare OUT with the centre F (0 < F <= 1) of IN, side for side, for
                    the detail ratio (the model's own framing for its raw output; default 1);
                    a pair's third column overrides it
  --min-score S     detector confidence (default 0.3)
  --help
A face named twice is judged once.  Timing goes to stderr.`;

function fail(msg, code = 1) {
    process.stderr.write(`judge: ${msg}\n`);
    process.exit(code);
}

function parseArgs(argv) {
    const o = { pairs: [], crop: 1, minScore: 0.3 };
    const files = [];
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const val = () => (i + 1 < argv.length ? argv[++i] : fail(`${a} needs a value`, 2));
        if (a === '--help' || a === '-h') { process.stdout.write(USAGE + '\n'); process.exit(0); }
        else if (a === '--pairs') o.pairsFile = val();
        else if (a === '--crop') o.crop = Number(val());
        else if (a === '--min-score') o.minScore = Number(val());
        else if (a.startsWith('--')) fail(`unknown option ${a}\nTry 'node judge.mjs --help'.`, 2);
        else files.push(a);
    }
    if (!(o.crop > 0 && o.crop <= 1)) fail('--crop must be in (0, 1]', 2);
    if (!(o.minScore > 0 && o.minScore < 1)) fail('--min-score must be in (0, 1)', 2);
    if (files.length % 2) fail(`an IN without its OUT: ${files[files.length - 1]}`, 2);
    for (let i = 0; i < files.length; i += 2) o.pairs.push({ in: files[i], out: files[i + 1], crop: o.crop });
    if (o.pairsFile !== undefined) {
        const text = fs.readFileSync(o.pairsFile === '-' ? 0 : o.pairsFile, 'utf8');
        text.split('\n').filter((l) => l.trim()).forEach((l, n) => {
            const [a, b, c] = l.split('\t');
            if (!b) fail(`${o.pairsFile}:${n + 1}: expected IN<TAB>OUT[<TAB>CROP]`, 2);
            const f = c === undefined ? o.crop : Number(c);
            if (!(f > 0 && f <= 1)) fail(`${o.pairsFile}:${n + 1}: crop must be in (0, 1]`, 2);
            o.pairs.push({ in: a, out: b, crop: f });
        });
    }
    if (!o.pairs.length) fail('no pairs (give IN OUT or --pairs FILE)', 2);
    return o;
}

// face-api on tfjs's WebAssembly backend: the plain-JS cpu backend is ~40x
// slower, so a failure to start wasm is an error, not a fallback.
async function loadNets() {
    const require = createRequire(import.meta.url);
    const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
    const wasm = require('@tensorflow/tfjs-backend-wasm');
    wasm.setWasmPaths(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + path.sep);
    const tf = faceapi.tf;
    if (!(await tf.setBackend('wasm'))) fail('the tfjs WebAssembly backend did not start');
    await tf.ready();
    if (tf.getBackend() !== 'wasm') fail(`tfjs runs on '${tf.getBackend()}', not wasm`);
    const dir = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'model');
    for (const net of ['ssdMobilenetv1', 'faceLandmark68Net', 'ageGenderNet', 'faceRecognitionNet'])
        await faceapi.nets[net].loadFromDisk(dir);
    return faceapi;
}

// UTKFace chips are cropped tight around the face, and the SSD detector
// misses a third of them as they are (it was trained on faces that fill
// less of the picture): the image goes in the middle of a grey canvas three
// times its size, where it finds ~90% of them.  Images under 256 px
// (the model's 128 px outputs) are upscaled first so the landmark and
// descriptor nets see a face of the size they expect.
async function judgeFace(faceapi, im, minScore) {
    const tf = faceapi.tf;
    const x = tf.tidy(() => {
        let t = tf.tensor3d(im.rgb, [im.h, im.w, 3], 'int32');
        const s = Math.max(1, 256 / Math.min(im.w, im.h));
        if (s > 1) t = tf.image.resizeBilinear(t, [Math.round(im.h * s), Math.round(im.w * s)], false, true);
        const p = Math.max(t.shape[0], t.shape[1]);
        return tf.pad(t, [[p, p], [p, p], [0, 0]], 128).toInt();
    });
    try {
        const r = await faceapi.detectSingleFace(x, new faceapi.SsdMobilenetv1Options({ minConfidence: minScore }))
            .withFaceLandmarks().withAgeAndGender().withFaceDescriptor();
        return r ? { age: r.age, descriptor: r.descriptor } : null;
    } finally {
        x.dispose();
    }
}

function distance(a, b) {
    let s = 0;
    for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
    return Math.sqrt(s);
}

const round = (v, d = 4) => (v === null ? null : Number(v.toFixed(d)));

async function main() {
    const o = parseArgs(process.argv.slice(2));
    const t0 = Date.now();
    const faceapi = await loadNets();
    const tLoad = Date.now() - t0;
    const images = new Map(); // file -> image
    const faces = new Map(); // file, or input file|crop|size -> face (null: none found)
    let nFaces = 0, tFaces = 0;
    const load = (file) => {
        if (!images.has(file)) {
            try {
                images.set(file, decode(fs.readFileSync(file), file));
            } catch (e) {
                fail(`${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
            }
        }
        return images.get(file);
    };
    const face = async (key, im) => {
        if (!faces.has(key)) {
            const t = Date.now();
            faces.set(key, await judgeFace(faceapi, im, o.minScore));
            tFaces += Date.now() - t;
            nFaces++;
        }
        return faces.get(key);
    };
    for (const [i, p] of o.pairs.entries()) {
        if (process.stderr.isTTY) // a live line: a split takes minutes
            process.stderr.write(`\rjudge: pair ${i + 1}/${o.pairs.length}, `
                + `${(tFaces / Math.max(1, nFaces) / 1000).toFixed(1)} s a face\x1b[K`);
        const out = load(p.out);
        const ref = crop(load(p.in), p.crop);
        // the input face is judged as the output shows it: the same framing
        // and size (a 128 px output against a 200 px input would count the
        // lost resolution as a change of age and identity)
        const same = ref.w === out.w && ref.h === out.h;
        const fi = await face(same && p.crop >= 1 ? p.in : `${p.in}|${p.crop}|${out.w}x${out.h}`,
            same ? ref : toBytes(resize(ref, out.w, out.h)));
        const fo = await face(p.out, out);
        const eout = detailEnergy(resize(out, ref.w, ref.h)), ein = detailEnergy(ref);
        process.stdout.write(JSON.stringify({
            in: p.in, out: p.out, face_in: !!fi, face_out: !!fo,
            age_in: round(fi ? fi.age : null, 2), age_out: round(fo ? fo.age : null, 2),
            identity: round(fi && fo ? distance(fi.descriptor, fo.descriptor) : null),
            detail: round(ein > 0 ? eout / ein : null),
            checker: round(checkerboard(resize(ref, out.w, out.h), out)), checker_out: round(checkerboard(out)),
        }) + '\n');
    }
    process.stderr.write(`${process.stderr.isTTY ? '\r\x1b[K' : ''}judge: ${o.pairs.length} pairs, ${nFaces} faces in ${((Date.now() - t0) / 1000).toFixed(1)} s `
        + `(tfjs ${faceapi.tf.getBackend()}, nets loaded in ${(tLoad / 1000).toFixed(1)} s, `
        + `${(tFaces / Math.max(1, nFaces)).toFixed(0)} ms a face)\n`);
}

main().catch((e) => fail(e.message));
