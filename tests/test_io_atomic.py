"""`semcore_hf._io.atomic_artefact`: whole-folder swaps, manifests, the fallback without RENAME_EXCHANGE, locking, and
SIDIndex writers killed with SIGKILL at many points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from kill_harness import kill_loop

from semcore_hf import _io

# ------------------------------------------------------------------------------------------------ a tiny artefact
# Two parts that name each other's version: a reader that sees a mix notices.


def _write(dest, version: str, kind: str = "pair", **kwargs) -> None:
    with _io.atomic_artefact(dest, kind, **kwargs) as tmp:
        (tmp / "a.json").write_text(json.dumps({"version": version}))
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.json").write_text(json.dumps({"version": version}))


def _read(dest) -> str:
    raw = _io.read_artefact_files(dest, ["a.json", "sub/b.json"])
    a, b = (json.loads(raw[n])["version"] for n in ("a.json", "sub/b.json"))
    assert a == b, f"a mix: a.json is {a}, sub/b.json is {b}"
    return a


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture(params=["exchange", "fallback"])
def swap(request, monkeypatch):
    """Run the test with `renameat2(RENAME_EXCHANGE)` and with the two-rename fallback forced."""
    if request.param == "fallback":
        monkeypatch.setattr(_io, "_exchange", lambda a, b: False)
    return request.param


def test_exchange_is_available_here():
    # The machine the suite runs on (ext4, glibc) has RENAME_EXCHANGE: the default path is the atomic one.
    assert sys.platform != "linux" or _io._swap_function() is not None


def test_replace_keeps_user_files_and_drops_own_stale_files(tmp_path, swap):
    dest = tmp_path / "art"
    with _io.atomic_artefact(dest, "pair") as tmp:
        (tmp / "a.json").write_text('{"version": "1"}')
        (tmp / "stale.bin").write_bytes(b"old build only")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.json").write_text('{"version": "1"}')
    (dest / "notes.txt").write_text("mine")
    (dest / "sub" / "mine.txt").write_text("also mine")
    (dest / "empty_dir").mkdir()
    os.symlink("notes.txt", dest / "link")
    inode = (dest / "notes.txt").stat().st_ino
    _write(dest, "2")
    assert _read(dest) == "2"
    assert not (dest / "stale.bin").exists()  # listed in the old manifest, not written again
    assert (dest / "notes.txt").read_text() == "mine" and (dest / "notes.txt").stat().st_ino == inode  # hard link
    assert (dest / "sub" / "mine.txt").read_text() == "also mine"
    assert (dest / "empty_dir").is_dir() and os.readlink(dest / "link") == "notes.txt"
    manifest = json.loads((dest / _io.MANIFEST_FILE).read_text())
    assert manifest["artefacts"] == {"pair": {"format_version": 1, "files": ["a.json", "sub/b.json"]}}
    assert sorted(os.listdir(tmp_path)) == ["art"]  # no staging folder, no lock file left


def test_other_kinds_in_the_same_folder_are_kept(tmp_path, swap):
    dest = tmp_path / "art"
    with _io.atomic_artefact(dest, "model") as tmp:
        (tmp / "config.json").write_text("{}")
    _write(dest, "1")
    _write(dest, "2")
    assert (dest / "config.json").read_text() == "{}"
    arts = json.loads((dest / _io.MANIFEST_FILE).read_text())["artefacts"]
    assert set(arts) == {"model", "pair"} and arts["model"]["files"] == ["config.json"]
    assert _io.artefact_kinds(dest) == {"model", "pair"}


@pytest.mark.parametrize("owner", ["user", "other kind"])
def test_refuses_to_overwrite_a_file_it_did_not_write(tmp_path, owner, swap):
    dest = tmp_path / "art"
    if owner == "user":
        dest.mkdir()
        (dest / "a.json").write_text("a user's file")
    else:
        with _io.atomic_artefact(dest, "model") as tmp:
            (tmp / "a.json").write_text("the model's file")
    before = {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    with pytest.raises(_io.ArtefactConflictError) as err:
        _write(dest, "1")
    assert str(dest) in str(err.value) and "a.json" in str(err.value)
    assert ("model saved there" in str(err.value)) == (owner == "other kind")
    assert {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()} == before
    assert sorted(os.listdir(tmp_path)) == ["art"]


def test_legacy_files_of_the_same_kind_are_replaced(tmp_path, swap):
    dest = tmp_path / "art"
    dest.mkdir()
    (dest / "a.json").write_text('{"version": "0"}')  # written by an older version, without a manifest
    (dest / "old_only.json").write_text("{}")
    (dest / "notes.txt").write_text("mine")
    _write(dest, "1", legacy_files=lambda d: _io.files_matching(d, ["*.json"]))
    assert _read(dest) == "1" and not (dest / "old_only.json").exists()
    assert (dest / "notes.txt").read_text() == "mine"


def test_failure_in_the_writer_leaves_the_folder_alone(tmp_path, swap):
    dest = tmp_path / "art"
    _write(dest, "1")
    before = _listing(dest)
    with pytest.raises(RuntimeError, match="boom"):
        with _io.atomic_artefact(dest, "pair") as tmp:
            (tmp / "a.json").write_text('{"version": "2"}')
            raise RuntimeError("boom")
    assert _read(dest) == "1" and _listing(dest) == before
    with pytest.raises(RuntimeError):
        with _io.atomic_artefact(tmp_path / "fresh", "pair"):
            raise RuntimeError("boom")
    assert sorted(os.listdir(tmp_path)) == ["art"]


def test_manifest_name_is_reserved_and_dest_must_be_a_folder(tmp_path):
    with pytest.raises(ValueError, match="reserved"):
        with _io.atomic_artefact(tmp_path / "x", "pair") as tmp:
            (tmp / _io.MANIFEST_FILE).write_text("{}")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        _write(tmp_path / "file", "1")


def test_symlinked_folder_and_working_directory_inside_it(tmp_path, monkeypatch):
    real = tmp_path / "real"
    _write(real, "1")
    os.symlink(real, tmp_path / "link")
    _write(tmp_path / "link", "2")
    assert (tmp_path / "link").is_symlink() and _read(real) == "2"
    monkeypatch.chdir(real / "sub")
    _write(real, "3")
    # the process is not left in the deleted old folder
    assert Path(os.getcwd()) == real / "sub" and Path("b.json").read_text() == '{"version": "3"}'


def test_leftover_staging_folders_are_removed_only_when_recognisably_ours(tmp_path):
    dest = tmp_path / "art"
    _write(dest, "1")
    ours = tmp_path / ".art.semcore-tmp-0123456789abcdef"
    (ours / "new").mkdir(parents=True)
    (ours / _io._MARKER).write_text("")
    (ours / "new" / "a.json").write_text("half written")
    empty = tmp_path / ".art.semcore-tmp-00000000000000ff"  # killed right after mkdir
    empty.mkdir()
    unmarked = tmp_path / ".art.semcore-tmp-fedcba9876543210"  # same name pattern, but no marker: not ours
    unmarked.mkdir()
    (unmarked / "precious").write_text("x")
    other_name = tmp_path / ".art.semcore-tmp-by-hand"
    other_name.mkdir()
    (other_name / _io._MARKER).write_text("")
    (tmp_path / ".art.semcore-lock").write_text("")  # a killed writer's lock file
    _write(dest, "2")
    assert _read(dest) == "2"
    assert not ours.exists() and not empty.exists()
    assert (unmarked / "precious").exists() and other_name.exists()
    assert not (tmp_path / ".art.semcore-lock").exists()


_CRASH_BETWEEN_RENAMES = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, sys.argv[2])
    from test_io_atomic import _write
    from semcore_hf import _io

    _io._exchange = lambda a, b: False  # force the two-rename fallback
    real_rename = os.rename

    def rename(src, dst):
        real_rename(src, dst)
        if os.path.basename(dst) == "old":  # the old folder is out, the new one not yet in: die right here
            os.kill(os.getpid(), signal.SIGKILL)

    os.rename = rename
    _write(sys.argv[1], "2")
    """
)


def _crash_between_renames(dest: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-c", _CRASH_BETWEEN_RENAMES, str(dest), str(Path(__file__).parent)], timeout=60
    )
    assert res.returncode == -9
    assert not dest.exists()  # the window the fallback has to recover from


def test_fallback_killed_between_its_renames_is_recovered_by_a_reader(tmp_path):
    dest = tmp_path / "art"
    _write(dest, "1")
    (dest / "notes.txt").write_text("mine")
    _crash_between_renames(dest)
    assert _read(dest) == "2"  # the reader finished the move: the complete new version
    assert dest.is_dir() and (dest / "notes.txt").read_text() == "mine"
    _write(dest, "3")  # the next writer removes the leftover
    assert sorted(os.listdir(tmp_path)) == ["art"] and _read(dest) == "3"


def test_fallback_killed_between_its_renames_read_only_parent(tmp_path, monkeypatch):
    dest = tmp_path / "art"
    _write(dest, "1")
    _crash_between_renames(dest)

    def read_only(dest):
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr(_io, "_locked", read_only)
    d = _io.resolve_artefact_dir(dest)
    assert d != dest and d.name == "new" and _read(d) == "2"
    monkeypatch.undo()
    _write(dest, "3")  # a writer rolls forward first, then replaces
    assert _read(dest) == "3" and sorted(os.listdir(tmp_path)) == ["art"]


_WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[3])
    from test_io_atomic import _write
    for i in range(int(sys.argv[4])):
        _write(sys.argv[1], f"{sys.argv[2]}{i}")
    """
)


def test_the_lock_serialises_writers_across_processes(tmp_path):
    dest = tmp_path / "art"
    _write(dest, "mine")
    here = str(Path(__file__).parent)
    with _io._locked(dest.resolve()):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(dest), "other", here, "1"])
        time.sleep(1.0)
        assert proc.poll() is None and _read(dest) == "mine"  # waiting for the lock
    assert proc.wait(timeout=60) == 0 and _read(dest) == "other0"


def test_two_writer_processes_at_once(tmp_path):
    dest = tmp_path / "art"
    _write(dest, "start")
    (dest / "notes.txt").write_text("mine")
    here = str(Path(__file__).parent)
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(dest), tag, here, "40"]) for tag in ("p", "q")]
    seen, errors, stop = [], [], threading.Event()

    def reader():
        while not stop.is_set():
            try:
                seen.append(_read(dest))  # both parts from one version, while the folder is swapped under it
            except Exception as e:
                errors.append(e)

    t = threading.Thread(target=reader)
    t.start()
    try:
        assert [p.wait(timeout=120) for p in procs] == [0, 0]
    finally:
        stop.set()
        t.join()
    assert _read(dest) in {"p39", "q39"} and (dest / "notes.txt").read_text() == "mine"
    assert sorted(os.listdir(tmp_path)) == ["art"]
    assert not errors, errors[:3]
    assert len(set(seen)) > 2  # the reader saw several versions go by, never a mix (`_read` asserts that)


# ------------------------------------------------------------------------------------------------ SIDIndex kills

INDEX_VERSIONS = textwrap.dedent(
    """
    import numpy as np
    from semcore_hf.identifiers import SIDConfig, SIDIndex


    def make_version(tag):
        # A and B differ in every part: config, JSON tables and arrays (and in size, so saves take a while)
        n, k = (4000, 8) if tag == "A" else (3000, 5)
        rng = np.random.default_rng(0 if tag == "A" else 1)
        sids = [f"{tag.lower()}{i} words | phrase {i}" for i in range(n // 2)]
        return SIDIndex(
            config=SIDConfig(embedding_model=f"model-{tag}", num_clusters=k),
            sids=sids,
            target_ids=[f"{tag}-{i}" for i in range(n)],
            target_sid=rng.permutation(n) % len(sids),
            target_cluster=np.arange(n) % k,
            centroids=rng.standard_normal((k, 32)).astype(np.float32),
            global_ids=[f"{tag} g{j}" for j in range(k)],
            cluster_words=[[f"{tag}w{j}", "x"] for j in range(k)],
            target_modality="image" if tag == "A" else "text",
        )
    """
)


def _index_writer_code(fallback: bool) -> str:
    return INDEX_VERSIONS + textwrap.dedent(
        f"""
        import sys
        from semcore_hf import _io
        if {fallback}:
            _io._exchange = lambda a, b: False
        VERSIONS = {{tag: make_version(tag) for tag in "AB"}}


        def save(tag):
            VERSIONS[tag].save_pretrained(sys.argv[1])


        def warm_up():
            import shutil, tempfile

            scratch = tempfile.mkdtemp()
            VERSIONS["A"].save_pretrained(scratch)
            shutil.rmtree(scratch)
        """
    )


@pytest.mark.parametrize("fallback", [False, True], ids=["exchange", "fallback"])
def test_sid_index_writer_killed_at_many_points(tmp_path, fallback, record_property):
    from semcore_hf.identifiers import SIDIndex

    namespace: dict = {}
    exec(INDEX_VERSIONS, namespace)
    expected = {tag: namespace["make_version"](tag) for tag in "AB"}
    dest = tmp_path / "index"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    files = {"README.md", "sid_index.json", "sid_index.safetensors", "sid_index_config.json", _io.MANIFEST_FILE}

    def check(d: Path) -> str:
        idx = SIDIndex.from_pretrained(d)
        assert (d / "notes.txt").read_text() == "mine"
        assert set(os.listdir(d)) == files | {"notes.txt"}
        for tag, exp in expected.items():
            if idx.target_ids == exp.target_ids:
                assert idx.sids == exp.sids and idx.global_ids == exp.global_ids
                assert idx.config.to_dict() == exp.config.to_dict() and idx.target_modality == exp.target_modality
                np.testing.assert_array_equal(idx.target_sid, exp.target_sid)
                np.testing.assert_array_equal(idx.target_cluster, exp.target_cluster)
                np.testing.assert_array_equal(idx.centroids, exp.centroids)
                return tag
        raise AssertionError(f"the index in {d} is neither version")

    stats = kill_loop(_index_writer_code(fallback), dest, check, n_kills=120, seed=1 + fallback)
    line = stats.line(f"SIDIndex.save_pretrained ({'fallback' if fallback else 'RENAME_EXCHANGE'})")
    print(line)
    record_property("kill_stats", line)
    assert stats.kills == 120
    # the kills really landed at different points: some before the swap, some after
    assert stats.old >= 5 and stats.new >= 5 and stats.mid_save >= 5, line
