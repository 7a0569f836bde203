"""Expert demonstrations of BabyAI levels, solved by minigrid's BabyAI bot.

A demo of level ``L`` with episode seed ``s`` is the episode ``env.reset(seed=s)`` of ``L`` played by
``BabyAIBot``: at every step ``t`` the bot replans, its stack top is the subgoal ``g_t`` and its answer the
action ``a_t``; the observation ``o_t`` (the agent's 7x7x3 view and direction) is the one seen *before*
``a_t``. The demo is ``(o_t, a_t, text(a_t), g_t)`` for ``t = 0 .. T-1``, kept only when the last action ends
the episode with a positive reward (the level's mission is done) within the level's step limit.

Seeds: ``make_demos(level, n, seed)`` tries candidate ``i = 0, 1, 2, ...`` with episode seed
``s_i = SeedSequence((seed, i)).generate_state(1)[0]`` (a 32-bit integer) and keeps the first ``n``
successes in order of ``i``, so the demos depend on ``(level, n, seed)`` only, never on how many processes
generate them. Replaying a demo's actions from ``s_i`` in a fresh env reproduces every observation.

Files: ``manifest.json``, ``arrays.npz`` and ``demos.jsonl`` as :mod:`lmscope.skills.types` describes;
the npz is written with fixed zip timestamps, so the same demos give byte-identical files.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from lmscope._io import atomic_path, read_jsonl_numbered, read_text, sha256_file, write_json, write_jsonl
from lmscope.errors import LmscopeError, check_int
from lmscope.progress import progress
from lmscope.skills.types import N_ACTIONS, VIEW, Demo

DISCOVERY_LEVELS = ("GoToLocal", "PickupLoc", "OpenDoor", "PutNextLocal")
TRANSFER_LEVELS = ("UnlockPickup", "Synth", "GoToSeq", "BossLevel")
FORMAT = "lmscope-demos"
VERSION = 1
FILES = ("arrays.npz", "demos.jsonl")
_ARRAYS = {"images": np.uint8, "directions": np.int8, "actions": np.int8, "offsets": np.int64}
_EXTRA_HINT = ("the BabyAI levels need the optional extra 'babyai' (minigrid, Python >= 3.11): "
               "pip install -e '.[babyai]'")


def require_minigrid():
    """The ``minigrid`` module (which registers the BabyAI levels with gymnasium); an LmscopeError when the
    optional extra is not installed."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import minigrid
            import minigrid.envs.babyai  # noqa: F401
    except ImportError:
        raise LmscopeError(_EXTRA_HINT) from None
    return minigrid


def babyai_levels() -> list[str]:
    """Every registered BabyAI level, as gymnasium ids."""
    require_minigrid()
    import gymnasium

    return sorted(k for k in gymnasium.envs.registry if k.startswith("BabyAI-"))


def resolve_level(name: str) -> str:
    """The gymnasium id of a BabyAI level given as an id (``BabyAI-GoToLocal-v0``) or a short name
    (``GoToLocal``); an unknown name is an LmscopeError naming close matches."""
    levels = babyai_levels()
    if name in levels:
        return name
    short = {k[len("BabyAI-"):].rsplit("-v", 1)[0]: k for k in levels}
    if name in short:
        return short[name]
    lowered = {k.lower(): v for k, v in short.items()}
    if name.lower() in lowered:
        return lowered[name.lower()]
    close = difflib.get_close_matches(name, list(short), n=4, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else "; e.g. " + ", ".join(DISCOVERY_LEVELS)
    raise LmscopeError(f"unknown BabyAI level {name!r}{hint}")


def episode_seed(seed: int, i: int) -> int:
    """The env.reset seed of candidate ``i`` of a run with ``seed``."""
    return int(np.random.SeedSequence((int(seed), int(i))).generate_state(1, dtype=np.uint32)[0])


def _make_env(level: str):
    require_minigrid()
    import gymnasium

    with contextlib.redirect_stdout(io.StringIO()):
        return gymnasium.make(level)


def _reset(env, seed: int):
    with contextlib.redirect_stdout(io.StringIO()):  # some levels print "Sampling rejected: ..." here
        obs, _ = env.reset(seed=seed)
    return obs


def _obj_text(obj) -> str:
    return f"{obj.color} {obj.type}"


def _step_text(env, action: int) -> str:
    """A short description of ``action`` taken in the env's current state (before the step)."""
    u = env.unwrapped
    if action in (0, 1, 2, 6):
        return ("turn left", "turn right", "move forward", None, None, None, "done")[action]
    if action == 4:
        return f"drop the {_obj_text(u.carrying)}" if u.carrying is not None else "drop nothing"
    front = u.grid.get(*u.front_pos)
    if action == 3:
        return f"pick up the {_obj_text(front)}" if front is not None else "pick up nothing"
    if front is None:
        return "toggle nothing"
    if front.type == "door":
        verb = "unlock" if front.is_locked else ("close" if front.is_open else "open")
        return f"{verb} the {_obj_text(front)}"
    if front.type == "box":
        return f"open the {_obj_text(front)}"
    return f"toggle the {_obj_text(front)}"


def _datum_text(datum) -> str:
    if datum is None:
        return ""
    if hasattr(datum, "color") and hasattr(datum, "type"):  # ObjDesc or WorldObj
        color = f"{datum.color} " if datum.color else ""
        kind = datum.type or "object"
        loc = getattr(datum, "loc", None)
        loc = {"front": " in front of you"}.get(loc, f" on your {loc}") if loc else ""
        return f"{color}{kind}{loc}"
    if isinstance(datum, (tuple, list, np.ndarray)) and len(datum) == 2:
        return f"{int(datum[0])},{int(datum[1])}"
    return str(datum)


def subgoal_text(bot) -> str:
    """The bot's current subgoal (its stack top) as stable text: ``GoNextTo(red ball)``, ``Pickup``,
    ``Drop``, ``Open``, ``Close``, ``Explore`` (a move chosen by exploration), ``Done`` (empty stack)."""
    if not bot.stack:
        return "Done"
    top = bot.stack[-1]
    name = type(top).__name__.removesuffix("Subgoal")
    if name == "GoNextTo":
        if top.reason == "Explore":
            return "Explore"
        return f"GoNextTo({_datum_text(top.datum)})"
    return name


def generate_demo(level: str, seed: int) -> Demo | None:
    """The bot's episode of ``level`` from ``env.reset(seed=seed)``, or None when it does not succeed
    within the level's step limit (or the bot fails)."""
    level = resolve_level(level)
    from minigrid.utils.baby_ai_bot import BabyAIBot

    env = _make_env(level)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            obs = _reset(env, seed)
            bot = BabyAIBot(env.unwrapped)
            images, directions, actions, steps, subgoals = [], [], [], [], []
            for _ in range(env.unwrapped.max_steps):
                try:
                    action = int(bot.replan())
                except Exception:  # the bot gives up on a few layouts (e.g. a disappeared box)
                    return None
                images.append(np.asarray(obs["image"], dtype=np.uint8))
                directions.append(int(obs["direction"]))
                actions.append(action)
                steps.append(_step_text(env, action))
                subgoals.append(subgoal_text(bot))
                obs, reward, terminated, truncated, _ = env.step(action)
                if terminated or truncated:
                    if not (terminated and reward > 0):
                        return None
                    return Demo(level=level, seed=int(seed), mission=str(env.unwrapped.mission),
                                images=np.stack(images).astype(np.uint8),
                                directions=np.asarray(directions, dtype=np.int8),
                                actions=np.asarray(actions, dtype=np.int8), steps=steps, subgoals=subgoals)
            return None
    finally:
        env.close()


def _candidate(args: tuple[str, int, int]) -> Demo | None:
    level, seed, i = args
    return generate_demo(level, episode_seed(seed, i))


@contextlib.contextmanager
def _mapper(jobs: int):
    """A function mapping :func:`_candidate` over a list in order: in this process, or over ``jobs`` worker
    processes."""
    if jobs == 1:
        yield lambda args: [_candidate(a) for a in args]
        return
    import concurrent.futures as cf
    import multiprocessing as mp

    # fork starts workers at once (minigrid is already imported); spawn where the platform lacks fork
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context(method)) as pool:
        yield lambda args: list(pool.map(_candidate, args))


def make_demos(level: str, n: int, seed: int = 0, *, jobs: int | None = None,
               quiet: bool | None = None) -> list[Demo]:
    """The first ``n`` successful bot episodes of ``level`` among the candidate seeds of ``seed`` (see the
    module docstring); the same whatever ``jobs`` (None: all cores; 1: in this process)."""
    n = check_int("n", n, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    jobs = (os.cpu_count() or 1) if jobs is None else check_int("jobs", jobs, minimum=1)
    level = resolve_level(level)
    jobs = min(jobs, n)
    limit = 20 * n + 100  # the bot solves nearly every episode; this bounds a level it cannot solve
    demos: list[Demo] = []
    tried = 0
    bar = progress(total=n, desc=f"demos {level}", quiet=quiet)
    try:
        with _mapper(jobs) as run:
            while len(demos) < n and tried < limit:
                # a wave of candidates sized to the remaining demos at the success rate so far (rounded up to
                # a multiple of the processes); which demos are kept depends only on the candidates' order
                need = n - len(demos)
                rate = (len(demos) + 1) / (tried + 1)
                wave = min(limit - tried, -(-int(np.ceil(need / rate)) // jobs) * jobs)
                for demo in run([(level, seed, i) for i in range(tried, tried + wave)]):
                    tried += 1
                    if demo is not None:
                        demos.append(demo)
                        bar.update(1)
                        if len(demos) == n:
                            break
    finally:
        bar.close()
    if len(demos) < n:
        raise LmscopeError(f"the bot solved only {len(demos)} of {tried} episodes of {level}; "
                           f"asked for {n} demos")
    return demos


# ----------------------------------------------------------------------------------------------- files


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz (what np.load reads) with fixed zip timestamps, so equal arrays give equal bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def write_demos(folder, demos: list[Demo], *, level: str, n: int, seed: int) -> Path:
    """Write ``manifest.json``, ``arrays.npz`` and ``demos.jsonl`` of ``demos`` into the existing
    ``folder`` (each file atomically, the manifest last)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LmscopeError(f"not a folder: {folder}")
    lengths = [len(d) for d in demos]
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)
    empty = np.zeros((0, VIEW, VIEW, 3), np.uint8)
    arrays = {
        "images": np.concatenate([d.images for d in demos]).astype(np.uint8) if demos else empty,
        "directions": np.concatenate([d.directions for d in demos] or [np.zeros(0)]).astype(np.int8),
        "actions": np.concatenate([d.actions for d in demos] or [np.zeros(0)]).astype(np.int8),
        "offsets": offsets,
    }
    with atomic_path(folder / "arrays.npz") as tmp:
        tmp.write_bytes(_npz_bytes(arrays))
    write_jsonl(folder / "demos.jsonl", [{"index": i, "level": d.level, "seed": int(d.seed), "mission": d.mission,
                                          "steps": list(d.steps), "subgoals": list(d.subgoals)}
                                         for i, d in enumerate(demos)])
    manifest = {"format": FORMAT, "version": VERSION, "level": level, "n": int(n), "seed": int(seed),
                "count": len(demos), "steps": int(offsets[-1]),
                "files": {name: sha256_file(folder / name) for name in FILES}}
    write_json(folder / "manifest.json", manifest)
    return folder


def read_demo_manifest(folder) -> dict:
    """The checked manifest of a demo folder (format, version, fields); an LmscopeError naming the file
    for any problem."""
    folder = Path(folder)
    if not folder.exists():
        raise LmscopeError(f"no such demo folder: {folder}")
    if not folder.is_dir():
        raise LmscopeError(f"{folder} is not a folder; expected a demo folder (lmscope skills demos --out)")
    path = folder / "manifest.json"
    if not path.exists():
        what = "is empty" if not any(folder.iterdir()) else "has no manifest.json"
        raise LmscopeError(f"{path}: missing; the demo folder {what} (write it with lmscope skills demos)")
    try:
        manifest = json.loads(read_text(path, "manifest"))
    except json.JSONDecodeError as e:
        raise LmscopeError(f"{path}:{e.lineno}: malformed JSON ({e.msg})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise LmscopeError(f"{path}: not a demo manifest (expected format {FORMAT!r})")
    if manifest.get("version") != VERSION:
        raise LmscopeError(f"{path}: demo format version {manifest.get('version')!r} is not supported "
                           f"(this lmscope reads version {VERSION})")
    for key, kind in (("level", str), ("n", int), ("seed", int), ("count", int), ("steps", int),
                      ("files", dict)):
        if not isinstance(manifest.get(key), kind) or isinstance(manifest.get(key), bool):
            raise LmscopeError(f"{path}: field {key!r} is missing or not a {kind.__name__}")
    for name in FILES:
        if not isinstance(manifest["files"].get(name), str):
            raise LmscopeError(f"{path}: no sha256 listed for {name}")
    return manifest


def _load_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in _ARRAYS if k not in z.files]
            if missing:
                raise LmscopeError(f"{path}: missing array(s) {', '.join(missing)}")
            arrays = {k: z[k] for k in _ARRAYS}
    except LmscopeError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise LmscopeError(f"{path}: not a readable npz file ({e})") from None
    for k, dtype in _ARRAYS.items():
        if arrays[k].dtype != dtype:
            raise LmscopeError(f"{path}: array {k!r} has dtype {arrays[k].dtype}, expected {np.dtype(dtype)}")
    return arrays


def load_demos(folder) -> list[Demo]:
    """The demos of a folder written by :func:`write_demos`, checked against the manifest (checksums,
    lengths, offsets); an LmscopeError naming the file (and line) for any problem."""
    folder = Path(folder)
    manifest = read_demo_manifest(folder)
    for name in FILES:
        path = folder / name
        if not path.is_file():
            raise LmscopeError(f"{path}: missing (listed in {folder / 'manifest.json'})")
        if sha256_file(path) != manifest["files"][name]:
            raise LmscopeError(f"{path}: sha256 differs from the one in manifest.json (the file was changed "
                               "or is damaged)")
    npz = folder / "arrays.npz"
    a = _load_arrays(npz)
    count, total = manifest["count"], manifest["steps"]
    offsets = a["offsets"]
    if offsets.shape != (count + 1,) or offsets[0] != 0 or np.any(np.diff(offsets) < 1) or offsets[-1] != total:
        raise LmscopeError(f"{npz}: offsets do not describe {count} demos of {total} steps in all")
    if a["images"].shape != (total, VIEW, VIEW, 3) or a["directions"].shape != (total,) \
            or a["actions"].shape != (total,):
        raise LmscopeError(f"{npz}: array shapes do not match {total} steps")
    if total and (a["actions"].min() < 0 or a["actions"].max() >= N_ACTIONS
                  or a["directions"].min() < 0 or a["directions"].max() > 3):
        raise LmscopeError(f"{npz}: actions or directions out of range")
    jsonl = folder / "demos.jsonl"
    rows = read_jsonl_numbered(jsonl) if count else []
    if len(rows) != count:
        raise LmscopeError(f"{jsonl}: {len(rows)} rows, the manifest says {count} demos")
    demos = []
    for i, (lineno, row) in enumerate(rows):
        lo, hi = int(offsets[i]), int(offsets[i + 1])
        where = f"{jsonl}:{lineno}"
        if row.get("index") != i:
            raise LmscopeError(f"{where}: index {row.get('index')!r}, expected {i}")
        for key, kind in (("level", str), ("seed", int), ("mission", str), ("steps", list), ("subgoals", list)):
            if not isinstance(row.get(key), kind) or isinstance(row.get(key), bool):
                raise LmscopeError(f"{where}: field {key!r} is missing or not a {kind.__name__}")
        for key in ("steps", "subgoals"):
            if len(row[key]) != hi - lo or not all(isinstance(s, str) for s in row[key]):
                raise LmscopeError(f"{where}: {key!r} must be {hi - lo} texts (the demo's steps in {npz.name})")
        demos.append(Demo(level=row["level"], seed=row["seed"], mission=row["mission"],
                          images=a["images"][lo:hi], directions=a["directions"][lo:hi],
                          actions=a["actions"][lo:hi], steps=list(row["steps"]), subgoals=list(row["subgoals"])))
    return demos


# ---------------------------------------------------------------------------------------------- checks


def replay(demo: Demo) -> bool:
    """True iff the demo's actions, replayed in a fresh env from its seed, see every stored observation and
    succeed exactly at the last step."""
    env = _make_env(resolve_level(demo.level))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            obs = _reset(env, demo.seed)
            T = len(demo)
            for t in range(T):
                if not (np.array_equal(obs["image"], demo.images[t]) and int(obs["direction"]) == demo.directions[t]):
                    return False
                obs, reward, terminated, truncated, _ = env.step(int(demo.actions[t]))
                if terminated or truncated:
                    return t == T - 1 and terminated and reward > 0
            return False
    finally:
        env.close()


def check_replays(demos: list[Demo]) -> list[int]:
    """Indices of the demos that do not replay (see :func:`replay`)."""
    return [i for i, d in enumerate(demos) if not replay(d)]
