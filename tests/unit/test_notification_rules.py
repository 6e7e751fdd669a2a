"""What a customer is told, and how retries spread out: the notifier's pure rules."""

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.notifier.channels.signing import sign, verify
from services.notifier.domain.model import Kind, classify, retry_delay
from services.notifier.rendering import Templates
from shared.contracts.outputs import OrderStatusChanged

DAY = datetime(2027, 5, 3, tzinfo=UTC)


def picture(
    status: str, *lines: dict[str, Any], version: int = 1, reason: str | None = None
) -> OrderStatusChanged:
    return OrderStatusChanged.model_validate(
        {
            "order_id": "o-1",
            "status": status,
            "version": version,
            "reason": reason,
            "occurred_at": DAY,
            "customer": {"id": "c-1", "email": "ada@example.com", "name": "Ada"},
            "lines": list(lines),
        }
    )


def line(status: str, *, allocated: int = 0, waiting: int = 0, **more: Any) -> dict[str, Any]:
    quantity = max(1, allocated + waiting)
    return {
        "line_id": more.pop("line_id", "1"),
        "sku": "LAMP",
        "quantity": quantity,
        "allocated": allocated,
        "backordered": waiting,
        "rejected": 0,
        "status": status,
        **more,
    }


WAITING = picture("backordered", line("backordered", waiting=2))
ALLOCATED = picture("allocated", line("allocated", allocated=2))


@pytest.mark.parametrize(
    ("told", "latest", "kind"),
    [
        (None, WAITING, Kind.BACKORDERED),
        (None, picture("rejected", line("rejected", reason="no")), Kind.REJECTED),
        (WAITING, picture("backordered", line("backordered", waiting=2, eta=DAY)), "date"),
        (
            WAITING,
            picture("partially_allocated", line("partially_allocated", allocated=1, waiting=1)),
            Kind.PARTLY_FILLED,
        ),
        (WAITING, picture("allocated", line("allocated", allocated=2)), Kind.ALLOCATED),
        (
            WAITING,
            picture("cancelled", line("cancelled", reason="changed my mind")),
            Kind.CANCELLED,
        ),
        (WAITING, picture("expired", line("expired", reason="waited")), Kind.EXPIRED),
        # a position moving up in the queue is not news
        (WAITING, picture("backordered", line("backordered", waiting=2, queue_position=1)), None),
        (ALLOCATED, ALLOCATED, None),
    ],
)
def test_the_news_is_what_changed_since_the_customer_was_last_told(
    told: OrderStatusChanged | None, latest: OrderStatusChanged, kind: Kind | str | None
) -> None:
    assert classify(told, latest) == (Kind.DATE_CHANGED if kind == "date" else kind)


def test_a_line_closed_beside_a_ready_one_is_told_not_hidden_behind_ready_to_ship() -> None:
    two_waiting = picture(
        "backordered", line("backordered", waiting=1), line("backordered", waiting=1, line_id="2")
    )
    one_expired = picture(
        "allocated", line("allocated", allocated=1), line("expired", line_id="2", reason="x")
    )
    assert classify(two_waiting, one_expired) == Kind.EXPIRED
    assert classify(one_expired, one_expired) is None
    one_rejected = picture(
        "allocated", line("allocated", allocated=1), line("rejected", line_id="2")
    )
    assert classify(None, one_rejected) == Kind.REJECTED
    text = Templates().render(Kind.REJECTED, one_rejected, None).text
    assert "Everything else in your order is reserved for you and ready to ship." in text


def test_one_line_cancelled_while_another_waits_is_told_as_a_cancellation() -> None:
    told = picture(
        "backordered", line("backordered", waiting=1), line("backordered", waiting=1, line_id="2")
    )
    latest = picture(
        "backordered", line("backordered", waiting=1), line("cancelled", line_id="2", reason="x")
    )
    assert classify(told, latest) == Kind.CANCELLED


def test_every_kind_renders_from_its_template_with_the_dates_and_alternatives() -> None:
    templates = Templates()
    delayed = picture(
        "backordered",
        line("backordered", waiting=2, eta=DAY + timedelta(days=7), alternatives=["LAMP-2"]),
    )
    earlier = picture("backordered", line("backordered", waiting=2, eta=DAY))
    for kind in Kind:
        rendered = templates.render(kind, delayed, earlier)
        assert "o-1" in rendered.subject
        assert "\n" not in rendered.subject
        assert rendered.text.startswith("Hello Ada,")
        assert "{" not in rendered.text
    text = templates.render(Kind.DATE_CHANGED, delayed, earlier)
    assert text.subject == "Your order o-1 is delayed"
    assert "expected 2027-05-10 (later than we said before)" in text.text
    assert "In stock right now instead of LAMP: LAMP-2." in text.text
    first = templates.render(Kind.BACKORDERED, WAITING, None)
    assert "2 waiting, no date yet" in first.text


def test_a_shop_can_replace_one_template_and_keep_the_others(tmp_path: Any) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "allocated.txt").write_text(
        '{% extends "email/base.txt" %}{% block subject %}Packed: {{ order_id }}{% endblock %}'
    )
    templates = Templates(tmp_path)
    allocated = picture("allocated", line("allocated", allocated=2))
    assert templates.render(Kind.ALLOCATED, allocated, None).subject == "Packed: o-1"
    assert templates.render(Kind.BACKORDERED, WAITING, None).subject.endswith("is backordered")


def test_retries_back_off_exponentially_with_jitter_up_to_the_maximum() -> None:
    rng = random.Random(7)
    delays = [retry_delay(n, initial=1, maximum=60, rng=rng) for n in range(1, 10)]
    for attempt, delay in enumerate(delays, start=1):
        ceiling = min(60, 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert len({round(d, 6) for d in delays}) == len(delays)


def test_signatures_reject_forgeries_and_replays() -> None:
    secret, body = b"s" * 32, b'{"id":"n-1"}'
    signature = sign(secret, timestamp="1000", body=body)

    def genuine(
        *, key: bytes = secret, timestamp: str = "1000", sent: bytes = body, now: float = 1100
    ) -> bool:
        return verify(
            key, timestamp=timestamp, signature=signature, body=sent, now=now, tolerance=300
        )

    assert genuine()
    assert not genuine(now=1400)  # replayed later than the tolerance
    assert not genuine(key=b"o" * 32)
    assert not genuine(sent=b'{"id":"n-2"}')
    assert not genuine(timestamp="1001")


def test_a_partly_refused_line_is_told_as_not_accepted_not_as_all_reserved() -> None:
    refused = "backorders are not allowed for SKU LAMP"
    partly = picture(
        "allocated",
        line("allocated", allocated=3, quantity=5, rejected=2, reason=refused),
        reason=refused,
    )
    assert classify(None, partly) == Kind.REJECTED
    text = Templates().render(Kind.REJECTED, partly, None).text
    assert "could not accept part of your order" in text
    assert f"5 x LAMP: 3 reserved, ready to ship; 2 not accepted ({refused})" in text
    assert "Everything in your order is reserved" not in text
    assert classify(partly, partly) is None


def test_cancelling_a_line_of_an_order_that_is_ready_to_ship_is_told() -> None:
    both = picture(
        "allocated", line("allocated", allocated=1), line("allocated", allocated=1, line_id="2")
    )
    one_cancelled = picture(
        "allocated",
        line("allocated", allocated=1),
        line("cancelled", line_id="2", reason="changed my mind"),
    )
    assert classify(both, one_cancelled) == Kind.CANCELLED
    text = Templates().render(Kind.CANCELLED, one_cancelled, both).text
    assert "Part of your order has been cancelled" in text
    assert "Everything else in your order is reserved for you and ready to ship." in text
    assert classify(one_cancelled, one_cancelled) is None


def test_dates_are_told_in_the_shop_time_zone() -> None:
    from zoneinfo import ZoneInfo

    just_after_midnight_in_berlin = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    waiting = picture(
        "backordered", line("backordered", waiting=1, eta=just_after_midnight_in_berlin)
    )
    assert "expected 2026-11-30" in Templates().render(Kind.BACKORDERED, waiting, None).text
    berlin = Templates(timezone=ZoneInfo("Europe/Berlin"))
    assert "expected 2026-12-01" in berlin.render(Kind.BACKORDERED, waiting, None).text


def test_a_message_gives_the_reason_of_the_lines_it_is_about() -> None:
    refused = "backorders are not allowed for SKU LAMP"
    told = picture(
        "allocated",
        line("allocated", allocated=3, quantity=5, rejected=2, reason=refused),
        line("allocated", allocated=1, line_id="2"),
        reason=refused,
    )
    latest = picture(
        "allocated",
        line("allocated", allocated=3, quantity=5, rejected=2, reason=refused),
        line("cancelled", line_id="2", reason="changed my mind"),
        reason=refused,
    )
    assert classify(told, latest) == Kind.CANCELLED
    text = Templates().render(Kind.CANCELLED, latest, told).text
    assert "Part of your order has been cancelled: changed my mind." in text
    assert f"cancelled: {refused}" not in text


# Issue 21: a swap the customer chose was told as "Your order … was cancelled", with a refund.
SWAPPED = picture(
    "allocated",
    {
        "line_id": "1",
        "sku": "MUG",
        "quantity": 3,
        "allocated": 0,
        "backordered": 0,
        "rejected": 0,
        "substituted": 3,
        "substituted_by": "CUP",
        "status": "substituted",
        "reason": "substituted by CUP at the customer's request",
    },
    {
        "line_id": "1~CUP",
        "sku": "CUP",
        "quantity": 3,
        "allocated": 3,
        "backordered": 0,
        "rejected": 0,
        "status": "allocated",
    },
    version=2,
)


def test_a_swap_the_customer_chose_is_told_as_a_swap_not_a_cancellation() -> None:
    told = picture(
        "backordered",
        {**line("backordered", waiting=3), "sku": "MUG"},
    )
    assert classify(told, SWAPPED) == Kind.SUBSTITUTED
    rendered = Templates().render(Kind.SUBSTITUTED, SWAPPED, told)
    assert rendered.subject == "We've swapped your MUG for CUP in your order o-1"
    assert "3 x MUG for 3 x CUP" in rendered.text
    assert "- 3 x MUG: swapped for CUP at your request" in rendered.text
    assert "cancelled" not in rendered.text and "refunded" not in rendered.text
    assert "ready to ship" in rendered.text


def test_swapped_units_of_a_partly_filled_line_are_not_told_as_refused() -> None:
    told = picture("partially_allocated", line("partially_allocated", allocated=1, waiting=2))
    kept = {
        **line("allocated", allocated=1),
        "quantity": 3,
        "substituted": 2,
        "substituted_by": "CUP",
    }
    cup = {**line("allocated", allocated=2), "line_id": "1~CUP", "sku": "CUP"}
    latest = picture("allocated", kept, cup, version=2)
    assert classify(told, latest) == Kind.SUBSTITUTED
    text = Templates().render(Kind.SUBSTITUTED, latest, told).text
    assert "1 reserved, ready to ship; 2 swapped for CUP at your request" in text
    assert "not accepted" not in text
