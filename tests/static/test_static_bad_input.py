"""Hostile trees: binary, huge, non-UTF-8, syntax errors, symlink loops, too many files — skipped, never fatal."""

from __future__ import annotations

import os
from pathlib import Path

from bastion.static.files import MAX_FILE_BYTES
from bastion.static.runner import run_static


def _reasons(tmp_path: Path, **kwargs: object) -> dict[str, str]:
    result = run_static([tmp_path], **kwargs)  # type: ignore[arg-type]
    return {Path(s.path).name: s.reason for s in result.skipped}


def test_binary_non_utf8_and_syntax_errors_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "blob.py").write_bytes(b"\x00\x01\x02binary\x00")
    (tmp_path / "latin.py").write_bytes(b"name = '\xe9t\xe9'\n")
    (tmp_path / "broken.py").write_text("def f(:\n    pass\n")
    (tmp_path / "ok.py").write_text("import os\nos.system('ls')\n")
    reasons = _reasons(tmp_path)
    assert reasons["blob.py"] == "binary file"
    assert "UTF-8" in reasons["latin.py"]
    assert reasons["broken.py"].startswith("syntax error at line 1")
    assert "ok.py" not in reasons


def test_huge_file_is_skipped_without_being_read(tmp_path: Path) -> None:
    huge = tmp_path / "huge.py"
    with huge.open("wb") as fh:  # sparse: no real disk use
        fh.truncate(MAX_FILE_BYTES + 1)
    assert "larger than" in _reasons(tmp_path)["huge.py"]


def test_symlink_loops_and_broken_links_do_not_recurse(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "app.py").write_text("x = 1\n")
    os.symlink(tmp_path, tmp_path / "pkg" / "loop")
    os.symlink(tmp_path / "self.py", tmp_path / "self.py") if False else os.symlink("self.py", tmp_path / "self.py")
    result = run_static([tmp_path], bandit=False)
    assert result.files_scanned == 1
    assert any("symlink" in s.reason for s in result.skipped)


def test_file_cap_records_that_the_rest_was_not_scanned(tmp_path: Path) -> None:
    for i in range(30):
        (tmp_path / f"m{i:02d}.py").write_text("x = 1\n")
    result = run_static([tmp_path], bandit=False, max_files=10)
    assert result.files_scanned == 10
    assert any("more than 10 files" in s.reason for s in result.skipped)


def test_deeply_nested_expression_is_skipped_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "deep.py").write_text("x = " + "(" * 5000 + "1" + ")" * 5000 + "\n")
    (tmp_path / "deep2.py").write_text("x = " + "-" * 100_000 + "1\n")
    result = run_static([tmp_path])
    assert {Path(s.path).name for s in result.skipped} >= {"deep.py"}


def test_missing_path_is_recorded(tmp_path: Path) -> None:
    result = run_static([tmp_path / "nope"])
    assert result.findings == [] and result.skipped[0].reason == "does not exist"
