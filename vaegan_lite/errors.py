"""Errors said in one line: torch, numba, PIL and torchvision raise messages of many lines (a
stack of compiler passes, a list of missing keys), and every error this package reports, in a
message of its own or at the command line, is one line naming what failed."""

from __future__ import annotations


def one_line(e: BaseException, limit: int = 200) -> str:
    """``e``'s message with its lines joined, cut to ``limit`` characters, or the name of its
    type when it has no message."""
    text = " ".join(str(e).split())
    if not text:
        return type(e).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
