"""Risk dashboard: one self-contained HTML page (inline SVG charts) over the run history."""

from bastion.dashboard.data import DashboardData, build_dashboard_data
from bastion.dashboard.html import dashboard_html

__all__ = ["DashboardData", "build_dashboard_data", "dashboard_html"]
