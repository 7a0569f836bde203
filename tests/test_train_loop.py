"""The LM training loop: learning, exact resume, checkpoint validity, run-directory guard."""

from __future__ import annotations

import errno
import json
import shutil

import numpy as np
import pytest
import torch

from lmscope.errors import LmscopeError
from lmscope.models.small import SmallConfig, SmallTransformer
from lmscope.models.small_tokenizer import WordTokenizer
from lmscope.train import loop
from lmscope.train.loop import (
    TrainConfig,
    latest_checkpoint,
    load_checkpoint,
    read_metrics,
    suite_lines,
    train_lm,
)


def _copy_texts(n=64, seed=0):
    """A tiny copy task: ``x y z <TAB> x y z``."""
    rng = np.random.default_rng(seed)
    words = list("abcdef")
    rows = []
    for _ in range(n):
        seq = " ".join(rng.choice(words, size=int(rng.integers(2, 5))))
        rows.append({"text": f"{seq} =", "target": seq, "split": "train"})
    return suite_lines(rows)


TEXTS = _copy_texts()
TOK = WordTokenizer.build(TEXTS)


def _model_cfg(**kw):
    return SmallConfig(vocab_size=TOK.vocab_size, d_model=16, n_layers=1, n_heads=2, d_ff=32, max_len=16, **kw)


def _cfg(**kw):
    base = dict(steps=40, batch_size=4, lr=3e-3, warmup=4, schedule="cosine", eval_every=5, ckpt_every=10,
                seed=1, keep_checkpoints=3)
    base.update(kw)
    return TrainConfig(**base)


def _eval(model, step):
    ids, mask = TOK.batch_encode(TEXTS[:8], add_bos=True, add_eos=True)
    return {"val_loss": float(loop.lm_batch_loss(model, ids, mask)), "noise": float(torch.rand(1))}


def _weights(run_dir):
    model = SmallTransformer(_model_cfg(), seed=0)
    load_checkpoint(latest_checkpoint(run_dir), model)
    return model.state_dict()


def _strip(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_suite_lines_and_loss_decreases(tmp_path):
    assert TEXTS[0].count("\t") == 1
    summary = train_lm(tmp_path / "run", _model_cfg(), TOK, TEXTS, eval_fn=_eval,
                       config=_cfg(steps=60, eval_every=10, ckpt_every=30, schedule="constant"), quiet=True)
    rows = read_metrics(tmp_path / "run")
    assert [r["step"] for r in rows] == [10, 20, 30, 40, 50, 60]
    assert rows[-1]["loss"] < rows[0]["loss"] - 0.3
    assert rows[-1]["val_loss"] < rows[0]["val_loss"]
    assert summary["step"] == 60 and summary["final_checkpoint"].endswith("step-0000060")
    # the checkpoint's model folder loads on its own, tokenizer included
    ck = latest_checkpoint(tmp_path / "run")
    assert SmallTransformer.load(ck / "model").config == _model_cfg()
    assert WordTokenizer.load(ck / "model").tokens == TOK.tokens
    # a finished run started again does nothing more
    again = train_lm(tmp_path / "run", _model_cfg(), TOK, TEXTS, eval_fn=_eval,
                     config=_cfg(steps=60, eval_every=10, ckpt_every=30, schedule="constant"), quiet=True)
    assert again["step"] == 60 and len(read_metrics(tmp_path / "run")) == 6


def test_run_directory_format(tmp_path):
    """The layout that earlier runs have on disk, and that later code must keep resuming."""
    run = tmp_path / "run"
    train_lm(run, _model_cfg(), TOK, TEXTS, config=_cfg(steps=10), quiet=True, meta={"task": "copy"})
    info = json.loads((run / "run.json").read_text())
    assert set(info) == {"format", "model", "train", "data", "tokenizer", "meta"} and info["format"] == 1
    assert info["train"] == _cfg(steps=10).to_dict() and set(info["data"]) == {"n_texts", "sha256"}
    ck = run / "checkpoints" / "step-0000010"
    files = sorted(p.relative_to(ck).as_posix() for p in ck.rglob("*") if p.is_file())
    assert files == ["manifest.json", "model/config.json", "model/model.safetensors", "model/vocab.json",
                     "trainer.json", "trainer.pt"]
    manifest = json.loads((ck / "manifest.json").read_text())
    assert manifest["step"] == 10 and sorted(manifest["files"]) == [f for f in files if f != "manifest.json"]
    state = json.loads((ck / "trainer.json").read_text())
    assert set(state) == {"step", "seconds", "loss_sum", "loss_count", "data", "rng"}
    assert set(state["data"]) == {"epoch", "index", "perm", "rng"} and set(state["rng"]) == {"numpy", "python"}
    tensors = torch.load(ck / "trainer.pt", weights_only=True)
    assert set(tensors) == {"optimizer", "scheduler", "torch_rng"}


def test_exact_resume(tmp_path, capsys):
    # dropout on: the restored torch RNG state must make even the dropout masks agree
    cfg, mcfg = _cfg(), _model_cfg(dropout=0.1)

    def weights(run):
        m = SmallTransformer(mcfg, seed=0)
        load_checkpoint(latest_checkpoint(run), m)
        return m.state_dict()

    a, b = tmp_path / "a", tmp_path / "b"
    train_lm(a, mcfg, TOK, TEXTS, eval_fn=_eval, config=cfg, quiet=True)
    first = train_lm(b, mcfg, TOK, TEXTS, eval_fn=_eval, config=cfg, quiet=True, stop_after=25)
    assert first["step"] == 25 and first["final_checkpoint"] is None
    assert [r["step"] for r in read_metrics(b)] == [5, 10, 15, 20, 25]
    assert latest_checkpoint(b).name == "step-0000020"
    summary = train_lm(b, mcfg, TOK, TEXTS, eval_fn=_eval, config=cfg, quiet=True)
    assert summary["resumed_from"].endswith("step-0000020")
    ra, rb = read_metrics(a), read_metrics(b)
    assert [r["step"] for r in rb] == [5, 10, 15, 20, 25, 30, 35, 40]  # no duplicates after resume
    assert _strip(ra) == _strip(rb)
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    # keep_checkpoints=3
    assert [p.name for p in sorted((b / "checkpoints").iterdir())] == \
        ["step-0000020", "step-0000030", "step-0000040"]


def test_resume_across_epochs_and_interrupt(tmp_path):
    # 12 texts, batch 5: batches straddle epochs; an exception from eval_fn interrupts the run
    texts = TEXTS[:12]
    cfg = _cfg(steps=30, batch_size=5, eval_every=6, ckpt_every=6, schedule="linear")
    a, b = tmp_path / "a", tmp_path / "b"
    train_lm(a, _model_cfg(), TOK, texts, eval_fn=_eval, config=cfg, quiet=True)

    def failing(model, step):
        if step == 18:
            raise KeyboardInterrupt
        return _eval(model, step)

    with pytest.raises(KeyboardInterrupt):
        train_lm(b, _model_cfg(), TOK, texts, eval_fn=failing, config=cfg, quiet=True)
    assert latest_checkpoint(b).name == "step-0000012"
    train_lm(b, _model_cfg(), TOK, texts, eval_fn=_eval, config=cfg, quiet=True)
    assert _strip(read_metrics(a)) == _strip(read_metrics(b))
    wa, wb = _weights(a), _weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_corrupt_newest_checkpoint_falls_back(tmp_path, capsys):
    run = tmp_path / "run"
    cfg = _cfg(steps=30)
    train_lm(run, _model_cfg(), TOK, TEXTS, config=cfg, quiet=True, stop_after=30)
    ck = run / "checkpoints"
    assert [p.name for p in sorted(ck.iterdir())] == ["step-0000010", "step-0000020", "step-0000030"]
    # newest: a flipped byte in the weights; second: no manifest (a partial write)
    w = ck / "step-0000030" / "model" / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    (ck / "step-0000020" / "manifest.json").unlink()
    # and a leftover temporary folder of a killed writer
    (ck / ".step-0000040.abc.tmp").mkdir()
    assert latest_checkpoint(run).name == "step-0000010"
    capsys.readouterr()
    summary = train_lm(run, _model_cfg(), TOK, TEXTS, config=cfg, quiet=True)
    err = capsys.readouterr().err
    assert "skipping checkpoint step-0000030: " in err and "checksum" in err
    assert "skipping checkpoint step-0000020: " in err and "manifest" in err
    assert summary["resumed_from"].endswith("step-0000010") and summary["step"] == 30
    assert not (ck / ".step-0000040.abc.tmp").exists()
    assert [r["step"] for r in read_metrics(run)] == [5, 10, 15, 20, 25, 30]
    # an unreadable trainer file with a matching manifest is skipped too
    bad = ck / "step-0000030" / "trainer.pt"
    bad.write_bytes(b"not a torch file")
    manifest = json.loads((ck / "step-0000030" / "manifest.json").read_text())
    manifest["files"]["trainer.pt"] = loop.sha256_file(bad)
    (ck / "step-0000030" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(LmscopeError, match="unreadable"):
        load_checkpoint(ck / "step-0000030", SmallTransformer(_model_cfg(), seed=0))


def test_different_configuration_refused(tmp_path):
    run = tmp_path / "run"
    train_lm(run, _model_cfg(), TOK, TEXTS, config=_cfg(steps=10), quiet=True)
    with pytest.raises(LmscopeError, match=r"belongs to a different configuration: train\.lr$"):
        train_lm(run, _model_cfg(), TOK, TEXTS, config=_cfg(steps=10, lr=1e-3), quiet=True)
    with pytest.raises(LmscopeError, match=r"different configuration: model\.d_model"):
        train_lm(run, SmallConfig(vocab_size=TOK.vocab_size, d_model=8, n_layers=1, n_heads=2, d_ff=32,
                                  max_len=16), TOK, TEXTS, config=_cfg(steps=10), quiet=True)
    with pytest.raises(LmscopeError, match=r"different configuration: data\."):
        train_lm(run, _model_cfg(), TOK, TEXTS[:-1], config=_cfg(steps=10), quiet=True)
    other = WordTokenizer(list(reversed(TOK.tokens[5:])))
    with pytest.raises(LmscopeError, match=r"different configuration: tokenizer\.vocab_sha256"):
        train_lm(run, _model_cfg(), other, TEXTS, config=_cfg(steps=10), quiet=True)
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("x")
    with pytest.raises(LmscopeError, match="not empty"):
        train_lm(stranger, _model_cfg(), TOK, TEXTS, config=_cfg(steps=10), quiet=True)


def test_meta_is_part_of_the_configuration(tmp_path):
    run = tmp_path / "run"
    train_lm(run, _model_cfg(), TOK, TEXTS, config=_cfg(steps=10), quiet=True)  # recorded without meta
    meta = {"eval": {"n_val": 20}}
    train_lm(run, _model_cfg(), TOK, TEXTS, config=_cfg(steps=10), quiet=True, meta=meta)  # adopted
    assert json.loads((run / "run.json").read_text())["meta"] == meta
    with pytest.raises(LmscopeError, match=r"different configuration: meta\.eval\.n_val"):
        train_lm(run, _model_cfg(), TOK, TEXTS, config=_cfg(steps=10), quiet=True, meta={"eval": {"n_val": 30}})
    with pytest.raises(LmscopeError, match=r"different configuration: train\.lr"):  # no adoption past a change
        train_lm(tmp_path / "run", _model_cfg(), TOK, TEXTS, config=_cfg(steps=10, lr=1e-3), quiet=True, meta=meta)
    assert json.loads((run / "run.json").read_text())["meta"] == meta


@pytest.mark.parametrize("kw, match", [
    ({"steps": 0}, "steps must be >= 1"),
    ({"batch_size": 0}, "batch_size"),
    ({"lr": -1.0}, "lr must be a non-negative"),
    ({"lr": 0.0}, "lr must be positive"),
    ({"warmup": -2}, "warmup"),
    ({"eval_every": -1}, "eval_every"),
    ({"grad_clip": float("nan")}, "grad_clip"),
    ({"schedule": "step"}, "unknown schedule 'step'"),
])
def test_validation(kw, match):
    with pytest.raises(LmscopeError, match=match):
        TrainConfig(**kw).validate()


def test_input_errors_and_schedule(tmp_path):
    with pytest.raises(LmscopeError, match="non-empty list"):
        train_lm(tmp_path / "r", _model_cfg(), TOK, [], config=_cfg(), quiet=True)
    with pytest.raises(LmscopeError, match="max_len"):
        train_lm(tmp_path / "r", _model_cfg(), TOK, [" ".join(["a"] * 20)], config=_cfg(), quiet=True)
    with pytest.raises(LmscopeError, match="causal"):
        train_lm(tmp_path / "r", _model_cfg(causal=False), TOK, TEXTS, config=_cfg(), quiet=True)
    c = TrainConfig(steps=100, warmup=10, schedule="linear")
    assert c.lr_factor(0) == pytest.approx(0.1) and c.lr_factor(9) == 1.0 and c.lr_factor(55) == pytest.approx(0.5)
    assert TrainConfig(steps=50_000).warmup_steps == 1000 and TrainConfig(steps=300).warmup_steps == 30
    assert TrainConfig(steps=100, warmup=10, schedule="cosine").lr_factor(100) == pytest.approx(0.0)


def test_enospc_keeps_previous_checkpoint(tmp_path, monkeypatch):
    run = tmp_path / "run"
    cfg = _cfg(steps=20, eval_every=10)
    calls = {"n": 0}
    real = loop._save_tensors

    def full_disk(obj, path):
        calls["n"] += 1
        if calls["n"] == 2:
            path.write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        real(obj, path)

    monkeypatch.setattr(loop, "_save_tensors", full_disk)
    with pytest.raises(LmscopeError, match="could not write checkpoint .*step-0000020: No space left on device"):
        train_lm(run, _model_cfg(), TOK, TEXTS, config=cfg, quiet=True)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-0000010"]
    state = load_checkpoint(run / "checkpoints" / "step-0000010", SmallTransformer(_model_cfg(), seed=0))
    assert state["step"] == 10
    # the disk has room again: the run resumes from step 10 and its metrics stay consistent
    monkeypatch.setattr(loop, "_save_tensors", real)
    summary = train_lm(run, _model_cfg(), TOK, TEXTS, config=cfg, quiet=True)
    assert summary["resumed_from"].endswith("step-0000010")
    assert [r["step"] for r in read_metrics(run)] == [10, 20]


def test_read_metrics_ignores_torn_last_line(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "lo')
    assert read_metrics(tmp_path) == [{"step": 1, "loss": 2.0}]
    assert read_metrics(tmp_path / "none") == []
    shutil.rmtree(tmp_path)


def test_a_constant_rate_run_can_be_extended(tmp_path):
    """More steps for a constant-rate run continue it exactly; fewer steps or a decaying schedule are refused."""
    run, ref = tmp_path / "run", tmp_path / "ref"
    train_lm(run, _model_cfg(), TOK, TEXTS, eval_fn=_eval, config=_cfg(steps=20, warmup=2, schedule="constant"), quiet=True)
    res = train_lm(run, _model_cfg(), TOK, TEXTS, eval_fn=_eval, config=_cfg(steps=30, warmup=2, schedule="constant"), quiet=True)
    assert res["step"] == 30 and res["resumed_from"] is not None
    train_lm(ref, _model_cfg(), TOK, TEXTS, eval_fn=_eval, config=_cfg(steps=30, warmup=2, schedule="constant"), quiet=True)
    a, b = _weights(run), _weights(ref)
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(LmscopeError, match=r"different configuration: train\.steps"):
        train_lm(run, _model_cfg(), TOK, TEXTS, config=_cfg(steps=25, warmup=2, schedule="constant"), quiet=True)
    # the default warmup (min(1000, steps // 10) = 2 here) named explicitly to keep it when extending
    imp, ref2 = tmp_path / "implicit", tmp_path / "ref2"
    train_lm(imp, _model_cfg(), TOK, TEXTS, eval_fn=_eval, config=_cfg(steps=20, warmup=None, schedule="constant"), quiet=True)
    with pytest.raises(LmscopeError, match=r"different configuration: train\.steps"):  # the default would be 3
        train_lm(imp, _model_cfg(), TOK, TEXTS, config=_cfg(steps=30, warmup=None, schedule="constant"), quiet=True)
    train_lm(imp, _model_cfg(), TOK, TEXTS, eval_fn=_eval, config=_cfg(steps=30, warmup=2, schedule="constant"), quiet=True)
    train_lm(ref2, _model_cfg(), TOK, TEXTS, eval_fn=_eval, config=_cfg(steps=30, warmup=2, schedule="constant"), quiet=True)
    a, b = _weights(imp), _weights(ref2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    dec = tmp_path / "dec"
    train_lm(dec, _model_cfg(), TOK, TEXTS, config=_cfg(steps=20, warmup=2, schedule="cosine"), quiet=True)
    with pytest.raises(LmscopeError, match=r"different configuration: train\.steps"):
        train_lm(dec, _model_cfg(), TOK, TEXTS, config=_cfg(steps=30, warmup=2, schedule="cosine"), quiet=True)


# ------------------------------------------------------------------------------------------------
# The generic loop on a model that is not a transformer
# ------------------------------------------------------------------------------------------------
MLP_SCRIPT = '''
import os, signal, sys
import torch
import torch.nn.functional as F
from lmscope.train.loop import TrainConfig, train

torch.set_num_threads(1)


def mlp(seed=0):
    g = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(6, 24), torch.nn.BatchNorm1d(24), torch.nn.ReLU(),
                                torch.nn.Dropout(0.3), torch.nn.Linear(24, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return model


def planted(n=50, seed=0):
    """Points in 6-d labelled by which of three fixed directions they point most along."""
    g = torch.Generator().manual_seed(seed + 100)
    x = torch.randn(n, 6, generator=g)
    w = torch.randn(6, 3, generator=g)
    return [(x[i], int((x[i] @ w).argmax())) for i in range(n)]


DATA = planted()


def collate(items):
    return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items])


def loss_fn(model, batch):
    x, y = batch
    return F.cross_entropy(model(x), y)


def accuracy(model, step):
    x, y = collate(DATA)
    # torch.rand: a draw that would shift every later dropout mask if the loop did not restore the RNG
    return {"train_acc": float((model(x).argmax(-1) == y).float().mean()), "noise": float(torch.rand(1))}


def run(run_dir, steps=30, kill_at=None, **kw):
    def killing_loss(model, batch):
        nonlocal_step[0] += 1
        if kill_at is not None and nonlocal_step[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return loss_fn(model, batch)

    nonlocal_step = [0]
    cfg = TrainConfig(steps=steps, batch_size=8, lr=2e-2, warmup=3, schedule="linear", eval_every=3, ckpt_every=7,
                      keep_checkpoints=2, seed=4)
    return train(run_dir, mlp(), killing_loss, DATA, cfg, collate=collate, eval_fn=accuracy, quiet=True,
                 run_info={"model": "mlp-6-24-3"}, **kw)


if __name__ == "__main__":
    run(sys.argv[1], kill_at=int(sys.argv[2]) if len(sys.argv) > 2 else None)
'''


@pytest.fixture(scope="module")
def mlp_mod(tmp_path_factory):
    import importlib.util

    path = tmp_path_factory.mktemp("mlp") / "mlp_train.py"
    path.write_text(MLP_SCRIPT)
    spec = importlib.util.spec_from_file_location("mlp_train", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.path = path
    return mod


def _mlp_state(mod, run_dir):
    model = mod.mlp(seed=9)  # other weights: everything must come from the checkpoint
    load_checkpoint(latest_checkpoint(run_dir), model)
    return model.state_dict()


def _same_state(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_mlp_learns_the_planted_labels_and_follows_the_schedule(tmp_path, mlp_mod):
    summary = mlp_mod.run(tmp_path / "run", steps=60)
    rows = read_metrics(tmp_path / "run")
    assert summary["step"] == 60 and [r["step"] for r in rows] == list(range(3, 61, 3))
    assert rows[-1]["train_acc"] >= 0.9 > rows[0]["train_acc"]
    assert rows[-1]["loss"] < rows[0]["loss"] / 2
    # the rate logged at step s is the one used by optimizer step s - 1: warmup 3, then linear to 0 at 60
    cfg = TrainConfig(steps=60, lr=2e-2, warmup=3, schedule="linear")
    for r in rows:
        assert r["lr"] == pytest.approx(2e-2 * cfg.lr_factor(r["step"] - 1), rel=1e-12)
    # BatchNorm's running statistics are part of the checkpoint
    state = _mlp_state(mlp_mod, tmp_path / "run")
    assert "1.running_mean" in state and float(state["1.num_batches_tracked"]) == 60


def test_mlp_exact_resume_after_an_exception_mid_epoch(tmp_path, mlp_mod):
    """50 items in batches of 8: step 17 is in the middle of the third epoch; dropout and BatchNorm on."""
    a, b = tmp_path / "a", tmp_path / "b"
    mlp_mod.run(a)

    calls = {"n": 0}

    def crashing(model, batch):
        calls["n"] += 1
        if calls["n"] == 17:
            raise RuntimeError("simulated crash")
        return mlp_mod.loss_fn(model, batch)

    cfg = TrainConfig(steps=30, batch_size=8, lr=2e-2, warmup=3, schedule="linear", eval_every=3, ckpt_every=7,
                      keep_checkpoints=2, seed=4)
    kw = dict(collate=mlp_mod.collate, eval_fn=mlp_mod.accuracy, quiet=True, run_info={"model": "mlp-6-24-3"})
    with pytest.raises(RuntimeError, match="simulated crash"):
        loop.train(b, mlp_mod.mlp(), crashing, mlp_mod.DATA, cfg, **kw)
    assert latest_checkpoint(b).name == "step-0000014"
    assert [r["step"] for r in read_metrics(b)] == [3, 6, 9, 12, 15]
    summary = mlp_mod.run(b)
    assert summary["resumed_from"].endswith("step-0000014") and summary["step"] == 30
    assert _strip(read_metrics(a)) == _strip(read_metrics(b))
    _same_state(_mlp_state(mlp_mod, a), _mlp_state(mlp_mod, b))


def test_mlp_exact_resume_after_sigkill(tmp_path, mlp_mod):
    """A process killed outright (SIGKILL between two checkpoints) resumes to the same weights and metrics."""
    import subprocess
    import sys

    a, b = tmp_path / "a", tmp_path / "b"
    env = {**__import__("os").environ}

    def launch(*args):
        return subprocess.run([sys.executable, str(mlp_mod.path), *map(str, args)], env=env,
                              capture_output=True, text=True, timeout=300)

    assert launch(a).returncode == 0
    killed = launch(b, 19)
    assert killed.returncode == -9, killed.stderr
    assert latest_checkpoint(b).name == "step-0000014"
    assert [r["step"] for r in read_metrics(b)] == [3, 6, 9, 12, 15, 18]
    resumed = launch(b)
    assert resumed.returncode == 0, resumed.stderr
    assert _strip(read_metrics(a)) == _strip(read_metrics(b))
    _same_state(_mlp_state(mlp_mod, a), _mlp_state(mlp_mod, b))


def test_generic_loop_refuses_other_settings_and_bad_input(tmp_path, mlp_mod):
    run = tmp_path / "run"
    mlp_mod.run(run, steps=6)
    cfg = TrainConfig(steps=6, batch_size=8, lr=2e-2, warmup=3, schedule="linear", eval_every=3, ckpt_every=7,
                      keep_checkpoints=2, seed=4)
    with pytest.raises(loop.RunDirMismatch, match=r"different configuration: model$") as err:
        loop.train(run, mlp_mod.mlp(), mlp_mod.loss_fn, mlp_mod.DATA, cfg, collate=mlp_mod.collate, quiet=True,
                   run_info={"model": "mlp-6-32-3"})
    assert err.value.key == "model"
    with pytest.raises(LmscopeError, match="at least one training item"):
        loop.train(tmp_path / "r2", mlp_mod.mlp(), mlp_mod.loss_fn, [], cfg, quiet=True)
    frozen = mlp_mod.mlp()
    for p in frozen.parameters():
        p.requires_grad_(False)
    with pytest.raises(LmscopeError, match="no parameters that require gradients"):
        loop.train(tmp_path / "r3", frozen, mlp_mod.loss_fn, mlp_mod.DATA, cfg, collate=mlp_mod.collate, quiet=True)
    # a checkpoint of another model is skipped with a message, and the run starts afresh
    other = torch.nn.Sequential(torch.nn.Linear(6, 3))
    with pytest.raises(LmscopeError, match="does not fit the model: it lacks 0.weight|unexpected tensor"):
        load_checkpoint(latest_checkpoint(run), other)


def test_trainable_state_skips_frozen_and_tied_tensors():
    model = SmallTransformer(_model_cfg(), seed=0)
    state = loop.trainable_state(model)
    assert "embed.weight" in state and "head.weight" not in state  # tied to the embedding
    model.layers[0].requires_grad_(False)
    state = loop.trainable_state(model)
    assert not any(k.startswith("layers.0.") for k in state) and "embed.weight" in state
