"""The allocator's tables, one concern per module:

- `sku_books`: a SKU's book opened under its row lock (`open_books`, `OpenBook`), its policy
  (`set_policy`), what a batch changed written back (`save`), and which SKUs are in stock.
- `stored_lines`: a book's lines in `allocation_line`, read on demand (`StoredLines`) or
  ahead for a batch (`read_ahead`, `read_customers_ahead`).
- `early_cancellations`: cancels that came before their line's allocate (`EarlyCancels`).
- `scheduled_restocks`: the purchase orders a SKU expects.
- `sweep_probes`: which SKUs the max-wait and aging sweeps have work on.
- `queue_figures`: the longest queues, for the gauges (`top_queues`).
"""
