"""The run folder: what --force may replace, the lock on --out,
stale partial folders, SIGTERM, and one-line file-system errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from edgekit.errors import OutputExistsError, UsageError
from edgekit.rundir import OutLock, check_out, clean_stale, swap_into_place
from tests.helpers.cli import edgekit_in_process


def _run_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "report.json").write_text("{}")
    return path


def test_new_out_is_fine(tmp_path: Path) -> None:
    assert check_out(tmp_path / "a" / "b", force=False) == tmp_path / "a" / "b"


def test_existing_without_force(tmp_path: Path) -> None:
    with pytest.raises(OutputExistsError, match="already exists"):
        check_out(_run_folder(tmp_path / "run"), force=False)


def test_force_replaces_a_run_folder(tmp_path: Path) -> None:
    assert check_out(_run_folder(tmp_path / "run"), force=True)


@pytest.mark.parametrize("what", ["no-report", "file", "symlink", "report-is-folder"])
def test_force_refuses_other_things(tmp_path: Path, what: str) -> None:
    """--force replaces only an edgekit run folder: not a plain folder, a file, a symlink or a fake run."""
    target = tmp_path / "target"
    if what == "no-report":
        target.mkdir()
        (target / "precious.txt").write_text("keep")
    elif what == "file":
        target.write_text("keep")
    elif what == "symlink":
        target.symlink_to(_run_folder(tmp_path / "elsewhere"))
    else:
        (target / "report.json").mkdir(parents=True)
    with pytest.raises(OutputExistsError):
        check_out(target, force=True)


def test_force_refuses_home_cwd_and_parents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = _run_folder(tmp_path / "home")
    work = _run_folder(home / "work")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    for out in (home, work, Path("."), Path(".."), tmp_path):
        with pytest.raises(OutputExistsError, match="home folder|current folder|report.json"):
            check_out(out, force=True)


def test_force_refuses_a_run_folder_holding_the_data(tmp_path: Path) -> None:
    run = _run_folder(tmp_path / "run")
    (run / "data.npz").write_bytes(b"x")
    with pytest.raises(OutputExistsError, match="input of this run"):
        check_out(run, force=True, protect=(str(run / "data.npz"), None))


def test_out_under_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        check_out(tmp_path / "f" / "run", force=False)


def test_out_on_a_read_only_filesystem(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() == 0:
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)], capture_output=True).returncode:
            pytest.skip("cannot mount a read-only tmpfs")
    else:
        ro.chmod(0o500)
    try:
        with pytest.raises(UsageError, match="not writable"):
            check_out(ro / "run", force=False)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(ro)], check=False)
        ro.chmod(0o700)


def test_lock_refuses_a_second_holder(tmp_path: Path) -> None:
    """A second run on the same --out is refused while the first holds the lock."""
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from edgekit.rundir import OutLock
        lock = OutLock(Path({str(out)!r})).acquire()
        print("held", flush=True)
        sys.stdin.readline()
        lock.release()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputExistsError, match=f"another edgekit run \\(pid {holder.pid}\\)"):
            OutLock(out).acquire()
    finally:
        holder.communicate("\n", timeout=30)
    with OutLock(out):  # free again once released
        pass
    assert not (tmp_path / ".run.lock").exists()


def test_lock_after_a_killed_holder(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code = f"from pathlib import Path; from edgekit.rundir import OutLock; OutLock(Path({str(out)!r})).acquire(); import os; os._exit(0)"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (tmp_path / ".run.lock").exists()  # left behind, but not held
    with OutLock(out):
        pass


def test_swap_rechecks_the_out(tmp_path: Path) -> None:
    """The existence check is repeated at the final rename: --out may have appeared meanwhile."""
    staging = tmp_path / ".run.partial-1"
    staging.mkdir()
    (staging / "report.json").write_text("{}")
    out = tmp_path / "run"
    out.mkdir()
    (out / "theirs.txt").write_text("theirs")
    with pytest.raises(OutputExistsError):
        swap_into_place(staging, out, force=False)
    assert (out / "theirs.txt").read_text() == "theirs" and staging.exists()
    with pytest.raises(OutputExistsError):  # --force still only replaces a run folder
        swap_into_place(staging, out, force=True)
    (out / "report.json").write_text("{}")
    swap_into_place(staging, out, force=True)
    assert not (out / "theirs.txt").exists() and not staging.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_clean_stale_partials(tmp_path: Path) -> None:
    """Partial folders left by SIGKILL are removed when their process is gone."""
    dead = _dead_pid()
    stale = [tmp_path / f".run.partial-{dead}", tmp_path / f".other.old-{dead}"]
    alive = [tmp_path / f".run.partial-{os.getppid()}", tmp_path / f".run.partial-{os.getpid()}"]
    keep = [tmp_path / f"run.partial-{dead}", tmp_path / "run", tmp_path / "other"]
    for p in stale + alive + keep:
        p.mkdir()
    (tmp_path / f".file.partial-{dead}").write_text("not a folder")
    assert sorted(clean_stale(tmp_path)) == sorted(stale)
    for p in alive + keep:
        assert p.exists()


def test_clean_stale_restores_an_old_run_whose_replacement_never_arrived(tmp_path: Path) -> None:
    old = tmp_path / f".run.old-{_dead_pid()}"
    old.mkdir()
    (old / "report.json").write_text("{}")
    assert clean_stale(tmp_path) == []
    assert (tmp_path / "run" / "report.json").is_file() and not old.exists()


SLEEPY = '''
import time
from pathlib import Path

def add_arguments(p):
    p.add_argument("folder", type=Path)

def run(args):
    staging = args.folder / ".run.partial-x"
    staging.mkdir()
    try:
        print("ready", flush=True)
        time.sleep(60)
    finally:
        staging.rmdir()
    return 0
'''


@pytest.mark.parametrize(("sig", "code", "word"), [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")])
def test_sigterm_unwinds_like_sigint(tmp_path: Path, sig: int, code: int, word: str) -> None:
    """SIGTERM (a timeout, CI cancellation, docker stop) unwinds like Ctrl-C: cleanups run, exit 128 + signal."""
    (tmp_path / "sleepy_cmd.py").write_text(SLEEPY)
    script = "import sys, edgekit.cli as c; c.COMMANDS['sleepy'] = ('sleepy_cmd', 'test'); sys.exit(c.main())"
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-c", script, "sleepy", str(tmp_path)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code
    assert err.strip() == f"edgekit: {word}"
    assert not (tmp_path / ".run.partial-x").exists()


BROKEN = """
def add_arguments(p):
    p.add_argument("what")

def run(args):
    if args.what == "oserror":
        open("/nonexistent-edgekit-dir/x", "w")
    raise RuntimeError("a bug\\nwith two lines")
"""


def _with_command(tmp_path: Path, source: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "extra_cmd.py").write_text(source)
    script = "import sys, edgekit.cli as c; c.COMMANDS['extra'] = ('extra_cmd', 'test'); sys.exit(c.main())"
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=120)


def _with_command_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str,
                             *args: str) -> subprocess.CompletedProcess[str]:
    """:func:`_with_command` run in this process (the module gets a name of its own: no stale import)."""
    import edgekit.cli

    name = f"extra_cmd_{tmp_path.name}"
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(edgekit.cli.COMMANDS, "extra", (name, "test"))
    return edgekit_in_process(*args, cwd=tmp_path)


@pytest.mark.parametrize(("what", "words"), [("oserror", "/nonexistent-edgekit-dir/x: No such file or directory"),
                                             ("bug", "RuntimeError: a bug with two lines")])
def test_unexpected_errors_are_one_line_and_debug_shows_the_traceback(tmp_path: Path, what: str, words: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """File-system errors and bugs are one line on stderr, exit 1; --debug adds the traceback."""
    plain = _with_command_in_process(tmp_path, monkeypatch, BROKEN, "extra", what)
    debug = _with_command_in_process(tmp_path, monkeypatch, BROKEN, "--debug", "extra", what)
    assert plain.returncode == debug.returncode == 1
    assert plain.stderr.count("\n") == 1 and "Traceback" not in plain.stderr and words in plain.stderr
    assert "Traceback" in debug.stderr and words in debug.stderr.rstrip().splitlines()[-1]


def test_enospc_is_one_line(tmp_path: Path) -> None:
    """A full disk is one line, exit 1, and nothing is left behind (fault hook on atomic writes)."""
    from edgekit.fsutil import FAULT_ENV, write_text

    os.environ[FAULT_ENV] = str(tmp_path)
    try:
        with pytest.raises(OSError) as e:
            write_text(tmp_path / "x.txt", "hello")
    finally:
        del os.environ[FAULT_ENV]
    assert "No space left" in str(e.value) and list(tmp_path.iterdir()) == []
    os.environ[FAULT_ENV] = str(tmp_path)
    try:
        with pytest.raises(OSError):
            write_text(tmp_path / "new" / "deeper" / "x.txt", "hello")
    finally:
        del os.environ[FAULT_ENV]
    assert list(tmp_path.iterdir()) == []  # the folders made for the file are gone too


SWALLOWER = """
import os, signal, time

def add_arguments(p):
    p.add_argument("then")

def run(args):
    try:  # a library with a bare except (tf2onnx has several) eats the KeyboardInterrupt
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    except:  # noqa: E722
        pass
    if args.then == "fails":
        from edgekit.errors import ExportError
        raise ExportError("conversion failed half-way")
    from edgekit import interrupts
    interrupts.check()
    return 0
"""


@pytest.mark.parametrize("then", ["check", "fails"])
def test_a_swallowed_interrupt_still_stops_the_run(tmp_path: Path, then: str) -> None:
    """Ctrl-C during a library call that swallows KeyboardInterrupt (tf2onnx's bare except:) still stops the run.
    A real process: the command sends SIGINT to its own process."""
    r = _with_command(tmp_path, SWALLOWER, "extra", then)
    assert r.returncode == 130 and r.stderr.strip() == "edgekit: interrupted", r.stderr
