"""The sandbox for LM-written code: hostile programs are contained, reported as failed, and leave the host as
it was; limits are enforced (measured); a benign drawing still succeeds.

These run the real bubblewrap sandbox; without it (no bubblewrap, no namespaces) they are skipped with the
reason, and the refusal itself is tested.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import lmscope
from lmscope.sandbox import PYTHON, Limits, SandboxUnavailable, run_many, run_sandboxed, sandbox_backend
from lmscope.sandbox import core as sandbox_core

try:
    sandbox_backend()
    HAVE_SANDBOX, WHY = True, ""
except SandboxUnavailable as e:
    HAVE_SANDBOX, WHY = False, str(e)

needs_sandbox = pytest.mark.skipif(not HAVE_SANDBOX, reason=f"no sandbox here: {WHY}")
FAST = Limits(cpu_seconds=3, wall_seconds=6, memory_mb=1024, processes=16, output_bytes=4096)


def py(code: str, **kw):
    return run_sandboxed([PYTHON, "-c", textwrap.dedent(code)], **{"limits": FAST, **kw})


def sandbox_uid_processes() -> list[int]:
    """PIDs on the host owned by a sandbox uid (root runs) or whose command line carries the test marker."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            uid = int((entry / "status").read_text().split("\nUid:")[1].split()[0])
            cmd = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if uid >= sandbox_core.UID_BASE or b"lmscope-redteam-marker" in cmd:
            found.append(int(entry.name))
    return found


@pytest.fixture
def host_state(tmp_path):
    """A planted secret on the host, a folder that must stay untouched, and a check afterwards that no
    sandbox process is left."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-42")
    watched = tmp_path / "watched"
    watched.mkdir()
    (watched / "keep.txt").write_text("keep")
    before = sorted(p.name for p in watched.iterdir())
    yield {"secret": secret, "watched": watched}
    time.sleep(0.2)
    assert sorted(p.name for p in watched.iterdir()) == before
    assert (watched / "keep.txt").read_text() == "keep"
    assert secret.read_text() == "TOP-SECRET-42"
    assert sandbox_uid_processes() == []


# ------------------------------------------------------------------------------------------------
# A benign program, and the basics
# ------------------------------------------------------------------------------------------------
@needs_sandbox
def test_a_benign_drawing_succeeds_and_its_image_comes_back():
    r = run_sandboxed([PYTHON, "-c", "import matplotlib.pyplot as plt\nplt.figure(figsize=(2,2))\n"
                       "plt.gca().add_patch(plt.Circle((.5,.5),.3,color='red'))\nplt.savefig('image.png')"],
                      outputs=("image.png",), limits=Limits(wall_seconds=60, cpu_seconds=60))
    assert r.ok, r.summary() + r.stderr
    assert r.files["image.png"][:8] == b"\x89PNG\r\n\x1a\n"


@needs_sandbox
def test_input_files_arrive_and_outputs_return_and_missing_outputs_are_named():
    r = py("print(open('in.txt').read().upper()); open('out.txt', 'w').write('done')",
           files={"in.txt": b"hello"}, outputs=("out.txt", "absent.txt"))
    assert r.ok and r.stdout == "HELLO\n"
    assert r.files == {"out.txt": b"done"} and r.missing == {"absent.txt": "missing"}


@needs_sandbox
def test_exit_status_and_errors_are_reported():
    r = py("raise ValueError('nope')")
    assert r.status == "error" and "ValueError: nope" in r.stderr and r.returncode == 1


def test_bad_limits_are_refused():
    with pytest.raises(lmscope.errors.LmscopeError, match="memory_mb"):
        Limits(memory_mb=0)
    with pytest.raises(lmscope.errors.LmscopeError, match="wall_seconds"):
        Limits(wall_seconds=float("nan"))


def test_without_the_primitives_lm_code_is_refused_unless_unsafe(monkeypatch):
    monkeypatch.setattr(sandbox_core, "_bwrap_problem", lambda: "bubblewrap is not installed (test)")
    with pytest.raises(SandboxUnavailable, match="refusing to run LM-written code.*--unsafe-no-sandbox"):
        run_sandboxed([PYTHON, "-c", "print(1)"])
    r = run_sandboxed([PYTHON, "-c", "import os; print(sorted(os.environ)[:3])"], unsafe=True, limits=FAST)
    assert r.ok and r.backend == "none"


# ------------------------------------------------------------------------------------------------
# The red-team set: each kind of hostile code is contained and reported as a failed sample
# ------------------------------------------------------------------------------------------------
@needs_sandbox
def test_redteam_reading_secrets_finds_nothing(host_state):
    src = Path(lmscope.__file__).resolve()
    r = py(f"""
        import os
        for p in [{str(host_state['secret'])!r}, {str(src)!r}, '/etc/shadow', '/etc/passwd', '/root/.bashrc',
                  os.path.expanduser('~/.ssh/id_rsa'), '/home']:
            try:
                print(p, 'READ', open(p).read()[:20])
            except OSError as e:
                print(p, 'DENIED', type(e).__name__)
        raise SystemExit(1)
    """)
    assert r.status == "error"
    assert "READ" not in r.stdout and "TOP-SECRET" not in r.stdout
    assert r.stdout.count("DENIED") == 7


@needs_sandbox
def test_redteam_the_project_sources_and_caches_are_not_visible():
    root = Path(lmscope.__file__).resolve().parents[2]
    r = py(f"import os; print(sorted(os.listdir({str(root)!r})) if os.path.exists({str(root)!r}) else 'ABSENT')")
    assert r.ok
    listing = r.stdout.strip()
    assert "src" not in listing and "tests" not in listing and "pyproject.toml" not in listing


@needs_sandbox
def test_redteam_writing_outside_the_scratch_folder_fails(host_state):
    targets = [str(host_state["watched"] / "pwned.txt"), sys.prefix + "/pwned.txt", "/usr/pwned.txt",
               str(Path(lmscope.__file__).parent / "pwned.py")]
    r = py(f"""
        ok = 0
        for p in {targets!r}:
            try:
                open(p, 'w').write('x'); print('WROTE', p); ok += 1
            except OSError as e:
                print('DENIED', p)
        raise SystemExit(0 if ok else 1)
    """)
    assert r.status == "error" and "WROTE" not in r.stdout
    assert not any(os.path.exists(t) for t in targets)


@needs_sandbox
def test_redteam_network_connections_fail(host_state):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted = []
    server.settimeout(4)
    t = threading.Thread(target=lambda: accepted.append(_accept(server)), daemon=True)
    t.start()
    r = py(f"""
        import socket
        for host in [('127.0.0.1', {port}), ('10.0.0.1', 80), ('8.8.8.8', 53)]:
            try:
                socket.create_connection(host, timeout=1); print('CONNECTED', host)
            except OSError as e:
                print('FAILED', host, e.errno)
        try:
            socket.getaddrinfo('pypi.org', 443); print('RESOLVED')
        except OSError:
            print('NO-DNS')
        raise SystemExit(1)
    """)
    t.join()
    server.close()
    assert r.status == "error" and "CONNECTED" not in r.stdout and "RESOLVED" not in r.stdout
    assert accepted == [None]


def _accept(server):
    try:
        conn, _ = server.accept()
        conn.close()
        return "connected"
    except OSError:
        return None


@needs_sandbox
def test_redteam_a_fork_bomb_hits_the_process_limit(host_state):
    t0 = time.monotonic()
    r = py("""
        import os, time
        n = 0
        while True:
            try:
                if os.fork() == 0:
                    time.sleep(30)
                    os._exit(0)
                n += 1
            except OSError:
                print('LIMITED AFTER', n, flush=True)
                raise
    """)
    assert r.status == "limit" and "process limit" in r.detail, r.summary()
    forked = int(r.stdout.split("LIMITED AFTER")[1].split()[0])
    assert forked < FAST.processes                      # the limit held: at most 16 processes of that uid
    assert time.monotonic() - t0 < FAST.wall_seconds + 5


@needs_sandbox
def test_redteam_a_memory_bomb_hits_the_memory_limit(host_state):
    r = py("x = bytearray(8 * 1024 ** 3); print('ALLOCATED')")
    assert r.status == "limit" and "memory" in r.detail and "ALLOCATED" not in r.stdout


@needs_sandbox
def test_redteam_an_infinite_loop_is_stopped_by_the_cpu_limit_in_measured_time(host_state):
    r = py("while True: pass")
    assert r.status == "limit" and "CPU" in r.detail
    assert FAST.cpu_seconds - 0.5 <= r.cpu_seconds <= FAST.cpu_seconds + 1.5


@needs_sandbox
def test_redteam_a_sleeping_program_is_stopped_at_the_wall_limit(host_state):
    r = py("import time; time.sleep(60)", limits=Limits(wall_seconds=2, cpu_seconds=5))
    assert r.status == "timeout" and 1.9 <= r.seconds <= 4


@needs_sandbox
def test_redteam_filling_the_disk_is_bounded_and_touches_no_host_disk(host_state):
    import shutil
    free_before = shutil.disk_usage(str(host_state["watched"])).free
    r = py("""
        i = 0
        while True:
            with open(f'fill{i}.bin', 'wb') as f:
                f.write(b'0' * (8 * 1024 * 1024))
            i += 1
    """)
    assert r.status in ("limit", "error") and r.status != "ok"
    assert ("No space left" in r.stderr) or ("file size" in r.detail)
    assert shutil.disk_usage(str(host_state["watched"])).free > free_before - 32 * 1024 * 1024


@needs_sandbox
def test_redteam_a_huge_file_hits_the_file_size_limit(host_state):
    r = py("open('big.bin','wb').write(b'0' * (64 * 1024 * 1024))", limits=Limits(file_mb=4, wall_seconds=10))
    assert r.status == "limit" and "file size" in r.detail


@needs_sandbox
def test_redteam_killing_the_parent_or_everyone_leaves_lmscope_alive(host_state):
    me = os.getpid()
    r = py(f"""
        import os, signal
        for pid in (os.getppid(), {me}, 1):
            try:
                os.kill(pid, signal.SIGKILL); print('SIGNALLED', pid)
            except OSError as e:
                print('DENIED', pid)
        os.kill(-1, signal.SIGKILL)
    """)
    assert r.status != "ok"
    assert os.getpid() == me          # we are still here
    assert py("print('still fine')").stdout == "still fine\n"


@needs_sandbox
def test_redteam_a_daemon_does_not_outlive_its_sample(host_state):
    r = py("""
        import os, time, sys
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                sys.argv[0] = 'lmscope-redteam-marker'
                os.execv('/bin/sleep', ['sleep', '30'])
            os._exit(0)
        time.sleep(0.3)
        print('parent exits')
    """)
    assert r.ok and r.seconds < 3       # the sample itself ended at once ...
    assert sandbox_uid_processes() == []  # ... and took its daemon with it (host_state checks again)


@needs_sandbox
def test_redteam_huge_output_is_captured_up_to_the_bound(host_state):
    r = py("import sys\nfor _ in range(200): sys.stdout.write('x' * 100_000)\nsys.stderr.write('e' * 10**6)")
    assert len(r.stdout) == FAST.output_bytes and len(r.stderr) == FAST.output_bytes
    assert r.stdout_bytes == 20_000_000 and r.stderr_bytes == 1_000_000


@needs_sandbox
def test_redteam_the_environment_has_no_parent_secrets(host_state, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-planted-secret")
    monkeypatch.setenv("HF_TOKEN", "hf_planted")
    r = py("""
        import os
        print(sorted(os.environ))
        for pid in os.listdir('/proc'):
            if pid.isdigit():
                try:
                    print(pid, open(f'/proc/{pid}/environ', 'rb').read()[:200])
                except OSError:
                    pass
    """)
    assert r.ok
    assert "planted" not in r.stdout and "OPENAI" not in r.stdout and "HF_TOKEN" not in r.stdout


@needs_sandbox
def test_redteam_gaining_privileges_fails(host_state):
    r = py("""
        import os, subprocess
        for f in (lambda: os.setuid(0), lambda: os.setgid(0), lambda: os.chroot('/')):
            try:
                f(); print('GAINED')
            except OSError:
                print('DENIED')
        print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])
        print(subprocess.run(['/usr/bin/id', '-u'], capture_output=True, text=True).stdout.strip())
    """)
    assert r.ok and "GAINED" not in r.stdout
    lines = r.stdout.split()
    assert lines[3] == "0000000000000000" and lines[4] != "0"


@needs_sandbox
def test_redteam_only_the_samples_own_processes_are_visible(host_state):
    r = py("import os; print(len([p for p in os.listdir('/proc') if p.isdigit()]))")
    assert r.ok and int(r.stdout) <= 4


@needs_sandbox
def test_redteam_an_output_that_is_a_link_to_a_host_file_is_not_returned(host_state):
    r = py("import os; os.symlink('/etc/ld.so.cache', 'image.png'); os.mkfifo('fifo.png')",
           outputs=("image.png", "fifo.png"))
    assert r.files == {} and set(r.missing) == {"image.png", "fifo.png"}


# ------------------------------------------------------------------------------------------------
# The pool, and the backstop when the supervisor itself is killed
# ------------------------------------------------------------------------------------------------
@needs_sandbox
def test_the_pool_runs_jobs_in_parallel_and_keeps_the_order():
    specs = [{"argv": [PYTHON, "-c", f"import time; time.sleep(0.5); print({i})"], "limits": FAST}
             for i in range(4)]
    seen = []
    t0 = time.monotonic()
    results = run_many(specs, jobs=4, on_done=lambda i, r: seen.append(i))
    wall = time.monotonic() - t0
    assert [r.stdout.strip() for r in results] == ["0", "1", "2", "3"] and sorted(seen) == [0, 1, 2, 3]
    assert wall < 4 * 0.5 + 1.5


@needs_sandbox
def test_a_fork_bomb_in_one_slot_does_not_starve_the_others():
    bomb = {"argv": [PYTHON, "-c", "import os,time\nwhile True:\n  try: os.fork()\n  except OSError: time.sleep(0.1)"],
            "limits": Limits(wall_seconds=4, cpu_seconds=4, processes=16)}
    benign = {"argv": [PYTHON, "-c", "import time, subprocess; time.sleep(1); "
                       "print(subprocess.run(['/bin/echo','ok'],capture_output=True,text=True).stdout)"],
              "limits": FAST}
    results = run_many([bomb, benign], jobs=2)
    assert results[0].status in ("timeout", "limit") and results[1].ok and "ok" in results[1].stdout


def test_sandbox_runs_are_not_run_in_the_lmscope_process():
    # the supervisor is started as a separate program: its source is never imported by lmscope
    assert "lmscope.sandbox._harness" not in sys.modules
    out = subprocess.run([sys.executable, "-c", "import lmscope.sandbox, sys; "
                          "print('lmscope.sandbox._harness' in sys.modules)"], capture_output=True, text=True)
    assert out.stdout.strip() == "False"
