"""Turns a notification into words, from the template files in `templates/email/`.

Shops replace wording by pointing BACKORDER_NOTIFY_TEMPLATES_DIR at a folder of files with the
same names; anything missing there falls back to the built-in files.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined

from services.notifier.domain.model import Kind, date_moves, delay_incentives, headline_move
from shared.contracts.outputs import OrderLineState, OrderStatusChanged

BUILT_IN = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str


class Templates:
    def __init__(self, override: Path | None = None, *, timezone: tzinfo = UTC) -> None:
        """`timezone`: the shop's, in which customers read their dates."""
        self._timezone = timezone
        loaders = [FileSystemLoader(override)] if override else []
        self._env = Environment(
            loader=ChoiceLoader([*loaders, FileSystemLoader(BUILT_IN)]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            autoescape=False,  # plain text mail; webhook bodies are JSON-encoded separately
        )

    def render(
        self, kind: Kind, latest: OrderStatusChanged, told: OrderStatusChanged | None
    ) -> Rendered:
        template = self._env.get_template(f"email/{kind.value}.txt")
        values = _values(kind, latest, told, self._timezone)
        subject = "".join(template.blocks["subject"](template.new_context(values)))
        text = template.render(values)
        return Rendered(subject=" ".join(subject.split()), text=_tidy(text))


# The lines a kind of message is about: its reason is theirs, not another line's.
_ABOUT: dict[Kind, Callable[[OrderLineState], bool]] = {
    Kind.CANCELLED: lambda line: line.status == "cancelled",
    Kind.EXPIRED: lambda line: line.status == "expired",
    Kind.REJECTED: lambda line: line.rejected > 0,
    Kind.SUBSTITUTED: lambda line: line.substituted > 0,
}


def _reason(kind: Kind, latest: OrderStatusChanged) -> str | None:
    about = _ABOUT.get(kind)
    if about is None:
        return latest.reason
    return next((line.reason for line in latest.lines if about(line) and line.reason), None)


def _values(
    kind: Kind, latest: OrderStatusChanged, told: OrderStatusChanged | None, timezone: tzinfo
) -> dict[str, Any]:
    moves = date_moves(told, latest)
    return {
        "order_id": latest.order_id,
        "name": latest.customer.name if latest.customer else None,
        "status": latest.status,
        "reason": _reason(kind, latest),
        "move": headline_move(moves),
        "incentives": delay_incentives(kind, latest),
        "swaps": [
            {"sku": line.sku, "quantity": line.substituted, "substitute": line.substituted_by}
            for line in latest.lines
            if line.substituted
        ],
        "lines": [
            {
                "sku": line.sku,
                "quantity": line.quantity,
                "allocated": line.allocated,
                "backordered": line.backordered,
                "rejected": line.rejected,
                "substituted": line.substituted,
                "substituted_by": line.substituted_by,
                "status": line.status,
                "eta": f"{line.eta.astimezone(timezone):%Y-%m-%d}" if line.eta else None,
                "move": moves.get(line.line_id),
                "alternatives": line.alternatives if line.backordered else [],
                "reason": line.reason,
            }
            for line in latest.lines
        ],
    }


def _tidy(text: str) -> str:
    """At most one blank line in a row, whatever the template's own spacing."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    kept = [line for i, line in enumerate(lines) if line or (i and lines[i - 1])]
    return "\n".join(kept) + "\n"
