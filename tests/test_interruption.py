"""Clean interruption and checks before work (issue 14): Ctrl-C, a dead kernel, two builds
into one folder, unwritable folders, no GPU, a full disk. Uses throw-away mini books."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import lib.build as build_mod
from lib.build import BuildError, BuildInterrupted, build, build_lock
from lib.config import REPO_ROOT, ConfigError
from tests.test_build import HEADER, PROBE, _book

QUIET = {"log": lambda *a, **k: None}


def _two_chapter_book(tmp_path, second_body: str):
    root = _book(tmp_path, PROBE)
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/01_probe\n"
                                   "  - file: book/02_second\n")
    (root / "book" / "02_second.md").write_text(HEADER + "\n# Second\n\n```{code-cell} ipython3\n"
                                                 + second_body + "\n```\n")
    return root


def _tiny(tmp_path, **kw):
    return {"cache_dir": str(tmp_path / "cache"), **kw}


def test_ctrl_c_prints_one_line_saying_what_finished_and_that_a_rerun_resumes(tmp_path):
    marker = tmp_path / "second-started"
    root = _two_chapter_book(tmp_path, f"import time\nopen({str(marker)!r}, 'w').close()\ntime.sleep(120)")
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        import lib.build as b
        import lib.__main__ as m
        real = b.build
        b.build = lambda profile, overrides, out: real(profile, overrides, out=out, root=Path({str(root)!r}))
        sys.exit(m.main(["build", "--profile", "tiny", "-p", "cache_dir={tmp_path / 'cache'}",
                         "--out", {str(tmp_path / 'out')!r}]))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    deadline = time.time() + 180
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert marker.exists(), proc.communicate()[1]
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    out, err = proc.communicate(timeout=60)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(lines) == 1, err
    assert "Chapters finished: 01_probe; not finished: 02_second" in lines[0] and "Rerun" in lines[0]


def test_interruption_inside_the_loop_names_finished_and_unfinished_chapters(tmp_path, monkeypatch):
    root = _two_chapter_book(tmp_path, "print('never')")
    real = build_mod.execute_chapter

    def interrupt_second(chapter, *a, **k):
        if chapter.stem == "02_second":
            raise KeyboardInterrupt
        return real(chapter, *a, **k)

    monkeypatch.setattr(build_mod, "execute_chapter", interrupt_second)
    with pytest.raises(BuildInterrupted, match="finished: 01_probe; not finished: 02_second"):
        build("tiny", _tiny(tmp_path), out=tmp_path / "out", root=root, **QUIET)


def test_cli_turns_ctrl_c_into_exit_130_and_one_line(monkeypatch, capsys):
    import lib.__main__ as cli

    def interrupted(*a, **k):
        raise BuildInterrupted(build_mod.interrupted_message(["01_stimuli"], ["01_stimuli", "02_saliency"]))

    monkeypatch.setattr(build_mod, "build", interrupted)
    assert cli.main(["build", "--profile", "tiny"]) == 130
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not finished: 02_saliency" in err


def test_dead_kernel_names_the_chapter_and_memory(tmp_path):
    root = _two_chapter_book(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    with pytest.raises(BuildError) as err:
        build("tiny", _tiny(tmp_path), out=tmp_path / "out", root=root, **QUIET)
    msg = str(err.value)
    assert "02_second" in msg and "kernel died" in msg and "memory" in msg and "memory_budget_gb" in msg


def test_second_build_into_the_same_folder_refuses_naming_the_first(tmp_path):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\nfrom lib.build import build_lock\n"
                               f"with build_lock(Path({str(out)!r})):\n    print('locked', flush=True)\n"
                               "    time.sleep(60)\n"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    try:
        assert holder.stdout.readline().strip() == "locked"
        root = _book(tmp_path, PROBE)
        with pytest.raises(BuildError) as err:
            build("tiny", _tiny(tmp_path), out=out, root=root, **QUIET)
        msg = str(err.value)
        assert "another build is writing into" in msg and f"pid {holder.pid}" in msg and "--out" in msg
        assert not (out / "run").exists()  # nothing of the running build was touched
    finally:
        holder.kill()
        holder.wait()
    with build_lock(out):  # released when its process died
        pass


def _unwritable(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    return blocker / "out"  # a folder inside a regular file: unwritable even for root


def test_unwritable_output_folder_is_a_clear_cli_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "lib", "build", "--profile", "tiny", "--out",
                           str(_unwritable(tmp_path))], capture_output=True, text=True, cwd=REPO_ROOT)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "output folder" in done.stderr and "not writable" in done.stderr and "--out" in done.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder_is_a_clear_error(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(BuildError, match="not writable"):
            build("tiny", _tiny(tmp_path), out=ro / "out", root=_book(tmp_path, PROBE), **QUIET)
    finally:
        ro.chmod(0o755)


def _marker_book(tmp_path):
    marker = tmp_path / "chapter-ran"
    return _book(tmp_path, PROBE + f"\n```{{code-cell}} ipython3\nopen({str(marker)!r}, 'w').close()\n```\n"), marker


def test_unwritable_cache_is_found_before_any_chapter(tmp_path):
    root, marker = _marker_book(tmp_path)
    with pytest.raises(BuildError, match=r"cache folder \(cache_dir\).*not writable.*-p cache_dir="):
        build("tiny", {"cache_dir": str(_unwritable(tmp_path))}, out=tmp_path / "out", root=root, **QUIET)
    assert not marker.exists()


def test_cuda_without_a_gpu_is_found_before_any_chapter(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    root, marker = _marker_book(tmp_path)
    with pytest.raises(ConfigError, match="device='cuda'.*no CUDA GPU"):
        build("tiny", _tiny(tmp_path, device="cuda"), out=tmp_path / "out", root=root, **QUIET)
    assert not marker.exists()


def test_too_little_free_disk_is_found_before_any_chapter(tmp_path, monkeypatch):
    import collections

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(build_mod.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 5 * 2**20, 5 * 2**20))
    root, marker = _marker_book(tmp_path)
    with pytest.raises(BuildError, match=r"not enough free disk.*GB may be written.*0\.0 GB are free"):
        build("tiny", _tiny(tmp_path), out=tmp_path / "out", root=root, **QUIET)
    assert not marker.exists()


def test_disk_estimate_grows_with_images_and_models():
    from lib.build import estimate_disk_bytes
    from lib.config import load_profile

    small = estimate_disk_bytes(load_profile("tiny"))
    assert estimate_disk_bytes(load_profile("tiny", {"n_images": 80})) > small
    assert estimate_disk_bytes(load_profile("tiny", {"models": ["a", "b", "c"]})) > small
    # hand-worked: 8 images x 5 conditions of 384 px RGB + float32 maps, 2 models x 150 layers x 5 x 28 pairs
    expected = 1.5 * (8 * 5 * 384 * 384 * 7 + 2 * 150 * 5 * 28 * 8 + 200 * 2**20)
    assert small == int(expected)
