"""The shared safe YAML loader: limits enforced before construction, line numbers, clear errors."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion import safeyaml
from bastion.errors import ConfigError, InputFileError
from bastion.safeyaml import YamlLimits, dotted_key, load_yaml_file, load_yaml_text

DATA = Path(__file__).parent.parent / "data" / "model"


@pytest.fixture(params=["libyaml", "python"])
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the libyaml event source and with the pure-Python one."""
    if request.param == "python":
        monkeypatch.setattr(safeyaml, "_LOADER", safeyaml._PyLoader)
    return request.param


@pytest.fixture
def no_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any Python object is built: the limit must trip on the node graph first."""
    def refuse(self: object, node: object) -> None:
        raise AssertionError("document was constructed before the limit was checked")

    monkeypatch.setattr(safeyaml._CheckedConstructor, "construct_document", refuse)


def test_parses_and_records_lines(loader: str) -> None:
    doc = load_yaml_text("a: 1\nb:\n  c: [x, {d: 2027-03-01}]\n  e:\n    - f\n", name="t.yaml")
    assert doc.data == {"a": 1, "b": {"c": ["x", {"d": datetime.date(2027, 3, 1)}], "e": ["f"]}}
    assert doc.line_of(["a"]) == 1
    assert doc.line_of(["b", "e", 0]) == 5
    assert doc.line_of(["b", "c", 1, "d"]) == 3
    # Unknown tails fall back to the deepest known ancestor.
    assert doc.line_of(["b", "e", "missing", "x"]) == 4


def test_merge_keys_and_aliases_are_supported(loader: str) -> None:
    doc = load_yaml_text("base: &b {k: v}\nuse: *b\nmerged:\n  <<: *b\n  m: 1\n", name="t.yaml")
    assert doc.data["use"] == {"k": "v"}
    assert doc.data["merged"] == {"k": "v", "m": 1}
    assert doc.line_of(["merged", "m"]) == 5
    doc = load_yaml_text("a: &a {x: 1}\nb: &b {y: 2}\nc:\n  <<: [*a, *b]\n", name="t.yaml")
    assert doc.data["c"] == {"x": 1, "y": 2}
    assert doc.line_of(["c", "y"]) == 2


def test_empty_document_is_none(loader: str) -> None:
    assert load_yaml_text("# only a comment\n", name="t.yaml").data is None


def test_duplicate_keys_are_an_error(loader: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml_text("top:\n  a: 1\n  b: 2\n  a: 3\n", name="dup.yaml")
    err = info.value
    assert (err.file, err.line, err.key) == ("dup.yaml", 4, "top.a")
    assert "duplicate key 'a' (first at line 2)" in str(err)


def test_alias_count_limit_trips_while_composing(loader: str, no_construction: None) -> None:
    text = "a: &x [1]\nb: [*x, *x, *x, *x]\n"
    with pytest.raises(ConfigError, match="more than 3 YAML aliases") as info:
        load_yaml_text(text, name="aliases.yaml", limits=YamlLimits(max_aliases=3))
    assert info.value.line == 2


def test_billion_laughs_is_refused_before_expansion(loader: str, no_construction: None) -> None:
    # 81 aliases (under the alias limit) that would expand to 9**9 nodes: refused by measurement.
    with pytest.raises(ConfigError, match="once aliases are expanded") as info:
        load_yaml_file(DATA / "alias-bomb.yaml")
    assert info.value.file.endswith("alias-bomb.yaml")
    assert info.value.line is not None and info.value.key.startswith("bomb.")


def test_recursive_alias_is_refused(loader: str, no_construction: None) -> None:
    with pytest.raises(ConfigError, match="recursive YAML alias"):
        load_yaml_text("a: &a [1, *a]\n", name="rec.yaml")


def test_deep_nesting_is_refused_while_composing(loader: str) -> None:
    with pytest.raises(ConfigError, match="nesting deeper than 32 levels") as info:
        load_yaml_file(DATA / "deep.yaml")
    assert info.value.line == 2
    assert info.value.key.startswith("data_classes.x[0][0]") and info.value.key.endswith("...")


def test_very_deep_nesting_does_not_hit_python_recursion(loader: str) -> None:
    with pytest.raises(ConfigError, match="nesting deeper|nesting depth"):
        load_yaml_text("[" * 50_000 + "]" * 50_000, name="deep.yaml", limits=YamlLimits(max_bytes=1 << 20))


def test_aliases_count_towards_depth(loader: str, no_construction: None) -> None:
    text = "a: &a [[[[1]]]]\nb: [[[[*a]]]]\n"
    with pytest.raises(ConfigError, match="once aliases are expanded"):
        load_yaml_text(text, name="t.yaml", limits=YamlLimits(max_depth=6))


def test_node_limit(loader: str) -> None:
    with pytest.raises(ConfigError, match="more than 10 YAML nodes"):
        load_yaml_text("[" + ", ".join(["1"] * 20) + "]", name="t.yaml", limits=YamlLimits(max_nodes=10))


def test_unsafe_tags_are_refused(loader: str) -> None:
    with pytest.raises(ConfigError, match="could not determine a constructor") as info:
        load_yaml_text("a: 1\nb: !!python/object/apply:os.system [echo hi]\n", name="evil.yaml")
    assert info.value.line == 2


def test_invalid_date_names_the_line(loader: str) -> None:
    with pytest.raises(ConfigError, match="invalid date '2027-13-01'") as info:
        load_yaml_text("a: 1\nuntil: 2027-13-01\n", name="t.yaml")
    assert info.value.line == 2


def test_syntax_error_names_the_line(loader: str) -> None:
    with pytest.raises(ConfigError, match="invalid YAML") as info:
        load_yaml_text("a: 1\nb: [1, 2\nc: 3\n", name="t.yaml")
    assert info.value.file == "t.yaml" and info.value.line is not None


def test_several_documents_are_refused(loader: str) -> None:
    with pytest.raises(ConfigError, match="single document"):
        load_yaml_text("a: 1\n---\nb: 2\n", name="t.yaml")


def test_size_limit_is_checked_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as fh:  # sparse: 50 MB on paper, nothing on disk
        fh.truncate(50 * 1024 * 1024)

    def refuse_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was opened although its size is over the limit")

    monkeypatch.setattr(Path, "open", refuse_open)
    with pytest.raises(ConfigError, match="larger than the limit of 1048576") as info:
        load_yaml_file(big)
    assert info.value.file == str(big)


def test_encoding_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid UTF-8") as info:
        load_yaml_file(DATA / "latin1.yaml")
    assert info.value.line == 5
    with pytest.raises(ConfigError, match="UTF-16"):
        load_yaml_file(DATA / "utf16.yaml")
    no_bom = tmp_path / "nobom.yaml"
    no_bom.write_bytes("a: 1\n".encode("utf-16-le"))
    with pytest.raises(ConfigError, match="NUL bytes"):
        load_yaml_file(no_bom)
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbfa: 1\n")
    assert load_yaml_file(bom).data == {"a": 1}


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_yaml_file(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="directory"):
        load_yaml_file(tmp_path)


def test_error_class_is_the_callers() -> None:
    with pytest.raises(InputFileError):
        load_yaml_text("a: [", name="t.yaml", error=InputFileError)


def test_dotted_key() -> None:
    assert dotted_key(["roles", "alice", "login", "path"]) == "roles.alice.login.path"
    assert dotted_key(["access", "GET /x", 0]) == 'access."GET /x"[0]'
    assert dotted_key([]) == ""


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_raise_config_errors(tmp_path_factory: pytest.TempPathFactory,
                                                  raw: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "f.yaml"
    path.write_bytes(raw)
    try:
        load_yaml_file(path)
    except ConfigError:
        pass


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="ab:-[]{}&*!|>'\"#\n ,?", max_size=120))
def test_yaml_shaped_text_only_raises_config_errors(text: str) -> None:
    try:
        load_yaml_text(text, name="fuzz.yaml", limits=YamlLimits(max_aliases=5, max_nodes=500))
    except ConfigError:
        pass
