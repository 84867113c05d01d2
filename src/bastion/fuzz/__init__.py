"""Property-based and stateful fuzzing: requests generated from OpenAPI or introspected inputs (hypothesis).

`shape` turns an entry point's inputs (or its OpenAPI request schema) into a field tree, `strategies`
turns that tree into hypothesis strategies and explicit edge-case examples, `oracles` judge responses
(5xx, stack traces, contract, sensor sinks), `runner` drives one entry point within its
budget.
"""

from bastion.fuzz.runner import DEFAULT_FUZZ_BUDGET, EntryReport, Failure, fuzz_entry_point

__all__ = ["DEFAULT_FUZZ_BUDGET", "EntryReport", "Failure", "fuzz_entry_point"]
