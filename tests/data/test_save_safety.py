"""`save_sid_dataset` never leaves a half-written dataset and deletes only the files of its own earlier builds."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
import yaml
from kill_harness import kill_loop

from semcore_hf import _io
from semcore_hf.data import push_sid_dataset_to_hub, save_sid_dataset

DATASET_VERSIONS = textwrap.dedent(
    """
    import datasets


    def make_version(tag):
        # A and B differ in every file: rows, hence Parquet digests, card and arrow copies
        n = 400 if tag == "A" else 300

        def split(name, m):
            return datasets.Dataset.from_dict(
                {
                    "prompt": [f"{tag} {name} query {i} " + "words " * (i % 7) for i in range(m)],
                    "completion": [f"<sid>{tag} g{i % 5}<sid_sep>phrase {i}</sid>" for i in range(m)],
                    "target_id": [f"{tag}-{i}" for i in range(m)],
                }
            )

        return {
            "t2i": datasets.DatasetDict({"train": split("train", n), "test": split("test", n // 4)}),
            "memorize_t2i": datasets.DatasetDict({"train": split("memo", n // 2)}),
        }
    """
)


def _versions() -> dict:
    namespace: dict = {}
    exec(DATASET_VERSIONS, namespace)
    return {tag: namespace["make_version"](tag) for tag in "AB"}


def _card_configs(d: Path) -> dict[str, dict[str, str]]:
    meta = yaml.safe_load((d / "README.md").read_text(encoding="utf-8").split("---")[1])
    return {c["config_name"]: {f["split"]: f["path"] for f in c["data_files"]} for c in meta["configs"]}


def _parquet_files(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*.parquet")}


def _rows_on_disk(d: Path) -> dict:
    """What `load_dataset(d, name=task)` reads (the card's Parquet files), read with pyarrow (fast)."""
    return {
        task: {split: pq.read_table(d / path).to_pylist() for split, path in files.items()}
        for task, files in _card_configs(d).items()
    }


def _rows(version: dict) -> dict:
    return {task: {split: ds.to_list() for split, ds in dd.items()} for task, dd in version.items()}


@pytest.fixture(scope="module")
def versions():
    return _versions()


def test_a_users_files_survive_and_stale_parquet_goes(versions, tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "mine").mkdir()
    datasets.Dataset.from_dict({"x": [1, 2]}).to_parquet(str(out / "mine" / "own.parquet"))
    save_sid_dataset(versions["A"], out)
    a_files = _parquet_files(out) - {"mine/own.parquet"}
    # a user's Parquet file in a task folder, next to the build's own
    datasets.Dataset.from_dict({"y": [3]}).to_parquet(str(out / "t2i" / "extra.parquet"))
    save_sid_dataset(versions["B"], out)
    assert not a_files & _parquet_files(out)  # the earlier build's files are gone (they were in its manifest)
    card_files = {p for files in _card_configs(out).values() for p in files.values()}
    assert _parquet_files(out) == card_files | {"mine/own.parquet", "t2i/extra.parquet"}
    assert (out / "notes.txt").read_text() == "mine"
    assert pq.read_table(out / "mine" / "own.parquet").to_pylist() == [{"x": 1}, {"x": 2}]
    assert pq.read_table(out / "t2i" / "extra.parquet").to_pylist() == [{"y": 3}]
    assert _rows_on_disk(out) == _rows(versions["B"])
    loaded = datasets.load_dataset(str(out), name="t2i", cache_dir=str(tmp_path / "cache"))
    assert {s: ds.to_list() for s, ds in loaded.items()} == _rows(versions["B"])["t2i"]
    assert sorted(os.listdir(tmp_path)) == ["cache", "data"]  # no staging folder, no lock file left


def test_a_build_saved_before_manifests_is_replaced(versions, tmp_path):
    out = tmp_path / "data"
    save_sid_dataset(versions["A"], out)
    os.remove(out / _io.MANIFEST_FILE)  # what an older semcore_hf left
    (out / "notes.txt").write_text("mine")
    a_files = _parquet_files(out)
    save_sid_dataset(versions["B"], out, save_arrow=False)
    assert not a_files & _parquet_files(out) and not (out / "arrow").exists()
    assert (out / "notes.txt").read_text() == "mine" and _rows_on_disk(out) == _rows(versions["B"])


def test_a_users_readme_is_not_overwritten(versions, tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    (out / "README.md").write_text("# my project\n")
    with pytest.raises(_io.ArtefactConflictError, match=r"README\.md"):
        save_sid_dataset(versions["A"], out)
    assert os.listdir(out) == ["README.md"] and (out / "README.md").read_text() == "# my project\n"


def test_the_manifest_is_not_pushed(versions, tmp_path, monkeypatch):
    from sid_data_helpers import local_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_TOKEN", "hf_dummy")
    save_sid_dataset(versions["A"], tmp_path / "data")
    with local_hub(tmp_path / "hub") as commits:
        push_sid_dataset_to_hub(tmp_path / "data", "user/d")
    assert _io.MANIFEST_FILE not in commits[0][2] and "README.md" in commits[0][2]


def _writer_code() -> str:
    return DATASET_VERSIONS + textwrap.dedent(
        """
        import sys
        from semcore_hf.data import save_sid_dataset
        datasets.disable_progress_bars()
        VERSIONS = {tag: make_version(tag) for tag in "AB"}


        def save(tag):
            save_sid_dataset(VERSIONS[tag], sys.argv[1])


        def warm_up():
            import shutil, tempfile

            scratch = tempfile.mkdtemp()
            save_sid_dataset(VERSIONS["A"], scratch)
            shutil.rmtree(scratch)
        """
    )


def test_save_sid_dataset_writer_killed_at_many_points(versions, tmp_path, record_property):
    expected = {tag: _rows(v) for tag, v in versions.items()}
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    (dest / "mine").mkdir()
    datasets.Dataset.from_dict({"x": [1]}).to_parquet(str(dest / "mine" / "own.parquet"))

    def check(d: Path) -> str:
        rows = _rows_on_disk(d)  # fails on a missing or unreadable card or Parquet file
        tag = next((t for t, exp in expected.items() if rows == exp), None)
        assert tag is not None, f"the dataset in {d} is neither version"
        card_files = {p for files in _card_configs(d).values() for p in files.values()}
        assert _parquet_files(d) == card_files | {"mine/own.parquet"}  # nothing stale, the user's file kept
        for task, splits in expected[tag].items():  # the save_to_disk copy is the same version
            disk = datasets.load_from_disk(str(d / "arrow" / task))
            assert {s: ds.to_list() for s, ds in disk.items()} == splits
        assert (d / "notes.txt").read_text() == "mine"
        return tag

    stats = kill_loop(_writer_code(), dest, check, n_kills=100, seed=3, timeout=120)
    line = stats.line("save_sid_dataset (RENAME_EXCHANGE)")
    print(line)
    record_property("kill_stats", line)
    assert stats.kills == 100
    assert stats.old >= 5 and stats.new >= 5 and stats.mid_save >= 5, line
