"""What the CLI writes (issue 9, outputs): never replacing a non-file, failing fast on folders it
cannot write, one command per run folder, no temporaries left on any exit, `train --force` keeping
the old run until the new one has a checkpoint, and provenance in every output.

Tests run as root here, where a chmod'ed folder stays writable: read-only cases use a path under a
regular file (fails for everyone), /sys (read-only for root in containers) or a chmod'ed folder
(skipped when a real write test succeeds there)."""
import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from PIL import Image

from dynvision_dsl.cli import main
from dynvision_dsl.util.files import LOCK_NAME, OutputError, RunFolder, atomic_open, check_writable

from conftest import ROOT

TINY = """model Tiny
param size = 12
param steps = 4
param classes = 2
time { dt = 2 ms  steps = steps }
input image [1, size, size]
dynamics leaky(tau) {
  tau * dr/dt = -r + input
  r = relu(r)
}
area V1 [4] : leaky(tau=4 ms)
area V2 [6] : leaky(tau=4 ms)
image -> V1 : conv(3)
V1 -> V2 : maxpool(2) | conv(3), delay 2 ms
readout V2 : avgpool | linear(classes)
"""

# V2 = sqrt(V1) with V1 = pixel - offset: a pixel darker than `offset` makes the forward NaN
FRAGILE = """model Fragile
param steps = 4
param offset = 0.1
time { dt = 2 ms  steps = steps }
input image [1, 12, 12]
area V1 [1] { r = input - offset }
area V2 [1] { r = sqrt(input) }
image -> V1 : scale(1.0)
V1 -> V2 : identity, delay 4 ms
readout V2 : avgpool | linear(2)
"""


def _images(root: Path, black_spot: bool = False) -> Path:
    """Two classes of 12 grey 12x12 images each (pixel (0, 0) black with `black_spot`)."""
    g = torch.Generator().manual_seed(0)
    for c, name in enumerate(["dark", "light"]):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(12):
            img = 0.2 + (0.3 + 0.3 * c) * (0.6 + 0.4 * torch.rand(12, 12, generator=g))
            if black_spot:
                img[0, 0] = 0
            Image.fromarray((img.clamp(0, 1) * 255).round().byte().numpy(), "L").save(root / name / f"{i}.png")
    return root


@pytest.fixture
def w(tmp_path, monkeypatch):
    """A work folder with the spec, labelled images, a regular file and one picture; cwd is it."""
    (tmp_path / "tiny.dyn").write_text(TINY)
    (tmp_path / "afile").write_text("mine\n")
    _images(tmp_path / "imgs")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _tree(root: Path) -> dict[str, tuple]:
    """Every path under root with its kind and (for files) bytes: to show a folder is as before."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath) / name
            st = os.lstat(p)
            out[str(p.relative_to(root))] = (stat.S_IFMT(st.st_mode),
                                             p.read_bytes() if stat.S_ISREG(st.st_mode) else None)
    return out


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err + cap.out
    return rc, cap.out, cap.err


TRAIN = ("train", "tiny.dyn", "--data", "folder:imgs", "--batch", "8", "--epochs", "1", "--no-progress")
EXPERIMENT = ("experiment", "duration", "tiny.dyn", "--levels", "1,2", "--n-images", "2", "--images", "imgs/dark/0.png")
RUN = ("run", "tiny.dyn")


# ---------------------------------------------------------------- --force never replaces a non-file
def _make(kind: str, path: Path) -> None:
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        try:
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 7))  # a private /dev/full
        except PermissionError:
            pytest.skip("making a device node needs root")
    elif kind == "symlink to a device":
        _make("device", path.with_name(path.name + ".dev"))
        path.symlink_to(path.name + ".dev")
    elif kind == "symlink to a file":
        path.with_name("real").write_text("real\n")
        path.symlink_to("real")


KINDS = ["directory", "fifo", "device", "symlink to a device", "symlink to a file"]
MESSAGES = {"directory": "is a directory", "fifo": "is a fifo", "device": "is a character device",
            "symlink to a device": "is a symbolic link", "symlink to a file": "is a symbolic link"}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", ["compile", "graph", "run", "experiment"])
def test_force_never_replaces_what_is_not_a_regular_file(w, capsys, kind, command):
    target = w / {"compile": "x.py", "graph": "x.dot", "run": "out/responses.png",
                  "experiment": "out/duration.csv"}[command]
    target.parent.mkdir(exist_ok=True)
    _make(kind, target)
    before = _tree(w)
    argv = {"compile": ("compile", "tiny.dyn", "-o", str(target)), "graph": ("graph", "tiny.dyn", "-o", str(target)),
            "run": RUN + ("--out", str(target.parent)), "experiment": EXPERIMENT + ("--out", str(target.parent))}[command]
    rc, out, err = _cli(capsys, *argv, "--force")
    assert rc == 1
    assert err == f"dynv: {target} {MESSAGES[kind]}, not a regular file; --force replaces only regular files: " \
                  f"choose another path\n"
    assert "area" not in out  # nothing was simulated
    assert _tree(w) == before


# ---------------------------------------------------------------- folders that are missing, files, read-only
FILE_PROBES = [
    ("compile under a file", ("compile", "tiny.dyn", "-o", "afile/x.py"),
     "the folder afile of afile/x.py is a file, not a folder; choose another path"),
    ("compile deep under a file", ("compile", "tiny.dyn", "-o", "afile/a/x.py"),
     "the folder afile/a of afile/a/x.py is under afile, which is a file, not a folder; choose another path"),
    ("graph under a file", ("graph", "tiny.dyn", "-o", "afile/x.dot"),
     "the folder afile of afile/x.dot is a file, not a folder; choose another path"),
    ("run --out a file", RUN + ("--out", "afile"),
     "the output folder afile is a file, not a folder; choose another path"),
    ("run --out under a file", RUN + ("--out", "afile/r"),
     "the output folder afile/r is under afile, which is a file, not a folder; choose another path"),
    ("experiment --out a file", EXPERIMENT + ("--out", "afile"),
     "the output folder afile is a file, not a folder; choose another path"),
    ("train --out a file", TRAIN + ("--out", "afile"),
     "the output folder afile is a file, not a folder; choose another path"),
    ("train --out under a file", TRAIN + ("--out", "afile/t"),
     "the output folder afile/t is under afile, which is a file, not a folder; choose another path"),
]


@pytest.mark.parametrize("argv, message", [p[1:] for p in FILE_PROBES], ids=[p[0] for p in FILE_PROBES])
def test_an_output_path_under_a_file_fails_fast(w, capsys, argv, message):
    before = _tree(w)
    rc, out, err = _cli(capsys, *argv)
    assert (rc, err) == (1, "dynv: " + message.format(w=w) + "\n")
    assert "area" not in out and "training into" not in out and "wrote" not in out
    assert _tree(w) == before


MISSING = [("compile", ("compile", "tiny.dyn", "-o", "new/a/x.py"), ["new/a/x.py"]),
           ("graph", ("graph", "tiny.dyn", "-o", "new/a/x.dot"), ["new/a/x.dot"]),
           ("run", RUN + ("--out", "new/a"), ["new/a/responses.pt", "new/a/responses.png", "new/a/responses.json"]),
           ("experiment", EXPERIMENT + ("--out", "new/a"), ["new/a/duration.csv", "new/a/duration.json"]),
           ("train", TRAIN + ("--out", "new/a"), ["new/a/last.pt", "new/a/run.json"])]


@pytest.mark.parametrize("argv, made", [m[1:] for m in MISSING], ids=[m[0] for m in MISSING])
def test_missing_output_folders_are_created(w, capsys, argv, made):
    rc, out, err = _cli(capsys, *argv)
    assert rc == 0, err
    assert all((w / m).is_file() for m in made)
    assert not (w / "new" / "a" / LOCK_NAME).exists()
    assert not [p for p in (w / "new").rglob("*.tmp")]


def _read_only_folder(w: Path, how: str) -> Path:
    """A folder nobody can write into, or skip: a real write test decides (root ignores chmod)."""
    folder = Path("/sys") if how == "/sys" else w / "ro"
    if how == "chmod":
        folder.mkdir()
        folder.chmod(0o555)
    try:
        check_writable(folder)
    except OutputError:
        return folder
    if how == "chmod":
        folder.chmod(0o755)
    pytest.skip(f"{folder} is writable here (as root, chmod does not stop writes)")


READ_ONLY = [("compile", lambda f: ("compile", "tiny.dyn", "-o", f"{f}/x.py"), "the folder {f} of {f}/x.py"),
             ("graph", lambda f: ("graph", "tiny.dyn", "-o", f"{f}/x.dot"), "the folder {f} of {f}/x.dot"),
             ("run", lambda f: RUN + ("--out", f"{f}/r"), "the output folder {f}/r (it would be created in {f})"),
             ("experiment", lambda f: EXPERIMENT + ("--out", str(f)), "the output folder {f}"),
             ("train", lambda f: TRAIN + ("--out", f"{f}/t"), "the output folder {f}/t (it would be created in {f})")]


@pytest.mark.parametrize("how", ["/sys", "chmod"])
@pytest.mark.parametrize("make_argv, named", [r[1:] for r in READ_ONLY], ids=[r[0] for r in READ_ONLY])
def test_a_read_only_folder_fails_fast_naming_it(w, capsys, how, make_argv, named):
    folder = _read_only_folder(w, how)
    try:
        before = _tree(w)
        rc, out, err = _cli(capsys, *make_argv(folder))
        assert rc == 1
        assert err.startswith(f"dynv: cannot write to {named.format(f=folder)}: ")
        assert err.endswith("; choose another path or make it writable\n") and err.count("\n") == 1
        assert "area" not in out and "training into" not in out
        assert _tree(w) == before
    finally:
        if how == "chmod":
            folder.chmod(0o755)


# ---------------------------------------------------------------- one command per run folder
HOLDER = """
import sys, time
from dynvision_dsl.util.files import RunFolder
folder = RunFolder(sys.argv[1], "dynv run tiny.dyn", ()).acquire()
print("held", flush=True)
time.sleep(60)
"""


@pytest.fixture
def holder(w):
    """Another process holding the lock of w/out (a real second process), killed afterwards."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(w / "out")], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


LOCKED = [("run", RUN), ("experiment", EXPERIMENT), ("train", TRAIN)]


@pytest.mark.parametrize("argv", [a for _, a in LOCKED], ids=[n for n, _ in LOCKED])
def test_a_second_command_into_a_held_folder_refuses_naming_the_holder(w, capsys, holder, argv):
    before = _tree(w)
    rc, out, err = _cli(capsys, *argv, "--out", "out")
    assert (rc, err) == (1, f"dynv: out is in use by pid {holder.pid} (dynv run tiny.dyn); wait for it to finish, "
                            f"or choose another --out\n")
    assert "area" not in out and "training into" not in out
    assert _tree(w) == before
    # the holder dies without cleaning up (SIGKILL): its lock is stale and is taken over with a note
    holder.kill()
    holder.wait()
    assert (w / "out" / LOCK_NAME).read_text() == f"{holder.pid} dynv run tiny.dyn\n"
    rc, out, err = _cli(capsys, *argv, "--out", "out")
    assert rc == 0
    assert f"note: took over the lock of out from pid {holder.pid} (dynv run tiny.dyn), which is no longer " \
           f"running" in err + out
    assert not (w / "out" / LOCK_NAME).exists()


@pytest.mark.slow  # two fresh interpreters importing torch, each waiting 2 s inside the lock
def test_two_real_runs_at_once_one_refuses(w):
    """Two `dynv run` processes started together into one folder: one writes, the other refuses;
    never both 'succeed'. (The held-lock test above makes the overlap certain; this is the real thing.)"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    slow = "import time, dynvision_dsl.cli.run as r; f = r.print_table; " \
           "r.print_table = lambda *a: (time.sleep(2), f(*a)); " \
           "from dynvision_dsl.cli import main; raise SystemExit(main(['run', 'tiny.dyn', '--out', 'out']))"
    procs = [subprocess.Popen([sys.executable, "-c", slow], cwd=w, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = sorted((p.wait(timeout=120), p.stderr.read()) for p in procs)
    assert [rc for rc, _ in results] == [0, 1]
    assert "is in use by pid" in results[1][1] or "exist; pass --force" in results[1][1]
    assert "Traceback" not in results[0][1] + results[1][1]


def test_lock_takes_over_and_releases_in_process(tmp_path):
    with RunFolder(tmp_path / "a" / "b", "dynv run x") as folder:
        assert (tmp_path / "a" / "b" / LOCK_NAME).read_text() == f"{os.getpid()} dynv run x\n"
        with pytest.raises(OutputError, match=f"in use by pid {os.getpid()} \\(dynv run x\\)"):
            RunFolder(tmp_path / "a" / "b", "dynv train y").acquire()
        assert folder.notes == []
    assert os.listdir(tmp_path / "a" / "b") == []
    with pytest.raises(RuntimeError):
        with RunFolder(tmp_path / "c" / "d", "dynv run x"):
            raise RuntimeError("boom")
    assert not (tmp_path / "c").exists()  # the folders it made are gone again after a failure


# ---------------------------------------------------------------- no temporary file survives
KILLER = """
import os, signal, sys, time
import dynvision_dsl.plot as plot
from dynvision_dsl.util.files import atomic_open

def plot_responses(result, path, **kw):
    with atomic_open(path) as fh:
        fh.write(b"half a png")
        os.kill(os.getpid(), getattr(signal, sys.argv[1]))
        time.sleep(30)

plot.plot_responses = plot_responses
from dynvision_dsl.cli import main
raise SystemExit(main(["run", "tiny.dyn", "--out", "out"]))
"""


@pytest.mark.parametrize("sig, rc, message", [("SIGTERM", 143, "dynv: interrupted (SIGTERM)"),
                                               ("SIGINT", 130, "dynv: interrupted (SIGINT)")])
def test_a_signal_while_writing_leaves_no_temporary_and_no_partial_output(w, sig, rc, message):
    proc = subprocess.run([sys.executable, "-c", KILLER, sig], cwd=w, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == rc and proc.stderr.startswith(message) and "Traceback" not in proc.stderr
    assert not (w / "out").exists()  # no .tmp, no responses.pt without its PNG, no lock: the folder it made is gone


def test_temporaries_and_lock_left_by_sigkill_are_cleaned_by_the_next_run(w, capsys):
    proc = subprocess.Popen([sys.executable, "-c", KILLER, "SIGKILL"], cwd=w, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.wait(timeout=120) == -signal.SIGKILL
    proc.stderr.close()
    left = sorted(os.listdir(w / "out"))
    assert len(left) == 4 and LOCK_NAME in left  # the lock, and the temporaries of all three outputs
    assert all(n.startswith((".responses.pt.", ".responses.json.", ".responses.png.")) and n.endswith(".tmp")
               for n in left if n != LOCK_NAME)
    (w / "out" / ".other.png.abc.tmp").write_text("not ours")  # of no output of dynv run: kept
    rc, out, err = _cli(capsys, *RUN, "--out", "out")
    assert rc == 0
    assert sorted(os.listdir(w / "out")) == [".other.png.abc.tmp", "responses.json", "responses.png", "responses.pt"]
    assert "note: removed .responses.png." in err
    assert f"note: took over the lock of out from pid {proc.pid} (dynv run), which is no longer running" in err


def test_train_sweeps_a_stale_learning_curve_temporary_and_staging_folder(w, capsys):
    (w / "t").mkdir()
    (w / "t" / ".learning_curve.png.k2j3h4.tmp").write_bytes(b"orphan")
    (w / "t" / ".staging-train-99999").mkdir()
    (w / "t" / ".staging-train-99999" / "last.pt").write_bytes(b"orphan")
    rc, out, err = _cli(capsys, *TRAIN, "--out", "t")
    assert rc == 0, err
    assert sorted(os.listdir(w / "t")) == ["best.pt", "last.pt", "learning_curve.png", "metrics.csv", "run.json"]


def test_temporary_names_are_unique(tmp_path):
    with atomic_open(tmp_path / "x.png") as a, atomic_open(tmp_path / "x.png") as b:
        assert a.name != b.name and Path(a.name).name.startswith(".x.png.") and a.name.endswith(".tmp")
        a.write(b"a")
        b.write(b"b")
    assert sorted(os.listdir(tmp_path)) == ["x.png"]


# ---------------------------------------------------------------- train --force keeps the old run until it can replace it
def _fragile_run(w: Path, capsys) -> tuple[list[str], dict]:
    (w / "fragile.dyn").write_text(FRAGILE)
    argv = ["train", "fragile.dyn", "--data", "folder:data", "--batch", "8", "--epochs", "1", "--out", "t",
            "--no-progress"]
    _images(w / "data")
    assert _cli(capsys, *argv)[0] == 0
    return argv, _tree(w / "t")


def test_train_force_keeps_the_old_run_when_the_new_one_hits_nan_in_epoch_1(w, capsys):
    argv, before = _fragile_run(w, capsys)
    _images(w / "data", black_spot=True)  # the new run's first batch is NaN
    rc, out, err = _cli(capsys, *argv, "--force")
    assert rc == 1 and err.startswith("dynv: non-finite values (nan) in area V2 at step 2 (4 ms), training batch 1 "
                                      "of epoch 1")
    assert _tree(w / "t") == before  # byte for byte, and no staging folder or lock left


def test_train_force_keeps_the_old_run_on_an_exception_or_ctrl_c_in_epoch_1(w, capsys, monkeypatch):
    import dynvision_dsl.train as train_mod

    argv, before = _fragile_run(w, capsys)

    def boom(self, epoch):
        assert self.out.name.startswith(".staging-train-") and (self.out / "run.json").exists()
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod._Run, "evaluate", boom)
    rc, out, err = _cli(capsys, *argv, "--force")
    assert (rc, err) == (130, "dynv: interrupted (SIGINT); nothing was left half-written\n")
    assert _tree(w / "t") == before


def test_train_force_replaces_the_old_run_after_its_first_checkpoint(w, capsys, monkeypatch):
    import dynvision_dsl.train as train_mod

    argv, before = _fragile_run(w, capsys)
    (w / "t" / "notes.txt").write_text("mine")
    seen = []
    real = train_mod._Run.epoch

    def epoch(self, n):
        row = real(self, n)
        seen.append((n, self.out.name, sorted(os.listdir(w / "t"))))
        return row

    monkeypatch.setattr(train_mod._Run, "epoch", epoch)
    rc, out, err = _cli(capsys, *argv[:6], "--epochs", "2", "--seed", "5", "--out", "t", "--no-progress", "--force")
    assert rc == 0, err
    files = ["best.pt", "last.pt", "learning_curve.png", "metrics.csv", "notes.txt", "run.json"]
    assert seen == [(1, "t", [LOCK_NAME] + files), (2, "t", [LOCK_NAME] + files)]  # swapped in after epoch 1
    assert sorted(os.listdir(w / "t")) == files
    assert json.loads((w / "t" / "run.json").read_text())["args"]["seed"] == 5
    assert (w / "t" / "last.pt").read_bytes() != before["last.pt"][1]


# ---------------------------------------------------------------- provenance
@pytest.fixture
def titles(monkeypatch):
    """Every figure title drawn (matplotlib's Figure.suptitle, called through)."""
    from matplotlib.figure import Figure

    seen, real = [], Figure.suptitle

    def suptitle(self, t, **kw):
        seen.append(t)
        return real(self, t, **kw)

    monkeypatch.setattr(Figure, "suptitle", suptitle)
    return seen


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_meta(meta: dict, command: str, w: Path) -> None:
    assert meta["command"] == command and meta["spec"] == "tiny.dyn" and meta["spec_sha256"] == _sha(w / "tiny.dyn")
    assert meta["versions"]["torch"] == torch.__version__ and meta["versions"]["dynvision_dsl"]
    assert meta["command_line"].startswith(f"{command} tiny.dyn ") or \
        meta["command_line"].startswith(f"dynv experiment duration tiny.dyn ")
    assert meta["time"][:2] == "20"


def test_run_records_spec_params_stimulus_and_weights(w, capsys, titles):
    from dynvision_dsl import compile as compile_spec

    torch.save(compile_spec(TINY, {"size": "16"}).state_dict(), w / "w.pt")
    rc, out, err = _cli(capsys, *RUN, "--set", "size=16", "--image", "imgs/dark/0.png", "--weights", "w.pt",
                        "--seed", "3", "--out", "o")
    assert rc == 0, err
    saved = torch.load(w / "o" / "responses.pt", weights_only=True)
    assert (saved["spec"], saved["params"], saved["stimulus"], saved["weights"]) == \
        ("tiny.dyn", {"size": "16"}, "imgs/dark/0.png", "w.pt")
    meta = json.loads((w / "o" / "responses.json").read_text())
    _check_meta(meta, "dynv run", w)
    assert saved["provenance"] == meta
    assert (meta["params"], meta["stimulus"], meta["weights"], meta["seed"]) == ({"size": "16"}, "imgs/dark/0.png",
                                                                                 "w.pt", 3)
    assert titles == ["Tiny (tiny.dyn)\n--set size=16 | stimulus imgs/dark/0.png | weights w.pt"]
    rc, out, err = _cli(capsys, *RUN, "--out", "o2")
    assert titles[-1] == "Tiny (tiny.dyn)\nno --set | stimulus built-in grating | seeded weights (--seed 0)"
    assert torch.load(w / "o2" / "responses.pt", weights_only=True)["stimulus"] == "built-in grating"


def test_experiment_records_spec_params_images_and_checkpoint(w, capsys, titles):
    rc, out, err = _cli(capsys, *EXPERIMENT, "--set", "size=16", "--out", "e")
    assert rc == 0, err
    meta = json.loads((w / "e" / "duration.json").read_text())
    _check_meta(meta, "dynv experiment", w)
    assert (meta["params"], meta["stimulus"], meta["weights"], meta["protocol"], meta["levels"]) == \
        ({"size": "16"}, "imgs/dark/0.png", None, "duration", [1, 2])
    line = "--set size=16 | stimulus imgs/dark/0.png | seeded weights (--seed 0)"
    assert titles == [f"Tiny (tiny.dyn): duration, summed\n{line}", f"Tiny (tiny.dyn): duration, normalised\n{line}",
                      f"Tiny (tiny.dyn): duration, response time courses\n{line}"]


def test_train_records_spec_params_and_data(w, capsys, titles):
    rc, out, err = _cli(capsys, *TRAIN, "--set", "size=12", "--out", "t")
    assert rc == 0, err
    meta = json.loads((w / "t" / "run.json").read_text())
    _check_meta(meta, "dynv train", w)
    assert (meta["params"], meta["stimulus"], meta["seed"]) == ({"size": "12"}, "--data folder:imgs", 0)
    assert titles == ["Tiny (tiny.dyn) on folder:imgs\n--set size=12 | --seed 0 --lr 0.001 --batch 8"]


def test_experiment_writes_all_its_files_or_none(w, capsys, monkeypatch):
    from dynvision_dsl.science.plot.figures import FIGURES

    assert _cli(capsys, *EXPERIMENT, "--out", "e")[0] == 0
    before = _tree(w / "e")

    def broken(result, **kw):
        raise KeyboardInterrupt  # the last PNG fails: the CSV, JSON and other PNGs must stay as they were

    monkeypatch.setitem(FIGURES, "timecourse", broken)
    rc, out, err = _cli(capsys, *EXPERIMENT, "--out", "e", "--levels", "1,3", "--force")
    assert rc == 130 and _tree(w / "e") == before
