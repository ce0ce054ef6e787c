// llama.cpp as a peer: its CPU build as node-llama-cpp packages it
// (tools/peer/install.sh). Logits to check ours against (tests/peer) and
// speeds to set ours beside (tools/peer/bench.mjs).

import fs from "node:fs";
import path from "node:path";
import {pathToFileURL} from "node:url";

// The peer's module, or null when it is not installed in peerDir.
export async function openPeer(peerDir) {
    const entry = path.join(peerDir, "node_modules", "node-llama-cpp", "dist", "index.js");
    if (!fs.existsSync(entry)) return null;
    const {getLlama} = await import(pathToFileURL(entry).href);
    // The prebuilt CPU binaries only: never a build from source, never a GPU.
    const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
    const info = JSON.parse(fs.readFileSync(
        path.join(peerDir, "node_modules", "node-llama-cpp", "llama", "llama.cpp.info.json"), "utf8"));
    const pkg = JSON.parse(fs.readFileSync(
        path.join(peerDir, "node_modules", "node-llama-cpp", "package.json"), "utf8"));
    return {llama, version: `llama.cpp ${info.tag} (node-llama-cpp ${pkg.version}, ${llama.buildType} CPU build)`};
}

// The logits after each of `ids`, [ids.length][vocab] row-major, from one
// batch of the whole sequence in a context of contextSize tokens, its KV
// cache in kvType ("F16", llama.cpp's default, "F32" or "Q8_0"), without
// flash attention (whose CPU kernel sums in f16) but for Q8_0, which
// llama.cpp keeps only with it.
export async function peerLogits(peer, modelPath, ids, {threads, kvType, contextSize}) {
    const model = await peer.llama.loadModel({modelPath});
    try {
        const context = await model.createContext({contextSize, threads, batchSize: Math.max(512, ids.length),
                                                   flashAttention: kvType === "Q8_0",
                                                   experimentalKvCacheKeyType: kvType,
                                                   experimentalKvCacheValueType: kvType});
        try {
            const outputs = await context.getSequence().controlledEvaluate(
                ids.map(id => [id, {generateNext: {logits: true}}]));
            const vocab = outputs[0].next.logits.size;
            const logits = new Float32Array(ids.length * vocab);
            outputs.forEach((output, i) => {
                for (const [token, logit] of output.next.logits) logits[i * vocab + token] = logit;
            });
            return {vocab, logits};
        } finally {
            await context.dispose();
        }
    } finally {
        await model.dispose();
    }
}
