// Our tokenizers against llama.cpp's on text neither was written for: for
// each real vocabulary in ../shared/tokenizers (SentencePiece and byte-level
// BPE with their pre-tokenizers), seeded random strings of words, numbers,
// runs of spaces and newlines, contractions, punctuation, code, accented
// letters, CJK, emoji and stray bytes of every class, each tokenized
// without BOS by `pagoda-cli tokenize --no-bos` and by the peer, ids equal.
// llama.cpp's own test vectors (NAME.gguf.inp/.out) are fixed strings; these
// are new on every seed.
//
// usage: node llamacpp_tokenizer_test.mjs PAGODA_CLI PEER_DIR SHARED_DIR [STRINGS [SEED]]
// Exits 77 (skipped) when the peer or the vocabularies are absent.

import fs from "node:fs";
import path from "node:path";

import {openPeerOrSkip, runCli, seededIntegers} from "./peer_test_util.mjs";

const [cli, peerDir, sharedDir, countArg, seedArg] = process.argv.slice(2);
const count = Number(countArg ?? 60);
const seed = Number(seedArg ?? 2026);

const vocabs = ["ggml-vocab-llama-spm", "ggml-vocab-phi-3", "ggml-vocab-gpt-2", "ggml-vocab-starcoder"]
    .map(name => path.join(sharedDir, "tokenizers", `${name}.gguf`))
    .filter(file => fs.existsSync(file));
if (vocabs.length === 0) {
    console.log(`SKIPPED: no vocabularies in ${path.join(sharedDir, "tokenizers")}`);
    process.exit(77);
}
const peer = await openPeerOrSkip(peerDir);

const pieces = [
    "the", "The", "THE", "quick", "brown", "fox", "jumped", "over", "lazy", "dogs", "Hello", "world",
    "tokenizer", "internationalization", "a", "I", "it's", "don't", "we'll", "you're", "they've", "I'd",
    "0", "7", "42", "1234", "3.14159", "1,000,000", "2026-11-29", "0x1F", "-5", "+12",
    ".", ",", "!", "?", ";", ":", "...", "--", "-", "(", ")", "[", "]", "{", "}", "\"", "'", "`", "/",
    "\\", "@", "#", "$", "%", "^", "&", "*", "=", "+", "<", ">", "|", "~", "_",
    "def f(x):", "return x + 1", "x += 1;", "int main() {", "</div>", "<br/>", "http://example.com/a?b=c",
    "café", "naïve", "Übermaß", "façade", "señor", "Ελληνικά", "русский", "עברית", "العربية",
    "日本語", "中文", "한국어", "東京", "ひらがな", "カタカナ", "🙂", "👍🏽", "🇫🇷", "❤️", "∑", "∞", "—", "…",
    "\u00a0", "\u200b", "\u3000",
];
const spaces = [" ", " ", " ", "  ", "   ", "\n", "\n\n", "\t", " \n ", "\r\n", "", ""];
// Special tokens' texts of the four vocabularies, which a chat prompt
// carries (tokenized with --special, and by llama.cpp with specialTokens).
const specials = ["<s>", "</s>", "<unk>", "<|endoftext|>", "<|end|>", "<|user|>", "<|assistant|>", "<|system|>",
                  "<fim_prefix>", "<fim_middle>"];

function randomString(next, withSpecials) {
    let text = next() % 4 === 0 ? spaces[next() % spaces.length] : "";
    const n = 1 + (next() % 12);
    for (let i = 0; i < n; ++i) {
        const piece = withSpecials && next() % 3 === 0 ? specials[next() % specials.length]
                                                       : pieces[next() % pieces.length];
        text += piece + spaces[next() % spaces.length];
    }
    return text;
}

const next = seededIntegers(seed);
// Half plain text, half with special tokens' texts parsed as such.
const strings = Array.from({length: count}, (_, i) => ({special: i % 2 === 1, text: randomString(next, i % 2 === 1)}));
let failures = 0;
for (const vocab of vocabs) {
    const model = await peer.llama.loadModel({modelPath: vocab, vocabOnly: true});
    let agreed = 0;
    for (const {special, text} of strings) {
        const ours = runCli(cli, ["tokenize", "--model", vocab, "--no-bos", ...(special ? ["--special"] : []),
                                  "--text", text]).trim();
        const theirs = Array.from(model.tokenize(text, special)).join(" ");
        if (ours === theirs) {
            ++agreed;
        } else if (++failures <= 5) {
            console.log(`FAIL ${path.basename(vocab)}${special ? " (special)" : ""}: ${JSON.stringify(text)}\n` +
                        `  ours:   ${ours}\n` +
                        `  theirs: ${theirs}`);
        }
    }
    console.log(`${agreed === strings.length ? "ok  " : "FAIL"} ${path.basename(vocab)}: ${agreed}/${strings.length}` +
                ` strings tokenized alike (seed ${seed})`);
    await model.dispose();
}
process.exit(failures === 0 ? 0 : 1);
