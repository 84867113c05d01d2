"""Engine-side plumbing for resilience and queue checks: the target's declared dependencies, the doubles
Bastion runs for them, and how an in-process app is wired to those doubles (docs/resilience.md)."""

from bastion.resilience.wiring import WiredDoubles, doubles_for, queue_from_setting, wire_dependencies

__all__ = ["WiredDoubles", "doubles_for", "queue_from_setting", "wire_dependencies"]
