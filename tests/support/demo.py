"""The demo's story as its printed timelines tell it, the same wherever the demo runs (with
the two priority tiers `deploy/bin/stack` and the compose file configure)."""

import re

Row = tuple[str, ...]  # version, status, allocated, waiting, rejected, queue, reason

EXPECTED: dict[str, list[Row]] = {
    "Ada": [
        ("1", "backordered", "0", "2", "0", "1", ""),
        ("2", "allocated", "2", "0", "0", "", ""),
    ],
    "Bob": [
        ("1", "backordered", "0", "1", "0", "2", ""),
        ("2", "allocated", "1", "0", "0", "", ""),
        ("3", "cancelled", "0", "0", "0", "", "customer changed their mind"),
    ],
    "Cyd": [
        ("1", "backordered", "0", "3", "0", "3", ""),
        ("2", "partially_allocated", "1", "2", "0", "1", ""),
        ("3", "partially_allocated", "2", "1", "0", "1", ""),
        ("4", "allocated", "3", "0", "0", "", ""),
    ],
    "Dan": [
        ("1", "rejected", "0", "0", "1", "", "backorders are not allowed for SKU LAMP-<run>"),
    ],
    # A vip customer who orders after Cyd is served first by the next receipt.
    "Eve": [
        ("1", "backordered", "0", "1", "0", "1", ""),
        ("2", "allocated", "1", "0", "0", "", ""),
    ],
}

_TITLE = re.compile(r"^(\w+)'s order \S+")
_RUN = re.compile(r"-[0-9a-f]{6}\b")


def timelines(output: str) -> dict[str, list[Row]]:
    """Each customer's rows from `backorder demo`'s tables, the run's id masked."""
    found: dict[str, list[Row]] = {}
    rows: list[Row] | None = None
    for line in output.splitlines():
        title = _TITLE.match(line.strip())
        if title:
            rows = found.setdefault(title.group(1), [])
        elif rows is not None and line.startswith("│"):
            cells = tuple(_RUN.sub("-<run>", cell.strip()) for cell in line.strip("│").split("│"))
            rows.append(cells)
    return found
