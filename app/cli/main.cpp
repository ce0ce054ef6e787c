// pagoda-cli: generate text, inspect models, make synthetic models. A
// contract other tools script against: stdout carries only the requested
// output, errors are one line on stderr with a non-zero exit code.

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "app/common/args.h"
#include "app/common/backend_args.h"
#include "app/common/program.h"
#include "engine/backend/backend_select.h"
#include "engine/backend/cuda_ops.h"
#include "engine/chat/chat_template.h"
#include "engine/generation/generator.h"
#include "engine/model/llama2c_import.h"
#include "engine/model/model.h"
#include "engine/model/synthetic.h"
#include "engine/runtime/optimization_config.h"
#include "engine/tokenizer/tokenizer.h"
#include "kernels/format_bytes.h"

namespace pagoda {
namespace {

constexpr const char* kUsage = R"(usage:
  pagoda-cli info MODEL.gguf
  pagoda-cli make-model --preset NAME | --dim D --layers L --heads H --kv-heads K --ffn F --vocab V [--head-dim N]
                        [--arch llama|qwen2|qwen3|phi3|gemma2|gemma3] [--context N]
                        [--dtype T] [--seed N] [--chat-template FILE] [--window N]
                        [--rope-base F] [--rope-scaling linear|yarn|longrope] [--rope-freqs] [--untied-output]
                        --out PATH
  pagoda-cli generate [--model PATH] [--prompt TEXT] [--max-tokens N] [--temperature T] [--top-k K]
                      [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S] [--context N] [--mmap]
                      [--int8-matmul off|cpu|on] [backend options]
  pagoda-cli chat [--model PATH] [--system TEXT] [--max-tokens N] [--context N] [--mmap] [--no-think]
                  [--int8-matmul off|cpu|on] [sampling and backend options]
  pagoda-cli tokenize --model PATH [--no-bos] [--special] (--text TEXT | --file F)
  pagoda-cli chat-prompt --model PATH [--messages FILE] [--no-think]
  pagoda-cli logits --model PATH --tokens 1,2,3 --out FILE [--kv-type f16|f32|q8_0] [--chunk N]
                    [--int8-matmul off|cpu|on]
                    [--context N] [--mmap] [backend options]
  pagoda-cli import-llama2c --checkpoint X.bin --tokenizer T.bin --out Y.gguf
  pagoda-cli devices [--model PATH] [--context N] [--mmap] [backend options]
backend options: [--backend auto|cpu|cuda] (auto: the GPU when the CUDA module, driver and a
device are present, else the CPU) [--device N] (which CUDA device; `devices` lists them;
default: the first usable one) [--gpu-layers auto|N] (the model's last N layers on the GPU, the rest
on the CPU; auto: all when they fit with room for the context's KV cache, else as many as do) [--threads N]
(CPU threads; default all)
--context N: the most tokens a conversation holds (default: the model's context; the automatic GPU
layers then leave room for up to 4096 of it)
--mmap: the CPU reads the weights from the file mapping (default: a copy in memory, faster to decode,
when the host has room)
--no-think: a reasoning model whose chat template has a thinking switch (Qwen 3) answers at once
--chat-template FILE: the Jinja chat template the model file carries (tokenizer.chat_template)
--dtype T: the weight matrices' type: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k or q6_k
(the K-quants need rows of a multiple of 256)
tokenize --special: special tokens' texts (<s>, <|im_start|>, ...) become those tokens, as in a chat prompt
chat-prompt: the prompt the model's chat template makes of a transcript (FILE, else standard input: lines
"### system", "### user" or "### assistant" open messages), ending where the reply begins
logits: every position's logits as f32 [tokens][vocab]; --chunk N: tokens a forward pass (default 256; 1: each a
decode step)
--int8-matmul: products with quantized weights on int8 dot products (the engine's int8-matmul): off, cpu (the
CPU backend only) or on (the GPU's decode too); generate and chat default to the app's optimized preset's, cpu;
logits to off
--window N: gemma2 and gemma3's local layers' window (default 512); --rope-base F: rope.freq_base (Gemma 3's
global layers'; its local layers' is 10000); --rope-scaling: the file's rope.scaling keys
(factor 4, the original context a quarter of --context); --rope-freqs: random rope_freqs.weight (Llama 3.1's);
--untied-output: an output.weight of its own
presets: tiny, small, 1b, 7b, 8b-gqa, 7b-mqa, qwen3-0.6b, phi3-mini, gemma3-1b, gemma2-2b. Without --model,
generate uses the default synthetic model (created on first use under ~/.cache/pagoda/models).
)";

void printProgress(uint64_t done, uint64_t total) {
    static int lastPercent = -1;
    const int percent = total > 0 ? int(done * 100 / total) : 100;
    if (percent != lastPercent) {
        lastPercent = percent;
        fmt::print(stderr, "\rwriting weights: {:3d}%", percent);
        if (percent == 100) fmt::print(stderr, "\n");
    }
}

Result<std::unique_ptr<Model>> loadModelOption(Args& args) {
    std::string path;
    if (auto given = args.value("model")) {
        path = *given;
    } else {
        if (!std::filesystem::exists(defaultModelPath())) {
            fmt::print(stderr, "creating the default synthetic model at {}\n", defaultModelPath().string());
        }
        PAGODA_ASSIGN_OR_RETURN(std::filesystem::path created, ensureDefaultModel(printProgress));
        path = created.string();
    }
    return Model::load(path);
}

Result<const Tokenizer*> requireTokenizer(const Model& model) {
    if (model.tokenizer() == nullptr) return fail("the model has no tokenizer (no tokenizer.ggml.* metadata)");
    return model.tokenizer();
}

Result<void> runInfo(Args& args) {
    if (args.positional().size() != 1) return fail("info needs exactly one MODEL.gguf argument");
    PAGODA_RETURN_IF_ERROR(args.checkAllUsed());
    PAGODA_ASSIGN_OR_RETURN(auto model, Model::load(args.positional()[0]));
    const ModelConfig& c = model->config();
    uint64_t parameters = 0;
    std::map<std::string, int> typeCounts;
    for (const gguf::TensorInfo& t : model->file().tensors()) {
        parameters += t.elementCount;
        ++typeCounts[std::string(dtypeName(t.type))];
    }
    std::string types;
    for (const auto& [name, count] : typeCounts) types += fmt::format("{}{} x{}", types.empty() ? "" : ", ", name, count);
    fmt::print("file:            {}\n", args.positional()[0]);
    fmt::print("gguf version:    {}\n", model->file().version());
    fmt::print("name:            {}\n", c.name.empty() ? "(none)" : c.name);
    fmt::print("architecture:    {}\n", c.architecture);
    fmt::print("parameters:      {} ({:.1f} M)\n", parameters, parameters / 1e6);
    fmt::print("weights:         {} bytes, {}\n", model->weightBytes(), types);
    fmt::print("layer type:      {}\n", model->weightTypeName());
    fmt::print("dim:             {}\n", c.dim);
    fmt::print("layers:          {}\n", c.nLayers);
    fmt::print("heads:           {} (kv heads {}, head dim {})\n", c.nHeads, c.nKvHeads, c.headDim);
    fmt::print("ffn:             {}\n", c.ffnDim);
    fmt::print("vocab:           {}\n", c.vocabSize);
    fmt::print("context:         {}{}\n", c.contextLength,
               c.ropeScaling == RopeScalingType::LongRope
                   ? fmt::format(" (LongRoPE's short factors up to {}, its long ones beyond)", c.ropeOriginalContext)
                   : "");
    std::string rope = fmt::format("base {}, dims {}, {} pairs", c.ropeBase, c.ropeDim,
                                   c.ropeStyle == cpu::RopeStyle::NeoX ? "neox" : "adjacent");
    const size_t factors = model->weights().ropeFreqs.size();
    if (factors > 0) rope += fmt::format(", {} frequency factors", factors);
    if (c.ropeScaling == RopeScalingType::Linear) rope += fmt::format(", linear scaling x{}", c.ropeScalingFactor);
    if (c.ropeScaling == RopeScalingType::Yarn) {
        rope += fmt::format(", yarn scaling x{} of {} positions", c.ropeScalingFactor,
                            c.ropeOriginalContext > 0 ? c.ropeOriginalContext : c.contextLength);
    }
    if (c.ropeScaling == RopeScalingType::LongRope) rope += fmt::format(", longrope magnitude {}", c.ropeAttnFactor);
    fmt::print("rope:            {}\n", rope);
    if (c.qkNorm) fmt::print("qk norm:         each head of q and k\n");
    fmt::print("rms epsilon:     {}\n", c.rmsEps);
    fmt::print("sliding window:  {}\n", c.slidingWindow > 0 ? std::to_string(c.slidingWindow) : "none");
    if (c.globalEvery > 0) {
        fmt::print("local layers:    all but every {}th: window {}, rope base {}\n", c.globalEvery, c.localWindow,
                   c.localRopeBase);
    }
    if (c.postNorms) fmt::print("post norms:      after attention and feed-forward\n");
    if (c.geluFeedForward) fmt::print("feed-forward:    gelu (tanh) gated\n");
    if (c.attnSoftcap > 0 || c.finalSoftcap > 0) {
        fmt::print("soft-capping:    scores {}, logits {}\n", c.attnSoftcap, c.finalSoftcap);
    }
    fmt::print("output:          {}\n", c.tiedOutput ? "tied to token_embd" : "separate");
    if (const Tokenizer* tok = model->tokenizer()) {
        fmt::print("tokenizer:       {}{} ({} tokens, bos {}, eos {})\n", tok->vocab().model,
                   tok->vocab().pre.empty() ? "" : " / " + tok->vocab().pre, tok->vocab().size(), tok->bos(),
                   tok->eos());
        const ChatTemplate chat = ChatTemplate::fromVocab(tok->vocab());
        fmt::print("chat template:   {}{}\n", chatFamilyName(chat.family()),
                   chat.isFallback() ? " (" + chat.note() + ")" : "");
    } else {
        fmt::print("tokenizer:       none\n");
    }
    return {};
}

Result<void> runMakeModel(Args& args) {
    SyntheticSpec spec;
    if (auto preset = args.value("preset")) {
        auto found = syntheticPreset(*preset);
        if (!found) return fail("unknown preset '{}' ({})", *preset, fmt::join(syntheticPresetNames(), ", "));
        spec = *found;
    } else {
        PAGODA_ASSIGN_OR_RETURN(spec.dim, args.integer("dim", spec.dim, 2, 1 << 16));
        PAGODA_ASSIGN_OR_RETURN(spec.nLayers, args.integer("layers", spec.nLayers, 1, 1024));
        PAGODA_ASSIGN_OR_RETURN(spec.nHeads, args.integer("heads", spec.nHeads, 1, 1024));
        PAGODA_ASSIGN_OR_RETURN(spec.nKvHeads, args.integer("kv-heads", spec.nHeads, 1, 1024));
        PAGODA_ASSIGN_OR_RETURN(spec.ffnDim, args.integer("ffn", spec.ffnDim, 1, 1 << 18));
        PAGODA_ASSIGN_OR_RETURN(spec.vocabSize, args.integer("vocab", spec.vocabSize, 1, 1 << 22));
        PAGODA_ASSIGN_OR_RETURN(spec.headDim, args.integer("head-dim", 0, 2, 1024));
    }
    spec.architecture = args.value("arch").value_or(spec.architecture);
    PAGODA_ASSIGN_OR_RETURN(spec.contextLength, args.integer("context", spec.contextLength, 1, 1 << 24));
    PAGODA_ASSIGN_OR_RETURN(spec.slidingWindow, args.integer("window", spec.slidingWindow, 1, 1 << 24));
    PAGODA_ASSIGN_OR_RETURN(const double ropeBase, args.number("rope-base", spec.ropeBase, 1, 1e9));
    spec.ropeBase = float(ropeBase);
    spec.ropeScaling = args.value("rope-scaling").value_or(spec.ropeScaling);
    spec.ropeFreqFactors = spec.ropeFreqFactors || args.flag("rope-freqs");
    spec.tiedOutput = spec.tiedOutput && !args.flag("untied-output");
    if (auto dtype = args.value("dtype")) {
        auto parsed = dtypeFromName(*dtype);
        if (!parsed || !isComputeSupported(*parsed)) return fail("--dtype: '{}' ({})", *dtype, computeSupportedNames());
        spec.dtype = *parsed;
    }
    PAGODA_ASSIGN_OR_RETURN(int64_t seed, args.integer("seed", int64_t(spec.seed), 0, INT64_MAX));
    spec.seed = uint64_t(seed);
    if (auto file = args.value("chat-template")) {
        std::ifstream in(*file, std::ios::binary);
        if (!in) return fail("--chat-template: cannot open '{}'", *file);
        spec.chatTemplate.assign(std::istreambuf_iterator<char>(in), {});
    }
    PAGODA_ASSIGN_OR_RETURN(std::string out, args.required("out"));
    PAGODA_RETURN_IF_ERROR(args.checkAllUsed());
    PAGODA_RETURN_IF_ERROR(validateSpec(spec));
    fmt::print(stderr, "{}: {:.1f} M parameters, {}\n", spec.name, spec.parameterCount() / 1e6, dtypeName(spec.dtype));
    return writeSyntheticModel(spec, out, printProgress);
}

// --context N: the most tokens a sequence holds (0, the default: the
// model's), which the automatic GPU layers leave room for; --mmap: the CPU
// reads the weights from the file mapping, not a copy in memory.
Result<BackendOptions> backendAndContextOptions(Args& args) {
    PAGODA_ASSIGN_OR_RETURN(BackendOptions options, parseBackendOptions(args));
    PAGODA_ASSIGN_OR_RETURN(const int64_t context, args.integer("context", 0, 1, 1 << 24));
    options.room.contextTokens = int(context);
    options.copyWeightsToMemory = !args.flag("mmap");
    return options;
}

GeneratorOptions generatorOptions(const BackendOptions& options) {
    GeneratorOptions generator;
    generator.contextLength = options.room.contextTokens;
    return generator;
}

// --int8-matmul off|cpu|on, else `fallback`.
Result<Int8Matmul> int8Option(Args& args, Int8Matmul fallback) {
    const std::optional<std::string> name = args.value("int8-matmul");
    if (!name) return fallback;
    const std::optional<Int8Matmul> mode = runtime::int8MatmulFromName(*name);
    if (!mode) return fail("--int8-matmul: '{}' (off, cpu or on)", *name);
    return *mode;
}

Result<SamplingParams> samplingOptions(Args& args) {
    SamplingParams p;
    PAGODA_ASSIGN_OR_RETURN(p.temperature, args.number("temperature", p.temperature, 0, 100));
    PAGODA_ASSIGN_OR_RETURN(p.topK, args.integer("top-k", p.topK, 0, 1 << 22));
    PAGODA_ASSIGN_OR_RETURN(p.topP, args.number("top-p", p.topP, 0, 1));
    PAGODA_ASSIGN_OR_RETURN(p.minP, args.number("min-p", p.minP, 0, 1));
    PAGODA_ASSIGN_OR_RETURN(p.repeatPenalty, args.number("repeat-penalty", p.repeatPenalty, 0.01, 100));
    PAGODA_ASSIGN_OR_RETURN(int64_t seed, args.integer("seed", 0, 0, INT64_MAX));
    p.seed = uint64_t(seed);
    return p;
}

// The backend chosen, with the model's weights on it. `interactive`: the
// choice and the upload's progress on stderr (commands whose stderr is only
// an error line stay quiet).
Result<SelectedBackend> openBackend(const BackendOptions& options, Model& model, bool interactive) {
    PAGODA_ASSIGN_OR_RETURN(SelectedBackend backend, selectBackend(options));
    if (interactive) fmt::print(stderr, "{}\n", backend.note);
    const std::string selected = backend.note;
    PAGODA_RETURN_IF_ERROR(prepareModel(backend, model, [interactive](uint64_t done, uint64_t total) {
        if (!interactive) return;
        fmt::print(stderr, "\ruploading weights: {:3.0f}%{}", 100.0 * double(done) / double(std::max<uint64_t>(total, 1)),
                   done == total ? "\n" : "");
    }));
    copyWeightsForTheCpu(backend, model);
    // A fall back to the CPU, where each layer runs when the model splits,
    // whether the CPU reads the weights from memory.
    if (interactive && backend.note != selected) fmt::print(stderr, "{}\n", backend.note);
    return backend;
}

Result<void> runGenerate(Args& args) {
    const std::string prompt = args.value("prompt").value_or("Once upon a time");
    PAGODA_ASSIGN_OR_RETURN(int maxTokens, args.integer("max-tokens", 128, 1, 1 << 24));
    PAGODA_ASSIGN_OR_RETURN(SamplingParams sampling, samplingOptions(args));
    PAGODA_ASSIGN_OR_RETURN(const BackendOptions backendChoice, backendAndContextOptions(args));
    PAGODA_ASSIGN_OR_RETURN(const Int8Matmul int8,
                            int8Option(args, runtime::OptimizationConfig::optimized().int8Matmul));
    PAGODA_ASSIGN_OR_RETURN(auto model, loadModelOption(args));
    PAGODA_RETURN_IF_ERROR(args.checkAllUsed());
    PAGODA_ASSIGN_OR_RETURN(const Tokenizer* tokenizer, requireTokenizer(*model));

    const std::vector<int32_t> tokens = tokenizer->encode(prompt, tokenizer->vocab().addBos);
    PAGODA_ASSIGN_OR_RETURN(SelectedBackend backend, openBackend(backendChoice, *model, false));
    backend.ops->setInt8Matmul(int8);
    Generator generator(*model, *backend.ops, generatorOptions(backendChoice));
    TokenStreamDecoder decoder(*tokenizer);
    for (int32_t id : tokens) decoder.push(id);  // prime it so the first piece's space is handled in context
    fmt::print("{}", prompt);
    std::fflush(stdout);
    GenerateRequest request{tokens, maxTokens, sampling, true};
    PAGODA_ASSIGN_OR_RETURN(GenerateStats stats, generator.generate(request, [&](int32_t id) {
        fmt::print("{}", decoder.push(id));
        std::fflush(stdout);
    }));
    fmt::print("{}\n", decoder.flush());
    fmt::print(stderr, "model: {} ({}), {}\n", model->config().name, model->weightTypeName(), backend.ops->description());
    fmt::print(stderr, "backend: {}\n", backend.note);
    fmt::print(stderr, "prompt: {} tokens, {:.2f} tok/s\n", stats.promptTokens, stats.promptTokensPerSecond());
    fmt::print(stderr, "generation: {} tokens, {:.2f} tok/s ({})\n", stats.generatedTokens,
               stats.generateTokensPerSecond(), finishReasonName(stats.finish));
    return {};
}

// Interactive chat on stdin/stdout: each turn renders the whole conversation
// with the model's chat template; the generator's prefix cache skips the
// part of the prompt it has already computed.
Result<void> runChat(Args& args) {
    PAGODA_ASSIGN_OR_RETURN(int maxTokens, args.integer("max-tokens", 512, 1, 1 << 24));
    PAGODA_ASSIGN_OR_RETURN(SamplingParams sampling, samplingOptions(args));
    PAGODA_ASSIGN_OR_RETURN(const BackendOptions backendChoice, backendAndContextOptions(args));
    PAGODA_ASSIGN_OR_RETURN(const Int8Matmul int8,
                            int8Option(args, runtime::OptimizationConfig::optimized().int8Matmul));
    const std::optional<std::string> system = args.value("system");
    const bool thinking = !args.flag("no-think");
    PAGODA_ASSIGN_OR_RETURN(auto model, loadModelOption(args));
    PAGODA_RETURN_IF_ERROR(args.checkAllUsed());
    PAGODA_ASSIGN_OR_RETURN(const Tokenizer* tokenizer, requireTokenizer(*model));
    const ChatTemplate chat = ChatTemplate::fromVocab(tokenizer->vocab());
    const ReasoningSupport& reasoning = chat.reasoning();
    std::string thinks;
    if (reasoning != ReasoningSupport{}) {
        thinks = ", a reasoning model";
        if (reasoning.canSwitchOff) thinks += thinking ? " (--no-think: it answers at once)" : ", thinking off";
    }
    fmt::print(stderr, "chat template: {}{}{}; empty line or end of input quits\n", chatFamilyName(chat.family()),
               chat.isFallback() ? " (" + chat.note() + ")" : "", thinks);
    if (!thinking && !reasoning.canSwitchOff) {
        fmt::print(stderr, "--no-think: ignored, the chat template has no thinking switch\n");
    }

    PAGODA_ASSIGN_OR_RETURN(SelectedBackend backend, openBackend(backendChoice, *model, true));
    backend.ops->setInt8Matmul(int8);
    Generator generator(*model, *backend.ops, generatorOptions(backendChoice));
    std::vector<ChatMessage> messages;
    if (system) messages.push_back({ChatRole::System, *system});
    for (std::string line; fmt::print(stderr, "> "), std::getline(std::cin, line) && !line.empty();) {
        messages.push_back({ChatRole::User, line});
        PAGODA_ASSIGN_OR_RETURN(std::string prompt, chat.render(messages, true, thinking));
        const std::vector<int32_t> tokens = tokenizer->encode(prompt, tokenizer->vocab().addBos, true);
        TokenStreamDecoder decoder(*tokenizer);
        // The reply as the model sees it: with what the prompt opened ("<think>\n").
        std::string reply(chat.replyOpening(thinking));
        fmt::print("{}", reply);
        GenerateRequest request{tokens, maxTokens, sampling, true};
        PAGODA_ASSIGN_OR_RETURN(GenerateStats stats, generator.generate(request, [&](int32_t id) {
            if (tokenizer->isEndOfGeneration(id)) return;
            const std::string text = decoder.push(id);
            reply += text;
            fmt::print("{}", text);
            std::fflush(stdout);
        }));
        reply += decoder.flush();
        fmt::print("\n");
        fmt::print(stderr, "[{} prompt tokens, {} reused, {:.2f} tok/s, {}]\n", stats.promptTokens,
                   stats.reusedTokens, stats.generateTokensPerSecond(), finishReasonName(stats.finish));
        messages.push_back({ChatRole::Assistant, reply});
    }
    return {};
}

// A transcript: "### system", "### user" or "### assistant" lines open
// messages, the lines up to the next one are its content (trailing newlines
// dropped).
Result<std::vector<ChatMessage>> parseTranscript(std::istream& in) {
    const std::map<std::string, ChatRole> roles = {
        {"### system", ChatRole::System}, {"### user", ChatRole::User}, {"### assistant", ChatRole::Assistant}};
    std::vector<ChatMessage> messages;
    for (std::string line; std::getline(in, line);) {
        if (auto role = roles.find(line); role != roles.end()) {
            messages.push_back({role->second, ""});
        } else if (messages.empty()) {
            return fail("the transcript must open with '### system', '### user' or '### assistant'");
        } else {
            messages.back().content += line + "\n";
        }
    }
    for (ChatMessage& m : messages) m.content.erase(m.content.find_last_not_of('\n') + 1);
    return messages;
}

// The prompt the model's chat template makes of a transcript, with the
// opening of the reply (add_generation_prompt), as the model would read it.
Result<void> runChatPrompt(Args& args) {
    PAGODA_ASSIGN_OR_RETURN(std::string path, args.required("model"));
    const std::optional<std::string> transcriptPath = args.value("messages");
    const bool thinking = !args.flag("no-think");
    PAGODA_RETURN_IF_ERROR(args.checkAllUsed());
    PAGODA_ASSIGN_OR_RETURN(const std::unique_ptr<Tokenizer> tokenizer, loadTokenizer(path));
    std::ifstream file;
    if (transcriptPath) {
        file.open(*transcriptPath, std::ios::binary);
        if (!file) return fail("cannot open '{}'", *transcriptPath);
    }
    PAGODA_ASSIGN_OR_RETURN(const std::vector<ChatMessage> messages, parseTranscript(transcriptPath ? file : std::cin));
    const ChatTemplate chat = ChatTemplate::fromVocab(tokenizer->vocab());
    PAGODA_ASSIGN_OR_RETURN(const std::string prompt, chat.render(messages, true, thinking));
    fmt::print("{}", prompt);
    return {};
}

Result<void> runTokenize(Args& args) {
    PAGODA_ASSIGN_OR_RETURN(std::string path, args.required("model"));
    const bool noBos = args.flag("no-bos");
    const bool special = args.flag("special");
    std::string text;
    if (auto t = args.value("text")) {
        text = *t;
    } else if (auto f = args.value("file")) {
        std::ifstream in(*f, std::ios::binary);
        if (!in) return fail("cannot open '{}'", *f);
        text.assign(std::istreambuf_iterator<char>(in), {});
    } else {
        return fail("tokenize needs --text or --file");
    }
    PAGODA_RETURN_IF_ERROR(args.checkAllUsed());
    PAGODA_ASSIGN_OR_RETURN(const std::unique_ptr<Tokenizer> tokenizer, loadTokenizer(path));
    const std::vector<int32_t> ids = tokenizer->encode(text, !noBos && tokenizer->vocab().addBos, special);
    fmt::print("{}\n", fmt::join(ids, " "));
    return {};
}

Result<std::vector<int32_t>> parseTokenList(const std::string& text) {
    std::vector<int32_t> ids;
    std::stringstream stream(text);
    for (std::string item; std::getline(stream, item, ',');) {
        int32_t id = 0;
        auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), id);
        if (item.empty() || ec != std::errc() || end != item.data() + item.size()) {
            return fail("--tokens: '{}' is not a token id", item);
        }
        ids.push_back(id);
    }
    return ids;
}

Result<void> runLogits(Args& args) {
    PAGODA_ASSIGN_OR_RETURN(std::string path, args.required("model"));
    PAGODA_ASSIGN_OR_RETURN(std::string tokenText, args.required("tokens"));
    PAGODA_ASSIGN_OR_RETURN(std::string out, args.required("out"));
    PAGODA_ASSIGN_OR_RETURN(const BackendOptions backendChoice, backendAndContextOptions(args));
    GeneratorOptions options = generatorOptions(backendChoice);
    const std::string kvTypeName = args.value("kv-type").value_or("f16");
    const std::optional<DType> kvType = dtypeFromName(kvTypeName);
    if (!kvType || (*kvType != DType::F16 && *kvType != DType::F32 && *kvType != DType::Q8_0)) {
        return fail("--kv-type: '{}' (f16, f32 or q8_0)", kvTypeName);
    }
    options.kvType = *kvType;
    PAGODA_ASSIGN_OR_RETURN(options.maxBatchTokens, args.integer("chunk", options.maxBatchTokens, 1, 1 << 16));
    PAGODA_ASSIGN_OR_RETURN(const Int8Matmul int8, int8Option(args, Int8Matmul::Off));
    PAGODA_RETURN_IF_ERROR(args.checkAllUsed());
    PAGODA_ASSIGN_OR_RETURN(std::vector<int32_t> ids, parseTokenList(tokenText));
    PAGODA_ASSIGN_OR_RETURN(auto model, Model::load(path));
    PAGODA_ASSIGN_OR_RETURN(SelectedBackend backend, openBackend(backendChoice, *model, false));
    backend.ops->setInt8Matmul(int8);
    Generator generator(*model, *backend.ops, options);
    PAGODA_ASSIGN_OR_RETURN(std::vector<float> logits, generator.promptLogits(ids));
    std::ofstream file(out, std::ios::binary);
    file.write(reinterpret_cast<const char*>(logits.data()), std::streamsize(logits.size() * sizeof(float)));
    if (!file) return fail("cannot write '{}'", out);
    return {};
}

Result<void> runImport(Args& args) {
    PAGODA_ASSIGN_OR_RETURN(std::string checkpoint, args.required("checkpoint"));
    PAGODA_ASSIGN_OR_RETURN(std::string tokenizer, args.required("tokenizer"));
    PAGODA_ASSIGN_OR_RETURN(std::string out, args.required("out"));
    PAGODA_RETURN_IF_ERROR(args.checkAllUsed());
    return importLlama2c(checkpoint, tokenizer, out);
}

// The backends this machine offers: each CUDA device (usable, or why not)
// or why there is none, with --model how many of its layers fit each usable
// one now (--gpu-layers auto), the CPU, and what the backend options choose.
Result<void> runDevices(Args& args) {
    PAGODA_ASSIGN_OR_RETURN(const BackendOptions options, backendAndContextOptions(args));
    const std::optional<std::string> modelPath = args.value("model");
    PAGODA_RETURN_IF_ERROR(args.checkAllUsed());
    std::unique_ptr<Model> model;
    if (modelPath) {
        PAGODA_ASSIGN_OR_RETURN(model, Model::load(*modelPath));
    }
    const CudaDeviceList cuda = listCudaDevices(options.cudaModulePaths);
    if (cuda.devices.empty()) fmt::print("cuda: unavailable: {}\n", cuda.reason);
    for (const PagodaCudaProbe& device : cuda.devices) {
        fmt::print("{}\n", cudaDeviceLine(device));
        if (!model || !device.available) continue;
        // The device's free memory now (a context on it, which the listing avoids).
        const PagodaCudaProbe now = probeCuda(options.cudaModulePaths, device.deviceIndex).device;
        if (now.freeKnown) {
            const int nLayers = model->config().nLayers;
            const int fit = gpuLayersThatFit(*model, now.freeBytes, options.room);
            const uint64_t all = CudaOps::weightBytes(*model);
            const std::string room =
                fmt::format("room for a context of {} tokens", roomContextTokens(*model, options.room));
            const std::string need = formatBytes(deviceBytesNeeded(*model, nLayers, options.room));
            if (fit == nLayers) {
                fmt::print("  the model: all {} layers ({}) fit with {} ({} in all)\n", nLayers, formatBytes(all), room,
                           need);
            } else if (fit > 0) {
                fmt::print("  the model: {} of {} layers fit with {} (all need {}); the cpu would run the other {}\n",
                           fit, nLayers, room, need, nLayers - fit);
            } else {
                fmt::print("  the model: no layer fits with {} (all {} need {}); it would load there only if the {} of "
                           "weights fit beside 256 MiB, else run on the cpu\n",
                           room, nLayers, need, formatBytes(all));
            }
        }
    }
    fmt::print("{}\n", CpuOps(options.cpu).description());
    PAGODA_ASSIGN_OR_RETURN(SelectedBackend backend, selectBackend(options, &cuda));
    fmt::print("chosen: {}\n", backend.note);
    return {};
}

Result<void> run(int argc, char** argv) {
    if (argc < 2) return fail("missing command\n{}", kUsage);
    const std::string command = argv[1];
    if (command == "--help" || command == "-h" || command == "help") {
        fmt::print("{}", kUsage);
        return {};
    }
    PAGODA_ASSIGN_OR_RETURN(Args args, Args::parse(argc, argv, 2, {"no-bos", "mmap", "no-think", "rope-freqs",
                                                                    "untied-output", "special"}));
    if (command == "info") return runInfo(args);
    if (command == "make-model") return runMakeModel(args);
    if (command == "generate") return runGenerate(args);
    if (command == "chat") return runChat(args);
    if (command == "tokenize") return runTokenize(args);
    if (command == "chat-prompt") return runChatPrompt(args);
    if (command == "logits") return runLogits(args);
    if (command == "import-llama2c") return runImport(args);
    if (command == "devices") return runDevices(args);
    return fail("unknown command '{}' (try --help)", command);
}

}  // namespace
}  // namespace pagoda

int main(int argc, char** argv) { return pagoda::runProgram("pagoda-cli", pagoda::run, argc, argv); }
