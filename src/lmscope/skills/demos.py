"""Expert demonstrations of BabyAI levels, made by the ``minigrid`` package's bot.

For episode ``i`` of a request (level, n, seed) the environment is reset with the episode seed

    e(seed, i) = (seed * 100_003 + i) mod 2^30

and minigrid's ``BabyAIBot`` chooses every action (``replan()`` once per step). Before each action we record
the agent's symbolic 7x7x3 partial view and direction, a short text of the action for the language model
("turn left", "move forward", "pick up the red ball", "open the green door") and the bot's own subgoal at
that step (the top of its stack: ``GoNextTo(red ball)``, ``Pickup``, ``Drop``, ``Open``, ``Explore`` ...). An
episode the bot does not finish with a reward is skipped; the demos are the first ``n`` successful episodes
in order of ``i``, so the same request gives the same demos whatever the number of processes. Episode seeds
stay below 2^30, so a caller can draw evaluation seeds above it that no demo uses.

The files of a demonstration folder are described in :mod:`lmscope.skills.types`.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import io
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from lmscope.errors import LmscopeError, check_int
from lmscope.progress import progress
from lmscope.skills.types import VIEW, Demo

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

FORMAT = "lmscope-demos"
VERSION = 1
DISCOVERY_LEVELS = ("GoToLocal", "PickupLoc", "OpenDoor", "PutNextLocal")
TRANSFER_LEVELS = ("UnlockPickup", "Synth", "GoToSeq", "BossLevel")
SEED_SPAN = 2**30
MISSING = ("the BabyAI levels need the optional extra 'babyai' (minigrid, Python >= 3.11): "
           "pip install -e '.[babyai]'")


def require_minigrid() -> None:
    """One-line LmscopeError when minigrid (the optional extra ``babyai``) cannot be imported."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import minigrid  # noqa: F401
            from minigrid.utils.baby_ai_bot import BabyAIBot  # noqa: F401
    except ImportError as e:
        raise LmscopeError(f"{MISSING} ({e})") from None


def babyai_levels() -> list[str]:
    """Every registered BabyAI level id."""
    require_minigrid()
    import gymnasium as gym

    with contextlib.redirect_stdout(io.StringIO()):
        import minigrid  # noqa: F401  (registers the levels)
    return sorted(e for e in gym.envs.registry if e.startswith("BabyAI-"))


def resolve_level(name: str) -> str:
    """``GoToLocal`` -> ``BabyAI-GoToLocal-v0``; a full id is kept. An unknown level names close matches."""
    levels = babyai_levels()
    name = str(name).strip()
    if name in levels:
        return name
    short = {e[len("BabyAI-"):].rsplit("-v", 1)[0]: e for e in levels}
    if name in short:
        return short[name]
    close = difflib.get_close_matches(name, list(short), n=4, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; e.g. {', '.join(DISCOVERY_LEVELS)}"
    raise LmscopeError(f"unknown BabyAI level {name!r}{hint}")


def episode_seed(seed: int, i: int) -> int:
    """The reset seed of candidate episode ``i`` of a request with ``seed`` (see the module docstring)."""
    return (int(seed) * 100_003 + int(i)) % SEED_SPAN


# ---------------------------------------------------------------------------------------------------------
# one episode
# ---------------------------------------------------------------------------------------------------------
def _describe_obj(obj) -> str:
    if obj is None:
        return "nothing"
    return f"{obj.color} {obj.type}" if getattr(obj, "color", None) else str(obj.type)


def _datum_text(datum) -> str:
    if datum is None:
        return ""
    if hasattr(datum, "type") and hasattr(datum, "color") and not hasattr(datum, "cur_pos"):
        # an object description of the mission (its colour may be None: "a key")
        return " ".join(str(x) for x in (datum.color, datum.type) if x is not None)
    if hasattr(datum, "type"):
        return _describe_obj(datum)
    try:
        x, y = (int(v) for v in datum)
        return f"{x},{y}"
    except (TypeError, ValueError):
        return str(datum)


def subgoal_text(subgoal) -> str:
    """A stable, readable name for a bot subgoal: ``GoNextTo(red ball)``, ``Pickup``, ``Explore``."""
    name = type(subgoal).__name__.removesuffix("Subgoal")
    datum = _datum_text(getattr(subgoal, "datum", None))
    return f"{name}({datum})" if datum else name


def step_text(env, action: int) -> str:
    """A short text of ``action`` in the current state, for the language model."""
    u = env.unwrapped
    front = u.grid.get(*u.front_pos)
    if action == 0:
        return "turn left"
    if action == 1:
        return "turn right"
    if action == 2:
        return "move forward"
    if action == 3:
        return f"pick up the {_describe_obj(front)}" if front is not None else "pick up nothing"
    if action == 4:
        return f"drop the {_describe_obj(u.carrying)}" if u.carrying is not None else "drop nothing"
    if action == 5:
        if front is not None and front.type == "door":
            verb = "unlock" if front.is_locked else ("close" if front.is_open else "open")
            return f"{verb} the {_describe_obj(front)}"
        return f"toggle the {_describe_obj(front)}"
    return "done"


def generate_demo(level: str, seed: int) -> Demo | None:
    """The bot's episode of ``level`` reset with ``seed``, or None when the bot does not succeed."""
    import gymnasium as gym
    from minigrid.utils.baby_ai_bot import BabyAIBot

    with contextlib.redirect_stdout(io.StringIO()):  # some levels print their rejected samples
        env = gym.make(level)
        try:
            obs, _ = env.reset(seed=int(seed))
            bot = BabyAIBot(env.unwrapped)
            images, dirs, actions, steps, subgoals = [], [], [], [], []
            while True:
                try:
                    action = int(bot.replan())
                except Exception:  # the bot's own failures (e.g. a box it expected vanished)
                    return None
                images.append(np.asarray(obs["image"], dtype=np.uint8))
                dirs.append(int(obs["direction"]))
                actions.append(action)
                steps.append(step_text(env, action))
                subgoals.append(subgoal_text(bot.stack[-1]) if bot.stack else "None")
                obs, reward, terminated, truncated, _ = env.step(action)
                if terminated or truncated:
                    break
            if not (terminated and reward > 0):
                return None
            return Demo(level=level, seed=int(seed), mission=str(obs["mission"]),
                        images=np.stack(images).astype(np.uint8), directions=np.asarray(dirs, dtype=np.int8),
                        actions=np.asarray(actions, dtype=np.int8), steps=steps, subgoals=subgoals)
        finally:
            env.close()


def _generate_range(level: str, seed: int, lo: int, hi: int) -> list[Demo | None]:
    require_minigrid()
    return [generate_demo(level, episode_seed(seed, i)) for i in range(lo, hi)]


def make_demos(level: str, n: int, seed: int = 0, *, jobs: int | None = None, quiet: bool | None = None) -> list[Demo]:
    """The first ``n`` successful bot episodes of ``level`` (see the module docstring); ``jobs`` processes
    (default: all cores; 1: in this process) give the same demos."""
    require_minigrid()
    level = resolve_level(level)
    n = check_int("n", n, 1)
    check_int("seed", seed, 0)
    jobs = os.cpu_count() or 1 if jobs is None else check_int("jobs", jobs, 1)
    chunk = max(4, min(64, n // max(1, jobs) + 1))
    demos: list[Demo] = []
    tried = 0
    bar = progress(total=n, desc=f"demos {level}", quiet=quiet)
    pool = ProcessPoolExecutor(max_workers=jobs) if jobs > 1 else None
    try:
        while len(demos) < n:
            ranges = [(tried + k * chunk, tried + (k + 1) * chunk) for k in range(jobs)]
            if pool is None:
                parts = [_generate_range(level, seed, lo, hi) for lo, hi in ranges]
            else:
                parts = list(pool.map(_generate_range, *zip(*[(level, seed, lo, hi) for lo, hi in ranges])))
            tried = ranges[-1][1]
            for part in parts:
                for d in part:
                    if d is not None and len(demos) < n:
                        demos.append(d)
                        bar.update(1)
            if tried > 20 * n + 1000 and len(demos) < n:
                raise LmscopeError(f"the bot solved only {len(demos)} of {tried} episodes of {level}")
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown()
    return demos


# ---------------------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_demos(folder, demos: list[Demo], *, level: str, n: int, seed: int) -> None:
    """``manifest.json``, ``arrays.npz`` and ``demos.jsonl`` into the existing ``folder`` (byte-identical
    for the same demos)."""
    from lmscope._io import atomic_path, write_json, write_jsonl

    folder = Path(folder)
    if not demos:
        raise LmscopeError("no demonstrations to write")
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in demos])]).astype(np.int64)
    with atomic_path(folder / "arrays.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, images=np.concatenate([d.images for d in demos]).astype(np.uint8),
                                directions=np.concatenate([d.directions for d in demos]).astype(np.int8),
                                actions=np.concatenate([d.actions for d in demos]).astype(np.int8), offsets=offsets)
    write_jsonl(folder / "demos.jsonl", [{"index": i, "level": d.level, "seed": d.seed, "mission": d.mission,
                                          "steps": d.steps, "subgoals": d.subgoals} for i, d in enumerate(demos)])
    write_json(folder / "manifest.json", {
        "format": FORMAT, "version": VERSION, "level": level, "n": n, "seed": seed, "count": len(demos),
        "steps": int(offsets[-1]),
        "files": {name: _sha256(folder / name) for name in ("arrays.npz", "demos.jsonl")}})


def _bad(path: Path, why: str) -> LmscopeError:
    return LmscopeError(f"{path}: {why}")


def read_demo_manifest(folder) -> dict:
    """The folder's manifest, checked (format, version, the files' checksums)."""
    folder = Path(folder)
    if not folder.exists():
        raise LmscopeError(f"{folder}: no such demonstration folder")
    if not folder.is_dir():
        raise LmscopeError(f"{folder}: not a folder (give a folder written by lmscope skills demos)")
    path = folder / "manifest.json"
    if not path.is_file():
        raise _bad(path, "missing: not a folder written by lmscope skills demos")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _bad(path, f"unreadable ({str(e).splitlines()[0]})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _bad(path, "not a demonstration manifest of lmscope skills demos")
    if manifest.get("version") != VERSION:
        raise _bad(path, f"version {manifest.get('version')!r}; this lmscope reads version {VERSION}")
    files = manifest.get("files")
    if not isinstance(files, dict) or set(files) != {"arrays.npz", "demos.jsonl"}:
        raise _bad(path, "its list of files is damaged")
    for name, sha in files.items():
        f = folder / name
        if not f.is_file():
            raise _bad(f, "missing")
        if _sha256(f) != sha:
            raise _bad(f, "changed or damaged since it was written (checksum mismatch)")
    return manifest


def load_demos(folder) -> list[Demo]:
    """The demos of a folder written by :func:`write_demos`; every problem names its file."""
    folder = Path(folder)
    manifest = read_demo_manifest(folder)
    npz = folder / "arrays.npz"
    try:
        with np.load(npz, allow_pickle=False) as z:
            images, dirs, actions, offsets = (z[k] for k in ("images", "directions", "actions", "offsets"))
    except Exception as e:  # zip, pickle or key errors of a damaged file
        raise _bad(npz, f"unreadable ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    count = int(manifest.get("count", -1))
    if (offsets.ndim != 1 or len(offsets) != count + 1 or offsets[0] != 0 or np.any(np.diff(offsets) < 1)
            or offsets[-1] != len(images) or len(dirs) != len(images) or len(actions) != len(images)
            or images.shape[1:] != (VIEW, VIEW, 3)):
        raise _bad(npz, "its arrays do not fit together (lengths or offsets)")
    jsonl = folder / "demos.jsonl"
    from lmscope._io import read_jsonl_numbered

    rows = read_jsonl_numbered(jsonl)
    if len(rows) != count:
        raise _bad(jsonl, f"{len(rows)} rows, the manifest says {count}")
    demos = []
    for i, (line, row) in enumerate(rows):
        lo, hi = int(offsets[i]), int(offsets[i + 1])
        try:
            steps, subgoals = list(row["steps"]), list(row["subgoals"])
            demo = Demo(level=str(row["level"]), seed=int(row["seed"]), mission=str(row["mission"]),
                        images=images[lo:hi], directions=dirs[lo:hi], actions=actions[lo:hi], steps=steps,
                        subgoals=subgoals)
        except (KeyError, TypeError, ValueError) as e:
            raise _bad(jsonl, f"line {line}: a damaged row ({e})") from None
        if len(steps) != hi - lo or len(subgoals) != hi - lo or row.get("index") != i:
            raise _bad(jsonl, f"line {line}: does not match demo {i} of arrays.npz")
        demos.append(demo)
    return demos


# ---------------------------------------------------------------------------------------------------------
# replay
# ---------------------------------------------------------------------------------------------------------
def replay(demo: Demo) -> bool:
    """True when the demo's actions, from a fresh environment reset with its seed, see the stored
    observations and end in success at the last action."""
    import gymnasium as gym

    require_minigrid()
    with contextlib.redirect_stdout(io.StringIO()):
        env = gym.make(demo.level)
        try:
            obs, _ = env.reset(seed=int(demo.seed))
            if str(obs["mission"]) != demo.mission:
                return False
            for t, action in enumerate(demo.actions):
                if not (np.array_equal(obs["image"], demo.images[t]) and int(obs["direction"]) == demo.directions[t]):
                    return False
                obs, reward, terminated, truncated, _ = env.step(int(action))
                if (terminated or truncated) != (t == len(demo) - 1):
                    return False
            return bool(terminated and reward > 0)
        finally:
            env.close()


def check_replays(demos: list[Demo]) -> list[int]:
    """Indices of the demos that do not replay to success (see :func:`replay`)."""
    return [i for i, d in enumerate(demos) if not replay(d)]
