"""Grey-box sensors: audit-hook watchers, SQL hooks, the egress guard and canary correlation."""

from bastion.sensors.correlate import correlate, request_key
from bastion.sensors.events import Probe, SensorEvent, SensorSession
from bastion.sensors.hook import EgressBlocked, active_session, install, probe_scope, sensor_session
from bastion.sensors.scope import app_roots, egress_allowlist

__all__ = ["EgressBlocked", "Probe", "SensorEvent", "SensorSession", "active_session", "app_roots",
           "correlate", "egress_allowlist", "install", "probe_scope", "request_key", "sensor_session"]
