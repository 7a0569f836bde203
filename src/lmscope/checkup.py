"""The model check-up: one report folder with everything lmscope can say about a model.

It holds the weight spectrum; an intruder-dimension comparison against a short LoRA fine-tune that
the check-up makes itself, with the forgetting that fine-tune causes (and how much intruder
mitigation gives back); and a quick LASER search over the last layers on a slice of the bundled
factual-recall set (models with an LM head). Later capabilities add their sections here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from lmscope.data.tasks import make_task
from lmscope.models import DEFAULT_MODEL, open_model
from lmscope.models.checkpoint import apply_edits
from lmscope.models.sources import task_from_config
from lmscope.report.html import Report
from lmscope.report.plots import plot_loss_curve
from lmscope.report.sections import intruder_section, spectrum_section
from lmscope.spectral.intruders import find_intruders, mitigation_edits
from lmscope.spectral.spectrum import analyze_spectrum
from lmscope.train.evaluate import forgetting_loss
from lmscope.train.finetune import FinetuneConfig, finetune


def _task_metrics(metrics: dict, rank: int) -> dict:
    """The fine-tuning task's own metric (test rows of the bundled task) as plain numbers: before the
    fine-tune when measured (LM tasks), and after it."""
    out = {}
    for when, label in (("task_before", "base"), ("task_after", f"LoRA r={rank}")):
        for name, value in (metrics.get(when) or {}).items():
            out[f"{name.replace('_', ' ')} on the fine-tuning task ({label})"] = value
    return out


def trees_sentences(n: int, seed: int) -> tuple[list[list[str]], list]:
    """The check-up's tree-projection sentences and gold trees: those that `lmscope trees --data
    qf/val.jsonl --limit n --seed SEED` takes from `lmscope data make question-formation --n-train 0
    --n-val 4n --n-gen 0 --seed SEED` (a seeded sample of the 4n validation rows, in their order)."""
    from lmscope.data.evalsets import sample_indices
    from lmscope.data.suites import gold_sentences

    words, golds = gold_sentences("question-formation", 4 * n, seed=seed, pool=4 * n)
    keep = sample_indices(len(words), n, seed)
    return [words[i] for i in keep], [golds[i] for i in keep]


def _trees_step(src, report: Report, cfg, log, n_steps: int, quiet) -> dict:
    """Tree projections of the model's last layer on grammar sentences with gold trees."""
    from lmscope.report.sections import tree_section
    from lmscope.trees import tree_projection

    n = cfg.trees_sentences
    words, golds = trees_sentences(n, cfg.seed)
    log(f"[{n_steps}/{n_steps}] tree projections of the last layer on {len(words)} grammar sentences")
    res = tree_projection(src.spec, words, gold_trees=golds, seed=cfg.seed, quiet=quiet)
    longest = max(range(len(words)), key=lambda i: (len(words[i]), -i))
    tree_section(report, res, sentence=longest,
                 command=f"lmscope data make question-formation --out qf --n-train 0 --n-val {4 * n} --n-gen 0 "
                         f"--seed {cfg.seed}\nlmscope trees {src.spec} --data qf/val.jsonl --limit {n} "
                         f"--seed {cfg.seed} --sentence {longest}")
    p = res.parsing or {}
    return {"sentences": len(words), "layer": res.layer, "t_score": res.t_score, "f1": p.get("f1"),
            "baseline_f1": res.baseline_f1}


@dataclass
class CheckupConfig:
    finetune: bool = True
    steps: int = 60
    rank: int = 8
    lr: float = 1e-3
    batch_size: int = 8
    max_length: int = 64
    n_examples: int = 600
    k: int = 10
    eps: float = 0.5
    scale: float = 0.75
    metric: str = "alpha"
    laser: bool = True
    laser_layers: int = 4  # the last N layers
    laser_examples: int = 200
    laser_keeps: tuple[float, ...] = (0.5, 0.2, 0.05, 0.01)
    trees: bool = True
    trees_sentences: int = 40
    seed: int = 0


def run_checkup(model: str = DEFAULT_MODEL, out: str | Path = "lmscope-report", config: CheckupConfig | None = None,
                quiet: bool | None = None, log=print, force: bool = False, command: str | None = None) -> Path:
    """Write the check-up report folder ``out`` and return its ``index.html``.

    The folder is built in a temporary sibling and renamed into place only when every section is done,
    so a check-up that fails or is interrupted leaves no report that looks complete (an earlier complete
    one stays). ``out`` follows lmscope's output policy (:mod:`lmscope.outputs`; ``force`` replaces an
    existing folder lmscope did not write).
    """
    from lmscope.models.checkpoint import input_paths
    from lmscope.outputs import output_dir

    cfg = config or CheckupConfig()
    src = open_model(model)
    with output_dir(out, input_paths(src), command=command or f"lmscope checkup {src.spec}", force=force) as tmp:
        _write_checkup(src, tmp, cfg, quiet, log)
        _name_final_folder(tmp, Path(out))
    return Path(out) / "index.html"


def _name_final_folder(tmp: Path, out: Path) -> None:
    """The pages and tables name the check-up's own fine-tune by the folder they will live in, not by
    the temporary one they were built in."""
    for f in tmp.glob("*"):
        if f.is_file() and f.suffix in (".html", ".json", ".csv"):
            text = f.read_text(encoding="utf-8")
            if str(tmp) in text:
                f.write_text(text.replace(str(tmp), str(out)), encoding="utf-8")


def _write_checkup(src, out: Path, cfg: CheckupConfig, quiet, log) -> Path:
    report = Report(out, f"lmscope check-up: {src.spec}")
    report.kv({**src.describe(), "date": time.strftime("%Y-%m-%d %H:%M")})
    t0 = time.time()
    causal = src.kind == "gguf" or task_from_config(src.config) == "causal-lm"
    has_lm_head = causal or task_from_config(src.config) == "masked-lm"
    n_steps = 1 + 2 * cfg.finetune + (cfg.laser and has_lm_head) + cfg.trees
    log(f"[1/{n_steps}] spectrum of {len(src.matrices())} matrices")
    spec = analyze_spectrum(src, quiet=quiet)
    spectrum_section(report, spec, metric=cfg.metric)
    report.write()
    summary = {"model": src.spec, "spectrum": spec.summary()}
    if cfg.finetune:
        task = "recipes-lm" if causal else "sentiment"
        rows = make_task(task, cfg.n_examples, seed=cfg.seed)
        ft_dir = out / f"finetune-lora-r{cfg.rank}"
        log(f"[2/{n_steps}] LoRA r={cfg.rank} fine-tune on the bundled task {task!r} ({cfg.steps} steps)")
        ft = finetune(src, rows, ft_dir, FinetuneConfig(method="lora", rank=cfg.rank, lr=cfg.lr, max_steps=cfg.steps,
                                                        batch_size=cfg.batch_size, max_length=cfg.max_length,
                                                        seed=cfg.seed, general_texts=40), quiet=quiet)
        log(f"[3/{n_steps}] intruder dimensions and forgetting")
        res = find_intruders(src, ft_dir, k=cfg.k, eps=cfg.eps, quiet=quiet)
        tuned = open_model(ft_dir)
        model_obj = tuned.load_model()
        tok = tuned.load_tokenizer()
        edits = mitigation_edits(res, tuned, cfg.scale)
        apply_edits(model_obj, tuned, edits)
        after_mitigation = forgetting_loss(model_obj, tok, 40)
        m = ft.metrics
        metric_name = m["general_before"]["metric"]
        forgetting = {
            f"{metric_name} (base)": m["general_before"]["value"],
            f"{metric_name} (LoRA r={cfg.rank})": m["general_after"]["value"],
            f"{metric_name} (intruders scaled by {cfg.scale})": after_mitigation["value"],
            **_task_metrics(m, cfg.rank),
            "fine-tune seconds": m["train_seconds"],
        }
        intruder_section(report, res, extra=forgetting)
        loss_png = plot_loss_curve({f"LoRA r={cfg.rank}": ft.losses}, out / "finetune_loss.png",
                                   title=f"Fine-tuning loss ({task})")
        report.image(loss_png, "Training loss of the check-up's LoRA fine-tune (moving average).")
        summary["intruders"] = res.summary()
        summary["forgetting"] = forgetting
    if cfg.laser and has_lm_head:
        from lmscope.report.sections import laser_section
        from lmscope.spectral.laser_search import SearchConfig, laser_search

        layers = sorted({r.layer for r in src.matrices() if r.layer is not None})[-cfg.laser_layers:]
        log(f"[{1 + 2 * cfg.finetune + 1}/{n_steps}] LASER search: layers {layers[0]}-{layers[-1]} x fc_in/fc_out x keep "
            f"{', '.join(f'{k:g}' for k in cfg.laser_keeps)} on {cfg.laser_examples} factual-recall prompts")
        ls = laser_search(src, "factual_recall", SearchConfig(layers=layers, keeps=cfg.laser_keeps,
                                                              limit=cfg.laser_examples, seed=cfg.seed),
                          quiet=quiet)
        laser_section(report, ls, command=f"lmscope laser search {src.spec} --task factual_recall --layers "
                                          f"{layers[0]}-{layers[-1]} --keeps {','.join(f'{k:g}' for k in cfg.laser_keeps)}"
                                          f" --limit {cfg.laser_examples} --seed {cfg.seed}")
        summary["laser"] = {"base_val": ls.base["val"], "base_test": ls.base["test"], "improved": ls.improved,
                            "best": ls.best,
                            "composed": {k: ls.composed[k] for k in ("reductions", "test")} if ls.composed else None}
    elif cfg.laser:
        report.heading("LASER")
        report.text("Skipped: the model has no LM head (it is neither a causal nor a masked LM), so there is no "
                    "answer to score.", note=True)
    if cfg.trees:
        summary["trees"] = _trees_step(src, report, cfg, log, n_steps, quiet)
    summary["seconds"] = round(time.time() - t0, 1)
    report.text(f"Check-up took {summary['seconds']} s.", note=True)
    from lmscope._io import write_json

    write_json(out / "summary.json", summary)
    return report.write()
