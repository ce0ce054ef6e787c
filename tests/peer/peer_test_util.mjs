// What the tests against llama.cpp share: the peer or a skip, pagoda-cli's
// output or its error, and seeded numbers.

import {execFileSync} from "node:child_process";
import path from "node:path";
import {fileURLToPath, pathToFileURL} from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const peerModule = await import(pathToFileURL(path.join(here, "..", "..", "tools", "peer", "llamacpp.mjs")).href);

// The peer (tools/peer/llamacpp.mjs), or exit 77 (ctest's skip) saying why.
export async function openPeerOrSkip(peerDir) {
    const peer = await peerModule.openPeer(peerDir);
    if (peer === null) {
        console.log(`SKIPPED: llama.cpp is not installed in ${peerDir} (tools/peer/install.sh installs it)`);
        process.exit(77);
    }
    console.log(`peer: ${peer.version}`);
    return peer;
}

export const peerLogits = peerModule.peerLogits;

// pagoda-cli's stdout; its error message, not a stack, when it fails.
export function runCli(cli, args) {
    try {
        return execFileSync(cli, args, {stdio: "pipe", encoding: "utf8"});
    } catch (e) {
        throw new Error(`pagoda-cli ${args.join(" ")}: ${e.stderr}`);
    }
}

// A seeded generator of integers in [0, 2^31).
export function seededIntegers(seed) {
    let state = seed;
    return () => {
        state = (state * 1103515245 + 12345) % 2147483648;
        return state;
    };
}
