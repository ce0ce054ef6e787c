#!/usr/bin/env python3
"""The PyTorch peer of `pagoda-bench gpu`: the same shapes through a plain
Llama-style decode loop in eager PyTorch (F16 weights, RMSNorm, RoPE,
SwiGLU, scaled_dot_product_attention over a static KV cache) for prefill
and decode, decode also as one CUDA graph per step (static shapes, the
cache masked past the position: what the eager Python loop's launch
overhead hides), and causal prefill attention through
scaled_dot_product_attention. Random weights:
speed does not depend on their values. Prints a table; --json writes the
numbers in the layout of pagoda-bench's JSON.

usage: torch_peer.py [--presets 7b,8b-gqa] [--batches 1,8,32] [--context 512]
                     [--steps 32] [--prefill-tokens 512] [--attention-contexts 4096,16384]
                     [--quick] [--json FILE]
"""

import argparse
import json
import math
import time

import torch
import torch.nn.functional as F

# The synthetic presets of engine/model/synthetic.cpp.
PRESETS = {
    "tiny": dict(dim=64, layers=2, heads=4, kv_heads=2, ffn=192, vocab=512, rope_base=10000.0, context=512),
    "small": dict(dim=768, layers=12, heads=12, kv_heads=12, ffn=2048, vocab=32000, rope_base=10000.0, context=1024),
    "1b": dict(dim=2048, layers=16, heads=32, kv_heads=8, ffn=8192, vocab=128256, rope_base=500000.0, context=8192),
    "7b": dict(dim=4096, layers=32, heads=32, kv_heads=32, ffn=11008, vocab=32000, rope_base=10000.0, context=4096),
    "8b-gqa": dict(dim=4096, layers=32, heads=32, kv_heads=8, ffn=14336, vocab=128256, rope_base=500000.0,
                   context=8192),
    "7b-mqa": dict(dim=4096, layers=32, heads=32, kv_heads=1, ffn=11008, vocab=32000, rope_base=10000.0, context=4096),
}
WARMUP_STEPS = 3
PREFILL_CHUNK = 256


def attend(q, keys, values, mask, group, causal=False):
    """SDPA, reading each KV head once per group where PyTorch can
    (enable_gqa, torch >= 2.5), else with the KV heads repeated. `causal`
    instead of a mask (a chunk from position 0) keeps SDPA's flash kernels
    eligible; a boolean mask rules them out."""
    global SDPA_GQA
    if group > 1 and SDPA_GQA:
        try:
            return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, is_causal=causal, enable_gqa=True)
        except TypeError:
            SDPA_GQA = False
    if group > 1:
        keys = keys.repeat_interleave(group, dim=1)
        values = values.repeat_interleave(group, dim=1)
    return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, is_causal=causal)


SDPA_GQA = True


class Llama:
    """Weights [out, in] as nn.Linear keeps them; a static KV cache
    [layers][batch, kv_heads, max_len, head_dim]."""

    def __init__(self, p, batch, max_len, device):
        self.p = p
        self.head_dim = p["dim"] // p["heads"]
        dim, hd = p["dim"], self.head_dim
        f16 = dict(device=device, dtype=torch.float16)
        scale = 1.0 / math.sqrt(dim)

        def w(rows, cols):
            return torch.randn(rows, cols, **f16) * scale

        self.embedding = w(p["vocab"], dim)
        self.output = w(p["vocab"], dim)
        self.output_norm = torch.ones(dim, **f16)
        self.layers = []
        for _ in range(p["layers"]):
            self.layers.append(dict(
                attn_norm=torch.ones(dim, **f16), ffn_norm=torch.ones(dim, **f16),
                wq=w(p["heads"] * hd, dim), wk=w(p["kv_heads"] * hd, dim), wv=w(p["kv_heads"] * hd, dim),
                wo=w(dim, p["heads"] * hd), gate=w(p["ffn"], dim), up=w(p["ffn"], dim), down=w(dim, p["ffn"]),
                k_cache=torch.zeros(batch, p["kv_heads"], max_len, hd, **f16),
                v_cache=torch.zeros(batch, p["kv_heads"], max_len, hd, **f16)))
        inv_freq = 1.0 / (p["rope_base"] ** (torch.arange(0, hd, 2, device=device, dtype=torch.float64) / hd))
        angles = torch.outer(torch.arange(max_len, device=device, dtype=torch.float64), inv_freq)
        self.cos = torch.cos(angles).to(torch.float32)
        self.sin = torch.sin(angles).to(torch.float32)

    def weight_bytes_per_step(self):
        total = self.output.numel()
        for layer in self.layers:
            total += sum(layer[k].numel() for k in ("wq", "wk", "wv", "wo", "gate", "up", "down"))
        return 2 * total

    @staticmethod
    def rms_norm(x, weight, eps=1e-5):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype) * weight

    def rope(self, x, positions):
        # x: [batch, heads, n, head_dim]; llama pairs (2i, 2i+1)
        cos = self.cos[positions][None, None]
        sin = self.sin[positions][None, None]
        xf = x.float()
        even, odd = xf[..., 0::2], xf[..., 1::2]
        out = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)
        return out.to(x.dtype)

    def layers_over(self, x, positions, store_and_attend):
        """The layers over x ([batch, n, dim]) at `positions` ([n], device);
        store_and_attend(layer, q, k, v) writes k and v to the layer's cache
        and returns the attention output ([batch, heads, n, head_dim])."""
        p, hd = self.p, self.head_dim
        batch, n = x.shape[0], x.shape[1]
        for layer in self.layers:
            h = self.rms_norm(x, layer["attn_norm"])
            q = (h @ layer["wq"].T).view(batch, n, p["heads"], hd).transpose(1, 2)
            k = (h @ layer["wk"].T).view(batch, n, p["kv_heads"], hd).transpose(1, 2)
            v = (h @ layer["wv"].T).view(batch, n, p["kv_heads"], hd).transpose(1, 2)
            q, k = self.rope(q, positions), self.rope(k, positions)
            att = store_and_attend(layer, q, k, v)
            x = x + att.transpose(1, 2).reshape(batch, n, p["heads"] * hd) @ layer["wo"].T
            h = self.rms_norm(x, layer["ffn_norm"])
            x = x + (F.silu(h @ layer["gate"].T) * (h @ layer["up"].T)) @ layer["down"].T
        return x

    @torch.inference_mode()
    def forward(self, tokens, start, last_only=False):
        """tokens: [batch, n] at positions start..start+n-1 of every sequence;
        logits of every position, or of the last only."""
        p = self.p
        n = tokens.shape[1]
        # Causal within the chunk (from position 0: SDPA's is_causal); a
        # decode step (n == 1) sees everything.
        mask = None
        if n > 1 and start > 0:
            mask = torch.ones(n, start + n, dtype=torch.bool, device=tokens.device).tril(diagonal=start)

        def store_and_attend(layer, q, k, v):
            layer["k_cache"][:, :, start:start + n] = k
            layer["v_cache"][:, :, start:start + n] = v
            keys = layer["k_cache"][:, :, :start + n]
            values = layer["v_cache"][:, :, :start + n]
            return attend(q, keys, values, mask, p["heads"] // p["kv_heads"], causal=n > 1 and start == 0)

        positions = torch.arange(start, start + n, device=tokens.device)
        x = self.layers_over(self.embedding[tokens], positions, store_and_attend)
        if last_only:
            x = x[:, -1:]
        return self.rms_norm(x, self.output_norm) @ self.output.T

    @torch.inference_mode()
    def decode_step(self, tokens, pos):
        """One token per sequence ([batch, 1]) at position `pos` (a 0-d
        device tensor): forward() of one token with every shape static, so
        that a CUDA graph can capture it. K and V go to `pos` by index_copy_,
        and attention reads the whole static cache with the positions past
        `pos` masked (at most WARMUP_STEPS + steps rows more than it needs)."""
        p = self.p
        positions = pos.view(1)
        max_len = self.layers[0]["k_cache"].shape[2]
        visible = (torch.arange(max_len, device=tokens.device) <= pos).view(1, 1, 1, max_len)

        def store_and_attend(layer, q, k, v):
            layer["k_cache"].index_copy_(2, positions, k)
            layer["v_cache"].index_copy_(2, positions, v)
            return attend(q, layer["k_cache"], layer["v_cache"], visible, p["heads"] // p["kv_heads"])

        x = self.layers_over(self.embedding[tokens], positions, store_and_attend)
        return self.rms_norm(x, self.output_norm) @ self.output.T


def copy_bandwidth_gbs(device, nbytes=1 << 30, reps=20):
    src = torch.ones(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        dst.copy_(src)
    torch.cuda.synchronize()
    return 2.0 * nbytes * reps / (time.perf_counter() - start) / 1e9


def time_decode(name, batch, context, steps, copy_gbs, device, graphs=False):
    """Decode steps after a `context`-token prompt, each waiting for its
    logits (the next token needs them): forward() from Python, or with
    `graphs` one CUDA graph of decode_step replayed per step."""
    p = PRESETS[name]
    max_len = context + WARMUP_STEPS + steps
    model = Llama(p, batch, max_len, device)
    gen = torch.Generator(device="cpu").manual_seed(batch)
    prompt = torch.randint(0, p["vocab"], (batch, context), generator=gen).to(device)
    for start in range(0, context, PREFILL_CHUNK):
        model.forward(prompt[:, start:start + PREFILL_CHUNK], start)
    ids = torch.randint(0, p["vocab"], (batch, WARMUP_STEPS + steps), generator=gen).to(device)
    if graphs:
        static_ids = ids[:, :1].clone()
        static_pos = torch.tensor(context, dtype=torch.long, device=device)
        # Warm up on a side stream before capturing, as torch.cuda.graph asks.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):
                model.decode_step(static_ids, static_pos)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_logits = model.decode_step(static_ids, static_pos)  # held: the graph writes it on each replay

        def step(i):
            static_ids.copy_(ids[:, i:i + 1])
            static_pos.fill_(context + i)
            graph.replay()
    else:
        def step(i):
            model.forward(ids[:, i:i + 1], context + i)
    torch.cuda.synchronize()
    for i in range(WARMUP_STEPS + steps):
        if i == WARMUP_STEPS:
            begin = time.perf_counter()
        step(i)
        torch.cuda.synchronize()  # the next token needs these logits
    seconds = time.perf_counter() - begin
    hd = p["dim"] // p["heads"]
    kv_bytes_per_token = 2 * p["layers"] * p["kv_heads"] * hd * 2
    mean_context = context + WARMUP_STEPS + (steps + 1) / 2
    bytes_per_step = model.weight_bytes_per_step() + batch * mean_context * kv_bytes_per_token
    if graphs:
        del graph, static_logits
    del model
    torch.cuda.empty_cache()
    return dict(preset=name, batch=batch, graphs=graphs, tok_s=batch * steps / seconds, step_ms=1e3 * seconds / steps,
                bytes_per_step=bytes_per_step, roofline_tok_s=batch / (bytes_per_step / (copy_gbs * 1e9)))


def time_prefill(name, tokens, reps, device):
    """One prompt of `tokens` tokens per pass, logits of its last token (as
    pagoda-bench gpu): a warm-up pass, then the mean of `reps`."""
    p = PRESETS[name]
    model = Llama(p, 1, tokens, device)
    gen = torch.Generator(device="cpu").manual_seed(0)
    prompt = torch.randint(0, p["vocab"], (1, tokens), generator=gen).to(device)
    model.forward(prompt, 0, last_only=True).cpu()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        model.forward(prompt, 0, last_only=True).cpu()  # the logits on the host, as ours
    seconds = (time.perf_counter() - start) / reps
    del model
    torch.cuda.empty_cache()
    return dict(preset=name, tokens=tokens, tok_s=tokens / seconds)


def time_attention(context, device, reps):
    heads, hd = 32, 128
    q, k, v = (torch.randn(1, heads, context, hd, device=device, dtype=torch.float16) for _ in range(3))
    with torch.inference_mode():
        F.scaled_dot_product_attention(q, k, v, is_causal=True)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(reps):
            F.scaled_dot_product_attention(q, k, v, is_causal=True)
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / reps
    flops = 4.0 * heads * hd * context * (context + 1) / 2
    return dict(context=context, heads=heads, head_dim=hd, causal=True, path="sdpa", ms=1e3 * seconds,
                tflops=flops / seconds / 1e12)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--presets")
    parser.add_argument("--batches")
    parser.add_argument("--context", type=int)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--prefill-tokens", type=int)
    parser.add_argument("--attention-contexts")
    parser.add_argument("--json")
    args = parser.parse_args()
    presets = (args.presets or ("tiny" if args.quick else "7b,8b-gqa")).split(",")
    batches = [int(b) for b in (args.batches or ("1,4" if args.quick else "1,8,32")).split(",")]
    context = args.context or (64 if args.quick else 512)
    steps = args.steps or (8 if args.quick else 32)
    prefill_tokens = args.prefill_tokens or (64 if args.quick else 512)
    contexts = [int(c) for c in (args.attention_contexts or ("256,1024" if args.quick else "4096,16384")).split(",")]
    if not torch.cuda.is_available():
        raise SystemExit("torch_peer.py: no CUDA device visible to PyTorch")
    device = torch.device("cuda")
    torch.manual_seed(0)

    copy_gbs = copy_bandwidth_gbs(device)
    print(f"device:      {torch.cuda.get_device_name(device)} (torch {torch.__version__})")
    print(f"bandwidth:   {copy_gbs:.1f} GB/s device-to-device copy (read + write)")
    attention = [time_attention(c, device, 2 if args.quick else 5) for c in contexts]
    print("\nprefill attention (sdpa), 32 heads x 128, causal, f16")
    for r in attention:
        print(f"{r['context']:>8} {r['ms']:>10.3f} ms {r['tflops']:>8.2f} TFLOP/s")
    prefill = [time_prefill(name, prefill_tokens, 2 if args.quick else 5, device) for name in presets]
    print(f"\nprefill, f16 weights, one {prefill_tokens}-token prompt per pass")
    for r in prefill:
        print(f"{r['preset']:>8} {r['tok_s']:>10.1f} tok/s")
    decode = []
    for name in presets:
        for b in batches:
            decode.append(time_decode(name, b, context, steps, copy_gbs, device))
            try:
                decode.append(time_decode(name, b, context, steps, copy_gbs, device, graphs=True))
            except (RuntimeError, TypeError) as error:  # the eager numbers stand without it
                print(f"decode of {name} at batch {b} with a CUDA graph failed: {error}")
                torch.cuda.empty_cache()
    print(f"\ndecode, f16 weights, context {context} + {steps} steps")
    for r in decode:
        print(f"{r['preset']:>8} {r['batch']:>6} {'graph' if r['graphs'] else 'eager':>6} {r['tok_s']:>10.1f} tok/s "
              f"{r['step_ms']:>9.2f} ms/step {100 * r['tok_s'] / r['roofline_tok_s']:>6.1f}% of "
              f"{r['roofline_tok_s']:.1f} tok/s bound")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(dict(device=torch.cuda.get_device_name(device), torch=torch.__version__, sdpa_enable_gqa=SDPA_GQA,
                           copy_bandwidth_gbs=copy_gbs, weights="f16", context=context, steps=steps,
                           prefill=prefill, decode=decode, prefill_attention=attention), out, indent=1)


if __name__ == "__main__":
    main()
