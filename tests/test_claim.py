"""An output folder taken by one writer alone: never over another's files, never two at once."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from segkit.claim import LOCK_NAME, FolderError, claim_folder, release_folder

OUTPUTS = ("last.pt", "history.csv")


def test_a_new_folder_is_made_and_left_without_a_trace_when_nothing_was_written(tmp_path):
    folder = claim_folder(tmp_path / "run", OUTPUTS, log=pytest.fail)
    assert folder == tmp_path / "run" and (folder / LOCK_NAME).is_file()
    release_folder(folder)
    assert not folder.exists()


def test_a_folder_with_results_is_kept_and_the_next_free_name_is_said(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.pt").write_bytes(b"a run")
    (tmp_path / "run-2").mkdir()
    (tmp_path / "run-2" / "history.csv").write_text("epoch\n")
    said = []
    folder = claim_folder(tmp_path / "run", OUTPUTS, log=said.append)
    assert folder == tmp_path / "run-3"
    assert said == [f"{tmp_path / 'run'} holds earlier results (last.pt), which are kept; "
                    f"this run writes to {folder}"]
    (folder / "last.pt").write_bytes(b"new")
    release_folder(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["last.pt"]  # the lock is gone
    assert (tmp_path / "run" / "last.pt").read_bytes() == b"a run"


def test_a_resumed_run_goes_on_in_its_own_folder(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.pt").write_bytes(b"a run")
    folder = claim_folder(tmp_path / "run", OUTPUTS, own=tmp_path / "run", log=pytest.fail)
    assert folder == tmp_path / "run"
    release_folder(folder)
    assert (tmp_path / "run" / "last.pt").exists()


def test_a_folder_held_by_this_or_another_process_is_not_shared(tmp_path):
    first = claim_folder(tmp_path / "out", OUTPUTS)
    assert claim_folder(tmp_path / "out", OUTPUTS, log=lambda s: None) == tmp_path / "out-2"
    release_folder(tmp_path / "out-2")
    release_folder(first)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        from segkit.claim import claim_folder
        claim_folder({str(tmp_path / "out")!r}, ())
        print("held", flush=True)
        sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        said = []
        assert claim_folder(tmp_path / "out", OUTPUTS, log=said.append) == tmp_path / "out-2"
        assert "is in use by another segkit process now" in said[0]
        release_folder(tmp_path / "out-2")
    finally:
        holder.communicate("", timeout=60)
    # the holder ended without letting go: the operating system ended its lock
    assert claim_folder(tmp_path / "out", OUTPUTS, log=pytest.fail) == tmp_path / "out"
    release_folder(tmp_path / "out")


def test_a_file_in_the_way_is_refused_with_the_option(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FolderError, match=r"--out-dir .*notes.txt is a file, not a folder"):
        claim_folder(tmp_path / "notes.txt", OUTPUTS)
    assert (tmp_path / "notes.txt").read_text() == "mine"
