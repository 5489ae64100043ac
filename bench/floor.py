"""The SQL floor: the rows a page shows, fetched by hand-written SQL through psycopg with no framework at all.

A page can never be faster than the database work behind it; page time ÷ floor says how much the framework
(request handling, middleware, sessions, ORM, templates, audit) adds on top. Each floor runs the same access
decision and the same visibility rules as the page, and fetches the same rows; where the page's own query is
slower than it needs to be, the floor uses the fast form, so the ratio shows that too.
"""

import calendar
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

# The visibility rule of sharing.access.visible(): own organisation's entries; others' only if that
# organisation shares the category today and the entry is not sensitive; nothing entered in error.
VISIBLE = """(e.source_organisation_id = %(own)s OR (NOT e.sensitive AND e.source_organisation_id IN (
    SELECT organisation_id FROM sharing_sharingagreement WHERE category = %(category)s AND shares
    AND since <= %(today)s))) AND NOT e.entered_in_error"""

DECISION = [
    """SELECT p.*, o.* FROM patients_patient p LEFT JOIN directory_organisation o ON o.id = p.registered_gp_id
       WHERE p.id = %(patient)s""",
    """SELECT pr.*, o.* FROM directory_professional pr JOIN directory_organisation o ON o.id = pr.organisation_id
       WHERE pr.user_id = %(user)s""",
    """SELECT EXISTS (SELECT 1 FROM sharing_patientgroupobjectpermission g
       JOIN auth_user_groups ug ON ug.group_id = g.group_id
       WHERE g.content_object_id = %(patient)s AND ug.user_id = %(user)s AND g.permission_id = %(permission)s)""",
    "SELECT EXISTS (SELECT 1 FROM optout_objection WHERE patient_id = %(patient)s AND status = 'upheld')",
]
_TEAMS_SHOWN = """(t.organisation_id = %(own)s OR t.organisation_id IN (
           SELECT organisation_id FROM sharing_sharingagreement WHERE category = 'teams' AND shares
           AND since <= %(today)s))"""
# The category page: every involvement, with each team's members.
INVOLVEMENTS = [
    f"""SELECT i.*, t.*, o.* FROM sharing_involvement i JOIN directory_careteam t ON t.id = i.care_team_id
       JOIN directory_organisation o ON o.id = t.organisation_id
       WHERE i.patient_id = %(patient)s AND {_TEAMS_SHOWN}
       ORDER BY i.ended_at ASC NULLS FIRST, i.started_at DESC""",
    """SELECT m.*, pr.*, u.first_name, u.last_name, u.email FROM directory_careteammembership m
       JOIN directory_professional pr ON pr.id = m.professional_id JOIN auth_user u ON u.id = pr.user_id
       WHERE m.team_id IN (SELECT care_team_id FROM sharing_involvement WHERE patient_id = %(patient)s)
       ORDER BY u.last_name""",
]
SUPPORT_NETWORK = f"""SELECT e.*, o.* FROM patients_supportperson e
       JOIN directory_organisation o ON o.id = e.source_organisation_id
       WHERE e.patient_id = %(patient)s AND {VISIBLE.replace("%(category)s", "'teams'")}
       AND NOT (SELECT restricted FROM patients_patient WHERE id = %(patient)s)
       ORDER BY e.relationship, e.name"""
# The summary: current involvements only, no members (they are one link away), and the support network.
SUMMARY_TEAMS = [
    f"""SELECT i.*, t.*, o.* FROM sharing_involvement i JOIN directory_careteam t ON t.id = i.care_team_id
       JOIN directory_organisation o ON o.id = t.organisation_id
       WHERE i.patient_id = %(patient)s AND i.started_at <= %(now)s AND (i.ended_at IS NULL OR i.ended_at > %(now)s)
       AND {_TEAMS_SHOWN}
       ORDER BY i.ended_at ASC NULLS FIRST, i.started_at DESC""",
    SUPPORT_NETWORK,
]
ENTRY_TABLES = {  # in the summary's order (patients.categories.Category)
    "alerts": "patients_alert",
    "allergies": "patients_allergy",
    "medications": "patients_medication",
    "conditions": "patients_condition",
    "results": "patients_result",
    "procedures": "patients_procedure",
    "immunisations": "patients_immunisation",
    "letters": "patients_letter",
    "appointments": "patients_appointment",
    "care-plans": "patients_careplan",
    "events": "patients_careevent",
}


NEWEST_FIRST = "e.effective_at DESC NULLS LAST, e.id DESC"  # undated after dated, as the pages order them


def _newest(table: str, category: str, limit: int, offset: int = 0, where: str = "TRUE") -> str:
    visible = VISIBLE.replace("%(category)s", f"'{category}'")
    return f"""SELECT e.*, o.* FROM {table} e JOIN directory_organisation o ON o.id = e.source_organisation_id
        WHERE e.patient_id = %(patient)s AND {visible} AND {where}
        ORDER BY {NEWEST_FIRST} LIMIT {limit} OFFSET {offset}"""


def _count(table: str, category: str, where: str = "TRUE") -> str:
    visible = VISIBLE.replace("%(category)s", f"'{category}'")
    return f"SELECT count(*) FROM {table} e WHERE e.patient_id = %(patient)s AND {visible} AND {where}"


# The summary (sharing.record.summary): all that is current of the four categories a clinician must not miss,
# never cut short; the newest few of the others; and how many of each the viewer may see (one UNION).
_ACTIVE = "e.status = 'active'"
CURRENT = {
    "alerts": ("e.active", NEWEST_FIRST),
    "allergies": ("e.clinical_status NOT IN ('inactive', 'resolved')", NEWEST_FIRST),
    "medications": (
        f"({_ACTIVE} OR (e.status IN ('stopped', 'completed') AND e.ended_on >= %(stopped_since)s))"
        " AND e.event NOT IN ('dispensed', 'administered')",  # an event about a medicine is never current
        f"""CASE WHEN {_ACTIVE} THEN 0 ELSE 1 END,
            CASE WHEN {_ACTIVE} AND e.kind = 'repeat' THEN 0 WHEN {_ACTIVE} AND e.kind = 'acute' THEN 1
                 WHEN {_ACTIVE} AND e.kind = 'hospital' THEN 2 ELSE 3 END,
            CASE WHEN {_ACTIVE} THEN NULL ELSE e.ended_on END DESC NULLS LAST, {NEWEST_FIRST}""",
    ),
    "conditions": ("e.clinical_status = 'active'", NEWEST_FIRST),
}


def _current(table: str, category: str) -> str:
    where, order = CURRENT[category]
    visible = VISIBLE.replace("%(category)s", f"'{category}'")
    return f"""SELECT e.*, o.* FROM {table} e JOIN directory_organisation o ON o.id = e.source_organisation_id
        WHERE e.patient_id = %(patient)s AND {visible} AND {where} ORDER BY {order}"""


def _counts() -> str:
    return " UNION ALL ".join(
        f"SELECT '{category}', count(*) FROM {table} e WHERE e.patient_id = %(patient)s AND "
        + VISIBLE.replace("%(category)s", f"'{category}'")
        for category, table in ENTRY_TABLES.items()
    )


def _months_before(day: date, months: int) -> date:
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


OBSERVATIONS_OF = "SELECT * FROM patients_observation WHERE result_id = ANY(%(results)s) ORDER BY name, id"
# The newest visible observation of each test and how many there are of each, in one statement: the newest
# date and count per code (a GROUP BY over the patient's observations), then those rows by (patient, code, date)
# through the index. `e.patient_id = ...` repeats what the join implies, so that the planner reads the
# patient's reports by index instead of scanning every report in the table to apply the visibility rule.
# A test whose observations are all undated (max() is NULL) is matched to its undated rows.
_VISIBLE_RESULT = VISIBLE.replace("%(category)s", "'results'")
LATEST_BY_TEST = [
    f"""WITH newest AS (
            SELECT ob.code, max(ob.effective_at) AS last, count(*) AS n FROM patients_observation ob
            JOIN patients_result e ON e.id = ob.result_id
            WHERE ob.patient_id = %(patient)s AND e.patient_id = %(patient)s AND {_VISIBLE_RESULT} GROUP BY ob.code)
        SELECT DISTINCT ON (ob.code) ob.*, e.*, o.*, newest.n FROM newest
        JOIN patients_observation ob ON ob.patient_id = %(patient)s AND ob.code = newest.code
            AND (ob.effective_at = newest.last OR (newest.last IS NULL AND ob.effective_at IS NULL))
        JOIN patients_result e ON e.id = ob.result_id JOIN directory_organisation o ON o.id = e.source_organisation_id
        WHERE e.patient_id = %(patient)s AND {_VISIBLE_RESULT}
        ORDER BY ob.code, ob.id DESC""",
]
# "New" and "Updated since you last looked" (sharing.changes), which the summary marks: the viewer's newest looks
# at the record (where their previous visit ended: found in Python, as the page does), the later versions received
# since then, and what of the record arrived since, by the (patient, received) index.
LOOKS = """SELECT at FROM audit_accessevent WHERE user_id = %(user)s AND patient_id = %(patient)s
    AND outcome = 'allowed' AND page LIKE 'record:%%' ORDER BY at DESC, id DESC LIMIT 500"""
REVISED = """SELECT organisation_id, resource_type, resource_id, received_at FROM fhir_receivedresource
    WHERE patient_id = %(patient)s AND version > 1 AND received_at > %(since)s"""


def _arrived() -> str:
    return " UNION ALL ".join(
        f"SELECT e.id, '{category}', e.created_at FROM {table} e WHERE e.patient_id = %(patient)s"
        " AND e.created_at > %(since)s AND " + VISIBLE.replace("%(category)s", f"'{category}'")
        for category, table in ENTRY_TABLES.items()
    )


AUDIT = """INSERT INTO audit_accessevent (at, user_id, user_email, professional_name, organisation_code, patient_id,
    patient_nhs_number, outcome, basis, reason, page, path, request_id, launch)
    VALUES (now(), %(user)s, 'floor@bench', 'Floor', 'FLOOR', %(patient)s, '', 'allowed', 'care-team', '',
    'bench:floor', '', '', '')"""


class Floor:
    """Runs the hand-written equivalents of each page's reads on one psycopg connection."""

    def __init__(
        self,
        conn,
        *,
        user_id: int,
        organisation_id: int,
        permission_id: int,
        summary_items: int,
        page: int,
        stopped_months: int = 3,
        idle_minutes: int = 15,
    ):
        self.conn = conn
        self.idle = timedelta(minutes=idle_minutes)
        today = datetime.now(ZoneInfo("Europe/London")).date()  # the pages' today (TIME_ZONE)
        self.base = {
            "user": user_id,
            "own": organisation_id,
            "permission": permission_id,
            "today": today,
            "stopped_since": _months_before(today, stopped_months),
        }
        self.summary_items = summary_items
        self.page = page

    def _run(self, statements, params) -> list:
        cursor = self.conn.cursor()
        rows = []
        for statement in statements:
            cursor.execute(statement, params)
            rows.append(cursor.fetchall())
        return rows

    def summary(self, patient_id, *, audit: bool = False) -> dict[str, list]:
        """The summary's reads; with `audit`, also the one AccessEvent row the page writes (its own commit).

        Returns the rows by section ("teams", "support", each category, "observations", "counts"), first column
        the id, so that tests can check the floor fetches what the page shows."""
        params = {**self.base, "patient": patient_id, "now": datetime.now(UTC)}
        self._run(DECISION, params)
        if audit:
            self.conn.execute(AUDIT, params)
        fetched = dict(zip(("teams", "support"), self._run(SUMMARY_TEAMS, params), strict=True))
        cursor = self.conn.cursor()
        cursor.execute(_counts(), params)
        fetched["counts"] = cursor.fetchall()
        for category, table in ENTRY_TABLES.items():
            if category in CURRENT:
                cursor.execute(_current(table, category), params)
            else:
                cursor.execute(_newest(table, category, self.summary_items), params)
            fetched[category] = cursor.fetchall()
            if category == "results":
                cursor.execute(OBSERVATIONS_OF, {"results": [row[0] for row in fetched[category]]})
                fetched["observations"] = cursor.fetchall()
        fetched["changes"] = self.changes(params)
        return fetched

    def changes(self, params) -> list:
        """What the summary marks new or updated since the viewer's previous visit (none on a first visit)."""
        cursor = self.conn.cursor()
        cursor.execute(LOOKS, params)
        from sharing.changes import previous_visit_end  # the page's rule for where a visit ends (Python, no SQL)

        since = previous_visit_end([row[0] for row in cursor.fetchall()], self.idle)
        if since is None:
            return []
        cursor.execute(REVISED, {**params, "since": since})
        cursor.fetchall()
        cursor.execute(_arrived(), {**params, "since": since})
        return cursor.fetchall()

    def category(self, patient_id, category: str) -> list:
        """One category page's reads; returns its list's rows (for results, the newest of each test)."""
        params = {**self.base, "patient": patient_id}
        self._run(DECISION, params)
        if category == "teams":
            return self._run([*INVOLVEMENTS, SUPPORT_NETWORK], params)[0]
        table = ENTRY_TABLES[category]
        listed = "e.kind = 'report'" if category == "results" else "TRUE"  # the results page lists reports
        cursor = self.conn.cursor()
        cursor.execute(_count(table, category, listed), params)
        cursor.fetchall()
        cursor.execute(_newest(table, category, self.page, where=listed), params)
        rows = cursor.fetchall()
        if category == "results":
            cursor.execute(OBSERVATIONS_OF, {"results": [row[0] for row in rows]})
            cursor.fetchall()
            latest = self._run(LATEST_BY_TEST, params)[0]
            # Beside the reports, the newest standalone observations (vital signs...), and how many there are.
            standalone = "e.kind = 'observation'"
            cursor.execute(_newest(table, category, self.page, where=standalone), params)
            observations = cursor.fetchall()
            cursor.execute(_count(table, category, standalone), params)
            cursor.fetchall()
            cursor.execute(OBSERVATIONS_OF, {"results": [row[0] for row in observations]})
            cursor.fetchall()
            return latest
        return rows

    def search_nhs(self, nhs_number: str) -> None:
        self.conn.execute(
            """SELECT p.*, o.* FROM patients_patient p LEFT JOIN directory_organisation o ON o.id = p.registered_gp_id
               WHERE p.nhs_number = %s""",
            [nhs_number],
        ).fetchall()

    def search_name(self, family_name: str, date_of_birth) -> None:
        self.conn.execute(
            """SELECT p.*, o.* FROM patients_patient p LEFT JOIN directory_organisation o ON o.id = p.registered_gp_id
               WHERE p.date_of_birth = %s AND upper(p.family_name) LIKE upper(%s)
               ORDER BY p.family_name, p.given_name LIMIT 50""",
            [date_of_birth, f"{family_name}%"],
        ).fetchall()

    def my_patients(self) -> None:
        granted = """p.id IN (SELECT g.content_object_id FROM sharing_patientgroupobjectpermission g
            JOIN auth_user_groups ug ON ug.group_id = g.group_id
            WHERE ug.user_id = %(user)s AND g.permission_id = %(permission)s)"""
        self.conn.execute(f"SELECT count(*) FROM patients_patient p WHERE {granted}", self.base).fetchall()
        self.conn.execute(
            f"""SELECT p.*, o.* FROM patients_patient p LEFT JOIN directory_organisation o ON o.id = p.registered_gp_id
                WHERE {granted} ORDER BY p.family_name, p.given_name LIMIT {self.page}""",
            self.base,
        ).fetchall()
