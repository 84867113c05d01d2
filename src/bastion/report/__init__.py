"""Reports: console, JSON, SARIF 2.1.0, JUnit XML, Markdown and self-contained HTML."""

from bastion.report.console import ConsoleProgress, print_summary
from bastion.report.gate import exit_code, parse_fail_on
from bastion.report.html_report import html_report
from bastion.report.json_report import findings_document, findings_json, strip_timings
from bastion.report.junit import junit_xml
from bastion.report.markdown import markdown_report
from bastion.report.sarif import sarif_document, sarif_json
from bastion.report.writer import FILE_FORMATS, FORMATS, atomic_write, validate_formats, write_reports

__all__ = [
    "FILE_FORMATS", "FORMATS", "ConsoleProgress", "atomic_write", "exit_code", "findings_document",
    "findings_json", "html_report", "junit_xml", "markdown_report", "parse_fail_on", "print_summary",
    "sarif_document", "sarif_json", "strip_timings", "validate_formats", "write_reports",
]
