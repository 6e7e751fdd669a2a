"""The allocator's tables, one concern per module, each a repository that
`services.allocator.unit_of_work.AllocatorUnitOfWork` attaches (typed by its Protocol, so the
use cases run on the fakes in tests/support/fakes/allocator.py alike):

- `sku_books` (`uow.books`): a SKU's book opened under its row lock (`OpenBook`, with its
  policy), what a batch changed written back (`save`), and which SKUs are in stock.
- `stored_lines`: a book's lines in `allocation_line`, read on demand (`StoredLines`) or
  ahead for a batch (`read_ahead`, `read_customers_ahead`), as `sku_books` opens it.
- `early_cancellations` (`uow.early_cancels`): cancels that came before their line's
  allocate, and a batch's view of them (`EarlyCancels`).
- `scheduled_restocks` (`uow.restocks`): the purchase orders a SKU expects.
- `sweep_probes` (`uow.sweeps`): which SKUs the max-wait and aging sweeps have work on.
- `queue_figures`: the longest queues, for the gauges (`top_queues`).
"""
