"""Text inputs read line by line: plain or gzip (recognised by its magic bytes, not by the file name),
UTF-8, and JSONL rows parsed. Every reader of a line-based corpus file goes through here, so every one
of them reports a bad file the same way: an ``InputError`` naming the file, the line and the problem
(not UTF-8, truncated or corrupt gzip, malformed JSON).
"""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path
from typing import IO, Iterator, Tuple, Union

import srsly

from ..common.errors import InputError

PathLike = Union[str, Path]
GZIP_MAGIC = b"\x1f\x8b"


def open_binary(path: PathLike) -> IO[bytes]:
    """Open a plain or gzip-compressed file for reading its (decompressed) bytes."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    with path.open("rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == GZIP_MAGIC else path.open("rb")


def read_lines(path: PathLike) -> Iterator[Tuple[int, str]]:
    """``(line number, line)`` for every line, 1-based, its newline kept (``\\r\\n`` becomes ``\\n``).

    Each line is decoded on its own, so a byte that is not UTF-8 is reported on its own line."""
    line_no = 0
    with open_binary(path) as fh:
        try:
            for line_no, raw in enumerate(fh, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise InputError(path, f"not UTF-8 text ({err.reason} at byte {err.start})", line_no) from None
                yield line_no, (line[:-2] + "\n" if line.endswith("\r\n") else line)
        except (OSError, EOFError, zlib.error) as err:  # truncated or corrupt gzip
            raise InputError(path, f"unreadable gzip data ({err})", line_no + 1) from None


def read_jsonl(path: PathLike) -> Iterator[Tuple[int, object]]:
    """``(line number, parsed value)`` for every non-blank line of a JSONL file."""
    for line_no, line in read_lines(path):
        if line.strip():
            yield line_no, parse_json(line, path, line_no)


def parse_json(line: str, path: PathLike, line_no: int) -> object:
    """One JSON value; srsly's fast parser, and the standard library's message when the line is bad."""
    try:
        return srsly.json_loads(line)
    except ValueError:
        try:
            return json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(path, f"malformed JSON ({err.msg})", line_no) from None
