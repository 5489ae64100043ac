"""`python -m carerecord.coverage_vendor`: which database vendor's own code the coverage report leaves out on this
run — "postgresql" when the suite runs on SQLite (code marked `# pragma: postgresql only` cannot run there; the
PostgreSQL run measures it), "none" otherwise. Read from the settings, so DATABASE_URL from .env counts too."""

from carerecord import settings

print("none" if settings.DATABASES["default"]["ENGINE"].endswith("postgresql") else "postgresql")
