"""Is a dropped file text we can read line by line? Decided while it is copied, in one pass.

Copying a file to the landing folder already reads every byte (to hash it); the same pass
notes what the line reader (DuckDB's CSV reader in `vigie.staging`) cannot take:

- a file that is not text at all (compressed, binary, UTF-16/32) is refused whole, with its
  reason: quarantined as kind ``file``, its hash in ``ref``;
- a line that is too long, holds a NUL byte or a carriage return inside it spoils only
  itself. Such files (rare) get a *readable copy* next to the raw one: CRLF and LF both end a
  line, a UTF-8 byte-order mark is dropped, a bad line is replaced by a short stand-in, and
  its reason is given by line number, so DuckDB never sees a byte it would choke on and
  every line keeps its number. The raw copy stays as received.

Another 8-bit encoding (Latin-1) is not refused whole: sources.md says a line that is not
valid UTF-8 spoils only itself, so such lines are quarantined one by one ('invalid UTF-8').
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

HEAD_BYTES = 64 << 10  # what the file-level checks look at
BOM_UTF8 = b"\xef\xbb\xbf"
_MAGIC = [  # compressed or archived: decompress before dropping
    (b"\x1f\x8b", "gzip"), (b"PK\x03\x04", "zip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"), (b"7z\xbc\xaf\x27\x1c", "7-zip"),
]
_BOMS = [(b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe\x00\x00", "UTF-32"), (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16")]
# Bytes that do not occur in text (tab, LF, FF, CR and ESC aside).
_BINARY = bytes(b for b in range(32) if b not in (9, 10, 12, 13, 27)) + b"\x7f"
PREVIEW = 200  # bytes of an unreadable line kept for the record


@dataclass
class Copied:
    sha256: str
    bytes: int
    head: bytes
    needs_readable_copy: bool  # CR, NUL, a UTF-8 BOM or a line past the limit somewhere
    line_errors: list[tuple[int, str]] = field(default_factory=list)


def copy_and_check(src: BinaryIO, dest: Path, max_line_bytes: int) -> Copied:
    """Copy ``src`` to ``dest`` while hashing it and noting what the line reader cannot take."""
    chunk = min(1 << 20, max_line_bytes)  # never more than the limit: see the run check below
    digest, size, head = hashlib.sha256(), 0, b""
    odd = False
    run = 0  # bytes since the last LF
    try:
        out = open(dest, "wb")  # noqa: SIM115
    except FileNotFoundError:  # the first file of its folder (not checked for every file: a system call each)
        dest.parent.mkdir(parents=True, exist_ok=True)
        out = open(dest, "wb")  # noqa: SIM115
    with out:
        while block := src.read(chunk):
            digest.update(block)
            if len(head) < HEAD_BYTES:
                head += block[: HEAD_BYTES - len(head)]
            size += len(block)
            out.write(block)
            if not odd:
                # Lines wholly inside a block are shorter than the block, so shorter than the
                # limit: only a line crossing block boundaries can be too long.
                first, last = block.find(b"\n"), block.rfind(b"\n")
                if first < 0:
                    run += len(block)
                    too_long = run > max_line_bytes
                else:
                    too_long = run + first > max_line_bytes
                    run = len(block) - last - 1
                odd = too_long or b"\r" in block or b"\x00" in block
    return Copied(digest.hexdigest(), size, head, odd or head.startswith(BOM_UTF8))


def refusal(copied: Copied) -> str | None:
    """Why the whole file cannot be read as text, or None."""
    head = copied.head
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return f"a {fmt} compressed file, not text: decompress it before dropping it"
    for bom, enc in _BOMS:
        if head.startswith(bom):
            return f"{enc} text (byte-order mark), not UTF-8: re-encode it as UTF-8"
    sample = head[:8192]
    zeros_even, zeros_odd = sample[0::2].count(0), sample[1::2].count(0)
    if len(sample) >= 8 and max(zeros_even, zeros_odd) > len(sample) // 4:
        return "looks like UTF-16 text without a byte-order mark, not UTF-8: re-encode it as UTF-8"
    binary = len(sample) - len(sample.translate(None, _BINARY))
    if binary * 20 > len(sample):  # over 5 % of the bytes are not text
        return "binary content, not text"
    return None


def readable_copy(raw: Path, dest: Path, max_line_bytes: int) -> list[tuple[int, str]]:
    """Write ``dest``, the lines of ``raw`` as the line reader can take them; return
    (line number, reason) for each line that spoils itself. Memory: one line up to the limit."""
    errors: list[tuple[int, str]] = []
    with open(raw, "rb") as fin, open(dest, "wb") as out:
        n = 0
        while line := fin.readline(max_line_bytes + 2):
            n += 1
            if n == 1 and line.startswith(BOM_UTF8):
                line = line[len(BOM_UTF8):]
            if not line.endswith(b"\n") and len(line) >= max_line_bytes + 2:
                total = len(line)
                while more := fin.readline(1 << 20):  # the rest of the line, never held whole
                    total += len(more)
                    if more.endswith(b"\n"):
                        total -= 1  # the LF is not part of the line
                        break
                out.write(_stand_in(line[:PREVIEW]) + b"\n")
                errors.append((n, f"line too long to read ({total} bytes, the limit is {max_line_bytes})"))
                continue
            body = line[:-1] if line.endswith(b"\n") else line
            if body.endswith(b"\r"):
                body = body[:-1]
            reasons = []
            if b"\r" in body:
                reasons.append("carriage return (CR) inside the line")
            if b"\x00" in body:
                reasons.append("NUL byte in the line")
            if reasons:
                body = _stand_in(body)
                errors.append((n, "; ".join(reasons)))
            out.write(body + b"\n")
    return errors


def _stand_in(text: bytes) -> bytes:
    """What is kept of a bad line for the record: visible CR and NUL, valid UTF-8."""
    return (text.replace(b"\r", "␍".encode()).replace(b"\x00", "␀".encode())
            .replace(b"\x01", b"?").decode("utf-8", "replace").encode())
