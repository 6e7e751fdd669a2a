"""Who counts as a returning customer, for SKUs whose policy takes backorders only from them.
Pure, no I/O.

The shop's word wins, either way: it knows purchases this system never saw (paid in full, in
a shop, before the shop used this system) and refunds it was never told about, so an explicit
`customer.returning: false` stands even when an earlier order here was filled. Only when the
shop says nothing does this system's own history decide.
"""

from shared.contracts.outputs import OrderStatus

# An earlier order in one of these states got, or is still to get, something: a purchase. One
# wholly rejected, cancelled or expired got nothing; one not yet decided does not count yet.
PURCHASED: tuple[OrderStatus, ...] = ("allocated", "partially_allocated", "backordered")


def is_returning(*, shop_says: bool | None, bought_here_before: bool) -> bool:
    return bought_here_before if shop_says is None else shop_says
