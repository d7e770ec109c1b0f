"""Payment processors behind ``app.ports.PaymentProcessor``: the built-in one (embedded
default, every test tenant) and Stripe."""
