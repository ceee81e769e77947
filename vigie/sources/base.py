"""What every source kind provides: a connector that lands raw files, and its streams.

A connector knows one source kind. ``pull`` writes what is new since ``cursor`` into the
landing folder and returns those files plus the cursor that comes after them. It runs no SQL
on the warehouse and applies no rule. A *stream* says how one kind of landed file becomes
rows: its staging SQL (lines → text columns), its contract suite, its canonical table and
how duplicates and versions are told apart.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from vigie.staging import JOIN_FILE_BYTES, JOIN_FILES, MAX_LINE_BYTES, Joiner


class SourceError(RuntimeError):
    """The source could not be pulled (unreachable, refused, broken answer)."""


@dataclass(frozen=True)
class Landed:
    stream: str  # which stream of the source reads this file
    name: str  # as the source knows it: a path in its folder, or a page/table file we wrote
    path: Path  # the landed copy
    sha256: str
    bytes: int
    read_path: Path | None = None  # what the line reader reads, when not `path` (see text_files)
    line_errors: tuple[tuple[int, str], ...] = ()  # (line, reason) of lines that spoil themselves
    # Its first line, LF included, as landing read it (a short one only): what the drift check
    # reads of a CSV file, which it does not open again (22 808 drone tracks at 5 M events).
    first_line: bytes | None = None

    @property
    def readable(self) -> Path:
        return self.read_path or self.path


@dataclass(frozen=True)
class Unreadable:
    """A file that could not be read at all: quarantined whole, kind 'file'."""

    name: str
    reason: str
    sha256: str | None = None  # None when it was refused without being opened


@dataclass(frozen=True)
class FileDuplicate:
    """A file whose bytes were already received under another name: one duplicate, kind 'file'."""

    name: str
    first_name: str
    sha256: str


@dataclass
class Pull:
    files: list[Landed] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)
    duplicates: list[FileDuplicate] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # still being written: left for the next run
    cursor: dict = field(default_factory=dict)
    # Folder sources: the entries of ``cursor["files"]`` this pull set (the rest is as it came in);
    # the warehouse keeps only these (vigie/cursors.py).
    seen: dict = field(default_factory=dict)
    shapes: dict = field(default_factory=dict)  # stream → its shape at the source, where it declares one (vigie/drift.py)
    # stream → its small files' lines, joined while they were landed (`vigie.staging.Joiner`):
    # read as one file, each file not opened again (22 808 drone tracks at 5 M events).
    joined: dict = field(default_factory=dict)

    def remove_joined(self) -> None:
        """The joined files are for staging only, not landed files: removed once read."""
        for joiner in self.joined.values():
            joiner.remove()


@dataclass(frozen=True)
class Stream:
    name: str
    row_kind: str  # the quarantine `kind` of its rows
    suite: str  # expectations/<suite>.json
    table: str  # canonical table
    staging_sql: str  # SELECT over `lines` → ord, location, ref, seq, raw, parse_error, fields
    typed_sql: str  # select list over a checked staging row → the canonical columns
    key: tuple[str, ...]  # identity of a row (besides `source`)
    policy: Literal["immutable", "latest"]
    # immutable: first delivery wins; same key, other content is a conflicting duplicate.
    # latest: a new version when the content differs from the current one (rows that change in place).
    # (temp table, SELECT) made in order before staging_sql, filled slice by slice; a table
    # named `_slice...` holds the current slice's rows only (vigie/staging.py)
    scratch: tuple[tuple[str, str], ...] = ()
    # Staged and checked a slice of lines at a time (vigie/staging.py), for lines that can be
    # long JSON: the memory of a statement is then bounded by the slice, not by 2 048 lines.
    sliced: bool = False
    max_line_bytes: int = MAX_LINE_BYTES  # a longer line is quarantined as too long to read
    # Folder sources: a file whose bytes were already received under another name is one
    # duplicate, not read again. False where a delivery's name itself counts (LAPI reads: the
    # later file wins, even when it repeats an earlier one): its rows are then duplicates one by one.
    whole_file_duplicates: bool = True
    # JSON streams: (field path, staging column holding its json_type), which the drift check
    # reads instead of parsing each row again (vigie/drift.py).
    type_columns: tuple[tuple[str, str], ...] = ()


class Connector:
    kind: ClassVar[str]
    streams: ClassVar[tuple[Stream, ...]]

    def __init__(self, source, settings) -> None:  # noqa: ANN001 - pydantic models from config
        self.source = source
        self.settings = settings

    def pull(self, cursor: dict | None, landing: Path) -> Pull:
        raise NotImplementedError


def file_digest(path: Path, chunk: int = 1 << 20) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


# A drop folder's listing (`store.fingerprint`) after a pull that left every file in it known:
# the next pull that finds the very same listing has nothing to do, and does not read the
# known files to compare them one by one (91 456 at 20 M events: 0.17 s to read, 0.2 s to
# compare, a run that brings nothing new to the folder).
LISTED = "listing_sha256"


class FolderConnector(Connector):
    """Sources that are a folder of files never edited in place: land each new file once.

    The cursor maps each file already landed to its size, mtime and hash, so a re-run only
    reads files that are new or changed (a changed file is landed again, as a new delivery),
    and a file whose content was already received under another name is a duplicate.
    What is refused and why is in `vigie.sources.drops` (what is opened) and
    `vigie.sources.text_files` (what is read); a file still being written waits (`_settled`).
    """

    patterns: ClassVar[dict[str, str]]  # stream → "<subfolder>/<name pattern>": the pattern is ours, names are literal

    def store(self):  # noqa: ANN201
        """Where the files are: `LocalDrops`, or `ObjectDrops` for an ``s3://`` path."""
        from vigie.sources.drops import LocalDrops, ObjectDrops

        src = self.source
        if not isinstance(src.path, str):
            return LocalDrops(Path(src.path))
        keys = []
        for var in (src.access_key_env, src.secret_key_env):
            if var is not None and not os.environ.get(var):
                raise SourceError(f"environment variable {var} is not set")  # the name, never a value
            keys.append(os.environ[var] if var else None)
        return ObjectDrops(src.path, endpoint_url=src.endpoint_url, key=keys[0], secret=keys[1], region=src.region)

    def _listing(self, store, seen: dict) -> list[tuple]:  # noqa: ANN001
        """(entry, stream) for every entry whose name matches a stream's pattern, in no order,
        but the files ``seen`` holds with the same size and mtime (landed, and unchanged)."""
        out = []
        for stream, pattern in self.patterns.items():
            sub, _, name_pattern = pattern.rpartition("/")
            matches = re.compile(fnmatch.translate(name_pattern)).match
            for entry in store.list(sub, seen):
                if entry.name == sub:  # the subfolder itself is not a folder (a link): refused
                    out.append((entry, stream))
                elif matches(entry.name.rpartition("/")[2]):
                    out.append((entry, stream))
        return out

    def _settled(self, store, listing: list[tuple], seen: dict) -> tuple[list[tuple], list[str]]:  # noqa: ANN001
        """The stability rule: a new file modified less than ``settle_seconds`` before the
        listing is listed again once its mtime is that old; if its size or mtime moved, it is
        still being written and waits for the next run. (Reading it also checks it did not change
        meanwhile.) Object storage has no such files: an object appears whole."""
        settle = float(self.source.settle_seconds)
        if not store.settles or settle <= 0:
            return listing, []
        now = time.time_ns()
        since = now - settle * 1e9
        # The mtime first: the cheapest test, and the one almost every listed file fails.
        fresh = [e for e, _ in listing if e.mtime_ns > since and e.kind == "file" and not _same(seen.get(e.name), e)]
        if not fresh:
            return listing, []
        # Until the newest of them is `settle` old (a mtime in the future: the full `settle`).
        time.sleep(min(settle, max((e.mtime_ns - now) / 1e9 + settle for e in fresh)))
        again = {e.name: e for e, _ in self._listing(store, seen)}
        moving = {e.name for e in fresh if again.get(e.name) != e}
        return [(e, s) for e, s in listing if e.name not in moving], sorted(moving)

    def _subfolders(self) -> list[str]:
        return list(dict.fromkeys(pattern.rpartition("/")[0] for pattern in self.patterns.values()))

    def pull(self, cursor: dict | None, landing: Path) -> Pull:
        """``cursor["files"]``: the files known (name → size, mtime_ns, sha256), or a function
        that reads them, called only when the folder changed since a pull that left every
        file known (`LISTED`)."""
        files = (cursor or {}).get("files", {})
        store = self.store()
        try:
            there = store.exists()
        except OSError as exc:
            raise SourceError(f"drop location cannot be listed: {exc}") from None
        if not there:
            raise SourceError(f"folder {self.source.path} is not there")
        try:
            return self._pull(store, files, (cursor or {}).get(LISTED), landing)
        finally:
            store.close()

    def _pull(self, store, files, listed: str | None, landing: Path) -> Pull:  # noqa: ANN001
        out = Pull()
        try:
            fingerprint = store.fingerprint(self._subfolders())
        except OSError as exc:
            raise SourceError(f"drop location cannot be listed: {exc}") from None
        if fingerprint is not None and fingerprint == listed:  # as the last pull left it: nothing to do
            out.cursor = {"files": {}, LISTED: fingerprint}
            return out
        seen: dict = dict(files() if callable(files) else files)
        try:
            listing, out.waiting = self._settled(store, self._listing(store, seen), seen)
        except OSError as exc:
            raise SourceError(f"drop location cannot be listed: {exc}") from None
        streams = {s.name: s for s in self.streams}
        # What is new, changed or refused, in name order (then stream). The stores left out the
        # files landed and unchanged (tens of thousands); a store that lists them is still right.
        todo = sorted(((entry, stream) for entry, stream in listing if entry.kind != "folder"
                       and (entry.refusal() or not _same(seen.get(entry.name), entry))),
                      key=lambda es: (es[0].name, es[1]))
        # A stream with many small files to land joins their lines as it lands them: the loading
        # thread then reads one file, not each of them again (`load_lines`).
        small = Counter(stream for entry, stream in todo if entry.kind == "file" and entry.size <= JOIN_FILE_BYTES)
        out.joined = {stream: Joiner(landing / stream / ".joined", streams[stream].max_line_bytes)
                      for stream, k in small.items() if k >= JOIN_FILES}
        try:
            self._land(store, todo, seen, streams, landing, out)
        finally:
            for joiner in out.joined.values():
                joiner.close()
        out.cursor = {"files": seen}
        # The listing is kept only when the next pull of the very same folder would find nothing
        # to do: nothing waiting, no entry refused for what it is (a link, a pipe: refused again
        # by every pull), and every file listed now known with the size and mtime it was listed
        # with (one that could not be opened or read is not: it is tried again). What changed
        # after the listing changes the next one, which is then compared file by file.
        if (fingerprint is not None and not out.waiting
                and not any(e.refusal() for e, _ in listing)
                and all(_same(seen.get(e.name), e) for e, _ in listing if e.kind == "file")):
            out.cursor[LISTED] = fingerprint
        return out

    def _land(self, store, todo: list[tuple], seen: dict, streams: dict, landing: Path, out: Pull) -> None:  # noqa: ANN001, PLR0913
        """Land each of ``todo`` into ``out``, or record why not, in order."""
        from vigie.sources.drops import Gone, Refused
        from vigie.sources.text_files import HEAD_BYTES, copy_and_check, readable_copy, refusal

        first_of: dict | None = None  # content hash → the first name it was received under
        for n, (entry, stream) in enumerate(todo):
            name = entry.name
            refused = entry.refusal()
            if refused:
                out.unreadable.append(Unreadable(name, refused))
                continue
            known = seen.get(name)
            if first_of is None:  # only when something is new: a run that brings nothing skips it
                first_of = {}
                for earlier, known_file in sorted(seen.items()):
                    if known_file.get("sha256"):
                        first_of.setdefault(known_file["sha256"], earlier)
            # Landed under a plain name: DuckDB would read `reads_*.csv` or `reads_[1].csv` as a glob.
            dest = landing / stream / f"{n:06d}.raw"
            try:
                with store.open(entry) as f:
                    copied = copy_and_check(f, dest, streams[stream].max_line_bytes)
                    steady = store.unchanged(entry, f) and copied.bytes == entry.size
            except Gone:  # removed since it was listed: nothing received; back under that name, it is read then
                dest.unlink(missing_ok=True)
                continue
            except Refused as exc:
                out.unreadable.append(Unreadable(name, str(exc)))
                continue
            except OSError as exc:
                dest.unlink(missing_ok=True)
                out.unreadable.append(Unreadable(name, f"cannot read the file: {exc.strerror or exc}"))
                continue
            if not steady:  # written to while it was copied: the next run takes it whole
                dest.unlink()
                out.waiting.append(name)
                continue
            sha = copied.sha256
            if known and known.get("sha256") == sha:
                dest.unlink()  # touched, not changed
                seen[name] = out.seen[name] = {**known, "mtime_ns": entry.mtime_ns}
                continue
            seen[name] = out.seen[name] = {"size": entry.size, "mtime_ns": entry.mtime_ns, "sha256": sha}
            # The same bytes under another name (an empty file is nothing: no rows, not a copy).
            first = first_of.setdefault(sha, name) if copied.bytes else name
            if first != name and streams[stream].whole_file_duplicates:
                dest.unlink()
                out.duplicates.append(FileDuplicate(name, first, sha))
                continue
            reason = refusal(copied)
            if reason:  # the raw copy stays in the landing folder, for inspection
                out.unreadable.append(Unreadable(name, reason, sha))
                continue
            read_path, errors = dest, []
            if copied.needs_readable_copy:
                read_path = dest.with_suffix(".txt")
                errors = readable_copy(dest, read_path, streams[stream].max_line_bytes)
            elif stream in out.joined and copied.bytes <= HEAD_BYTES:  # its head is the whole file
                out.joined[stream].add(name, dest, copied.head)
            out.files.append(Landed(stream, name, dest, sha, copied.bytes, read_path, tuple(errors), _first_line(copied.head)))


# Longer first lines are read again from the file, if need be: a landed file's is kept till it is loaded.
FIRST_LINE_BYTES = 512


def _first_line(head: bytes) -> bytes | None:
    """What ``readline()`` gives of a file whose first bytes are ``head``, when short."""
    end = head.find(b"\n") + 1 or len(head)
    return head[:end] if end <= FIRST_LINE_BYTES else None


def _same(known: dict | None, entry) -> bool:  # noqa: ANN001
    return bool(known) and known["size"] == entry.size and known["mtime_ns"] == entry.mtime_ns
