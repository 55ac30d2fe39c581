"""Text from the code (docstrings, descriptions, help) made safe for a Markdown table cell."""

from __future__ import annotations


def cell(text: str) -> str:
    """One line; `|` escaped; `<` and `>` outside code spans escaped (`<state>` is text, not a tag)."""
    parts = " ".join(str(text).split()).split("`")
    for i in range(0, len(parts), 2):  # outside backticks
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts).replace("|", "\\|")
