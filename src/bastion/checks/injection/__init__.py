"""Injection checks: one module per kind (sql, command, code, ssti, traversal, xss, xxe, redirect, crlf)."""
