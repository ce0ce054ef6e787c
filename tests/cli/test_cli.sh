#!/usr/bin/env bash
# pagoda-cli as a contract: outputs, exit codes and one-line errors; with
# PAGODA_BENCH, also pagoda-bench compare with a backend per config; with
# FAKE_GPU_MODULE (the CUDA tests' fake module), two backends on one GPU.
# usage: test_cli.sh PAGODA_CLI SHARED_DIR [PAGODA_BENCH [FAKE_GPU_MODULE]]
set -u
cli=$1
shared=$2
bench=${3:-}
fake_gpu=${4:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

check() {  # check NAME CONDITION...
    local name=$1
    shift
    if "$@"; then echo "ok   $name"; else echo "FAIL $name"; failures=$((failures + 1)); fi
}
starts_with() { [[ "$1" == "$2"* ]]; }  # starts_with TEXT PREFIX
fails_with() {  # fails_with PATTERN COMMAND...: non-zero exit, one stderr line matching PATTERN
    local pattern=$1
    shift
    "$@" >"$work/out" 2>"$work/err"
    local rc=$?
    [ $rc -ne 0 ] && [ "$(wc -l <"$work/err")" -eq 1 ] && grep -q -- "$pattern" "$work/err"
}

model=$work/tiny.gguf
check "make-model tiny q8_0" "$cli" make-model --preset tiny --dtype q8_0 --seed 3 --out "$model"
check "info shows the config" bash -c "'$cli' info '$model' | grep -q 'heads:           4 (kv heads 2, head dim 16)'"
check "info shows the weight type" bash -c "'$cli' info '$model' | grep -q 'layer type:      q8_0'"
# A qwen3 model (QK-norm, heads wider than dim / heads) made, described and run.
check "make-model qwen3" "$cli" make-model --arch qwen3 --dim 64 --layers 2 --heads 4 --kv-heads 2 --ffn 96 \
    --vocab 512 --head-dim 32 --out "$work/qwen3.gguf"
check "info shows qwen3" bash -c "'$cli' info '$work/qwen3.gguf' | grep -q 'architecture:    qwen3'"
check "info shows qwen3's rope and qk norm" bash -c \
    "'$cli' info '$work/qwen3.gguf' | grep -q 'rope:            base 10000, dims 32, neox pairs' &&
     '$cli' info '$work/qwen3.gguf' | grep -q 'qk norm:         each head of q and k'"
check "qwen3 generates" bash -c "'$cli' generate --model '$work/qwen3.gguf' --max-tokens 4 2>&1 | grep -q 'generation: 4 tokens'"
# make-model's feature switches reach the file (tests/peer checks their logits).
check "make-model gemma3 with its switches" "$cli" make-model --arch gemma3 --dim 64 --layers 6 --heads 4 \
    --kv-heads 2 --ffn 128 --vocab 512 --window 8 --rope-base 1000000 --rope-scaling yarn --untied-output \
    --out "$work/switches.gguf"
"$cli" info "$work/switches.gguf" >"$work/switches" 2>&1
check "info shows the window" grep -q 'local layers:    all but every 6th: window 8, rope base 10000' "$work/switches"
check "info shows the rope base and scaling" grep -q 'rope:            base 1000000, dims 16, neox pairs, yarn' \
    "$work/switches"
check "info shows the output of its own" grep -q 'output:          separate' "$work/switches"
check "unknown rope scaling" fails_with "RoPE scaling 'ntk' (linear, yarn or longrope)" \
    "$cli" make-model --preset tiny --rope-scaling ntk --out "$work/x.gguf"
check "logits: the KV type" fails_with "--kv-type: 'q4_0' (f16, f32 or q8_0)" \
    "$cli" logits --model "$model" --tokens 1,2 --kv-type q4_0 --out "$work/x.logits"
check "unknown architecture" fails_with "architecture 'gpt2' (llama, qwen2, qwen3, phi3, gemma2 or gemma3)" \
    "$cli" make-model --arch gpt2 \
    --out "$work/x.gguf"

out1=$("$cli" generate --model "$model" --prompt "hello" --max-tokens 12 --temperature 0 2>/dev/null)
out2=$("$cli" generate --model "$model" --prompt "hello" --max-tokens 12 --temperature 0 2>/dev/null)
check "greedy generate is deterministic" test "$out1" = "$out2"
check "generate echoes the prompt" starts_with "$out1" "hello"
"$cli" generate --model "$model" --max-tokens 4 --seed 5 >/dev/null 2>"$work/stats"
check "generate reports tok/s on stderr" grep -q "generation: 4 tokens" "$work/stats"

printf 'hello there\nand more\n' | "$cli" chat --model "$model" --max-tokens 6 --temperature 0 >/dev/null 2>"$work/chat"
check "chat: second turn reuses the first turn's cached prefix" grep -qE "prompt tokens, [1-9][0-9]* reused" "$work/chat"
check "tokenize starts with BOS" bash -c "'$cli' tokenize --model '$model' --text 'hello world' | grep -qE '^1 [0-9]'"
check "tokenize --no-bos" bash -c "! '$cli' tokenize --model '$model' --no-bos --text 'hello' | grep -qE '^1 '"
check "tokenize --special: <s> is BOS" test "$("$cli" tokenize --model "$model" --no-bos --special --text '<s>')" = 1

"$cli" logits --model "$model" --tokens 1,5,9 --out "$work/logits.bin"
check "logits writes [3][512] float32" test "$(stat -c %s "$work/logits.bin")" -eq $((3 * 512 * 4))

check "missing model file" fails_with "pagoda-cli: error: .*no-such.gguf" "$cli" info "$work/no-such.gguf"
head -c 1000 "$model" >"$work/truncated.gguf"
check "truncated model" fails_with "pagoda-cli: error:" "$cli" info "$work/truncated.gguf"
check "token id out of range" fails_with "token id 9999 outside" "$cli" logits --model "$model" --tokens 1,9999 --out "$work/x"
check "int8 matmul: a mode" fails_with "--int8-matmul: 'yes' (off, cpu or on)" \
    "$cli" logits --model "$model" --tokens 1,2 --int8-matmul yes --out "$work/x"
check "unknown option" fails_with "unknown option --bogus" "$cli" generate --model "$model" --bogus 1
check "unknown command" fails_with "unknown command 'frobnicate'" "$cli" frobnicate
check "bad dtype" fails_with "dtype" "$cli" make-model --preset tiny --dtype q9 --out "$work/x.gguf"
check "prompt longer than context" fails_with "does not fit the context" \
    "$cli" generate --model "$model" --prompt "$(printf 'word %.0s' $(seq 1 600))" --max-tokens 1
# --context: a shorter context than the model's, for prompts and replies.
check "prompt longer than the context set" fails_with "does not fit the context of 8 tokens" \
    "$cli" generate --model "$model" --prompt "$(printf 'word %.0s' $(seq 1 20))" --max-tokens 1 --context 8
"$cli" generate --model "$model" --prompt "hello" --max-tokens 40 --temperature 0 --context 16 >/dev/null 2>"$work/ctx"
check "generation stops at the context set" grep -qE "^generation: [0-9]+ tokens, .* \((context full|end of generation)\)$" \
    "$work/ctx"
printf 'hello\n' | "$cli" chat --model "$model" --max-tokens 2 --backend cpu >/dev/null 2>"$work/copied"
check "chat: the cpu reads the weights from memory" \
    grep -qE '^cpu: chosen; the cpu reads the weights from memory \([0-9.]+ KiB copied\)$' "$work/copied"
printf 'hello\n' | "$cli" chat --model "$model" --max-tokens 2 --backend cpu --mmap >/dev/null 2>"$work/mapped"
check "chat --mmap: from the file mapping" \
    grep -qE '^cpu: chosen; the cpu reads the weights from the file mapping \(as asked\)$' "$work/mapped"
# Reasoning models: DeepSeek-R1's template opens <think> in the prompt; Qwen 3's can switch thinking off.
printf '%s' "{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}" \
    "{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜><think>\\n'}}{% endif %}" >"$work/r1.jinja"
"$cli" make-model --preset tiny --chat-template "$work/r1.jinja" --out "$work/r1.gguf" 2>/dev/null
printf 'hello\n' | "$cli" chat --model "$work/r1.gguf" --max-tokens 2 >"$work/r1.out" 2>"$work/r1.err"
check "chat: a reasoning model's template is named" \
    grep -q "^chat template: deepseek, a reasoning model;" "$work/r1.err"
check "chat: the reply starts inside the block the prompt opened" starts_with "$(cat "$work/r1.out")" "<think>"
printf '%s' "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}" \
    "{%- endif %}<|im_start|>" >"$work/qwen3.jinja"
"$cli" make-model --preset tiny --chat-template "$work/qwen3.jinja" --out "$work/q3t.gguf" 2>/dev/null
printf 'hello\n' | "$cli" chat --model "$work/q3t.gguf" --max-tokens 2 >/dev/null 2>"$work/think.err"
printf 'hello\n' | "$cli" chat --model "$work/q3t.gguf" --max-tokens 2 --no-think >/dev/null 2>"$work/nothink.err"
check "chat --no-think: the switch is named" grep -q "a reasoning model, thinking off;" "$work/nothink.err"
think_tokens=$(grep -oE '\[[0-9]+ prompt tokens' "$work/think.err" | grep -oE '[0-9]+')
nothink_tokens=$(grep -oE '\[[0-9]+ prompt tokens' "$work/nothink.err" | grep -oE '[0-9]+')
check "chat --no-think: the prompt closes an empty block" test "$nothink_tokens" -gt "$think_tokens"
printf 'hello\n' | "$cli" chat --model "$work/r1.gguf" --max-tokens 2 --no-think >/dev/null 2>"$work/r1-nothink.err"
check "chat --no-think without a switch says so" grep -q "^--no-think: ignored" "$work/r1-nothink.err"
check "context: a count" fails_with "\-\-context: 0 outside \[1, " "$cli" generate --model "$model" --context 0

if [ -f "$shared/models/stories260K.gguf" ]; then
    story=$("$cli" generate --model "$shared/models/stories260K.gguf" --prompt "" --max-tokens 20 --temperature 0 2>/dev/null)
    check "stories260K greedy story" starts_with "$story" "Once upon a time, there was a little girl named Lily."
    "$cli" import-llama2c --checkpoint "$shared/models/stories260K.bin" --tokenizer "$shared/models/tok512.bin" \
        --out "$work/imported.gguf"
    check "import-llama2c writes a loadable model" bash -c "'$cli' info '$work/imported.gguf' | grep -q 'kv heads 4'"
else
    echo "skip stories260K checks: $shared/models not found"
fi
# chat-prompt: the prompt of a transcript, ending where the reply begins;
# the default template is ChatML (the tiny model has none).
printf '### user\nHi\n### assistant\nHello\n\n### user\nBye\n' >"$work/transcript"
"$cli" chat-prompt --model "$model" --messages "$work/transcript" >"$work/prompt"
printf '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n' >"$work/expected-prompt"
printf '<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n' >>"$work/expected-prompt"
check "chat-prompt renders a transcript" cmp -s "$work/prompt" "$work/expected-prompt"
printf 'Hi\n' >"$work/bad-transcript"
check "chat-prompt: a transcript opens with a role" fails_with "must open with '### system'" \
    "$cli" chat-prompt --model "$model" --messages "$work/bad-transcript"
# tokenize reads the tokenizer alone: a vocab-only file (no tensors) will do.
vocab=$shared/tokenizers/ggml-vocab-gpt-2.gguf
if [ -f "$vocab" ]; then
    check "tokenize a vocab-only file" test "$("$cli" tokenize --model "$vocab" --no-bos --text 'Hello  world')" = \
        "15496 220 995"
else
    echo "skip the vocab-only check: $vocab not found"
fi

# pagoda-bench compare --backends: one row per config named after its
# backend, every backend listed, the JSON naming them; mismatched or
# malformed lists are one-line errors.
if [ -n "$bench" ]; then
    f32=$work/tiny-f32.gguf
    "$cli" make-model --preset tiny --seed 4 --out "$f32" >/dev/null 2>&1
    small=(--model "$f32" --requests 2 --prompt-len 8 --gen-len 4 --concurrency 2 --toggles 0 --threads 1)

    "$bench" compare "${small[@]}" --configs optimized,optimized --backends auto,cpu --json "$work/c.json" \
        >"$work/table" 2>/dev/null
    check "runs" test $? -eq 0
    check "a row per config, named after its backend" grep -qE '^optimized @cpu +[0-9]' "$work/table"
    check "the auto row" grep -qE '^optimized @auto +[0-9]' "$work/table"
    check "two backend lines" test "$(grep -c '^backend: ' "$work/table")" -eq 2
    check "the CPU's note" grep -qE '^backend: +cpu: 1 threads.*\(cpu: chosen\)$' "$work/table"
    check "both rows generate the same tokens" test "$(grep -cE '^optimized @(auto|cpu) .* 2/2$' "$work/table")" -eq 2
    check "the JSON lists both backends" grep -qE '"backends": \["[^"]+", "cpu: 1 threads' "$work/c.json"

    "$bench" compare "${small[@]}" --configs optimized,baseline --backends cpu,cpu >"$work/one" 2>/dev/null
    check "the same backend twice is one backend" test "$(grep -c '^backend: ' "$work/one")" -eq 1
    check "one backend: rows keep the config's name" grep -qE '^baseline +[0-9]' "$work/one"

    "$bench" compare "${small[@]}" --configs baseline,optimized --op-times 1 --json "$work/ops.json" >"$work/ops" \
        2>/dev/null
    check "compare --op-times: runs" test $? -eq 0
    check "compare --op-times: a table per config" \
        test "$(grep -cE '^op times of (baseline|optimized), each call timed alone' "$work/ops")" -eq 2
    check "compare --op-times: attention in each" test "$(grep -cE '^attention +[0-9.]+ ' "$work/ops")" -eq 2
    check "compare --op-times: in the JSON" \
        grep -qE '^  \{"config": "optimized", "ops": \[\{"op": "[a-z_]+", "calls_per_token": ' "$work/ops.json"

    # The toggle rows: local-layer KV pools only for a model with local
    # and global layers (gemma3: layer 5 of 6 global), int8 matmul only for
    # quantized weights.
    toggled=(--requests 2 --prompt-len 8 --gen-len 4 --concurrency 2 --threads 1 --toggles 1)
    "$bench" compare --model "$f32" "${toggled[@]}" >"$work/toggles" 2>/dev/null
    check "toggles: no local-pool row for llama" bash -c "! grep -q 'local-layer KV pools' '$work/toggles'"
    check "toggles: no int8 row for f32 weights" bash -c "! grep -q 'int8 matmul' '$work/toggles'"
    gemma=$work/gemma3.gguf
    "$cli" make-model --arch gemma3 --dim 64 --layers 6 --heads 4 --kv-heads 2 --ffn 128 --vocab 512 --context 256 \
        --dtype q8_0 --out "$gemma" >/dev/null 2>&1
    "$bench" compare --model "$gemma" "${toggled[@]}" >"$work/gemma-toggles" 2>/dev/null
    check "toggles: a local-pool row for gemma3" grep -qE '^\+local-layer KV pools \(paged\) +[0-9]' "$work/gemma-toggles"
    check "toggles: an int8 row for q8_0 weights" grep -qE '^\+int8 matmul \(CPU\) +[0-9]' "$work/gemma-toggles"

    check "one backend per config" fails_with "2 configs (one each)" "$bench" compare "${small[@]}" --backends cpu
    check "no device on the CPU" fails_with "'cpu:1' is not" "$bench" compare "${small[@]}" --backends cpu:1,cpu
    check "a device is a number" fails_with "'cuda:x' is not" "$bench" compare "${small[@]}" --backends cuda:x,cpu
    check "GPU layers are a count" fails_with "'cuda@x' is not" "$bench" compare "${small[@]}" --backends cuda@x,cpu
    check "no GPU layers on the CPU" fails_with "'cpu@1' is not" "$bench" compare "${small[@]}" --backends cpu@1,cpu

    # pagoda-bench generation --op-times 1: the prompt and the generated
    # tokens by operation (the tiny model has 2 layers: 2 attention calls
    # per token).
    "$bench" generation --model "$f32" --threads 1 --reps 1 --prompt-tokens 8 --gen-tokens 4 --bandwidth-mib 64 \
        --op-times 1 --json "$work/gen.json" >"$work/ops" 2>/dev/null
    check "op times: runs" test $? -eq 0
    check "op times: the prompt's table" grep -q '^op times, each call timed alone: the prompt of 8 tokens$' "$work/ops"
    check "op times: attention per generated token" grep -qE '^attention +2\.0 +[0-9.]+ +[0-9.]+%$' "$work/ops"
    check "op times: a total per table" test "$(grep -cE '^total +[0-9.]+ +100\.0%$' "$work/ops")" -eq 2
    check "op times: in the JSON" grep -qE '"op_times": \{"prompt": \[\{"op": .*"generation": \[\{"op": ' \
        "$work/gen.json"

    # Two backends on the fake GPU: the second runs on the first's weights.
    # The fake runs nothing, so the warm-up then fails there.
    if [ -n "$fake_gpu" ]; then
        PAGODA_CUDA_MODULE=$fake_gpu PAGODA_FAKE_DEVICE_MIB=300 "$bench" compare "${small[@]}" \
            --configs optimized:kv-budget-mib=1,optimized:kv-budget-mib=1 --backends cuda:1,auto:1 \
            >"$work/gpu" 2>"$work/gpu.err"
        check "the fake GPU fails to run" grep -q "the fake device runs nothing" "$work/gpu.err"
        check "two backends on one GPU" test "$(grep -cE '^backend: +cuda: Fake GPU' "$work/gpu")" -eq 2
        check "the second shares the first's weights" \
            test "$(grep -cE '^backend: +cuda: Fake GPU.*, weights shared with another engine \(' "$work/gpu")" -eq 1
        # --gpu-layers 1: the tiny model's last layer on the GPU, layer 0 on the CPU.
        PAGODA_CUDA_MODULE=$fake_gpu PAGODA_FAKE_DEVICE_MIB=300 "$bench" compare "${small[@]}" \
            --configs optimized:kv-budget-mib=1 --backend cuda --gpu-layers 1 >"$work/split" 2>"$work/split.err"
        check "split by layer" grep -qE '^backend: +cuda: Fake GPU.*; layer 1 of 2 \(layer 0 on cpu: .*; layer 1 on cuda:1, layer 0 on the cpu; the cpu reads the weights from memory \([0-9.]+ [KM]iB copied, layer 0\)\)$' "$work/split"
        echo hi | PAGODA_CUDA_MODULE=$fake_gpu PAGODA_FAKE_DEVICE_MIB=300 "$cli" chat --model "$model" \
            --gpu-layers 1 >/dev/null 2>"$work/chat-split"
        check "chat says where each layer runs" \
            grep -qE '^cuda:1: Fake GPU .*; using cuda; layer 1 on cuda:1, layer 0 on the cpu; the cpu reads the weights from memory \([0-9.]+ [KM]iB copied, layer 0\)$' \
            "$work/chat-split"
        check "GPU layers: auto or a count" fails_with "GPU layers 'some': 'auto' or a count" "$bench" compare \
            "${small[@]}" --gpu-layers some
        # One config with the model split, one with it whole on the GPU:
        # two backends, the second not sharing the first's weights.
        PAGODA_CUDA_MODULE=$fake_gpu PAGODA_FAKE_DEVICE_MIB=300 "$bench" compare "${small[@]}" \
            --configs optimized:kv-budget-mib=1,optimized:kv-budget-mib=1 --backends cuda:1@1,cuda:1@2 \
            >"$work/layers" 2>"$work/layers.err"
        check "a backend per GPU layers: split" grep -qE '^backend: +cuda: Fake GPU.*; layer 1 of 2 \(layer 0 on cpu' \
            "$work/layers"
        check "a backend per GPU layers: whole, its own weights" \
            grep -qE '^backend: +cuda: Fake GPU, sm_90, 0 SMs \(cuda:1: .*; using cuda\)$' "$work/layers"
        # devices --model: how many of the model's layers fit each GPU now.
        PAGODA_CUDA_MODULE=$fake_gpu PAGODA_FAKE_DEVICE_MIB=2100 "$cli" devices --model "$model" >"$work/devices"
        check "devices: the whole model fits" \
            grep -qE '^  the model: all 2 layers \(.*\) fit with room for a context of 512 tokens \(.* in all\)$' \
            "$work/devices"
        PAGODA_CUDA_MODULE=$fake_gpu PAGODA_FAKE_DEVICE_MIB=2100 "$cli" devices --model "$model" --context 64 \
            >"$work/devices"
        check "devices: room for the context set" grep -qE '^  the model: all 2 layers .* a context of 64 tokens ' \
            "$work/devices"
        PAGODA_CUDA_MODULE=$fake_gpu PAGODA_FAKE_DEVICE_MIB=300 "$cli" devices --model "$model" >"$work/devices"
        check "devices: no layer fits with room" \
            grep -qE '^  the model: no layer fits with room for a context of 512 tokens \(all 2 need ' "$work/devices"
    fi
fi

[ $failures -eq 0 ] || { echo "$failures check(s) failed"; exit 1; }
