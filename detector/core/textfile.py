"""Reading the small text files users give (TOML, CSV, tokens, JSON metadata) with one clear error."""

from __future__ import annotations

from pathlib import Path

from detector.core.errors import InputError

__all__ = ["read_text"]


def read_text(path: str | Path, what: str = "") -> str:
    """The UTF-8 text of ``path`` (a leading BOM dropped).

    Raises :class:`~detector.core.errors.InputError` naming ``what`` (e.g. ``"--plan"``) and the file
    when it is a folder, cannot be read, or is not UTF-8 text, instead of a traceback.
    """
    p = Path(path)
    label = f"{what} {p}" if what else str(p)
    if p.is_dir():
        raise InputError(f"{label} is a folder, not a file")
    try:
        return p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{label} is not UTF-8 text (byte {exc.start}: {exc.object[exc.start:exc.start + 1]!r})") from None
    except OSError as exc:
        raise InputError(f"{label}: {exc.strerror or exc}") from None
