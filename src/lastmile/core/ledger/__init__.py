"""The double-entry ledger (pure): values (``entries``), an order's transactions
(``orders``) and the audit (``audit``). docs/ledger.md."""
