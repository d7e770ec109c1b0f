"""Event buses: in-process, outbox relay, NATS JetStream."""
