// Our chat templates against the published Jinja templates themselves: each
// template in tests/chat/templates that is whole, written into a tiny model
// (`pagoda-cli make-model --chat-template`), and conversations rendered by
// `pagoda-cli chat-prompt` (our family's renderer) and by Hugging Face's
// Jinja engine (@huggingface/jinja, what transformers.js renders them with;
// tools/peer/install.sh) must give the same prompt, or both refuse.
//
// usage: node jinja_templates_test.mjs PAGODA_CLI PEER_DIR TEMPLATES_DIR WORK_DIR
// Exits 77 (skipped) when the Jinja engine is not installed.

import fs from "node:fs";
import path from "node:path";
import {pathToFileURL} from "node:url";

import {runCli} from "./peer_test_util.mjs";

const [cli, peerDir, templatesDir, workDir] = process.argv.slice(2);
const engine = path.join(peerDir, "node_modules", "@huggingface", "jinja", "dist", "index.js");
if (!fs.existsSync(engine)) {
    console.log(`SKIPPED: @huggingface/jinja is not installed in ${peerDir} (tools/peer/install.sh installs it)`);
    process.exit(77);
}
const {Template} = await import(pathToFileURL(engine).href);
fs.mkdirSync(workDir, {recursive: true});

// Parts of templates (README.md there), which no engine renders alone.
const fragments = new Set(["deepseek-r1-first-excerpt"]);

const conversations = {
    "system-and-two-turns": [["system", "You are terse."], ["user", "Hi there!"],
                             ["assistant", "Hello! How can I help?"], ["user", "Tell me a joke."]],
    "one-user-turn": [["user", "What is 2 + 2?"]],
    "two-turns": [["user", "Hi"], ["assistant", "Hello."], ["user", "Bye"]],
    "system-and-one-turn": [["system", "Answer in French."], ["user", "Good morning"]],
    "spaces-and-lines": [["user", "  two\nlines  "], ["assistant", " padded answer "], ["user", "\tand a tab"]],
    "thinking-in-history": [["user", "Why?"], ["assistant", "<think>\nLet me see.\n</think>\n\nBecause."],
                            ["user", "How?"]],
    "two-user-turns": [["user", "One"], ["user", "Two"]],
};

// Where ours differs from the template on purpose, and why. A listed case
// that renders alike fails too, so the list stays true.
const foldedSystem = "the template refuses a system message; we put it in the first user turn, as llama.cpp does";
const known = {
    "mistral system-and-two-turns": foldedSystem,
    "mistral system-and-one-turn": foldedSystem,
    "gemma2 system-and-two-turns": foldedSystem,
    "gemma2 system-and-one-turn": foldedSystem,
    "mistral-v03-excerpt two-user-turns": "the excerpt leaves out the published template's check that turns " +
                                          "alternate, which we make (as the whole Nemo template does)",
    "phi4 two-user-turns": "the template opens the assistant's turn after every user turn, answered or not; we " +
                           "open each turn with its own role, as llama.cpp does",
    "qwq spaces-and-lines": "the engine's lstrip('\\n') strips every space (@huggingface/jinja 0.5.11 ignores " +
                            "the argument); Python's, which transformers renders with, and ours strip newlines only",
};

// thinking false: the template's enable_thinking switch off (Qwen 3), ours
// with --no-think.
function jinja(source, messages, thinking) {
    try {
        return new Template(source).render({
            messages: messages.map(([role, content]) => ({role, content})), bos_token: "<s>", eos_token: "</s>",
            add_generation_prompt: true, ...(thinking ? {} : {enable_thinking: false}),
        });
    } catch (e) {
        return {refused: String(e.message ?? e)};
    }
}

function ours(model, name, messages, thinking) {
    const transcript = path.join(workDir, `${name}.txt`);
    fs.writeFileSync(transcript, messages.map(([role, content]) => `### ${role}\n${content}\n`).join(""));
    try {
        return runCli(cli, ["chat-prompt", "--model", model, "--messages", transcript,
                            ...(thinking ? [] : ["--no-think"])]);
    } catch (e) {
        return {refused: String(e.message)};
    }
}

let failures = 0;
let compared = 0;
let alike = 0;
for (const file of fs.readdirSync(templatesDir).filter(f => f.endsWith(".jinja")).sort()) {
    const name = path.basename(file, ".jinja");
    if (fragments.has(name)) continue;
    const source = fs.readFileSync(path.join(templatesDir, file), "utf8");
    const model = path.join(workDir, `${name}.gguf`);
    runCli(cli, ["make-model", "--preset", "tiny", "--chat-template", path.join(templatesDir, file), "--out", model]);
    const cases = Object.entries(conversations).map(([conversation, messages]) => [conversation, messages, true]);
    if (source.includes("enable_thinking")) {
        for (const [conversation, messages] of Object.entries(conversations)) {
            cases.push([`${conversation}-no-think`, messages, false]);
        }
    }
    for (const [conversation, messages, thinking] of cases) {
        const expected = jinja(source, messages, thinking);
        const got = ours(model, `${name}-${conversation}`, messages, thinking);
        // The first BOS is the tokenizer's (add_bos_token), not the text's.
        const same = typeof expected === "string"
            ? got === expected || (expected.startsWith("<s>") && got === expected.slice(3))
            : typeof got !== "string";
        ++compared;
        const reason = known[`${name} ${conversation}`];
        if (reason !== undefined && !same) {
            console.log(`known ${name}, ${conversation}: ${reason}`);
        } else if (reason !== undefined) {
            ++failures;
            console.log(`FAIL ${name}, ${conversation}: renders alike now; take it off the list of differences`);
        } else if (!same) {
            ++failures;
            console.log(`FAIL ${name}, ${conversation}:\n  jinja: ${JSON.stringify(expected)}\n  ours:  ` +
                        JSON.stringify(got));
        }
        if (same) ++alike;
    }
}
console.log(`${alike} of ${compared} renderings alike, ${Object.keys(known).length} known differences`);
process.exit(failures === 0 ? 0 : 1);
