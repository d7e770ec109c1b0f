"""bench/pricing.py at a tiny size: it quotes through the use case, plots, and its last line
keeps the issue's contract (quotes_per_s, ledger_postings_per_s)."""

from __future__ import annotations

import json

import pricing

from lastmile.core.pricing import PricingPolicy


def test_the_steady_fee_never_falls_as_the_ratio_grows():
    policy = PricingPolicy()
    fees = [pricing.steady_fee_minor(r / 4, 5_000, policy) for r in range(0, 40)]
    assert fees == sorted(fees) and fees[-1] > fees[0]


def test_a_tiny_run_ends_with_the_contract_line_and_writes_the_plot(tmp_path, capsys):
    out = tmp_path / "fee.png"
    last = pricing.main(["--couriers", "8", "--orders", "20", "--seconds", "0.3",
                         "--rounds", "2", "--warmup-rounds", "2", "--out", str(out)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert json.loads(lines[-1]) == last
    assert list(last) == ["quotes_per_s", "ledger_postings_per_s"]
    assert last["quotes_per_s"] > 0 and last["ledger_postings_per_s"] > 0
    posted = json.loads(lines[-2])
    assert posted["ledger_postings"] >= 2 * posted["ledger_transactions"] > 0
    assert out.stat().st_size > 10_000
