"""Peak resident memory of ``lmscope spectrum`` on a big sharded checkpoint.

A synthetic Llama checkpoint (fp32 safetensors, one shard per layer) is written to a temp folder.
Two subprocesses then read it while this script samples their resident memory:

* ``lmscope spectrum DIR --no-cache --quiet --json``: reads one matrix at a time;
* the baseline, the straightforward approach: ``safetensors.torch.load_file`` of every shard into
  one dict, then ``torch.linalg.svdvals`` of each weight matrix.

Peak RSS is taken two ways: psutil polling of the process tree every 50 ms, and the kernel's
``ru_maxrss`` of the finished command (``os.wait4`` in a lean launcher process: the figure
``getrusage(RUSAGE_CHILDREN)`` gives, but for that one command; see ``_LAUNCHER`` for why the
launcher is needed). This script's own ``RUSAGE_CHILDREN`` is recorded too, for reference.
Both runs' largest singular values are checked to agree (rtol 1e-4).

    .venv/bin/python benchmarks/bench_memory.py [--size small|full] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import torch
from _common import command_line, machine_info, mb, table, write_result

NAME = "bench_memory"
SIZES = {
    # hidden, intermediate, layers, heads, vocab
    "full": {"hidden": 2048, "intermediate": 5632, "layers": 10, "heads": 32, "vocab": 1024},
    "small": {"hidden": 512, "intermediate": 1408, "layers": 8, "heads": 8, "vocab": 512},
}
MIN_BYTES = {"full": 2.0e9, "small": 0.09e9}
TARGET_RATIO = 0.25
PROJ = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


# --------------------------------------------------------------------------------------------------
# synthetic checkpoint
# --------------------------------------------------------------------------------------------------
def layer_shapes(spec: dict) -> dict[str, tuple[int, ...]]:
    h, f = spec["hidden"], spec["intermediate"]
    shapes = {
        "self_attn.q_proj.weight": (h, h), "self_attn.k_proj.weight": (h, h),
        "self_attn.v_proj.weight": (h, h), "self_attn.o_proj.weight": (h, h),
        "mlp.gate_proj.weight": (f, h), "mlp.up_proj.weight": (f, h), "mlp.down_proj.weight": (h, f),
        "input_layernorm.weight": (h,), "post_attention_layernorm.weight": (h,),
    }
    return shapes


def expected_bytes(spec: dict) -> int:
    per_layer = sum(int(np.prod(s)) for s in layer_shapes(spec).values())
    return 4 * (spec["layers"] * per_layer + spec["vocab"] * spec["hidden"] + spec["hidden"])


def llama_config(spec: dict) -> dict:
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": spec["hidden"],
        "intermediate_size": spec["intermediate"], "num_hidden_layers": spec["layers"],
        "num_attention_heads": spec["heads"], "num_key_value_heads": spec["heads"],
        "vocab_size": spec["vocab"], "max_position_embeddings": 2048, "rms_norm_eps": 1e-5,
        "hidden_act": "silu", "tie_word_embeddings": True, "torch_dtype": "float32",
        "bos_token_id": 1, "eos_token_id": 2,
    }


def generate(path: Path, spec: dict) -> dict:
    """Write the checkpoint shard by shard; at most one layer's tensors are in memory at a time."""
    from safetensors.torch import save_file

    meta_path = path / "bench-spec.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        ok = meta.get("spec") == spec and all(
            (path / f).is_file() and (path / f).stat().st_size == n for f, n in meta["files"].items())
        if ok:
            print(f"reusing checkpoint in {path}")
            return meta
    if path.is_dir() and any(path.iterdir()) and not meta_path.is_file():
        raise SystemExit(f"refusing to overwrite {path}: not a folder this benchmark made")
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    n = spec["layers"]
    weight_map, total = {}, 0
    t0 = time.perf_counter()
    for i in range(n):
        g = torch.Generator().manual_seed(1000 + i)
        tensors = {}
        for rel, shape in layer_shapes(spec).items():
            name = f"model.layers.{i}.{rel}"
            if len(shape) == 1:
                tensors[name] = 1.0 + 0.1 * torch.randn(shape, generator=g)
            else:
                tensors[name] = torch.randn(shape, generator=g) / float(np.sqrt(shape[1]))
        if i == 0:
            tensors["model.embed_tokens.weight"] = torch.randn(spec["vocab"], spec["hidden"], generator=g)
        if i == n - 1:
            tensors["model.norm.weight"] = torch.ones(spec["hidden"])
        fname = f"model-{i + 1:05d}-of-{n:05d}.safetensors"
        for name, t in tensors.items():
            weight_map[name] = fname
            total += t.numel() * t.element_size()
        save_file(tensors, str(path / fname), metadata={"format": "pt"})
        del tensors
        print(f"  wrote {fname}", flush=True)
    (path / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=1))
    (path / "config.json").write_text(json.dumps(llama_config(spec), indent=1))
    files = {p.name: p.stat().st_size for p in sorted(path.iterdir())
             if p.suffix in (".safetensors", ".json")}
    meta = {"spec": spec, "tensor_bytes": total, "files": files,
            "generation_s": round(time.perf_counter() - t0, 1)}
    meta_path.write_text(json.dumps(meta, indent=1))
    return meta


# --------------------------------------------------------------------------------------------------
# subprocess workers (this file run with --worker ...)
# --------------------------------------------------------------------------------------------------
def baseline_worker(ckpt: Path, out: Path) -> None:
    """The straightforward approach: every shard into one dict, then svdvals of each matrix."""
    from safetensors.torch import load_file

    index = json.loads((ckpt / "model.safetensors.index.json").read_text())
    state = {}
    for fname in sorted(set(index["weight_map"].values())):
        state.update(load_file(str(ckpt / fname)))
    top = {}
    for name, w in state.items():
        if w.ndim == 2 and any(name.endswith(p + ".weight") for p in PROJ):
            top[name] = float(torch.linalg.svdvals(w.to(torch.float32))[0])
    out.write_text(json.dumps(top))


def floor_worker() -> None:
    """Import what ``lmscope spectrum`` imports, then stop: the interpreter + libraries floor."""
    from lmscope.cli import build_parser  # noqa: F401
    from lmscope.models import open_model  # noqa: F401
    from lmscope.report.sections import spectrum_section  # noqa: F401
    from lmscope.spectral import METRICS, SVDCache, analyze_spectrum  # noqa: F401

    torch.linalg.svdvals(torch.randn(64, 64))


# --------------------------------------------------------------------------------------------------
# measurement
# --------------------------------------------------------------------------------------------------
# A lean launcher between this script and the measured command. Linux carries a process's
# high-water RSS across fork/vfork + exec into the child's ``ru_maxrss`` (signal->maxrss takes the
# old mm's hiwater at exec), so a child spawned straight from this script (which imports torch and
# may have held a layer of the checkpoint) would report at least this script's own peak. The
# launcher (``python -S``, ~8 MB) spawns the command and reports the command's own ``ru_maxrss``
# from ``os.wait4``.
_LAUNCHER = """
import json, os, sys
out, cmd = sys.argv[1], sys.argv[2:]
pid = os.posix_spawn(cmd[0], cmd, os.environ)
_, status, ru = os.wait4(pid, 0)
with open(out, "w") as f:
    json.dump({"ru_maxrss_kb": ru.ru_maxrss, "utime_s": ru.ru_utime, "stime_s": ru.ru_stime}, f)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def tree_rss(p: psutil.Process) -> int:
    """Resident memory of the descendants of ``p`` (the launcher itself is left out)."""
    total = 0
    try:
        procs = p.children(recursive=True)
    except psutil.Error:
        return 0
    for q in procs:
        try:
            total += q.memory_info().rss
        except psutil.Error:
            pass
    return total


def measure(cmd: list[str], stdout_path: Path | None, env: dict | None = None,
            interval: float = 0.05) -> dict:
    """Run ``cmd``; peak RSS by polling its process tree and by its own ``ru_maxrss``."""
    cmd = [os.path.abspath(cmd[0]), *cmd[1:]]  # no symlink resolution: keep the venv python
    out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
    err = tempfile.TemporaryFile()
    ru_file = Path(tempfile.mkstemp(prefix="lmscope-bench-rusage-")[1])
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-S", "-c", _LAUNCHER, str(ru_file), *cmd],
                            stdout=out, stderr=err, env=env)
    ps = psutil.Process(proc.pid)
    peak, samples = 0, 0
    while True:
        pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            break
        peak = max(peak, tree_rss(ps))
        samples += 1
        time.sleep(interval)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if stdout_path:
        out.close()
    err.seek(0)
    stderr = err.read().decode(errors="replace")
    err.close()
    try:
        if proc.returncode != 0:
            raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{stderr[-3000:]}")
        ru = json.loads(ru_file.read_text())
    finally:
        ru_file.unlink(missing_ok=True)
    return {
        "command": " ".join(cmd), "wall_s": round(wall, 2), "cpu_s": round(ru["utime_s"] + ru["stime_s"], 2),
        "poll_samples": samples, "peak_rss_poll_bytes": peak,
        "ru_maxrss_bytes": ru["ru_maxrss_kb"] * 1024,  # Linux reports kilobytes
        # this script's RUSAGE_CHILDREN: a running maximum over every child so far, launchers included,
        # and inflated by this script's own peak (see _LAUNCHER); kept for reference only
        "rusage_children_maxrss_bytes_so_far": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
    }


def lmscope_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "lmscope"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "lmscope"]


# --------------------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=list(SIZES), default="full")
    ap.add_argument("--keep", action="store_true", help="keep the generated checkpoint for the next run")
    ap.add_argument("--dir", help="checkpoint folder (default: /tmp/lmscope-bench-memory-SIZE-LAYERSl)")
    ap.add_argument("--layers", type=int, help="override the number of layers (quick checks: the peak of "
                    "lmscope depends on the largest matrix, not on the layer count)")
    ap.add_argument("--threads", type=int, help="OMP/MKL threads of the measured subprocesses "
                    "(default: the libraries' default, all cores)")
    ap.add_argument("--worker", choices=["baseline", "floor"], help=argparse.SUPPRESS)
    ap.add_argument("worker_args", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker == "baseline":
        baseline_worker(Path(args.worker_args[0]), Path(args.worker_args[1]))
        return
    if args.worker == "floor":
        floor_worker()
        return

    spec = dict(SIZES[args.size])
    if args.layers:
        spec["layers"] = args.layers
    env = dict(os.environ)
    if args.threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(args.threads)
        torch.set_num_threads(args.threads)
    info = machine_info(threads=args.threads)
    info["subprocess_threads"] = args.threads or "library default"
    ckpt = Path(args.dir or f"/tmp/lmscope-bench-memory-{args.size}-{spec['layers']}l")
    want = expected_bytes(spec)
    print(f"checkpoint: {spec} -> {want / 1e9:.3f} GB of fp32 tensors in {spec['layers']} shards")
    if not args.layers:
        assert want >= MIN_BYTES[args.size], f"synthetic checkpoint too small: {want} bytes"
    meta = generate(ckpt, spec)
    assert meta["tensor_bytes"] == want, (meta["tensor_bytes"], want)
    size_on_disk = sum(n for f, n in meta["files"].items() if f.endswith(".safetensors"))
    largest = max(int(np.prod(s)) for s in layer_shapes(spec).values()) * 4

    work = Path(tempfile.mkdtemp(prefix="lmscope-bench-memory-out-"))
    try:
        me = [sys.executable, str(Path(__file__).resolve())]
        print("measuring: import floor ...", flush=True)
        floor = measure([*me, "--worker", "floor"], None, env)
        print("measuring: lmscope spectrum ...", flush=True)
        lm_json = work / "lmscope.json"
        ours = measure([*lmscope_cmd(), "spectrum", str(ckpt), "--no-cache", "--quiet", "--json"],
                       lm_json, env)
        print("measuring: baseline (load_file every shard, then svdvals) ...", flush=True)
        base_json = work / "baseline.json"
        base = measure([*me, "--worker", "baseline", str(ckpt), str(base_json)], None, env)

        # identical results: the same matrices, the same largest singular values
        lm = {r["name"]: r["spectral_norm"] for r in json.loads(lm_json.read_text())["matrices"]}
        bl = json.loads(base_json.read_text())
        assert set(lm) == set(bl), f"different matrices: {sorted(set(lm) ^ set(bl))[:5]}"
        names = sorted(lm)
        a = np.array([lm[n] for n in names])
        b = np.array([bl[n] for n in names])
        max_rel = float(np.max(np.abs(a - b) / np.abs(b)))
        agree = bool(np.allclose(a, b, rtol=1e-4, atol=0))
        print(f"check: {len(names)} matrices, spectral norms lmscope vs baseline: max relative difference "
              f"{max_rel:.2e} -> {'EQUAL (rtol 1e-4)' if agree else 'DIFFERENT'}")
        assert agree, "lmscope and the baseline disagree on the singular values"
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(ckpt, ignore_errors=True)

    def peak(m):  # the exact kernel figure; the polled one can only be lower
        return max(m["ru_maxrss_bytes"], m["peak_rss_poll_bytes"])

    ratio = peak(ours) / size_on_disk
    rows = [
        ["checkpoint (safetensors shards)", f"{size_on_disk / 1e9:.3f} GB", f"{len(names)} matrices, "
         f"{spec['layers']} shards, largest matrix {mb(largest)}"],
        ["import floor (python + torch + lmscope)", mb(peak(floor)),
         f"ru_maxrss {mb(floor['ru_maxrss_bytes'])}"],
        ["lmscope spectrum peak RSS", mb(peak(ours)), f"ru_maxrss {mb(ours['ru_maxrss_bytes'])}, polled "
         f"{mb(ours['peak_rss_poll_bytes'])}, {ours['wall_s']} s"],
        ["baseline peak RSS", mb(peak(base)), f"ru_maxrss {mb(base['ru_maxrss_bytes'])}, polled "
         f"{mb(base['peak_rss_poll_bytes'])}, {base['wall_s']} s"],
        ["lmscope peak / checkpoint size", f"{ratio:.3f}", f"target < {TARGET_RATIO}: "
         f"{'met' if ratio < TARGET_RATIO else 'NOT met'}"],
        ["lmscope (peak - floor) / checkpoint size", f"{(peak(ours) - peak(floor)) / size_on_disk:.3f}", ""],
        ["baseline peak / checkpoint size", f"{peak(base) / size_on_disk:.3f}", ""],
        ["lmscope peak / baseline peak", f"{peak(ours) / peak(base):.3f}",
         f"baseline peak / lmscope peak = {peak(base) / peak(ours):.2f}"],
        ["spectral norms agree", "yes" if agree else "NO", f"max rel. diff {max_rel:.1e} (rtol 1e-4)"],
    ]
    print()
    print(table(rows, ["quantity", "value", "detail"]))
    path = write_result(NAME, {
        "benchmark": NAME, "command": command_line(), "size": args.size, "machine": info,
        "measures": "peak resident memory of `lmscope spectrum DIR --no-cache --quiet --json` on a synthetic "
                    "sharded fp32 Llama checkpoint, vs loading every shard with safetensors.torch.load_file "
                    "and taking svdvals of each matrix",
        "checkpoint": {"spec": spec, "tensor_bytes": want, "shard_bytes": size_on_disk,
                       "matrices": len(names), "largest_matrix_bytes": largest,
                       "generation_s": meta.get("generation_s")},
        "floor": floor, "lmscope": ours, "baseline": base,
        "lmscope_peak_bytes": peak(ours), "baseline_peak_bytes": peak(base), "floor_peak_bytes": peak(floor),
        "ratio_lmscope_peak_to_size": ratio, "ratio_lmscope_above_floor_to_size":
            (peak(ours) - peak(floor)) / size_on_disk,
        "ratio_baseline_peak_to_size": peak(base) / size_on_disk,
        "ratio_lmscope_to_baseline_peak": peak(ours) / peak(base),
        "target_ratio": TARGET_RATIO, "target_met": ratio < TARGET_RATIO,
        "results_equal": agree, "spectral_norm_max_rel_diff": max_rel,
        "table": {"header": ["quantity", "value", "detail"], "rows": rows},
    })
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
