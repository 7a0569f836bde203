"""Intruder dimensions of N fine-tuned checkpoints against one base: lmscope vs the straightforward way.

A synthetic Llama base (fp32 safetensors; every weight matrix has a decaying spectrum, like a trained
one) and N "tuned" checkpoints are generated; tuned i = base + a merged rank-8 LoRA-like update
``scale * B @ A`` on every q, k, v, o, gate, up, down matrix (per-matrix strengths spread so that some
matrices get intruders and some do not).

* ours: ``find_intruders(base, tuned_i, k=10, eps=0.5, cache=SVDCache(root=<fresh dir>))`` for
  i = 1..N in one process: the base's SVDs are computed by the first comparison and reused; the
  tuned matrices only get their top-k triplets.
* baseline: for each tuned model, ``safetensors.torch.load_file`` of base and tuned, full
  ``torch.linalg.svd(full_matrices=False)`` of every base and tuned matrix, |cos| of the tuned top-10
  left singular vectors with all base ones, intruder = max |cos| < eps.

N=1 and N=N are timed separately, each with a fresh cache; the per-matrix intruder counts of the two
methods must be identical.

    .venv/bin/python benchmarks/bench_intruders.py [--size small|full] [--n 5] [--threads T] [--keep]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch
from _common import command_line, machine_info, table, write_result

NAME = "bench_intruders"
SIZES = {
    "full": {"hidden": 1024, "intermediate": 2816, "layers": 8, "heads": 8, "kv_heads": 8, "vocab": 256},
    "small": {"hidden": 256, "intermediate": 704, "layers": 2, "heads": 4, "kv_heads": 4, "vocab": 256},
}
K, EPS, LORA_RANK = 10, 0.5, 8
TARGET_SPEEDUP = 3.0
PROJ = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


# --------------------------------------------------------------------------------------------------
# synthetic checkpoints
# --------------------------------------------------------------------------------------------------
def matrix_shapes(spec: dict) -> dict[str, tuple[int, int]]:
    h, f = spec["hidden"], spec["intermediate"]
    kv = h // spec["heads"] * spec["kv_heads"]
    return {"self_attn.q_proj": (h, h), "self_attn.k_proj": (kv, h), "self_attn.v_proj": (kv, h),
            "self_attn.o_proj": (h, h), "mlp.gate_proj": (f, h), "mlp.up_proj": (f, h),
            "mlp.down_proj": (h, f)}


def config(spec: dict) -> dict:
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": spec["hidden"],
            "intermediate_size": spec["intermediate"], "num_hidden_layers": spec["layers"],
            "num_attention_heads": spec["heads"], "num_key_value_heads": spec["kv_heads"],
            "vocab_size": spec["vocab"], "max_position_embeddings": 512, "rms_norm_eps": 1e-5,
            "hidden_act": "silu", "tie_word_embeddings": True, "torch_dtype": "float32",
            "bos_token_id": 1, "eos_token_id": 2}


def spectral_matrix(m: int, n: int, g: torch.Generator) -> torch.Tensor:
    """U diag(s) V^T with random orthonormal U, V and s_i = (i + 1)^-0.6 (well separated at the top)."""
    r = min(m, n)
    u = torch.linalg.qr(torch.randn(m, r, generator=g))[0]
    v = torch.linalg.qr(torch.randn(n, r, generator=g))[0]
    s = torch.arange(1, r + 1, dtype=torch.float32) ** -0.6
    return ((u * s) @ v.t()).contiguous()


def base_state(spec: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    h = spec["hidden"]
    sd = {"model.embed_tokens.weight": torch.randn(spec["vocab"], h, generator=g) * 0.02,
          "model.norm.weight": torch.ones(h)}
    for i in range(spec["layers"]):
        for rel, (m, n) in matrix_shapes(spec).items():
            sd[f"model.layers.{i}.{rel}.weight"] = spectral_matrix(m, n, g)
        sd[f"model.layers.{i}.input_layernorm.weight"] = torch.ones(h)
        sd[f"model.layers.{i}.post_attention_layernorm.weight"] = torch.ones(h)
    return sd


def tuned_state(base: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """base + scale * B @ A (rank 8) on every projection; strengths log-uniform in [0.05, 2] x s_1."""
    g = torch.Generator().manual_seed(10_000 + seed)
    out = {}
    for name, w in base.items():
        if w.ndim == 2 and any(name.endswith(p + ".weight") for p in PROJ):
            m, n = w.shape
            u = float(torch.rand(1, generator=g))
            scale = math.exp(math.log(0.05) + (math.log(2.0) - math.log(0.05)) * u)
            t = scale * 0.75 ** torch.arange(LORA_RANK, dtype=torch.float32)   # distinct strengths
            b = torch.randn(m, LORA_RANK, generator=g) / math.sqrt(m) * t
            a = torch.randn(LORA_RANK, n, generator=g) / math.sqrt(n)
            out[name] = (w + b @ a).contiguous()
        else:
            out[name] = w.clone()
    return out


def save_model(path: Path, spec: dict, sd: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    path.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(path / "model.safetensors"), metadata={"format": "pt"})
    (path / "config.json").write_text(json.dumps(config(spec), indent=1))


def generate(root: Path, spec: dict, n: int) -> tuple[Path, list[Path]]:
    meta_path = root / "bench-spec.json"
    dirs = [root / "base", *[root / f"tuned-{i + 1}" for i in range(n)]]
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("spec") == spec and meta.get("n", 0) >= n and all(
                (d / "model.safetensors").is_file() for d in dirs):
            print(f"reusing checkpoints in {root}")
            return dirs[0], dirs[1:]
    if root.is_dir() and any(root.iterdir()) and not meta_path.is_file():
        raise SystemExit(f"refusing to overwrite {root}: not a folder this benchmark made")
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    t0 = time.perf_counter()
    base = base_state(spec)
    save_model(dirs[0], spec, base)
    for i, d in enumerate(dirs[1:]):
        save_model(d, spec, tuned_state(base, seed=i + 1))
    gen_s = round(time.perf_counter() - t0, 1)
    meta_path.write_text(json.dumps({"spec": spec, "n": n, "generation_s": gen_s}))
    print(f"generated base + {n} tuned checkpoints in {time.perf_counter() - t0:.1f} s")
    return dirs[0], dirs[1:]


# --------------------------------------------------------------------------------------------------
# the two methods
# --------------------------------------------------------------------------------------------------
def ours(base: Path, tuned: list[Path], cache_root: Path) -> tuple[list[dict[str, int]], dict]:
    from lmscope.spectral import SVDCache, find_intruders

    cache = SVDCache(root=cache_root)
    counts = []
    for t in tuned:
        res = find_intruders(str(base), str(t), k=K, eps=EPS, cache=cache, quiet=True)
        counts.append({r.name: int(r.n_intruders) for r in res.table.itertuples()})
    return counts, {"cache_hits": cache.hits, "cache_misses": cache.misses}


def baseline_one(base: Path, tuned: Path) -> dict[str, int]:
    """Load both models fully, full SVD of every matrix of both, count intruders."""
    from safetensors.torch import load_file

    w0s = load_file(str(base / "model.safetensors"))
    wts = load_file(str(tuned / "model.safetensors"))
    counts = {}
    for name, w0 in w0s.items():
        if w0.ndim != 2 or not any(name.endswith(p + ".weight") for p in PROJ):
            continue
        u0 = torch.linalg.svd(w0.float(), full_matrices=False)[0]
        ut = torch.linalg.svd(wts[name].float(), full_matrices=False)[0][:, :K]
        best = (ut.t() @ u0).abs().max(dim=1).values
        counts[name] = int((best < EPS).sum())
    return counts


def baseline(base: Path, tuned: list[Path]) -> list[dict[str, int]]:
    return [baseline_one(base, t) for t in tuned]


def timed(fn, *a):
    t0 = time.perf_counter()
    out = fn(*a)
    return out, time.perf_counter() - t0


# --------------------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=list(SIZES), default="full")
    ap.add_argument("--n", type=int, default=5, help="number of tuned checkpoints (default 5)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads for both methods "
                    "(default: all cores)")
    ap.add_argument("--keep", action="store_true", help="keep the generated checkpoints for the next run")
    ap.add_argument("--layers", type=int, help="override the number of layers (quick checks)")
    ap.add_argument("--dir", help="checkpoint folder (default: /tmp/lmscope-bench-intruders-SIZE-LAYERSl)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    spec = dict(SIZES[args.size])
    if args.layers:
        spec["layers"] = args.layers
    info = machine_info(threads=args.threads)
    root = Path(args.dir or f"/tmp/lmscope-bench-intruders-{args.size}-{spec['layers']}l")
    base, tuned = generate(root, spec, args.n)
    n_mat = spec["layers"] * len(PROJ)
    print(f"model: {spec}, {n_mat} matrices per checkpoint, k={K}, eps={EPS}, torch threads={args.threads}")
    for d in [base, *tuned]:  # the same page-cache state for both methods: every file read once
        with open(d / "model.safetensors", "rb") as f:
            while f.read(1 << 24):
                pass

    # warm-up outside the timings: imports (lmscope, pandas, safetensors) and the LAPACK paths
    from lmscope.spectral import SVDCache, find_intruders

    find_intruders(str(base), str(tuned[0]), k=K, eps=EPS, roles=["q"], layers=[0],
                   cache=SVDCache(enabled=False), quiet=True)
    baseline_one(base, base)

    runs = {}
    try:
        for n in sorted({1, args.n}):
            cache_root = Path(tempfile.mkdtemp(prefix="lmscope-bench-svdcache-"))
            try:
                print(f"N={n}: lmscope find_intruders (cold cache) ...", flush=True)
                (c_ours, stats), t_ours = timed(ours, base, tuned[:n], cache_root)
            finally:
                shutil.rmtree(cache_root, ignore_errors=True)
            print(f"N={n}: baseline (load_file + full SVDs) ...", flush=True)
            c_base, t_base = timed(baseline, base, tuned[:n])
            equal = c_ours == c_base
            diffs = [(i + 1, k, c_ours[i].get(k), c_base[i].get(k)) for i in range(n)
                     for k in sorted(set(c_ours[i]) | set(c_base[i])) if c_ours[i].get(k) != c_base[i].get(k)]
            print(f"N={n}: ours {t_ours:.2f} s, baseline {t_base:.2f} s, speed-up {t_base / t_ours:.2f}x; "
                  f"per-matrix intruder counts {'IDENTICAL' if equal else 'DIFFERENT'} "
                  f"({n * n_mat} matrices)")
            for d in diffs[:10]:
                print(f"  tuned-{d[0]} {d[1]}: ours {d[2]}, baseline {d[3]}")
            assert equal, "lmscope and the baseline count different intruders"
            runs[n] = {"n": n, "ours_s": t_ours, "baseline_s": t_base, "speedup": t_base / t_ours,
                       "counts_identical": equal, "ours_cache": stats,
                       "total_intruders": [int(sum(c.values())) for c in c_ours],
                       "matrices_with_intruders": [int(sum(v > 0 for v in c.values())) for c in c_ours],
                       "per_matrix_counts": c_ours}
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    rows = [[n, f"{r['baseline_s']:.2f}", f"{r['ours_s']:.2f}", f"{r['speedup']:.2f}x",
             "yes" if r["counts_identical"] else "NO", " ".join(map(str, r["total_intruders"])),
             " ".join(map(str, r["matrices_with_intruders"]))] for n, r in runs.items()]
    header = ["N tuned", "baseline s", "lmscope s", "baseline/lmscope", "identical counts",
              "intruders per model", f"matrices with intruders (of {n_mat})"]
    print()
    print(table(rows, header))
    big = runs[max(runs)]
    print(f"\nspeed-up at N={big['n']}: {big['speedup']:.2f}x (target >= {TARGET_SPEEDUP}x: "
          f"{'met' if big['speedup'] >= TARGET_SPEEDUP else 'NOT met'})")
    path = write_result(NAME, {
        "benchmark": NAME, "command": command_line(), "size": args.size, "machine": info,
        "measures": "wall time to count intruder dimensions (k=10, eps=0.5) of N fine-tuned checkpoints "
                    "vs one base: lmscope find_intruders with a fresh SVD cache vs loading both models and "
                    "taking full SVDs of every matrix for each comparison",
        "model": spec, "matrices_per_model": n_mat, "k": K, "eps": EPS, "lora_rank": LORA_RANK,
        "runs": {str(n): r for n, r in runs.items()},
        "target_speedup": TARGET_SPEEDUP, "target_met": big["speedup"] >= TARGET_SPEEDUP,
        "results_equal": all(r["counts_identical"] for r in runs.values()),
        "table": {"header": header, "rows": rows},
    })
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
