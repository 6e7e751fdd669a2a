from sqlalchemy.dialects.postgresql import insert

from services.notifier.messages import compose
from services.notifier.tables import CustomerMessageRow
from shared.contracts.outputs import OrderStatusChanged
from shared.db.unit_of_work import UnitOfWork


async def record_customer_message(change: OrderStatusChanged, *, uow: UnitOfWork) -> None:
    subject, body = compose(change)
    await uow.session.execute(
        insert(CustomerMessageRow)
        .values(
            order_id=change.order_id,
            version=change.version,
            status=change.status,
            subject=subject,
            body=body,
        )
        .on_conflict_do_nothing()
    )
