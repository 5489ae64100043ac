"""make bench-http's pure pieces: floors, issue 19's targets, the PEERS.md table and what counts as a right answer.
No timing here: the bench reports figures, tests never assert them."""

import json

import pytest

from bench import http, peers

FAST = {
    peers.READ_PATIENT: (2.0, 3.61),
    peers.SEARCH_OBSERVATION: (3.0, 6.35),
    peers.SEARCH_IDENTIFIER: (2.0, 4.29),
    peers.EVERYTHING: (10.0, 41.8 / 3),
}


def test_medplum_figures_are_peers_md_run_one_and_two():
    assert peers.MEDPLUM[peers.INGEST] == (122.0, 107.0)
    assert peers.MEDPLUM[peers.READ_PATIENT] == ((2.46, 3.61), (1.77, 3.53))
    assert peers.TARGET_P95_MS[peers.EVERYTHING] == pytest.approx(41.8 / 3)
    assert {name for name, _, _ in http.READS} == set(peers.TARGET_P95_MS)


def test_a_reads_floor_is_the_http_floor_plus_the_sql_floor():
    assert http.read_floor((1.0, 2.0), (0.5, 1.25)) == (1.5, 3.25)
    assert http.read_floor((1.0, 2.0), (None, None)) == (None, None)


def test_targets_at_the_bound_are_met():
    checks = http.targets(FAST, 3_000.0)
    assert len(checks) == 5
    assert all(met for met, _ in checks)
    assert any("a third of Medplum's 13.93 ms" in text for _, text in checks)


def test_targets_over_the_bound_are_missed():
    slow = {**FAST, peers.READ_PATIENT: (26.5, 35.6)}
    checks = dict((text, met) for met, text in http.targets(slow, 1_324.0))
    assert checks["read Patient p95 35.60 ms ≤ Medplum's 3.61 ms"] is False
    assert checks["ingest 1,324 resources/s ≥ 3,000"] is False
    assert checks["search Observation by subject p95 6.35 ms ≤ Medplum's 6.35 ms"] is True


def test_targets_skip_what_was_not_measured():
    assert http.targets({}, None) == []


def test_the_table_has_peers_md_shape_with_floors():
    floors = {name: (1.0, 2.0) for name in FAST}
    reads = {**FAST, peers.READ_PATIENT: (26.5, 35.6)}
    lines = http.table(reads, 1_324.0, floors)
    assert lines[0].split(" | ")[0].strip() == "measure"
    assert [cell.strip() for cell in lines[0].split(" | ")[1:]] == [
        "carerecord",
        "Medplum run 1",
        "Medplum run 2",
        "÷ Medplum",
        "floor p50 / p95",
        "÷ floor",
    ]
    assert set(lines[1]) <= {"-", "+"}
    ingest = [cell.strip() for cell in lines[2].split(" | ")]
    assert ingest[:5] == ["ingest, resources/s", "1,324", "122", "107", "10.9×"]
    read = [cell.strip() for cell in lines[3].split(" | ")]
    assert read == [
        "read Patient p50 / p95 ms",
        "26.50 / 35.60",
        "2.46 / 3.61",
        "1.77 / 3.53",
        "9.9×",
        "1.00 / 2.00",
        "26.5× / 17.8×",
    ]
    assert len(lines) == 2 + 1 + len(http.READS)
    assert len({len(line) for line in lines[:2]}) == 1  # the rule is as wide as the header


def test_the_table_shows_dashes_for_what_is_missing():
    lines = http.table({}, None, {})
    assert [cell.strip() for cell in lines[2].split(" | ")][1] == "-"
    assert [cell.strip() for cell in lines[3].split(" | ")][1] == "-"


def bundle(*resource_types):
    return json.dumps({"resourceType": "Bundle", "entry": [{"resource": {"resourceType": t}} for t in resource_types]})


@pytest.mark.parametrize(
    ("name", "status", "content", "hits", "problem"),
    [
        (peers.READ_PATIENT, 200, json.dumps({"resourceType": "Patient"}), 1, ""),
        (peers.READ_PATIENT, 404, "{}", 1, "HTTP 404"),
        (peers.READ_PATIENT, 200, "<html>", 1, "not JSON"),
        (peers.SEARCH_OBSERVATION, 200, bundle(*["Observation"] * 9, "OperationOutcome"), 9, ""),
        (peers.SEARCH_OBSERVATION, 200, bundle(*["Observation"] * 8), 9, "8 hits, not 9"),
        (peers.SEARCH_IDENTIFIER, 200, bundle("Patient"), 1, ""),
        (peers.SEARCH_IDENTIFIER, 200, bundle(), 1, "0 hits, not 1"),
        (peers.EVERYTHING, 200, bundle("Patient", *["Observation"] * 9), 10, ""),
        (peers.EVERYTHING, 200, bundle("Patient", *["Observation"] * 9, "CareTeam"), 10, ""),
        (peers.EVERYTHING, 200, bundle("Patient", *["Observation"] * 10), 10, "11 hits, not 10"),
    ],
)
def test_an_answer_is_right_only_when_200_with_the_expected_hits(name, status, content, hits, problem):
    found = http.answer_problem(name, status, content.encode(), hits)
    assert found.startswith(problem) if problem else found == ""


def test_smoke_counts_shrink_but_never_to_nothing():
    assert http.scaled(500, 0.1) == 50
    assert http.scaled(5, 0.1) == 1
    assert http.scaled(5, 0.01) == 1
    assert http.scaled(300, 1.0) == 300


def test_the_commit_is_read_from_git_without_running_it(tmp_path, monkeypatch):
    commit = "a" * 40
    (tmp_path / ".git" / "refs" / "heads").mkdir(parents=True)
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (tmp_path / ".git" / "refs" / "heads" / "main").write_text(commit + "\n")
    monkeypatch.setattr(http, "ROOT", tmp_path)
    assert http.git_commit() == commit
    (tmp_path / ".git" / "refs" / "heads" / "main").unlink()
    (tmp_path / ".git" / "packed-refs").write_text(f"# pack-refs\n{'b' * 40} refs/heads/main\n")
    assert http.git_commit() == "b" * 40
    monkeypatch.setattr(http, "ROOT", tmp_path / "nowhere")
    assert http.git_commit() == ""


def test_entry_types_counts_a_bundles_entries_by_type():
    assert http.entry_types(bundle("Patient", "CareTeam", "Observation", "Observation").encode()) == {
        "Patient": 1,
        "CareTeam": 1,
        "Observation": 2,
    }
