"""Check tests (a package, so test module names like test_config do not clash with tests/model)."""
