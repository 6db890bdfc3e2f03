"""Writing output files: checked before any work is done, and written so that a failure never
leaves a partial file behind.

What an output path may be (README, "The command line"): an ordinary file, new or replaced,
in a folder that can be written. It may not be an input of the same command (in any
spelling), a folder, a device or other special file, a path under /proc, /sys or /dev, or a
symbolic link: replacing a link and writing through it would each surprise someone, so xgraph
does neither and names the link's target. Missing parent folders are created; the caller is
told which (`OutputPlan.new_folders`), so the command line can say so. A new file gets the
mode any program's `open(path, "w")` gives it (0666 less the umask: 0644 usually), whichever
library wrote it; a replaced file keeps its mode.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from xgraph.errors import FileError

SYSTEM_FOLDERS = ("/proc", "/sys", "/dev")  # kernel and device file systems, never outputs
_SPECIAL_FILES = (
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
)


@dataclass(frozen=True)
class OutputPlan:
    """An output path that passed the checks, and the folders writing it will create."""

    path: Path
    new_folders: tuple[Path, ...] = field(default=())

    def folders_note(self) -> str | None:
        """What to tell the user before writing, since a typo in a folder name would
        otherwise pass unnoticed: `creating folder 'out'`."""
        if not self.new_folders:
            return None
        names = ", ".join(f"'{folder}'" for folder in self.new_folders)
        return f"creating folder{'s' if len(self.new_folders) > 1 else ''} {names}"


def spec_inputs(spec: str | Path, read_from: Iterable[str]) -> list[tuple[str, str | Path]]:
    """The files a command read its graph from: the spec, and the specs it extends (the
    files its nodes were written in, `read_from`), for `check_output`."""
    files = dict.fromkeys([str(spec), *read_from])
    return [("the spec" if file == str(spec) else "a spec it extends", file) for file in files]


def output_error(path: str | Path, message: str, hint: str | None = None) -> FileError:
    return FileError(path, message, hint=hint)


def check_output(
    output: str | Path, inputs: Iterable[tuple[str, str | Path | None]] = ()
) -> OutputPlan:
    """Refuse an output path before any work is done, rather than after a long build.

    `inputs` are (what, path) for every file the command reads, such as ("the spec",
    "net.yaml"): the output may be none of them, however spelled."""
    text = str(output)
    if not text:
        raise output_error("-o", "the output path is empty")
    path = Path(text)
    if text.endswith(os.sep) and not path.is_dir():
        raise output_error(
            text, "this names a folder, not a file", hint=f"name a file in it: {text}NAME"
        )
    _check_kind(path, text)
    _check_not_an_input(path, text, inputs)
    _check_not_a_system_path(path, text)
    return OutputPlan(path, _new_folders(path, text))


def check_output_folder(output: str | Path, inputs: Iterable[tuple[str, str | Path]] = ()) -> None:
    """Refuse a folder a command will write many files into (`xgraph train --out`) before
    any work: it must be a folder or absent, outside the system folders, writable, and not
    inside any of the folders `inputs` names (a run's checkpoints inside its own image
    folder would read as a class the next time)."""
    text = str(output)
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise output_error(text, "this is a file, not a folder", hint="give a folder for --out")
    _check_not_a_system_path(path, text)
    real = os.path.realpath(path)
    for what, given in inputs:
        folder = os.path.realpath(given)
        if real == folder or real.startswith(folder.rstrip(os.sep) + os.sep):
            raise output_error(
                text,
                f"this is inside {what} ('{given}'): what the command writes here would be "
                "read back as part of it",
                hint="choose a folder outside it",
            )
    if not path.exists():
        _new_folders(path, text)


def _check_kind(path: Path, shown: str) -> None:
    """The path is absent or an ordinary file: not a link, a folder or a special file.
    Errors name it as the user wrote it (`shown`)."""
    try:
        status = path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return  # nothing there yet (a file above it is reported with the folders)
    except OSError as exc:
        raise output_error(shown, f"cannot use this path: {exc.strerror}") from None
    if stat.S_ISLNK(status.st_mode):
        target = os.readlink(path)
        raise output_error(
            shown,
            f"this is a symbolic link (to '{target}'): xgraph neither replaces a link nor "
            "writes through it",
            hint=f"write to '{target}' itself, or remove the link first",
        )
    if stat.S_ISDIR(status.st_mode):
        raise output_error(
            shown, "this is a folder, not a file", hint=f"name a file in it: {path / 'NAME'}"
        )
    for is_kind, kind in _SPECIAL_FILES:
        if is_kind(status.st_mode):
            raise output_error(shown, f"this is {kind}, not an ordinary file")


def _check_not_an_input(
    path: Path, shown: str, inputs: Iterable[tuple[str, str | Path | None]]
) -> None:
    if not path.exists():
        return  # a file that does not exist cannot be an input
    for what, given in inputs:
        if given is None:
            continue
        with contextlib.suppress(OSError):
            if os.path.samefile(path, given):
                raise output_error(
                    shown,
                    f"this is {what} ('{given}'), an input of this command: writing it would "
                    "destroy it",
                    hint="choose another output path",
                )


def _check_not_a_system_path(path: Path, shown: str) -> None:
    real = os.path.realpath(path)
    for folder in SYSTEM_FOLDERS:
        if real == folder or real.startswith(folder + os.sep):
            raise output_error(
                shown,
                f"this is inside {folder}, a system folder: xgraph writes ordinary files only",
                hint="write to a folder of your own",
            )


def _new_folders(path: Path, shown: str) -> tuple[Path, ...]:
    """The missing folders above `path`, outermost first, once the nearest existing one is
    known to be a folder xgraph can write in."""
    missing: list[Path] = []
    folder = path.parent
    while not os.path.lexists(folder) and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    if not folder.is_dir():
        raise output_error(shown, f"cannot write here: '{folder}' is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise output_error(
            shown,
            f"cannot write here: the folder '{folder}' is not writable",
            hint="choose a folder you can write in",
        )
    return tuple(reversed(missing))


def _mode_for(path: Path) -> int:
    """The mode a replaced file keeps, or the one a new file gets (0666 less the umask)."""
    with contextlib.suppress(OSError):
        return stat.S_IMODE(path.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


# OSError numbers that say something about the place written to, not about xgraph.
_PLACE_ERRORS = frozenset(
    {
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EFBIG,
        errno.ENAMETOOLONG,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.ENOENT,
        errno.EEXIST,
        errno.EIO,
        errno.EXDEV,
    }
)


@contextlib.contextmanager
def _cannot_write(path: Path) -> Iterator[None]:
    """An OS refusal to write `path` (permissions, a full disk, a read-only file system) as
    the user's error, naming the path, rather than a traceback."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _PLACE_ERRORS:
            raise
        raise output_error(path, f"cannot write this file: {exc.strerror}") from None


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside `path`, moved onto it only if the block succeeds.

    Every artifact is written through here, so the checks of `check_output` (but the one
    against the command's inputs) hold for callers of the Python API too, and every file gets
    the same mode, even from a library that replaces the temporary file with its own (as
    safetensors does, making it 0600)."""
    path = Path(path)
    plan = check_output(path)
    mode = _mode_for(path)
    # The temporary name keeps the last suffixes, which some savers insist on (.weights.h5),
    # and stays short, whatever the length of the final name.
    suffix = "".join(path.suffixes[-2:])[-40:]
    temporary = None
    published = False
    created: list[Path] = []
    try:
        with _cannot_write(path):
            for folder in plan.new_folders:
                if not folder.is_dir():
                    folder.mkdir()
                    created.append(folder)
            handle, temporary = tempfile.mkstemp(
                prefix=f".{path.name[:40]}.", suffix=suffix, dir=path.parent
            )
            os.close(handle)
            yield Path(temporary)
            os.chmod(temporary, mode)
            _check_kind(path, str(path))  # nothing became a link or a folder meanwhile
            os.replace(temporary, path)
            published = True
    finally:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)
        if not published:  # leave the file system as it was: no new empty folders either
            for folder in reversed(created):
                with contextlib.suppress(OSError):
                    folder.rmdir()


def write_atomically(path: Path, data: bytes) -> None:
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def save_atomically(path: Path, save: Callable[[Path], None]) -> None:
    """Let a library's own `save(path)` write the file, then publish it in one step."""
    with atomic_path(path) as temporary:
        save(temporary)
