// The peer's time per single-token step at each thread count, on a model
// small enough that the step is mostly overhead (stories260K): what a step
// costs beyond llama.cpp's arithmetic when Node drives it.
//
// usage: node tools/peer/step_overhead.mjs MODEL.gguf [--peer DIR] [--steps N]

import path from "node:path";
import {fileURLToPath} from "node:url";
import {parseArgs} from "node:util";

import {openPeer} from "./llamacpp.mjs";

const {values: opts, positionals} = parseArgs({allowPositionals: true, options: {
    "peer": {type: "string", default: path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", ".peer")},
    "steps": {type: "string", default: "32"},
}});
if (positionals.length !== 1) {
    console.error("usage: node tools/peer/step_overhead.mjs MODEL.gguf [--peer DIR] [--steps N]");
    process.exit(2);
}
const steps = Number(opts.steps);
const peer = await openPeer(opts.peer);
if (peer === null) {
    console.error(`llama.cpp is not installed in ${opts.peer} (tools/peer/install.sh installs it)`);
    process.exit(1);
}
const model = await peer.llama.loadModel({modelPath: positionals[0]});
for (const threads of [1, 2]) {
    const context = await model.createContext({contextSize: 256, threads});
    const sequence = context.getSequence();
    await sequence.controlledEvaluate([1, 2, 3, 4, 5]);
    const start = performance.now();
    for (let i = 0; i < steps; ++i) await sequence.controlledEvaluate([10 + i]);
    console.log(`${threads} thread(s): ${((performance.now() - start) / steps).toFixed(2)} ms a step ` +
                `(${steps} single-token steps)`);
    await context.dispose();
}
await model.dispose();
