"""Private I/O helpers shared by every artefact: nothing is ever written half, nothing of the user's is deleted.

Every artefact folder (an index, a trie, a dataset, a SID-ready model) is written through `atomic_artefact` and read
through `resolve_artefact_dir`:

- the new version is written into a hidden sibling folder, fsynced, and swapped with the old folder in one step
  (`renameat2(RENAME_EXCHANGE)` on Linux, `renamex_np(RENAME_SWAP)` on macOS), so a reader sees the complete old or
  the complete new folder even if the writer is killed at any instant;
- where the filesystem cannot exchange two paths, the swap is two renames (old folder out, new folder in); a writer
  killed between them leaves the destination missing and the complete new version in the marked staging folder,
  and the next reader or writer finishes the move (`resolve_artefact_dir`, `_recover`). A reader never sees a mix;
- each folder holds a manifest (`.semcore_manifest.json`: artefact kind, format version, the files the library
  wrote). Saving drops the files the previous version of the same artefact listed there and carries every other
  file (a user's notes, a model saved next to an index) into the new version with hard links; a user's file that
  the new version would overwrite is refused with an error naming it;
- an `fcntl.flock` on a sibling lock file serialises writers of one folder across processes, and staging folders
  left by killed writers (recognised by name and by a marker file inside) are removed by the next save.
"""

from __future__ import annotations

import ctypes
import errno
import fnmatch
import functools
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

MANIFEST_FILE = ".semcore_manifest.json"
MANIFEST_VERSION = 1
# Sibling names: `.{name}.semcore-tmp-{16 hex}` (staging) and `.{name}.semcore-lock`.
_TMP_TAG = ".semcore-tmp-"
_LOCK_TAG = ".semcore-lock"
_MARKER = ".semcore_staging"  # inside a staging folder: what makes a leftover recognisably ours
_NEW, _OLD = "new", "old"  # inside a staging folder: the version being written / the one swapped out

# The files `save_pretrained` of a transformers model, tokenizer or processor writes (for folders written before
# manifests existed).
HF_CHECKPOINT_PATTERNS = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "model-*-of-*.safetensors",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "tokenizer.model",
    "spiece.model",
    "chat_template.jinja",
    "chat_template.json",
    "preprocessor_config.json",
    "processor_config.json",
    "video_preprocessor_config.json",
    "additional_chat_templates/*",
)


class ArtefactConflictError(ValueError):
    """Saving would overwrite a file in the destination that this artefact did not write."""


# --------------------------------------------------------------------------------------------------------------------
# manifests
# --------------------------------------------------------------------------------------------------------------------


def read_manifest(directory: str | os.PathLike) -> dict[str, Any] | None:
    """The manifest of an artefact folder, or `None` when it has none (or an unreadable one, with a warning).

    Args:
        directory (`str` or `os.PathLike`): the artefact folder.

    Returns:
        `dict` or `None`: ``{"manifest_version": 1, "library": "semcore_hf", "artefacts": {kind: {"format_version":
        int, "files": [relative POSIX paths]}}}``.
    """
    path = Path(directory) / MANIFEST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError) as e:
        logger.warning("Ignoring the unreadable manifest %s: %s", path, e)
        return None
    arts = data.get("artefacts") if isinstance(data, dict) else None
    if not isinstance(arts, dict) or not all(
        isinstance(e, dict) and isinstance(e.get("files"), list) and all(isinstance(f, str) for f in e["files"])
        for e in arts.values()
    ):
        logger.warning("Ignoring the malformed manifest %s.", path)
        return None
    return data


def artefact_kinds(directory: str | os.PathLike) -> set[str]:
    """The artefact kinds the manifest of `directory` lists (empty when it has no manifest)."""
    manifest = read_manifest(directory)
    return set(manifest["artefacts"]) if manifest else set()


def files_matching(directory: str | os.PathLike, patterns: Iterable[str]) -> list[str]:
    """Files under `directory` (relative POSIX paths) matching any of the `fnmatch` `patterns`.

    A pattern without ``/`` only matches top-level files. Used to recognise artefacts written before manifests.
    """
    files, _ = _tree(Path(directory))
    patterns = list(patterns)
    return [f for f in files if any(("/" in p or "/" not in f) and fnmatch.fnmatchcase(f, p) for p in patterns)]


# --------------------------------------------------------------------------------------------------------------------
# the writer
# --------------------------------------------------------------------------------------------------------------------


@contextmanager
def atomic_artefact(
    path: str | os.PathLike,
    kind: str,
    *,
    format_version: int = 1,
    legacy_files: Callable[[Path], Iterable[str]] | None = None,
) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces the folder `path` as a whole, atomically.

    The caller writes the complete new artefact into the staging folder (a hidden sibling of `path`). On success:
    files the previous version of the same `kind` listed in its manifest are dropped; every other file already in
    `path` is carried into the new version (hard links, else copies); the manifest is written; files and folders
    are fsynced; and the staging folder is swapped with `path` in one atomic step (see the module docstring for
    filesystems without an exchange). An exception in the caller, or a conflict, leaves `path` as it was.

    Args:
        path (`str` or `os.PathLike`):
            The artefact folder (created if missing; a symlink is followed, so the folder it points to is replaced).
        kind (`str`):
            The artefact kind recorded in the manifest (`"sid_index"`, `"sid_trie"`, ...). Only files of this kind
            are dropped; files of other kinds saved in the same folder are kept.
        format_version (`int`, defaults to 1):
            The artefact's format version, recorded in the manifest.
        legacy_files (`Callable[[Path], Iterable[str]]`, *optional*):
            For a folder whose manifest does not list `kind` (written before manifests existed): the files of a
            previous version of this artefact found in it (relative POSIX paths), which may be replaced.

    Raises:
        ArtefactConflictError: `path` holds a file that the new artefact writes but that is not of this kind (a
            user's file, another artefact's); nothing is changed.
        NotADirectoryError: `path` exists and is not a folder.
    """
    dest = _absolute(path)
    if not dest.name:
        raise ValueError(f"Cannot save an artefact as the filesystem root {dest}.")
    if os.path.lexists(dest) and not dest.is_dir():
        raise NotADirectoryError(f"{dest} exists and is not a folder: cannot save an artefact there.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _locked(dest):
        _recover(dest, cleanup=True)
        work = _make_work_dir(dest)
        try:
            stage = work / _NEW
            stage.mkdir()
            yield stage
            _complete_stage(dest, stage, kind, format_version, legacy_files)
            _commit(work, stage, dest)
        finally:
            _discard(work, dest)


def resolve_artefact_dir(path: str | os.PathLike) -> Path:
    """The folder to read the artefact at `path` from; every loader goes through it.

    Normally `path` itself. Where a save had to fall back to two renames and was killed between them, `path` is
    missing and the complete new version waits in the staging folder: it is moved into place first (under the
    writers' lock), or, when the parent folder is read-only, returned as is.

    Args:
        path (`str` or `os.PathLike`): an artefact folder.

    Returns:
        `pathlib.Path`: `path`, or the staging folder holding its complete new version.
    """
    given = Path(path)
    dest = _absolute(given)
    if os.path.lexists(dest) or not _pending(dest):
        return given
    try:
        with _locked(dest):
            _recover(dest, cleanup=False)
    except OSError:
        pending = _pending(dest)
        if pending:
            return pending[0]
        raise
    return given


def read_artefact_files(path: str | os.PathLike, names: Iterable[str]) -> dict[str, bytes]:
    """Read several files of the artefact folder `path` from one and the same version of it.

    Reading file after file by path could mix versions if a writer swapped the folder in between; here every file
    is opened relative to one handle on the folder, and if that version is replaced and deleted while being read,
    everything is read again from the new one.

    Args:
        path (`str` or `os.PathLike`): the artefact folder (resolved with `resolve_artefact_dir`).
        names (`Iterable[str]`): relative POSIX paths of the files.

    Returns:
        `dict[str, bytes]`: the content of each file.

    Raises:
        FileNotFoundError: a file is missing from the folder (or the folder does not exist).
    """
    names = list(names)
    if os.open not in os.supports_dir_fd:  # pragma: no cover - platforms without openat
        d = resolve_artefact_dir(path)
        return {n: (d / n).read_bytes() for n in names}
    for attempt in range(8):
        d = resolve_artefact_dir(path)
        dir_fd = os.open(d, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            out = {}
            for name in names:
                fd = os.open(name, os.O_RDONLY, dir_fd=dir_fd)
                with os.fdopen(fd, "rb") as f:
                    out[name] = f.read()
            return out
        except FileNotFoundError as e:
            held = os.fstat(dir_fd)
            try:
                now = os.stat(d)
                swapped = (now.st_ino, now.st_dev) != (held.st_ino, held.st_dev)
            except FileNotFoundError:
                swapped = True
            if not swapped or attempt == 7:
                raise FileNotFoundError(e.errno, e.strerror, str(d / e.filename if e.filename else d)) from None
        finally:
            os.close(dir_fd)
    raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------------------------------------------------
# internals of the writer
# --------------------------------------------------------------------------------------------------------------------


def _absolute(path: str | os.PathLike) -> Path:
    p = Path(os.path.abspath(os.fspath(path)))
    # a symlinked artefact folder: replace the folder it points to, not the link
    return Path(os.path.realpath(p)) if p.is_symlink() else p


def _sibling_stem(dest: Path) -> str:
    # keep the sibling names within NAME_MAX (255 bytes)
    name = dest.name
    return name if len(os.fsencode(name)) <= 200 else hashlib.sha256(os.fsencode(name)).hexdigest()[:32]


def _work_pattern(dest: Path) -> re.Pattern:
    return re.compile(re.escape(f".{_sibling_stem(dest)}{_TMP_TAG}") + r"[0-9a-f]{16}")


def _lock_path(dest: Path) -> Path:
    return dest.parent / f".{_sibling_stem(dest)}{_LOCK_TAG}"


def _make_work_dir(dest: Path) -> Path:
    while True:
        work = dest.parent / f".{_sibling_stem(dest)}{_TMP_TAG}{secrets.token_hex(8)}"
        try:
            os.mkdir(work, 0o700)
            break
        except FileExistsError:
            continue
    try:
        (work / _MARKER).write_text("semcore_hf staging folder; safe to delete when no save is running.\n")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return work


def _leftovers(dest: Path) -> list[Path]:
    """Staging folders of `dest` (by name; `_recover` checks the marker before deleting anything)."""
    pattern = _work_pattern(dest)
    try:
        names = os.listdir(dest.parent)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(dest.parent / n for n in names if pattern.fullmatch(n) and (dest.parent / n).is_dir())


def _pending(dest: Path) -> list[Path]:
    """Complete new versions of `dest` left by a fallback swap killed between its two renames."""
    if os.path.lexists(dest):
        return []
    return [
        w / _NEW for w in _leftovers(dest) if (w / _MARKER).is_file() and (w / _OLD).is_dir() and (w / _NEW).is_dir()
    ]


def _recover(dest: Path, cleanup: bool) -> None:
    """Finish a fallback swap that was killed half way; with `cleanup`, delete staging folders of dead writers.

    Called with the lock held, so no live writer owns any staging folder of `dest`.
    """
    for work in _leftovers(dest):
        if not (work / _MARKER).is_file():
            if cleanup:
                try:
                    os.rmdir(work)  # a writer killed between creating it and marking it: empty
                except OSError:
                    pass  # not empty and not marked: not recognisably ours, leave it
            continue
        if not os.path.lexists(dest) and (work / _OLD).is_dir() and (work / _NEW).is_dir():
            # `old` is only moved aside once `new` is complete and durable: move `new` into place
            os.rename(work / _NEW, dest)
            _fsync_dir(dest.parent)
            logger.warning("Finished an interrupted save of %s (from %s).", dest, work.name)
        if cleanup:
            try:
                _remove_work_dir(work)
                logger.info("Removed %s, left by an interrupted save of %s.", work.name, dest)
            except OSError as e:
                logger.warning("Could not remove %s, left by an interrupted save of %s: %s", work, dest, e)


def _remove_work_dir(work: Path) -> None:
    """Delete a staging folder, its marker last: a process killed meanwhile leaves it still recognisably ours."""
    with os.scandir(work) as it:
        entries = [e for e in it if e.name != _MARKER]
    for e in entries:
        if e.is_dir(follow_symlinks=False):
            shutil.rmtree(e.path, ignore_errors=True)
        else:
            os.unlink(e.path)
    (work / _MARKER).unlink(missing_ok=True)
    os.rmdir(work)


@contextmanager
def _locked(dest: Path) -> Iterator[None]:
    """Hold an exclusive `flock` on `dest`'s sibling lock file (serialises writers across processes)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no cross-process lock
        yield
        return
    lock = _lock_path(dest)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                logger.info("Waiting for another process that is saving %s", dest)
                fcntl.flock(fd, fcntl.LOCK_EX)
            # The holder before us unlinks the file when it is done: only the file still at the path is the lock.
            held = os.fstat(fd)
            try:
                current = os.stat(lock)
            except FileNotFoundError:
                current = None
        except BaseException:
            os.close(fd)
            raise
        if current is not None and (current.st_ino, current.st_dev) == (held.st_ino, held.st_dev):
            break
        os.close(fd)
    try:
        yield
    finally:
        # unlink while still holding the lock, so no waiter can lock a file that is no longer at the path
        try:
            os.unlink(lock)
        except FileNotFoundError:
            pass
        os.close(fd)


def _tree(top: Path) -> tuple[list[str], list[str]]:
    """Relative POSIX paths of the non-folder entries and of the folders under `top` (links not followed)."""
    files, dirs = [], []
    stack = [("", top)]
    while stack:
        rel, d = stack.pop()
        with os.scandir(d) as it:
            for e in it:
                r = rel + e.name
                if e.is_dir(follow_symlinks=False):
                    dirs.append(r)
                    stack.append((r + "/", Path(e.path)))
                else:
                    files.append(r)
    return sorted(files), sorted(dirs)


def _complete_stage(
    dest: Path, stage: Path, kind: str, format_version: int, legacy_files: Callable[[Path], Iterable[str]] | None
) -> None:
    """Carry the files of `dest` that stay, write the manifest, fsync everything in `stage`."""
    written, _ = _tree(stage)
    if MANIFEST_FILE in written:
        raise ValueError(f"{MANIFEST_FILE} is reserved for semcore_hf's manifest; an artefact cannot write it.")
    old = read_manifest(dest) if dest.is_dir() else None
    arts: dict[str, Any] = dict(old["artefacts"]) if old else {}
    others = {f: k for k, e in arts.items() if k != kind for f in e["files"]}
    if kind in arts:
        own = set(arts[kind]["files"])
    elif legacy_files is not None and dest.is_dir():
        own = set(legacy_files(dest)) - set(others)
    else:
        own = set()
    copied = _carry(dest, stage, kind, own, others) if dest.is_dir() else []
    arts.pop(kind, None)
    arts[kind] = {"format_version": int(format_version), "files": written}
    manifest = {"manifest_version": MANIFEST_VERSION, "library": "semcore_hf", "artefacts": arts}
    (stage / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for rel in [*written, *copied, MANIFEST_FILE]:
        if not (stage / rel).is_symlink():
            _fsync_file(stage / rel)
    _, dirs = _tree(stage)
    for rel in sorted(dirs, key=lambda r: r.count("/"), reverse=True):
        _fsync_dir(stage / rel)
    _fsync_dir(stage)


def _carry(dest: Path, stage: Path, kind: str, own: set[str], others: dict[str, str]) -> list[str]:
    """Link every file of `dest` that is not the old version's own into `stage`; returns the ones copied."""
    files, dirs = _tree(dest)
    device = os.lstat(dest).st_dev
    for rel in dirs:
        if os.lstat(dest / rel).st_dev != device:
            raise ArtefactConflictError(
                f"{dest / rel} is a mount point inside {dest}: an artefact folder is replaced as a whole, so it "
                "cannot hold other filesystems. Save the artefact into a folder of its own."
            )
    keep = [rel for rel in files if rel != MANIFEST_FILE and rel not in own]  # own files: replaced (or stale)
    clashes = [rel for rel in keep if _occupied(stage, rel)]
    # an empty folder of the user's where the new version has a file
    clashes += [
        r for r in dirs if not os.listdir(dest / r) and os.path.lexists(stage / r) and not (stage / r).is_dir()
    ]
    if clashes:
        named = ", ".join(
            f"{rel} ({'of the ' + others[rel] + ' saved there' if rel in others else 'not written by semcore_hf'})"
            for rel in clashes[:5]
        )
        more = f" and {len(clashes) - 5} more" if len(clashes) > 5 else ""
        raise ArtefactConflictError(
            f"Not saving the {kind} into {dest}: it would overwrite {named}{more}. Save into another folder, or move "
            "those files away yourself."
        )
    copied = []
    for rel in keep:
        target = stage / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if _link_or_copy(dest / rel, target):
            copied.append(rel)
    for rel in dirs:
        src, target = dest / rel, stage / rel
        if not os.path.lexists(target) and not os.listdir(src):
            target.mkdir(parents=True)  # an empty folder of the user's
        if target.is_dir() and not target.is_symlink():
            os.chmod(target, stat.S_IMODE(os.lstat(src).st_mode))
    os.chmod(stage, stat.S_IMODE(os.lstat(dest).st_mode))
    if keep:
        logger.debug("Carried %d files of %s into its new version.", len(keep), dest)
    return copied


def _occupied(stage: Path, rel: str) -> bool:
    """Whether the new version already has `rel`, or a file where one of its parent folders would go."""
    parts = rel.split("/")
    for i in range(1, len(parts)):
        p = stage.joinpath(*parts[:i])
        if os.path.lexists(p) and not (p.is_dir() and not p.is_symlink()):
            return True
    return os.path.lexists(stage / rel)


def _link_or_copy(src: Path, dst: Path) -> bool:
    """Hard-link `src` to `dst` (a symlink is re-created); copy where links are impossible. True if copied."""
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
        return False
    try:
        os.link(src, dst, follow_symlinks=False)
        return False
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)
        return True


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # pragma: no cover - platforms that cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - filesystems that refuse fsync on folders
        pass
    finally:
        os.close(fd)


def _commit(work: Path, stage: Path, dest: Path) -> None:
    """Put the complete, durable `stage` at `dest` in one atomic step (see the module docstring)."""
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = None
    if not os.path.lexists(dest):
        os.rename(stage, dest)
    elif not _exchange(stage, dest):
        # No exchange on this filesystem: two renames. A kill between them leaves `dest` missing and the complete
        # new version in `work/new` beside `work/old`, which `_recover` moves into place.
        os.rename(dest, work / _OLD)
        try:
            os.rename(stage, dest)
        except BaseException:
            os.rename(work / _OLD, dest)
            raise
    _fsync_dir(dest.parent)
    # A process whose working directory was inside the old folder would be left in a deleted folder.
    if cwd is not None and (cwd == str(dest) or cwd.startswith(str(dest) + os.sep)) and os.path.isdir(cwd):
        os.chdir(cwd)


def _discard(work: Path, dest: Path) -> None:
    """Remove the staging folder after a save (or a failed one), never leaving `dest` missing."""
    if not os.path.lexists(dest) and (work / _OLD).is_dir():
        os.rename(work / _OLD, dest)  # interrupted between the two renames of the fallback: put the old one back
    try:
        _remove_work_dir(work)
    except OSError as e:  # the save itself is complete (or failed for its own reason): only warn
        logger.warning("Could not remove the staging folder %s: %s", work, e)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 1 << 1  # linux/fs.h
_RENAME_SWAP = 0x00000002  # macOS sys/stdio.h
# errno values meaning "this kernel / filesystem cannot exchange": fall back to two renames
_NO_EXCHANGE = {errno.EINVAL, errno.ENOSYS, errno.EPERM, getattr(errno, "ENOTSUP", -1), errno.EOPNOTSUPP}


@functools.lru_cache(maxsize=1)
def _swap_function() -> Any:
    if sys.platform.startswith("linux"):
        name, argtypes = "renameat2", [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    elif sys.platform == "darwin":
        name, argtypes = "renamex_np", [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint]
    else:
        return None
    try:
        fn = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):  # e.g. glibc < 2.28, musl
        return None
    fn.argtypes, fn.restype = argtypes, ctypes.c_int
    return fn


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange the folders `a` and `b`; `False` where the platform or filesystem cannot."""
    fn = _swap_function()
    if fn is None:
        return False
    if sys.platform == "darwin":  # pragma: no cover - exercised on macOS only
        rc = fn(os.fsencode(a), os.fsencode(b), _RENAME_SWAP)
    else:
        rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in _NO_EXCHANGE:
        logger.debug("No atomic exchange for %s (%s): falling back to two renames.", b, os.strerror(err))
        return False
    raise OSError(err, os.strerror(err), str(b))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same directory, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        # mkstemp creates 0600; give the file the permissions an ordinary `open(path, "wb")` would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """`atomic_write_bytes` of `text` encoded as UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))
