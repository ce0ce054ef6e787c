#!/usr/bin/env bash
# pagoda-bench compare with a backend per config (--backends): one row per
# config named after its backend, every backend listed, the JSON naming
# them; mismatched or malformed lists are one-line errors.
# usage: test_bench_compare.sh PAGODA_BENCH PAGODA_CLI
set -u
bench=$1
cli=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

check() {  # check NAME CONDITION...
    local name=$1
    shift
    if "$@"; then echo "ok   $name"; else echo "FAIL $name"; failures=$((failures + 1)); fi
}
fails_with() {  # fails_with PATTERN COMMAND...: non-zero exit, one stderr line matching PATTERN
    local pattern=$1
    shift
    "$@" >"$work/out" 2>"$work/err"
    local rc=$?
    [ $rc -ne 0 ] && [ "$(wc -l <"$work/err")" -eq 1 ] && grep -q -- "$pattern" "$work/err"
}

model=$work/tiny.gguf
"$cli" make-model --preset tiny --seed 4 --out "$model" >/dev/null 2>&1
small=(--model "$model" --requests 2 --prompt-len 8 --gen-len 4 --concurrency 2 --toggles 0 --threads 1)

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

check "one backend per config" fails_with "2 configs (one each)" "$bench" compare "${small[@]}" --backends cpu
check "no device on the CPU" fails_with "'cpu:1' is not" "$bench" compare "${small[@]}" --backends cpu:1,cpu
check "a device is a number" fails_with "'cuda:x' is not" "$bench" compare "${small[@]}" --backends cuda:x,cpu

[ $failures -eq 0 ] || { echo "$failures failed"; exit 1; }
