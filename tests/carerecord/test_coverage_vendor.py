"""make test's coverage on SQLite leaves out code only PostgreSQL runs (pyproject.toml, [tool.coverage.report])."""

import subprocess
import sys

import pytest
from django.conf import settings


@pytest.mark.parametrize(
    ("database_url", "skipped"),
    [("sqlite:///coverage-vendor.sqlite3", "postgresql"), ("postgres://root@127.0.0.1:5432/test", "none")],
)
def test_the_vendor_whose_code_is_not_counted_follows_the_database(database_url, skipped):
    run = subprocess.run(
        [sys.executable, "-m", "carerecord.coverage_vendor"],
        cwd=settings.BASE_DIR,
        env={"DATABASE_URL": database_url, "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.strip() == skipped


def test_in_this_run_it_names_the_other_vendor(capsys):
    import runpy

    from django.db import connection

    runpy.run_module("carerecord.coverage_vendor", run_name="__main__")
    assert capsys.readouterr().out.strip() == ("none" if connection.vendor == "postgresql" else "postgresql")
