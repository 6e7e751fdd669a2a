"""Database plumbing shared by the services: engine, unit of work, outbox and dedupe tables."""
