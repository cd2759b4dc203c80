"""Safe output files: the one way every ``packrat`` writer puts a file on disk.

Every writer (profile JSON and CSV, plan file, ``simulate --out``, histories, HTML reports,
replay files, bench reports) goes through :func:`write_file` (or :func:`write_text` /
:func:`write_json`), which guarantees:

* **Only regular files are replaced.** A target that exists and is a directory, a device
  node, a FIFO or a socket is refused (:class:`OutputPathError`, one line naming it): the
  toolkit never turns ``/dev/null`` into a regular file or blocks on a FIFO.
* **No symlink is followed unasked.** A target that is a symbolic link (dangling or not)
  is refused with a line saying so, unless the caller passes ``follow_symlinks=True``;
  then the link's final target is written (and must itself be a regular file or absent).
* **Missing parent directories are refused**, never created: the error names the missing
  directory ("create it first"). This is the toolkit's single rule for every verb. An
  output *directory* (``simulate --out DIR``, ``bench --out DIR``) is created by
  :func:`prepare_output_dir` when its parent exists.
* **Atomic.** The data goes to a temp file in the target's directory, is flushed and
  fsync'ed, then renamed over the target: a reader sees the old file or the new one,
  never half of one.
* **Mode.** A new file gets the mode the umask gives (``0o666 & ~umask``), not
  ``mkstemp``'s 0600; replacing an existing regular file keeps that file's permission bits.
* **No temp file is left behind.** It is removed on every exit path: exceptions,
  ``KeyboardInterrupt`` (SIGINT) and SIGTERM (received during the write, the handler
  removes the temp file and the process then dies of the signal as it would have).
  A SIGKILL cannot be caught; temp files are therefore named
  ``.packrat-tmp-<pid>-<random>.<target name>``, and the next write of the same target
  removes those whose process is dead.

Use :func:`check_output_path` to validate an output path *before* long work (a run, a
profile), so that a bad ``--history`` / ``--out`` fails in a second, not after the run.

Three more tools follow the same rules:

* :func:`write_files` writes a **set** of files into one directory all or nothing: every file
  is staged as a temp file (written and fsync'ed) before any is renamed into place, so a full
  disk leaves the old set (or none), never half of a new one; the error names what was not
  written.
* :func:`open_regular` opens a file for reading or appending (a results table that grows as
  runs finish) without following a symlink or blocking on a FIFO.
* :func:`output_lock` makes a writer that shares its target with other processes (two sweeps
  into one directory, two ``profile --out`` of one file) exclusive: the second one is refused
  at once with :class:`OutputBusyError` naming the process that holds the target, so no
  process silently loses the other's work. The lock is ``flock`` on a hidden
  ``.packrat-lock-<name>`` file beside a file target (``.packrat-lock`` inside a directory
  target), removed on release; a killed holder's lock is released by the kernel.

Reading is :mod:`packrat_sim.inputs`'s (regular files, bounded, strict JSON).

Pure standard library; imports nothing else from the toolkit (packrat_sim is the lowest
layer, so checker, real_runner and ui may all import this module).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import signal
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from packrat_sim.errors import PackratError
from packrat_sim.inputs import file_kind

__all__ = [
    "LOCK_PREFIX",
    "TEMP_PREFIX",
    "OutputBusyError",
    "OutputPathError",
    "check_output_path",
    "lock_path",
    "open_regular",
    "output_lock",
    "prepare_output_dir",
    "remove_stale_temps",
    "write_file",
    "write_files",
    "write_json",
    "write_text",
]

TEMP_PREFIX = ".packrat-tmp-"
LOCK_PREFIX = ".packrat-lock-"

PathLike = str | os.PathLike[str]
Data = str | bytes | Callable[[Any], None]


class OutputPathError(OSError, PackratError):
    """An output path cannot be written safely. The message is one line naming the path.

    An ``OSError`` (so existing ``except OSError`` handlers keep working) and a
    ``ValueError`` (it is bad input: the CLI answers exit 2)."""


class OutputBusyError(OutputPathError):
    """Another process is writing the same target (:func:`output_lock`); the message names it."""


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise OutputPathError(f"{path!r}: a component of the path is not a directory") from None
    except OSError as exc:
        raise OutputPathError(f"cannot inspect {path!r}: {exc.strerror or exc}") from None


def check_output_path(path: PathLike, what: str = "output file", *, follow_symlinks: bool = False) -> str:
    """Validate that ``path`` can be written by :func:`write_file`, without writing anything.

    Returns the path that will actually be written (the link's target when
    ``follow_symlinks``). Raises :class:`OutputPathError` (one line naming ``what`` and the
    path) when the path is empty, is a symlink (unless ``follow_symlinks``), exists and is
    not a regular file, or its parent directory is missing, not a directory or not
    writable. Reads the file system only.
    """
    raw = os.fspath(path)
    if not isinstance(raw, str) or raw == "" or "\x00" in raw:
        raise OutputPathError(f"{what} path {raw!r} is not a usable file name")
    st = _lstat(raw)
    target = raw
    if st is not None and stat.S_ISLNK(st.st_mode):
        if not follow_symlinks:
            dest = os.readlink(raw)
            raise OutputPathError(
                f"{what} {raw!r} is a symbolic link (to {dest!r}); packrat follows no symlink: "
                f"give the real path instead"
            )
        target = os.path.realpath(raw)
        st = _lstat(target)
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise OutputPathError(f"{what} {raw!r} is {file_kind(st.st_mode)}, not a regular file; refusing to replace it")
    parent = os.path.dirname(os.path.abspath(target))
    _check_parent(parent, what, raw)
    return target


def _check_parent(parent: str, what: str, raw: str) -> None:
    if not os.path.exists(parent):
        raise OutputPathError(
            f"the directory {parent!r} of {what} {raw!r} does not exist; create it first "
            f"(packrat creates no parent directories)"
        )
    if not os.path.isdir(parent):
        raise OutputPathError(f"{parent!r} (parent of {what} {raw!r}) is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"the directory {parent!r} of {what} {raw!r} is not writable")


def prepare_output_dir(path: PathLike, what: str = "output directory", *, create: bool = True) -> str:
    """Validate (and with ``create``, make) an output directory; returns its path.

    The directory itself may be missing (it is created, mode from the umask), but its
    parent must exist: the same rule as for files. Refuses a path that is a symlink or
    exists and is not a directory. Raises :class:`OutputPathError`.
    """
    raw = os.fspath(path)
    if not isinstance(raw, str) or raw == "" or "\x00" in raw:
        raise OutputPathError(f"{what} {raw!r} is not a usable directory name")
    st = _lstat(raw)
    if st is not None and stat.S_ISLNK(st.st_mode):
        raise OutputPathError(
            f"{what} {raw!r} is a symbolic link (to {os.readlink(raw)!r}); packrat follows no symlink: "
            f"give the real path instead"
        )
    if st is not None:
        if not stat.S_ISDIR(st.st_mode):
            raise OutputPathError(f"{what} {raw!r} exists and is {file_kind(st.st_mode) if not stat.S_ISREG(st.st_mode) else 'a regular file'}, not a directory")
        if not os.access(raw, os.W_OK | os.X_OK):
            raise OutputPathError(f"{what} {raw!r} is not writable")
        return raw
    _check_parent(os.path.dirname(os.path.abspath(raw.rstrip(os.sep) or raw)), what, raw)
    if create:
        try:
            os.mkdir(raw)
        except FileExistsError:
            return prepare_output_dir(raw, what, create=False)
        except OSError as exc:
            raise OutputPathError(f"cannot create {what} {raw!r}: {exc.strerror or exc}") from None
    return raw


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    except OSError:
        return True
    return True


def _temp_pid(name: str) -> int | None:
    if not name.startswith(TEMP_PREFIX):
        return None
    head = name[len(TEMP_PREFIX):].split("-", 1)[0]
    return int(head) if head.isdigit() else None


def remove_stale_temps(directory: PathLike, target_name: str | None = None) -> list[str]:
    """Remove ``.packrat-tmp-<pid>-…`` files in ``directory`` whose process is dead
    (left by a writer killed with SIGKILL). With ``target_name``, only the temp files of
    that target. Returns the removed paths; never raises for a file it cannot remove."""
    removed: list[str] = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        pid = _temp_pid(name)
        if pid is None or (target_name is not None and not name.endswith("." + target_name)):
            continue
        if pid == os.getpid() or _pid_alive(pid):
            continue
        full = os.path.join(directory, name)
        try:
            if stat.S_ISREG(os.lstat(full).st_mode):
                os.unlink(full)
                removed.append(full)
        except OSError:
            pass
    return removed


class _Signalled(BaseException):
    """Raised inside a write by the temporary SIGTERM/SIGHUP handler."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _die_cleanly_on_signals() -> Iterator[None]:
    """While active (main thread only), SIGTERM and SIGHUP raise :class:`_Signalled` so that
    ``finally`` blocks run; afterwards the old handlers come back and a received signal is
    re-delivered, so the process ends as the signal says. Handlers a program installed
    itself (not the default) are left alone."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is None:
            continue
        try:
            if signal.getsignal(sig) is signal.SIG_DFL:
                saved[sig] = signal.signal(sig, _raise_signalled)
        except (ValueError, OSError):
            pass
    got: int | None = None
    try:
        yield
    except _Signalled as exc:
        got = exc.signum
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)
    if got is not None:
        os.kill(os.getpid(), got)
        raise SystemExit(128 + got)  # pragma: no cover - the signal above ends the process


def _raise_signalled(signum, frame) -> None:
    raise _Signalled(signum)


def _write_error(what: str, raw: str, exc: OSError) -> OutputPathError:
    """The one-line error of an OS error while writing ``what`` ``raw``."""
    if exc.errno == errno.ENOSPC:
        return OutputPathError(f"cannot write {what} {raw!r}: no space left on device")
    return OutputPathError(f"cannot write {what} {raw!r}: {exc.strerror or exc}")


def _stage(target: str, data: Data, what: str, raw: str, pending: list[str]) -> str:
    """Write ``data`` to a new temp file beside ``target`` (flushed, fsync'ed, with the mode
    the target will have) and return its path. The temp path is appended to ``pending``
    as soon as it exists: the caller removes what is left there on its way out."""
    directory = os.path.dirname(os.path.abspath(target))
    base = os.path.basename(target)
    remove_stale_temps(directory, base)
    tmp = os.path.join(directory, f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}.{base}")
    fd = -1
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                         | getattr(os, "O_CLOEXEC", 0), 0o666)  # the umask applies
        except OSError as exc:
            raise _write_error(what, raw, exc) from None
        pending.append(tmp)
        with os.fdopen(fd, "wb") as fh:
            fd = -1
            if callable(data):
                data(fh)
            else:
                fh.write(data.encode("utf-8") if isinstance(data, str) else bytes(data))
            fh.flush()
            os.fsync(fh.fileno())
            old = _lstat(target)
            if old is not None:
                if not stat.S_ISREG(old.st_mode):  # changed under us since the check
                    raise OutputPathError(f"{what} {raw!r} is {file_kind(old.st_mode)}, not a regular file; refusing to replace it")
                os.fchmod(fh.fileno(), stat.S_IMODE(old.st_mode))
    except OutputPathError:
        raise
    except OSError as exc:
        raise _write_error(what, raw, exc) from None
    finally:
        if fd >= 0:
            os.close(fd)
    return tmp


def _unlink_all(paths: list[str]) -> None:
    for tmp in paths:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    paths.clear()


def write_file(path: PathLike, data: Data, what: str = "output file", *, follow_symlinks: bool = False) -> Path:
    """Write ``data`` to ``path`` safely (module doc): refuse non-regular and symlink
    targets and missing parents, write a same-directory temp file, fsync, rename.

    ``data`` is ``str`` (UTF-8), ``bytes``, or a callable ``f(binary_file)`` that writes
    the content itself (for large outputs). Returns the written path. Raises
    :class:`OutputPathError` for an unusable path or an OS error while writing (message
    names the path); the target is then untouched and no temp file remains.
    """
    raw = os.fspath(path)
    target = check_output_path(raw, what, follow_symlinks=follow_symlinks)
    pending: list[str] = []  # the temp file to remove on the way out; emptied once renamed
    with _die_cleanly_on_signals():
        try:
            tmp = _stage(target, data, what, raw, pending)
            try:
                os.replace(tmp, target)
            except OSError as exc:
                raise _write_error(what, raw, exc) from None
            pending.clear()
        finally:
            _unlink_all(pending)
    return Path(target)


def write_files(directory: PathLike, files: Mapping[str, Data] | Iterable[tuple[str, Data]],
                what: str = "output directory") -> list[Path]:
    """Write a set of files into ``directory`` all or nothing (module doc); returns their paths.

    ``files``: ``{name: data}`` (or ``(name, data)`` pairs) with plain file names; ``data``
    as for :func:`write_file`. ``directory`` must exist (:func:`prepare_output_dir`). Every
    target is checked first (:func:`check_output_path`), then every file is staged as a
    temp file (written and fsync'ed); only when all are staged are they renamed into place,
    in order (a rename needs no space). Raises :class:`OutputPathError`: when a file cannot
    be staged (a full disk), naming it and saying that none of the set was written (the
    files already there are untouched, no temp file remains); when a rename fails (the
    directory changed under us), naming the files written and those not.
    """
    root = os.fspath(directory)
    items = list(files.items()) if isinstance(files, Mapping) else list(files)
    names = [name for name, _ in items]
    for name in names:
        if not isinstance(name, str) or name in ("", ".", "..") or os.sep in name or "\x00" in name:
            raise OutputPathError(f"{what} {root!r}: {name!r} is not a plain file name")
    if len(set(names)) != len(names):
        raise OutputPathError(f"{what} {root!r}: a file name is given twice ({', '.join(names)})")
    targets = [check_output_path(os.path.join(root, name), what) for name in names]
    pending: list[str] = []
    with _die_cleanly_on_signals():
        try:
            staged = []
            for (_, data), target in zip(items, targets):
                try:
                    staged.append(_stage(target, data, what, target, pending))
                except OutputPathError as exc:
                    raise OutputPathError(
                        f"{exc}; none of the {len(items)} files of {what} {root!r} was written "
                        f"(the files there are untouched)"
                    ) from None
            done: list[str] = []
            for name, tmp, target in zip(names, staged, targets):
                try:
                    os.replace(tmp, target)
                except OSError as exc:
                    missing = [n for n in names if n not in done]
                    raise OutputPathError(
                        f"cannot write {what} {target!r}: {exc.strerror or exc}; written: "
                        f"{', '.join(done) or 'none'}; not written: {', '.join(missing)}"
                    ) from None
                pending.remove(tmp)
                done.append(name)
        finally:
            _unlink_all(pending)
    return [Path(t) for t in targets]


def write_text(path: PathLike, text: str, what: str = "output file", **kwargs) -> Path:
    """:func:`write_file` for UTF-8 text."""
    return write_file(path, text, what, **kwargs)


def write_json(path: PathLike, obj: Any, what: str = "output file", *, indent: int | None = 1, **kwargs) -> Path:
    """:func:`write_file` of ``json.dumps(obj, indent=indent)`` plus a newline."""
    return write_file(path, json.dumps(obj, indent=indent) + "\n", what, **kwargs)


def _symlink_error(what: str, raw: str) -> OutputPathError:
    try:
        dest = os.readlink(raw)
    except OSError:
        dest = "?"
    return OutputPathError(
        f"{what} {raw!r} is a symbolic link (to {dest!r}); packrat follows no symlink: give the real path instead"
    )


def open_regular(path: PathLike, mode: str = "r", what: str = "file") -> IO[str] | None:
    """Open ``path`` as UTF-8 text (``newline=""``, for csv) without following a symlink and
    without blocking on a FIFO: ``mode`` ``"r"`` reads (None when the file does not exist),
    ``"a"`` appends (the file is created when missing, mode from the umask; its directory
    must exist, as for :func:`write_file`). Raises :class:`OutputPathError` (one line naming
    ``what`` and the path) for a symlink, a file that is not a regular file, or an OS error.
    Appending is not atomic: use it for a log that a reader tolerates cut short (a results
    table whose last line may be partial), :func:`write_file` for everything else."""
    if mode not in ("r", "a"):
        raise ValueError(f"open_regular mode must be 'r' or 'a', not {mode!r}")
    raw = os.fspath(path)
    st = _lstat(raw)
    if st is not None and stat.S_ISLNK(st.st_mode):
        raise _symlink_error(what, raw)
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise OutputPathError(f"{what} {raw!r} is {file_kind(st.st_mode)}, not a regular file; refusing to open it")
    if mode == "a":
        check_output_path(raw, what)
    elif st is None:
        return None
    flags = (os.O_RDONLY if mode == "r" else os.O_WRONLY | os.O_APPEND | os.O_CREAT) | getattr(os, "O_NOFOLLOW", 0) \
        | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(raw, flags, 0o666)
    except FileNotFoundError:
        if mode == "r":
            return None
        raise OutputPathError(f"cannot open {what} {raw!r}: its directory disappeared") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # became a symlink since the check
            raise _symlink_error(what, raw) from None
        if exc.errno == errno.ENOSPC:
            raise OutputPathError(f"cannot write {what} {raw!r}: no space left on device") from None
        raise OutputPathError(f"cannot open {what} {raw!r}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # changed since the check
            raise OutputPathError(f"{what} {raw!r} is {file_kind(st.st_mode)}, not a regular file; refusing to open it")
        return os.fdopen(fd, mode, encoding="utf-8", newline="")
    except BaseException:
        os.close(fd)
        raise


# ------------------------------------------------------------------- locks

_HELD_LOCKS: dict[str, tuple[int, int, int]] = {}  # lock path -> (fd, holding thread, depth)
_HELD_GUARD = threading.Lock()


def lock_path(path: PathLike) -> str:
    """The lock file of a target: ``DIR/.packrat-lock`` inside an existing directory,
    ``.packrat-lock-<name>`` beside a file."""
    raw = os.path.abspath(os.fspath(path))
    st = _lstat(raw)
    if st is not None and stat.S_ISDIR(st.st_mode):
        return os.path.join(raw, LOCK_PREFIX.rstrip("-"))
    return os.path.join(os.path.dirname(raw), LOCK_PREFIX + os.path.basename(raw))


def _read_holder(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _acquire(lock: str, what: str, raw: str) -> int:
    """The fd of ``lock`` with an exclusive flock held (see :func:`output_lock`)."""
    import fcntl

    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
                         | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _symlink_error(f"the lock file of {what}", lock) from None
            raise OutputPathError(f"cannot lock {what} {raw!r} ({lock!r}): {exc.strerror or exc}") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise OutputPathError(f"the lock file {lock!r} of {what} {raw!r} is {file_kind(st.st_mode)}; remove it")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _read_holder(fd)
                who = f"another packrat process (pid {pid})" if pid and pid != os.getpid() else \
                    ("this process" if pid == os.getpid() else "another packrat process")
                raise OutputBusyError(
                    f"{what} {raw!r} is being written by {who}; wait for it to finish or choose another path "
                    f"(two writers of one target would lose one's work)"
                ) from None
            except OSError as exc:
                raise OutputPathError(f"cannot lock {what} {raw!r} ({lock!r}): {exc.strerror or exc}") from None
            now = _lstat(lock)  # the previous holder may have removed the file between open and flock
            if now is None or (now.st_ino, now.st_dev) != (st.st_ino, st.st_dev):
                os.close(fd)
                continue
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return fd
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise


@contextlib.contextmanager
def output_lock(path: PathLike, what: str = "output file") -> Iterator[str]:
    """Hold the writer's lock of ``path`` (a file, or a directory that a writer fills) while
    the block runs; yields the lock file's path.

    A second process (or another thread) asking for the same target is refused at once with
    :class:`OutputBusyError` naming the holder's pid. The same thread may nest the lock
    (a library call inside a command that already holds it). The lock is an ``flock`` on
    :func:`lock_path`, whose file holds the holder's pid and is removed on release; a
    holder killed with SIGKILL releases it with its last file descriptor. Without
    ``fcntl`` (not a POSIX system) the block runs unlocked."""
    raw = os.fspath(path)
    try:
        import fcntl  # noqa: F401
    except ImportError:  # pragma: no cover - not POSIX
        yield ""
        return
    lock = lock_path(raw)
    me = threading.get_ident()
    with _HELD_GUARD:
        held = _HELD_LOCKS.get(lock)
        if held is not None and held[1] == me:
            _HELD_LOCKS[lock] = (held[0], me, held[2] + 1)
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield lock
        finally:
            with _HELD_GUARD:
                fd, owner, depth = _HELD_LOCKS[lock]
                _HELD_LOCKS[lock] = (fd, owner, depth - 1)
        return
    with _HELD_GUARD:
        if lock in _HELD_LOCKS:  # another thread of this process
            raise OutputBusyError(f"{what} {raw!r} is being written by another thread of this process; "
                                  f"wait for it to finish or choose another path")
        fd = _acquire(lock, what, raw)
        _HELD_LOCKS[lock] = (fd, me, 1)
    try:
        yield lock
    finally:
        with _HELD_GUARD:
            _HELD_LOCKS.pop(lock, None)
            with contextlib.suppress(OSError):
                os.unlink(lock)  # while still holding it: see _acquire
            os.close(fd)
