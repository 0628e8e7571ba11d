"""The grader's one channel to and from a sandbox: frames on two pipes, size-capped.

A frame is one line of JSON (a dict, at most ``MAX_HEADER`` bytes), followed by
``header["size"]`` bytes of payload when the header has a ``size``::

    {"event": "answers", "exercise": "dice_score", "size": 1234}\\n<1234 bytes>

The grader writes the job and its questions on the sandbox's stdin; the sandbox writes
events and answers on a copy of its stdout made before any student code ran (the
student's prints go nowhere). Everything that comes out of a sandbox was written by a
process the student's code controlled: :class:`FrameReader` reads it with caps (a header
line longer than ``MAX_HEADER``, a payload larger than the reader's cap, or a header
that is not a JSON object ends the channel with a :class:`ChannelError`), never follows
a path, and never runs or unpickles anything (answers are read by
``segkit.checks.answers.load`` in the judge).
"""

from __future__ import annotations

import json
from typing import BinaryIO

__all__ = ["ChannelError", "FrameReader", "MAX_HEADER", "frame"]

MAX_HEADER = 64 * 1024


class ChannelError(Exception):
    """What came out of the sandbox is not a frame the grader accepts."""


def frame(header: dict, payload: bytes | None = None) -> bytes:
    """The bytes of one frame (``size`` is set from ``payload``)."""
    if payload is not None:
        header = {**header, "size": len(payload)}
    line = json.dumps(header, ensure_ascii=True).encode("ascii") + b"\n"
    if len(line) > MAX_HEADER:
        raise ChannelError(f"a frame header of {len(line)} bytes (the cap is {MAX_HEADER})")
    return line + (payload or b"")


class FrameReader:
    """Frames from a binary stream, with caps on every part."""

    def __init__(self, stream: BinaryIO, max_payload: int) -> None:
        self.stream = stream
        self.max_payload = max_payload

    def read(self) -> tuple[dict, bytes] | None:
        """The next (header, payload); None at the end of the stream."""
        line = self.stream.readline(MAX_HEADER + 1)
        if not line:
            return None
        if len(line) > MAX_HEADER or not line.endswith(b"\n"):
            raise ChannelError(f"a header line of more than {MAX_HEADER} bytes, or cut short")
        try:
            header = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise ChannelError(f"a header that is not JSON ({type(exc).__name__})") from None
        if not isinstance(header, dict):
            raise ChannelError("a header that is not a JSON object")
        size = header.get("size", 0)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ChannelError(f"a payload size that is not a count: {size!r}"[:200])
        if size > self.max_payload:
            raise ChannelError(f"a payload of {size:,} bytes (the cap is {self.max_payload:,})")
        payload = self.stream.read(size) if size else b""
        if len(payload) != size:
            raise ChannelError(f"a payload cut short ({len(payload)} of {size} bytes)")
        return header, payload
