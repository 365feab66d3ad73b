"""Filesystem helpers: atomic writes, exclusive publication of output directories, checksums.

Temp files and directories are named ``.NAME.tmp-HOST-PID-RANDOM`` beside their target, so a
later writer can tell those of a dead process on this host (killed mid-write) from those of a
live one, and removes them (:func:`clean_stale`) before it writes NAME itself.

An output directory is built in a temp directory and then published (:func:`publish_dir`):
- a new target appears in one ``renameat2(RENAME_NOREPLACE)``: if another writer published
  the same target meanwhile, this one fails and removes its temp directory, nothing replaced;
- ``force`` swaps the complete new directory with the old one in one
  ``renameat2(RENAME_EXCHANGE)`` and only then deletes the old one, so the target is never
  missing and never partial.
Without renameat2 (not Linux, or a filesystem without it) the same checks run under a mkdir
lock ``.NAME.publishing``; ``force`` then moves the old directory aside to ``.NAME.old-...``
before moving the new one in: a kill in between leaves the target missing until the next
write to it, which first moves the old directory back (docs/guarantees.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import sys
import time
from pathlib import Path

from groklab.errors import GroklabError, bad_value

HOST = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "host"
_OWNER = re.compile(r"^(?P<host>.+)-(?P<pid>\d+)-(?P<rand>[A-Za-z0-9]+)$")
STALE_LOCK_S = 10.0  # a publish lock without its owner file for this long: its maker died
AT_FDCWD, RENAME_NOREPLACE, RENAME_EXCHANGE = -100, 1, 2
LOCK_WAIT_S = 30.0


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_json(obj) -> str:
    """Hex sha256 of the canonical JSON of ``obj`` (sorted keys, no spaces)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def read_yaml(path: str | os.PathLike, what: str):
    """The parsed YAML file ``path``; GroklabError ``<what> <path>: cannot read it as YAML
    (<reason>)`` for an unreadable, non-UTF-8, malformed or absurdly nested file."""
    import yaml

    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, UnicodeDecodeError):
            reason = f"not UTF-8 text: {exc.reason} at byte {exc.start}"
        raise GroklabError(f"{what} {path}: cannot read it as YAML ({reason})") from None


# ---------------------------------------------------------------- temp names and cleanup

def temp_name(name: str, kind: str = "tmp") -> str:
    """``.NAME.KIND-HOST-PID-RANDOM``: a temp sibling of NAME owned by this process."""
    return f".{name}.{kind}-{HOST}-{os.getpid()}-{secrets.token_hex(4)}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid < 2**31  # exists but not ours (OverflowError: not a pid at all)
    return True


def _dead_owner(rest: str) -> bool:
    m = _OWNER.match(rest)
    return bool(m) and m["host"] == HOST and not _pid_alive(int(m["pid"]))


def clean_stale(directory: str | os.PathLike, name: str) -> None:
    """Remove temp siblings of ``directory/name`` left by dead processes on this host; an
    ``.old`` copy whose target is missing (a ``force`` killed mid-swap) is moved back first."""
    directory = Path(directory)
    try:
        entries = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return
    target = directory / name
    if f".{name}.publishing" in entries and _stale_lock(directory / f".{name}.publishing"):
        shutil.rmtree(directory / f".{name}.publishing", ignore_errors=True)
    for entry in sorted(entries, key=lambda e: ".old-" not in e):  # restores first
        for kind in ("old", "tmp"):
            prefix = f".{name}.{kind}-"
            if not entry.startswith(prefix) or not _dead_owner(entry[len(prefix):]):
                continue
            path = directory / entry
            if kind == "old" and not os.path.lexists(target):
                with contextlib.suppress(OSError):
                    os.rename(path, target)
                    continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)


# ---------------------------------------------------------------- atomic files

def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same directory and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path.parent, path.name)
    tmp = path.parent / temp_name(path.name)
    # O_EXCL: never through an existing file or link; the mode follows the umask
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=False) + "\n")


# ---------------------------------------------------------------- output directories

def real_target(out: str | os.PathLike) -> Path:
    """The directory an output path names: a symlink is followed (its target is written, the
    link stays), so publishing never replaces the link itself."""
    out = Path(out)
    return Path(os.path.realpath(out)) if out.is_symlink() else out


def check_output_dir(out: str | os.PathLike, force: bool = False) -> Path:
    """Fail early, before any work, if ``out`` would be refused; return the real target.

    Refused: a path through a file, a file, a non-empty directory (unless ``force``), a
    parent that cannot be written. Stale temp siblings of dead writers are cleaned first."""
    out = real_target(out)
    ancestor = out.parent
    while not ancestor.exists():
        if ancestor.is_symlink() or ancestor == ancestor.parent:
            break
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise bad_value("out", str(out), f"a directory path ({ancestor} is a file)")
    clean_stale(out.parent, out.name)
    if out.exists() and not out.is_dir():
        raise bad_value("out", str(out), "a directory path (this is a file)")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise GroklabError(f"out={str(out)!r} already exists and is not empty (use --force to "
                           "replace it)")
    if ancestor.is_dir() and not os.access(ancestor, os.W_OK | os.X_OK):
        raise bad_value("out", str(out), f"a path in a writable directory ({ancestor} is not "
                        "writable)")
    return out


@contextlib.contextmanager
def atomic_output_dir(out: str | os.PathLike, force: bool = False):
    """Yield a temp directory that becomes ``out`` only if the block finishes.

    An existing non-empty ``out`` is refused unless ``force``; with ``force`` it is replaced
    only after the new contents are complete (:func:`publish_dir`). On any error the temp
    directory (and any parent directory this call created) is removed and ``out`` is left
    exactly as it was; if another writer published ``out`` meanwhile, this one fails.
    """
    out = check_output_dir(out, force)
    created = _make_parents(out.parent)
    try:
        tmp = out.parent / temp_name(out.name)
        os.mkdir(tmp)  # the mode follows the umask
    except BaseException:
        _remove_empty(created)
        raise
    try:
        yield tmp
        publish_dir(tmp, out, force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(created)
        raise


def publish_dir(tmp: Path, out: Path, force: bool = False) -> None:
    """Move the complete directory ``tmp`` to ``out``: exclusively (fail if ``out`` appeared
    meanwhile), or with ``force`` by an exchange that never leaves ``out`` missing."""
    if os.path.lexists(out) and out.is_dir() and not out.is_symlink() and not any(out.iterdir()):
        try:
            os.rmdir(out)  # an empty directory prepared by the user: take its place
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                raise
    if not os.path.lexists(out):
        if not _renameat2(tmp, out, RENAME_NOREPLACE):
            with _publish_lock(out):
                if os.path.lexists(out):
                    raise _appeared(out)
                os.rename(tmp, out)
        return
    if not force or not out.is_dir() or out.is_symlink():
        raise _appeared(out)
    if _renameat2(tmp, out, RENAME_EXCHANGE):
        shutil.rmtree(tmp)  # now holds the old directory
        return
    with _publish_lock(out):
        old = out.parent / temp_name(out.name, "old")
        os.rename(out, old)   # the documented window: a kill here leaves `out` missing until
        os.rename(tmp, out)   # the next write to it moves `old` back (clean_stale)
    shutil.rmtree(old, ignore_errors=True)


def _appeared(out: Path) -> GroklabError:
    return GroklabError(f"out={str(out)!r} appeared meanwhile (another process wrote it while "
                        "this one was working); it was left as it is and nothing was published")


def _load_renameat2():
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


RENAMEAT2 = _load_renameat2()  # None: use the lock-based fallback


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """renameat2(src, dst, flags); False when the system or filesystem lacks it."""
    if RENAMEAT2 is None:
        return False
    if RENAMEAT2(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    if err in (errno.EEXIST, errno.ENOTEMPTY) and flags == RENAME_NOREPLACE:
        raise _appeared(dst)
    raise OSError(err, os.strerror(err), os.fsdecode(src), None, os.fsdecode(dst))


@contextlib.contextmanager
def _publish_lock(out: Path):
    """A mkdir lock ``.NAME.publishing`` (holder in ``owner``) serialising the publish steps of
    every groklab writer of ``out``; a dead holder's lock is taken over."""
    lock = out.parent / f".{out.name}.publishing"
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            os.mkdir(lock)
            break
        except FileExistsError:
            if _stale_lock(lock):
                shutil.rmtree(lock, ignore_errors=True)
                continue
            if time.monotonic() > deadline:
                raise GroklabError(f"out={str(out)!r}: another process is publishing it ({lock} "
                                   "exists); retry when it is done") from None
            time.sleep(0.05)
    try:
        (lock / "owner").write_text(f"{HOST}-{os.getpid()}-0\n")
        yield
    finally:
        shutil.rmtree(lock, ignore_errors=True)


def _stale_lock(lock: Path) -> bool:
    """A publish lock whose owner died (or never wrote its name, long ago)."""
    try:
        owner = (lock / "owner").read_text().strip()
    except OSError:
        try:
            return time.time() - lock.stat().st_mtime > STALE_LOCK_S
        except OSError:
            return False
    return _dead_owner(owner)


def _make_parents(path: Path) -> list[Path]:
    """mkdir -p ``path``; return the directories created, deepest first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(d)
    return missing


def _remove_empty(dirs: list[Path]) -> None:
    for d in dirs:
        try:
            os.rmdir(d)
        except OSError:
            break
