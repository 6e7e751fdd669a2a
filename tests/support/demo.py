"""The demo's story as its printed timelines tell it, the same wherever the demo runs (with
the two priority tiers `deploy/bin/stack` and the compose file configure)."""

import re

Row = tuple[str, ...]  # version, status, sku, allocated, waiting, rejected, queue, reason
MUG, LAMP, CUP = "MUG-<run>", "LAMP-<run>", "CUP-<run>"

EXPECTED: dict[str, list[Row]] = {
    "Ada": [
        ("1", "backordered", MUG, "0", "2", "0", "1", ""),
        ("2", "allocated", MUG, "2", "0", "0", "", ""),
    ],
    "Bob": [
        ("1", "backordered", MUG, "0", "1", "0", "2", ""),
        ("2", "allocated", MUG, "1", "0", "0", "", ""),
        ("3", "cancelled", MUG, "0", "0", "0", "", "customer changed their mind"),
    ],
    "Cyd": [
        ("1", "backordered", MUG, "0", "3", "0", "3", ""),
        ("2", "partially_allocated", MUG, "1", "2", "0", "1", ""),
        ("3", "partially_allocated", MUG, "2", "1", "0", "1", ""),
        # Eve, a vip customer, orders after Cyd: Cyd is told that she stands second now
        ("4", "partially_allocated", MUG, "2", "1", "0", "2", ""),
        ("5", "allocated", MUG, "3", "0", "0", "", ""),
    ],
    "Dan": [
        ("1", "rejected", LAMP, "0", "0", "1", "", f"backorders are not allowed for SKU {LAMP}"),
    ],
    # A vip customer who orders after Cyd is served first by the next receipt.
    "Eve": [
        ("1", "backordered", MUG, "0", "1", "0", "1", ""),
        ("2", "allocated", MUG, "1", "0", "0", "", ""),
    ],
    # Fay takes the cup the mug's policy offers: one version closes the mug line and holds
    # the cup for her.
    "Fay": [
        ("1", "backordered", MUG, "0", "1", "0", "1", ""),
        (
            "2",
            "allocated",
            MUG,
            "0",
            "0",
            "0",
            "",
            f"substituted by {CUP} at the customer's request: would rather not wait",
        ),
        ("2", "allocated", CUP, "1", "0", "0", "", ""),
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
