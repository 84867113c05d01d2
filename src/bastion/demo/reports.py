"""Demo basket report: order statistics for a list of quantities (`fuzz_crash`, `fuzz_contract`).

`fuzz_crash`: the handler validates types and ranges but forgets that the list may be empty: the
average divides by zero and the request ends in a 500. Only a fuzzer sends `[]` here; the hardened
twin rejects an empty list with a 400. `fuzz_contract`: below the discount threshold the handler
answers `"discount": null` where the published OpenAPI document promises a number.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from bastion.demo.flask_app import planted

reports_bp = Blueprint("demo_reports", __name__)

MAX_QUANTITY = 10_000
MAX_LINES = 100
CURRENCIES = ("EUR", "USD", "GBP")
DISCOUNT_FROM = 10  # items in the basket
DISCOUNT_RATE = 0.05


@reports_bp.post("/api/reports/basket")
def basket_report() -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error="expected a JSON object"), 400
    quantities = body.get("quantities")
    currency = body.get("currency", "EUR")
    if not isinstance(quantities, list) or len(quantities) > MAX_LINES:
        return jsonify(error=f"quantities must be a list of up to {MAX_LINES} numbers"), 400
    if not all(type(q) is int and 0 < q <= MAX_QUANTITY for q in quantities):
        return jsonify(error=f"each quantity must be a whole number from 1 to {MAX_QUANTITY}"), 400
    if currency not in CURRENCIES:
        return jsonify(error=f"currency must be one of {', '.join(CURRENCIES)}"), 400
    if not quantities and not planted("fuzz_crash"):
        return jsonify(error="the basket is empty"), 400
    total = sum(quantities)
    discount: float | None = round(total * DISCOUNT_RATE, 2) if total >= DISCOUNT_FROM else 0.0
    if total < DISCOUNT_FROM and planted("fuzz_contract"):
        discount = None  # "no discount" as null: the published contract says number
    return jsonify(lines=len(quantities), total=total, average=round(total / len(quantities), 2),
                   largest=max(quantities), discount=discount, currency=currency)
