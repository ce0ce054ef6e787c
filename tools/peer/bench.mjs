// Prompt and generation speed on the CPU, ours (`pagoda-bench generation`)
// beside llama.cpp's (tools/peer/install.sh), on the same GGUF file, with
// the same threads, in alternating repetitions (the machine is shared and
// noisy: each ratio comes from one run).
//
// usage: node tools/peer/bench.mjs --bench PAGODA_BENCH --model PATH [--peer DIR]
//            [--threads N] [--prompt-tokens N] [--gen-tokens N] [--reps N] [--pagoda-args=ARGS]
// --pagoda-args=ARGS: more options for pagoda-bench generation (e.g. --pagoda-args="--int8-matmul 1").
// Both keep the KV cache in f16 and take their defaults otherwise (llama.cpp:
// flash attention as it chooses, a batch of the whole prompt). Generation:
// one token a step, greedy, each step's token fed to the next, as a chat does.

import {execFileSync} from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {fileURLToPath} from "node:url";
import {parseArgs} from "node:util";

import {openPeer} from "./llamacpp.mjs";

const {values: opts} = parseArgs({options: {
    "bench": {type: "string"},
    "model": {type: "string"},
    "peer": {type: "string", default: path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", ".peer")},
    "threads": {type: "string", default: "2"},
    "prompt-tokens": {type: "string", default: "64"},
    "gen-tokens": {type: "string", default: "32"},
    "reps": {type: "string", default: "3"},
    "pagoda-args": {type: "string", default: ""},
}});
if (!opts.bench || !opts.model) {
    console.error("usage: node tools/peer/bench.mjs --bench PAGODA_BENCH --model PATH [--peer DIR] [--threads N] " +
                  "[--prompt-tokens N] [--gen-tokens N] [--reps N] [--pagoda-args=ARGS]");
    process.exit(2);
}
const threads = Number(opts.threads);
const promptTokens = Number(opts["prompt-tokens"]);
const genTokens = Number(opts["gen-tokens"]);
const reps = Number(opts.reps);

const peer = await openPeer(opts.peer);
if (peer === null) {
    console.error(`llama.cpp is not installed in ${opts.peer} (tools/peer/install.sh installs it)`);
    process.exit(1);
}

// One repetition of ours: pagoda-bench's own prompt and generation.
function oursOnce() {
    const json = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pagoda-peer-")), "bench.json");
    execFileSync(opts.bench, ["generation", "--model", opts.model, "--threads", String(threads), "--reps", "1",
                              "--prompt-tokens", String(promptTokens), "--gen-tokens", String(genTokens),
                              "--bandwidth-mib", "64", "--json", json,
                              ...opts["pagoda-args"].split(" ").filter(a => a !== "")], {stdio: "pipe"});
    const result = JSON.parse(fs.readFileSync(json, "utf8"));
    fs.rmSync(path.dirname(json), {recursive: true});
    return {pp: result.pp_tok_s.median, tg: result.tg_tok_s.median};
}

const model = await peer.llama.loadModel({modelPath: opts.model});
const context = await model.createContext({contextSize: promptTokens + genTokens + 16, threads,
                                           batchSize: Math.max(512, promptTokens)});
const sequence = context.getSequence();
// Seeded ids past the special tokens, within any vocabulary of 512 or more.
let seed = 12345;
const prompt = Array.from({length: promptTokens}, () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return 3 + (seed % 509);
});

// One repetition of the peer's, as pagoda-bench measures ours: the prompt
// in one batch; then, from a context of one token, genTokens single-token
// steps (each computes the logits, as ours do, and takes their argmax).
async function peerOnce() {
    await sequence.clearHistory();
    const input = prompt.map((id, i) => (i + 1 < prompt.length ? id : [id, {generateNext: {token: true}}]));
    let start = performance.now();
    await sequence.controlledEvaluate(input);
    const ppSeconds = (performance.now() - start) / 1000;
    await sequence.clearHistory();
    let [out] = await sequence.controlledEvaluate([[prompt[0], {generateNext: {token: true}}]]);
    start = performance.now();
    for (let i = 0; i < genTokens; ++i) {
        [out] = await sequence.controlledEvaluate([[out.next.token, {generateNext: {token: true}}]]);
    }
    const tgSeconds = (performance.now() - start) / 1000;
    return {pp: promptTokens / ppSeconds, tg: genTokens / tgSeconds};
}

const median = values => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
await peerOnce();  // warm-up: page in the weights
const ours = [];
const theirs = [];
for (let r = 0; r < reps; ++r) {
    ours.push(oursOnce());
    theirs.push(await peerOnce());
}
const row = (name, list) => {
    const pp = list.map(x => x.pp);
    const tg = list.map(x => x.tg);
    return `| ${name} | ${median(pp).toFixed(1)} (${Math.min(...pp).toFixed(1)}–${Math.max(...pp).toFixed(1)}) | ` +
           `${median(tg).toFixed(1)} (${Math.min(...tg).toFixed(1)}–${Math.max(...tg).toFixed(1)}) |`;
};
console.log(`model: ${path.basename(opts.model)}, ${threads} threads, pp${promptTokens} tg${genTokens}, ` +
            `${reps} alternating repetitions; peer: ${peer.version}`);
console.log(`| engine | pp${promptTokens} tok/s | tg${genTokens} tok/s |`);
console.log("|---|---|---|");
console.log(row("Pagoda", ours));
console.log(row("llama.cpp", theirs));
const ratios = ours.map((x, i) => ({pp: x.pp / theirs[i].pp, tg: x.tg / theirs[i].tg}));
const ratio = key => `${median(ratios.map(x => x[key])).toFixed(2)}×`;
console.log(`| Pagoda / llama.cpp, median of the repetitions' ratios | ${ratio("pp")} | ${ratio("tg")} |`);
await context.dispose();
await model.dispose();
