"""write_reports: fixed names, format validation, atomic replacement."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET

import pytest
from report_samples import make_result, many_findings

import bastion.report.writer as writer
from bastion.errors import BastionError
from bastion.report import FORMATS, write_reports

ALL_FILES = ["json", "sarif", "junit", "html", "md"]
NAMES = ["findings.json", "bastion.sarif", "junit.xml", "report.html", "report.md"]


def test_writes_fixed_names(tmp_path, result):
    out = tmp_path / "nested" / "out"
    paths = write_reports(result, [*ALL_FILES, "console"], out)
    assert [p.name for p in paths] == NAMES
    assert sorted(p.name for p in out.iterdir()) == sorted(NAMES)
    assert json.loads((out / "findings.json").read_text("utf-8"))["schema"] == "bastion-findings/1"
    assert json.loads((out / "bastion.sarif").read_text("utf-8"))["version"] == "2.1.0"
    ET.parse(out / "junit.xml")
    assert (out / "report.md").read_text("utf-8").startswith("# Bastion")
    assert (out / "findings.json").stat().st_mode & 0o777 == 0o644


def test_console_only_and_duplicates(tmp_path, result):
    assert write_reports(result, ["console"], tmp_path) == []
    assert [p.name for p in write_reports(result, ["json", "JSON", " json"], tmp_path)] == ["findings.json"]


def test_unknown_format_names_it_and_lists_valid_ones(tmp_path, result):
    with pytest.raises(BastionError) as err:
        write_reports(result, ["json", "pdf"], tmp_path)
    assert "'pdf'" in str(err.value) and ", ".join(FORMATS) in str(err.value)
    assert list(tmp_path.iterdir()) == []  # validated before anything is written


def _previous(tmp_path):
    old = make_result(findings=[])
    write_reports(old, ["json"], tmp_path)
    return (tmp_path / "findings.json").read_bytes()


def test_failure_mid_write_keeps_the_previous_file(tmp_path, result, monkeypatch):
    before = _previous(tmp_path)
    written = []

    def fail_after_writing(fd):
        # the new content is partly on disk in the temp file when this fails
        written.extend(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp"))
        raise OSError("disk full")

    monkeypatch.setattr(writer.os, "fsync", fail_after_writing)
    with pytest.raises(OSError, match="disk full"):
        write_reports(result, ["json"], tmp_path)
    assert written and written[0].startswith(".findings.json.")
    assert (tmp_path / "findings.json").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["findings.json"]  # no temp file left


def test_failure_in_replace_keeps_the_previous_file(tmp_path, result, monkeypatch):
    before = _previous(tmp_path)

    def broken_replace(src, dst):
        raise PermissionError("replace refused")

    monkeypatch.setattr(writer.os, "replace", broken_replace)
    with pytest.raises(PermissionError):
        write_reports(result, ["json"], tmp_path)
    assert (tmp_path / "findings.json").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["findings.json"]


def test_renderer_error_writes_nothing_new(tmp_path, result, monkeypatch):
    before = _previous(tmp_path)

    def boom(res):
        raise RuntimeError("renderer bug")

    monkeypatch.setitem(writer.FILE_FORMATS, "json", ("findings.json", boom))
    with pytest.raises(RuntimeError):
        write_reports(result, ["json"], tmp_path)
    assert (tmp_path / "findings.json").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["findings.json"]


def test_replacing_keeps_the_existing_mode(tmp_path, result):
    _previous(tmp_path)
    os.chmod(tmp_path / "findings.json", 0o600)
    write_reports(result, ["json"], tmp_path)
    assert (tmp_path / "findings.json").stat().st_mode & 0o777 == 0o600


def test_lone_surrogates_do_not_crash(tmp_path):
    res = make_result(findings=[f.model_copy(update={"title": "bad \udcff byte"}) for f in many_findings(3)])
    for path in write_reports(res, ALL_FILES, tmp_path):
        path.read_text("utf-8")  # valid UTF-8


def test_thousands_of_findings_all_formats(tmp_path):
    res = make_result(findings=many_findings(3000))
    paths = write_reports(res, ALL_FILES, tmp_path)
    assert len(json.loads(paths[0].read_text("utf-8"))["findings"]) == 3000
    assert len(json.loads(paths[1].read_text("utf-8"))["runs"][0]["results"]) == 3000
