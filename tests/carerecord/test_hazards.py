"""The hazard log check (`python -m carerecord.hazards`, in `make check`) on small logs and test trees of its own.

The real log and tests are checked by `make check` itself; these show each rule fails when it should."""

import textwrap

import pytest

from carerecord import hazards
from carerecord.hazards import END, START

ONE = "(software) a rule in code. Tests: `tests/test_a.py::test_one`."


def hazard(number, *, controls=(ONE,), initial="severity 4 × likelihood 3 → risk 3"):
    lines = [
        f"## H-{number:02d} Hazard {number}",
        "- **Cause**: something goes wrong.",
        "- **Effect**: a patient is harmed.",
        f"- **Initial risk**: {initial}.",
        "- **Controls**:",
        *(f"  - {control}" for control in controls),
        "- **Residual risk**: severity 4 × likelihood 1 → risk 2.",
    ]
    return "\n".join(lines) + "\n"


GOOD_TESTS = textwrap.dedent(
    """
    import pytest

    @pytest.mark.hazard("H-01")
    def test_one():
        pass
    """
)


@pytest.fixture
def tree(tmp_path):
    """A repository in miniature: a log, a safety case with empty markers, and a tests folder."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "case.md").write_text(f"# Safety case\n\n{START}\n{END}\n\nConclusion.\n")

    def make(log, **test_files):
        (tmp_path / "log.md").write_text("# Hazard log\n\n" + log)
        for name, source in test_files.items():
            path = tmp_path / "tests" / f"{name}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
        return tmp_path

    return make


def run(root, mode="--check"):
    files = {"--log": root / "log.md", "--case": root / "case.md", "--tests": root / "tests", "--root": root}
    return hazards.main([mode, *(part for option, path in files.items() for part in (option, str(path)))])


def test_a_good_log_passes_once_the_report_is_written(tree, capsys):
    root = tree(hazard(1), test_a=GOOD_TESTS)
    assert run(root) == 1
    assert "table is out of date (run `make safety-report`)" in capsys.readouterr().err
    assert run(root, "--report") == 0
    case = (root / "case.md").read_text()
    assert "| H-01 Hazard 1 | 4 × 3 → **3** | 4 × 1 → **2** | 1 of 1 | 0 | 1 |" in case
    assert "| H-01 | `tests/test_a.py::test_one` |" in case and case.endswith("Conclusion.\n")
    assert run(root) == 0
    assert "1 hazards, 1 software controls each proven by tagged tests, 1 tagged tests: all tied" in (
        capsys.readouterr().out
    )


def test_a_hazard_with_a_software_control_and_no_test_fails(tree, capsys):
    root = tree(hazard(1) + hazard(2, controls=["(software) a rule in code."]), test_a=GOOD_TESTS)
    run(root, "--report")
    assert run(root) == 1
    err = capsys.readouterr().err
    assert 'H-02 "Hazard 2": it has a (software) control but no test is tagged @pytest.mark.hazard("H-02")' in err
    assert 'H-02 control 1 (software) "a rule in code." names no test (none tagged yet)' in err
    assert "H-01" not in err
    assert "**none yet: `make check` fails**" in (root / "case.md").read_text()


def test_each_software_control_names_its_tests_and_the_check_says_which_are_unnamed(tree, capsys):
    two = ONE, "(software) another rule,\n    over two lines.", "(procedural: training) users are trained."
    tagged_twice = GOOD_TESTS + '\n@pytest.mark.hazard("H-01")\ndef test_two():\n    pass\n'
    root = tree(hazard(1, controls=two), test_a=tagged_twice)
    run(root, "--report")
    assert run(root) == 1
    err = capsys.readouterr().err
    assert 'H-01 control 2 (software) "another rule, over two lines." names no test' in err
    assert "(tagged H-01, named by no control: tests/test_a.py::test_two)" in err
    assert "| 1 of 2 | 1 | 2 |" in (root / "case.md").read_text()


def test_a_hazard_with_only_procedural_controls_needs_no_test(tree):
    procedural = hazard(2, controls=["(procedural: training) users are trained."])
    root = tree(hazard(1) + procedural, test_a=GOOD_TESTS)
    run(root, "--report")
    assert run(root) == 0
    assert "none needed (procedural controls only)" in (root / "case.md").read_text()


def test_a_test_tagged_with_an_id_not_in_the_log_fails(tree, capsys):
    stray = GOOD_TESTS + '\n@pytest.mark.hazard("H-01")\n@pytest.mark.hazard("H-99")\ndef test_two():\n    pass\n'
    root = tree(hazard(1), test_a=stray)
    run(root, "--report")
    assert run(root) == 1
    message = "tests/test_a.py::test_two: tagged hazard('H-99'), which is not a hazard in the log"
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("listed", "message"),
    [
        ("`tests/test_a.py::test_gone`", "H-01 control 1: names tests/test_a.py::test_gone, which is not a test in"),
        ("`tests/test_a.py::test_untagged`", 'tests/test_a.py::test_untagged, which is not tagged hazard("H-01")'),
    ],
)
def test_a_test_the_log_names_must_exist_and_carry_the_id(tree, capsys, listed, message):
    untagged = GOOD_TESTS + "\ndef test_untagged():\n    pass\n"
    root = tree(hazard(1, controls=[f"{ONE} {listed}"]), test_a=untagged)
    run(root, "--report")
    assert run(root) == 1
    assert message in capsys.readouterr().err


def test_marks_on_a_module_a_class_and_a_list_are_all_read(tree):
    module_list = """
        import pytest

        pytestmark = [pytest.mark.django_db, pytest.mark.hazard("H-01")]

        def test_in_module():
            pass
    """
    module_single = """
        from pytest import mark

        pytestmark = mark.hazard("H-02")

        def test_single():
            pass
    """
    on_class = """
        import pytest

        @pytest.mark.hazard("H-03")
        class TestThings:
            pytestmark = pytest.mark.hazard("H-04")

            @pytest.mark.parametrize("n", [1, 2])
            @pytest.mark.hazard("H-05")
            def test_method(self, n):
                pass

        class Helper:
            @pytest.mark.hazard("H-06")
            def test_not_collected(self):
                pass
    """
    root = tree("", test_a=module_list, sub__test_b=module_single, test_c=on_class)
    (root / "tests" / "sub").mkdir()
    (root / "tests" / "sub__test_b.py").rename(root / "tests" / "sub" / "test_b.py")
    tagged, every, errors = hazards.collect_tags(root / "tests", root)
    assert errors == []
    assert tagged == {
        "tests/test_a.py::test_in_module": {"H-01"},
        "tests/sub/test_b.py::test_single": {"H-02"},
        "tests/test_c.py::TestThings::test_method": {"H-03", "H-04", "H-05"},
    }
    assert "tests/test_c.py::Helper::test_not_collected" not in every


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ('import pytest\nH = "H-01"\n\n@pytest.mark.hazard(H)\ndef test_x():\n    pass\n', "a hazard id must be"),
        ("import pytest\n\n@pytest.mark.hazard()\ndef test_x():\n    pass\n", "hazard mark without an id"),
        ("def test_x(:\n", "cannot be parsed"),
    ],
)
def test_a_mark_the_check_cannot_read_is_an_error(tree, capsys, source, error):
    root = tree(hazard(1), test_a=GOOD_TESTS, test_b=source)
    _, _, errors = hazards.collect_tags(root / "tests", root)
    assert len(errors) == 1 and errors[0].startswith("tests/test_b.py") and error in errors[0]
    run(root, "--report")
    assert run(root) == 1
    assert error in capsys.readouterr().err


@pytest.mark.parametrize(
    ("log", "message"),
    [
        (hazard(1, initial="severity 5 × likelihood 3 → risk 3"), "is risk 4 on the DCB0129 matrix, not 3"),
        (hazard(1, initial="severity 1 × likelihood 1 → risk 1"), "the residual risk is higher than the initial"),
        (hazard(1, initial="4 × 3"), "**Initial risk** needs 'severity N × likelihood N → risk N'"),
        (hazard(1, controls=["a rule in code."]), "a control is marked neither (software) nor (procedural: ...)"),
        (hazard(1).replace("- **Effect**: a patient is harmed.\n", ""), "H-01: no **Effect** field"),
        (hazard(1) + hazard(1), "H-01: the log holds this id more than once"),
        (hazard(1, controls=[]).replace("**Controls**:", "**Controls**: none."), "**Controls** lists no control"),
    ],
)
def test_a_malformed_record_fails(tree, capsys, log, message):
    root = tree(log, test_a=GOOD_TESTS)
    run(root, "--report")
    assert run(root) == 1
    assert message in capsys.readouterr().err


def test_the_case_must_hold_the_markers(tree, capsys):
    root = tree(hazard(1), test_a=GOOD_TESTS)
    (root / "case.md").write_text("# Safety case without a table\n")
    assert run(root, "--report") == 1
    assert "add the markers" in capsys.readouterr().err
    assert run(root) == 1
    assert "no <!-- hazard-tests:start --> ... <!-- hazard-tests:end --> markers" in capsys.readouterr().err


def test_the_shorthand_names_the_file_of_the_node_before():
    text = (
        "## H-01 X\n- **Controls**:\n  - (software) a rule.\n    Tests: `tests/test_a.py::test_one`, `…::test_two`.\n"
    )
    [control] = hazards.parse_log(text)["H-01"].controls
    assert control.tests == ["tests/test_a.py::test_one", "tests/test_a.py::test_two"]


def test_the_matrix_is_dcb0129s():
    """Catastrophic and very high is 5, minor and very low 1; the ratings rise with both scales."""
    assert hazards.MATRIX[4][4] == 5 and hazards.MATRIX[0][0] == 1 and hazards.MATRIX[0][4] == 3
    for likelihood in range(5):
        for severity in range(4):
            assert hazards.MATRIX[likelihood][severity] <= hazards.MATRIX[likelihood][severity + 1]
            if likelihood < 4:
                assert hazards.MATRIX[likelihood][severity] <= hazards.MATRIX[likelihood + 1][severity]
