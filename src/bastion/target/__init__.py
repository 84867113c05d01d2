"""How requests reach the service: in-process transports or a live URL, scope guard and budgets."""

from bastion.target.budget import Budget, Limits
from bastion.target.client import ProbeClient
from bastion.target.exchange import Exchange, SentRequest
from bastion.target.scope import Scope
from bastion.target.target import Target, load_app

__all__ = ["Budget", "Exchange", "Limits", "ProbeClient", "Scope", "SentRequest", "Target", "load_app"]
