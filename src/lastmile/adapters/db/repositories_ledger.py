"""The SQL ledger repository: append-only transactions and their postings."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from lastmile.adapters.db import tables_ledger as t
from lastmile.adapters.db.repositories import _Repo
from lastmile.adapters.db.writes import insert_or_skip
from lastmile.core.ledger.audit import PostingRow
from lastmile.core.ledger.entries import Posted, Posting, StatementLine, Transaction, TxnKind

Row = dict[str, Any]


def transaction_row(p: Posted) -> Row:
    txn = p.transaction
    return {"id": p.id, "idempotency_key": txn.key, "kind": txn.kind.value,
            "currency": txn.currency, "order_id": txn.order_id, "memo": txn.memo[:200],
            "created_at": p.created_at}


def posting_rows(p: Posted) -> list[Row]:
    txn = p.transaction
    return [{"id": f"{p.id}:{n}", "transaction_id": p.id, "seq": n, "kind": txn.kind.value,
             "order_id": txn.order_id, "account": q.account, "currency": q.currency,
             "amount_minor": q.amount_minor, "created_at": p.created_at}
            for n, q in enumerate(txn.postings)]


def posted_from(row: Row, postings: list[Row]) -> Posted:
    txn = Transaction(key=row["idempotency_key"], kind=TxnKind(row["kind"]),
                      currency=row["currency"], order_id=row["order_id"], memo=row["memo"],
                      postings=tuple(Posting(account=q["account"], currency=q["currency"],
                                             amount_minor=int(q["amount_minor"]))
                                     for q in sorted(postings, key=lambda q: q["seq"])))
    return Posted(id=row["id"], transaction=txn, created_at=row["created_at"])


@cache
def _insert_or_skip_returning_id(dialect: str) -> sa.Insert:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = t.ledger_transactions
    return insert(table).on_conflict_do_nothing().returning(table.c.id)


class SqlLedger(_Repo):
    def add(self, posted: Posted) -> bool:
        if not insert_or_skip(self.conn, t.ledger_transactions, transaction_row(posted)):
            return False  # its key is posted already: a redelivery posts nothing
        self.conn.execute(t.ledger_postings.insert(), posting_rows(posted))
        return True

    def add_many(self, posted: Sequence[Posted]) -> list[Posted]:
        if len(posted) <= 1:
            return [p for p in posted if self.add(p)]
        # One INSERT .. VALUES (..), (..) ON CONFLICT DO NOTHING RETURNING id for the
        # transactions (SQLAlchemy's insertmanyvalues), one for all their postings.
        stored = {row[0] for row in self.conn.execute(
            _insert_or_skip_returning_id(self.conn.dialect.name),
            [transaction_row(p) for p in posted])}
        kept = [p for p in posted if p.id in stored]
        if kept:
            self.conn.execute(t.ledger_postings.insert(),
                              [row for p in kept for row in posting_rows(p)])
        return kept

    def by_key(self, key: str) -> Posted | None:
        found = self._posted(t.ledger_transactions.c.idempotency_key == key)
        return found[0] if found else None

    def of_order(self, order_id: str) -> list[Posted]:
        return self._posted(t.ledger_transactions.c.order_id == order_id)

    def _posted(self, where: sa.ColumnElement[bool]) -> list[Posted]:
        tx = t.ledger_transactions
        rows = [dict(r) for r in self.conn.execute(
            sa.select(tx).where(where).order_by(tx.c.created_at, tx.c.id)).mappings()]
        if not rows:
            return []
        lp = t.ledger_postings
        postings: dict[str, list[Row]] = defaultdict(list)
        for r in self.conn.execute(sa.select(lp).where(
                lp.c.transaction_id.in_([r["id"] for r in rows]))).mappings():
            postings[r["transaction_id"]].append(dict(r))
        return [posted_from(r, postings[r["id"]]) for r in rows]

    def rows(self) -> list[PostingRow]:
        lp = t.ledger_postings
        stmt = sa.select(lp.c.transaction_id, lp.c.kind, lp.c.order_id, lp.c.currency,
                         lp.c.account, lp.c.amount_minor).order_by(lp.c.created_at, lp.c.id)
        return [PostingRow(transaction_id=r.transaction_id, kind=r.kind, order_id=r.order_id,
                           currency=r.currency, account=r.account,
                           amount_minor=int(r.amount_minor))
                for r in self.conn.execute(stmt)]

    def balances(self, account: str | None = None) -> dict[tuple[str, str], int]:
        lp = t.ledger_postings
        stmt = (sa.select(lp.c.account, lp.c.currency, sa.func.sum(lp.c.amount_minor))
                .group_by(lp.c.account, lp.c.currency))
        if account is not None:
            stmt = stmt.where(lp.c.account == account)
        return {(r[0], r[1]): int(r[2]) for r in self.conn.execute(stmt)}

    def statement(self, account: str, *, currency: str | None = None,
                  limit: int = 100) -> list[StatementLine]:
        lp, tx = t.ledger_postings, t.ledger_transactions
        stmt = (sa.select(lp, tx.c.idempotency_key, tx.c.memo)
                .join(tx, tx.c.id == lp.c.transaction_id)
                .where(lp.c.account == account)
                .order_by(lp.c.created_at, lp.c.id).limit(limit))
        if currency is not None:
            stmt = stmt.where(lp.c.currency == currency)
        return self._lines(stmt)

    def postings_between(self, start: float | None = None,
                         end: float | None = None) -> list[StatementLine]:
        lp, tx = t.ledger_postings, t.ledger_transactions
        stmt = (sa.select(lp, tx.c.idempotency_key, tx.c.memo)
                .join(tx, tx.c.id == lp.c.transaction_id)
                .order_by(lp.c.created_at, lp.c.id))
        if start is not None:
            stmt = stmt.where(lp.c.created_at >= start)
        if end is not None:
            stmt = stmt.where(lp.c.created_at < end)
        return self._lines(stmt)

    def _lines(self, stmt: sa.Select[Any]) -> list[StatementLine]:
        return [StatementLine(transaction_id=r["transaction_id"], key=r["idempotency_key"],
                              kind=TxnKind(r["kind"]), order_id=r["order_id"],
                              account=r["account"], currency=r["currency"],
                              amount_minor=int(r["amount_minor"]), created_at=r["created_at"],
                              memo=r["memo"])
                for r in self.conn.execute(stmt).mappings()]
