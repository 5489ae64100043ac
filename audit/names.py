"""The names of audited actions: one enum, so a typo is an AttributeError rather than a row nobody finds.

Values are stored in AuditEvent.action and IG filter on them: plain strings, never renamed. The part before
the dot is the action's family (admin's action filter lists the families).
"""

import enum


class Action(enum.StrEnum):
    # Directory: who takes part.
    PROFESSIONAL_PROVISIONED = "professional.provisioned"
    PROFESSIONAL_CHANGED = "professional.changed"
    ORGANISATION_CHANGED = "organisation.changed"
    CARE_TEAM_MEMBER_ADDED = "care-team.member-added"
    CARE_TEAM_MEMBER_CHANGED = "care-team.member-changed"
    CARE_TEAM_MEMBER_REMOVED = "care-team.member-removed"
    CARE_TEAM_DELETED = "care-team.deleted"
    API_TOKEN_CREATED = "api-token.created"  # noqa: S105 (an action name, not a secret)
    API_TOKEN_REVOKED = "api-token.revoked"  # noqa: S105
    # Directory and audit (11D)
    ORGANISATION_LISTED = "organisation.listed"  # IG approved it for the public partners page
    ORGANISATION_UNLISTED = "organisation.unlisted"
    ACCESS_ENDED = "professional.access-ended"  # deactivated: sessions ended and API tokens revoked at once
    # Sharing: relationships, emergency access, agreements.
    INVOLVEMENT_STARTED = "involvement.started"
    INVOLVEMENT_UPDATED = "involvement.updated"
    INVOLVEMENT_ENDED = "involvement.ended"
    INVOLVEMENT_REOPENED = "involvement.reopened"
    BREAK_GLASS_STARTED = "break-glass.started"
    BREAK_GLASS_REVIEWED = "break-glass.reviewed"
    SHARING_AGREEMENT_CHANGED = "sharing-agreement.changed"
    # Partner systems (11B)
    FHIR_SUBMISSION = "fhir.submission"  # one per submission: the token (or command), what changed, whom
    FHIR_DEMOGRAPHICS_CHANGED = "fhir.demographics-changed"  # a patient's master view changed (which fields)
    FHIR_IDENTITY_REFUSED = "fhir.identity-refused"  # a Patient id sent with another NHS number: refused (H-06)
    INVOLVEMENT_REVIEWED = "involvement.reviewed"
    # HL7 v2 feeds (feeds/): one row per message received, whatever became of it; IG's changes and retries.
    HL7_MESSAGE = "hl7.message"
    HL7_MESSAGE_RETRIED = "hl7.message-retried"
    HL7_FEED_CHANGED = "hl7.feed-changed"
    HL7_CODE_MAPPING_CHANGED = "hl7.code-mapping-changed"
    HL7_MERGE_REFERRED = "hl7.merge-referred"  # an A40 across two NHS numbers: not applied, sent to IG
    HL7_MERGE_APPLIED = "hl7.merge-applied"  # an A40 within one patient: the old local id now names the survivor
    # Bulk loads through the queue (bulk/): asked for, given up on, sent again or cancelled by IG, finished.
    BULK_QUEUED = "bulk.queued"
    BULK_DONE = "bulk.done"
    BULK_DEAD = "bulk.dead-lettered"
    BULK_RETRIED = "bulk.retried"
    BULK_CANCELLED = "bulk.cancelled"
    # Objections (opt-out).
    OBJECTION_RECEIVED = "objection.received"
    OBJECTION_RECORDED = "objection.recorded"
    OBJECTION_REPEATED = "objection.repeated"
    OBJECTION_MATCHED = "objection.matched"
    OBJECTION_VERIFIED = "objection.verified"
    OBJECTION_UPHELD = "objection.upheld"
    OBJECTION_REJECTED = "objection.rejected"
    OBJECTION_WITHDRAWN = "objection.withdrawn"
    REGIONAL_PROCESS_CHANGED = "regional-process.changed"
    # Signing in (issue 16): both ways in, local and single sign-on.
    SIGNED_IN = "sign-in.succeeded"
    SIGN_IN_FAILED = "sign-in.failed"  # wrong password or code, or the identity provider said no
    SIGN_IN_REFUSED = "sign-in.refused"  # the provider vouched for someone carerecord does not let in (and why)
    SIGNED_OUT = "sign-in.signed-out"
    ROLE_SELECTED = "sign-in.role-selected"
    # Launch in context from a partner's clinical system.
    LAUNCHED = "launch.opened"
    LAUNCH_REFUSED = "launch.refused"
    LAUNCH_PARTNER_CHANGED = "launch.partner-changed"
    # The audit trail itself.
    AUDIT_EXPORTED = "audit.exported"
    AUDIT_VERIFIED = "audit.verified"  # the seals checked (audit/seals.py): by whom, what, and what was found
    AUDIT_ARCHIVED = "audit.archived"  # a month of audit rows detached to be kept offline (audit/partitions.py)
    SUBJECT_ACCESS_LETTER = "audit.subject-access-letter"  # IG opened a patient's "who has seen my record" letter
    # Problems reported with entries (issue 17): a professional tells the source; IG follow it up.
    ENTRY_PROBLEM_REPORTED = "entry-problem.reported"
    ENTRY_PROBLEM_CHANGED = "entry-problem.changed"

    @property
    def family(self) -> str:
        return self.value.split(".", 1)[0]


# Admin's action filter: a fixed list rather than a DISTINCT over millions of rows.
FAMILIES = (
    ("break-glass", "Break glass"),
    ("involvement", "Involvements"),
    ("care-team", "Care teams"),
    ("professional", "Professionals"),
    ("organisation", "Organisations"),
    ("sharing-agreement", "Sharing agreements"),
    ("objection", "Objections (opt-out)"),
    ("regional-process", "Regional opt-out process"),
    ("api-token", "API tokens"),
    ("audit", "Audit trail exports and subject access letters"),
    ("sign-in", "Signing in and out"),
    ("launch", "Launches from clinical systems"),
    # Partner systems (11B)
    ("fhir", "FHIR submissions (partner systems)"),
    ("hl7", "HL7 v2 feeds (hospital systems)"),
    ("bulk", "Bulk loads (the queue)"),
    ("entry-problem", "Problems reported with entries"),
)
