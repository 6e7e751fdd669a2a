"""In-memory stand-ins for a service's unit of work and repositories, so its use cases run in
the fast tier: `unit_of_work.FakeUnitOfWork` is the base, one module per service adds its
repositories (see `inventory`)."""
