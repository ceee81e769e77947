"""Where a folder source's files are dropped: a local folder, or a prefix on S3-compatible storage.

Both stores answer the same questions with literal names (no glob, no regex: a file
called ``reads_[1].csv`` is that file and only it):

- ``list(sub, known)``: the entries directly under ``sub`` with their type, size and mtime,
  read without following anything, but the files ``known`` already holds unchanged;
- ``open(entry)``: a binary stream on that very entry, or ``Refused``;
- ``fingerprint(subs)``: one digest of what ``list`` would see under ``subs`` (None on object
  storage), by which a folder left whole is recognised (`vigie.sources.base.LISTED`).

Locally, only regular files inside the folder are read. Everything is opened relative to a
descriptor of the folder with ``O_NOFOLLOW``: a symbolic link (to ``/proc/self/environ`` or
anywhere else) is refused without being opened, and so is a subfolder that is a link. A named
pipe, a device or a socket is refused from its type, and ``O_NONBLOCK`` keeps a pipe swapped in
after the listing from blocking the run; the opened file must be the one listed (same inode).
On object storage there are only objects: each is whole once it is visible.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import BinaryIO, NamedTuple


class Refused(Exception):
    """This entry is not read: the message says why, for the quarantine."""


class Gone(Exception):
    """This entry was listed, then removed before it could be opened: nothing was received."""


_REFUSALS = {
    "link": "a symbolic link: not followed (only regular files inside the folder are read)",
    "fifo": "a named pipe, not a file: not read",
    "device": "a device, not a file: not read",
    "socket": "a socket, not a file: not read",
    "other": "not a regular file: not read",
}


class Entry(NamedTuple):
    """One listed entry. A tuple, not a dataclass: a drop folder lists tens of thousands of
    them on every run (90 000 drone files at 20 M events)."""

    name: str  # relative to the drop root, '/'-separated, literal
    kind: str  # file | link | fifo | device | socket | folder | other
    size: int = 0
    mtime_ns: int = 0
    ino: int = 0  # local only: the opened file must be the one listed
    os_name: str | None = None  # local only: the name in its folder, when ``name`` had to spell it (`as_text`)

    def refusal(self) -> str | None:
        return _REFUSALS.get(self.kind)


def _scan(fd: int) -> list[tuple[str, os.stat_result]]:
    """Each entry of the folder open as ``fd``, with its `lstat`, in the folder's order."""
    out = []
    for name in os.listdir(fd):
        try:
            out.append((name, os.stat(name, dir_fd=fd, follow_symlinks=False)))
        except FileNotFoundError:
            continue  # gone between listing and stat: the next run will tell
    return out


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "other"


def as_text(name: str) -> str:
    """A name as the warehouse can hold it. A name that is not UTF-8 (a Latin-1 ``café.csv``
    from an old file share) comes from the OS with each bad byte as a lone surrogate, which no
    UTF-8 text carries: DuckDB, JSON and hashing refused it and the run stopped. Each such
    byte is spelt ``\\xNN`` instead (``reads_caf\\xe9.csv``); a UTF-8 name is kept as it is.
    (A UTF-8 name spelling those very characters in the same folder would share the name:
    escaping every backslash of every name instead would rename files already landed.)"""
    if name.isascii():  # nearly every name: no encoding needed to tell
        return name
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _join(sub: str, name: str) -> str:
    return f"{sub}/{name}" if sub else name


class LocalDrops:
    """A folder on this machine. Files may still be being written: see `settles`."""

    settles = True  # a file's size and mtime must hold still before it is read

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._opened: tuple[str, int] | None = None  # the folder `open` read from last, and its fd
        self._scans: dict[str, list] = {}  # sub → what `fingerprint` read of it, for the `list` after it

    def close(self) -> None:
        self._scans.clear()
        if self._opened:
            os.close(self._opened[1])
            self._opened = None

    def exists(self) -> bool:
        return self.root.is_dir()

    def _dir_fd(self, sub: str) -> int:
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        for part in [p for p in sub.split("/") if p]:
            try:
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            finally:
                os.close(fd)
            fd = nxt
        return fd

    def list(self, sub: str, known: dict | None = None) -> list[Entry]:
        """Entries directly under ``sub``; a ``sub`` that is a link is one refused entry.
        A regular file that ``known`` (name → {"size", "mtime_ns", ...}) holds with its size and
        mtime is left out: at 20 M events nearly all of the 91 000 drone files, each an
        entry built, matched and compared again on every run."""
        scan = self._scans.pop(sub, None)
        if scan is None:
            try:
                fd = self._dir_fd(sub)
            except FileNotFoundError:
                return []
            except OSError:  # ELOOP / ENOTDIR: `sub` is a link or not a folder
                try:
                    st = os.lstat(self.root / sub)
                except OSError:
                    return []
                return [Entry(sub, _kind(st.st_mode))] if not stat.S_ISDIR(st.st_mode) else []
            try:
                scan = _scan(fd)
            finally:
                os.close(fd)
        out = []
        prefix = f"{sub}/" if sub else ""
        for name, st in scan:
            text = name if name.isascii() else as_text(name)  # one call fewer for nearly every name
            if stat.S_ISREG(st.st_mode):
                seen = known.get(prefix + text) if known else None
                if seen and seen["size"] == st.st_size and seen["mtime_ns"] == st.st_mtime_ns:
                    continue
                kind = "file"
            else:
                kind = _kind(st.st_mode)
            out.append(Entry(prefix + text, kind, st.st_size, st.st_mtime_ns, st.st_ino,
                             name if text != name else None))
        return out

    def fingerprint(self, subs: list[str]) -> str | None:
        """One SHA-256 of every entry directly under each of ``subs``: its name, type, size,
        mtime and inode, in the folder's order. The next `list` of each sub uses what was read
        here (its `stat`s are not made twice). None when a sub cannot be listed as a folder."""
        digest = hashlib.sha256()
        for sub in subs:
            try:
                fd = self._dir_fd(sub)
            except OSError:  # missing, a link, not a folder: `list` says what it is
                self._scans.clear()
                return None
            try:
                self._scans[sub] = scan = _scan(fd)
            finally:
                os.close(fd)
            digest.update("".join([f"{sub}\0\n", *(f"{name}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\n"
                                                   for name, st in scan)]).encode("utf-8", "surrogateescape"))
        return digest.hexdigest()

    def open(self, entry: Entry) -> BinaryIO:
        sub, _, name = entry.name.rpartition("/")
        # Files come in name order, so the folder opened for the last one is kept for the next:
        # opening every folder of the path again cost four system calls a file (23 000 at 5 M).
        if not self._opened or self._opened[0] != sub:
            self.close()
            self._opened = (sub, self._dir_fd(sub))
        try:
            fd = os.open(entry.os_name or name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=self._opened[1])
        except FileNotFoundError:
            raise Gone(entry.name) from None
        except OSError as exc:
            raise Refused(f"cannot open the file: {exc.strerror or exc}") from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_ino != entry.ino:
            os.close(fd)
            raise Refused("the file was replaced while it was being read: not read")
        return os.fdopen(fd, "rb")

    def unchanged(self, entry: Entry, f: BinaryIO) -> bool:
        """Whether the file still has the size and mtime it was listed with (after reading it)."""
        st = os.fstat(f.fileno())
        return st.st_size == entry.size and st.st_mtime_ns == entry.mtime_ns


class ObjectDrops:
    """A prefix on S3-compatible storage, through fsspec/s3fs. Objects are written whole."""

    settles = False

    def __init__(self, url: str, *, endpoint_url: str | None = None, key: str | None = None,
                 secret: str | None = None, region: str | None = None) -> None:
        import s3fs

        self.url = url
        self.root = url.split("://", 1)[1].rstrip("/")
        client_kwargs = {"region_name": region} if region else {}
        # Few retries: an unreachable endpoint fails this source, the others still load.
        self.fs = s3fs.S3FileSystem(endpoint_url=endpoint_url, key=key, secret=secret,
                                    client_kwargs=client_kwargs, use_listings_cache=False,
                                    config_kwargs={"connect_timeout": 10, "read_timeout": 60,
                                                   "retries": {"max_attempts": 2}})

    def exists(self) -> bool:
        bucket = self.root.split("/", 1)[0]
        try:
            self.fs.info(bucket)  # not `exists`: it answers False when the endpoint is unreachable
            return True
        except FileNotFoundError:
            return False
        except Exception as exc:  # noqa: BLE001 - botocore's errors are not OSErrors
            raise OSError(f"{type(exc).__name__}: {exc}".splitlines()[0]) from None

    def fingerprint(self, subs: list[str]) -> None:
        """None: a prefix is listed whole by each `list` (see `LocalDrops.fingerprint`)."""
        return None

    def list(self, sub: str, known: dict | None = None) -> list[Entry]:
        """As `LocalDrops.list`: the objects ``known`` holds with their size and mtime are left out."""
        prefix = _join(self.root, sub).rstrip("/")
        try:
            found = self.fs.ls(prefix, detail=True, refresh=True)
        except FileNotFoundError:
            return []
        except Exception as exc:  # noqa: BLE001
            raise OSError(f"{type(exc).__name__}: {exc}".splitlines()[0]) from None
        out = []
        for info in found:
            name = info["name"][len(self.root) + 1:] if self.root else info["name"]
            if info.get("type") == "directory":
                out.append(Entry(name, "folder"))
                continue
            modified = info.get("LastModified")
            mtime_ns = int(modified.timestamp() * 1e9) if modified is not None else 0
            size = int(info.get("size") or 0)
            seen = known.get(name) if known else None
            if seen and seen["size"] == size and seen["mtime_ns"] == mtime_ns:
                continue
            out.append(Entry(name, "file", size, mtime_ns))
        return out

    def open(self, entry: Entry) -> BinaryIO:
        try:
            return self.fs.open(_join(self.root, entry.name), "rb")
        except FileNotFoundError:
            raise Gone(entry.name) from None
        except Exception as exc:  # noqa: BLE001
            raise OSError(f"cannot open the object: {type(exc).__name__}: {exc}".splitlines()[0]) from None

    def close(self) -> None:
        pass

    def unchanged(self, entry: Entry, f: BinaryIO) -> bool:
        return True  # an object is replaced whole, never edited in place: what was read is one version
