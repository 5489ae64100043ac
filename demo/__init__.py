"""Synthetic London demo data for `manage.py seed_demo`: invented organisations, staff and patients.

Deterministic by construction: organisations, teams and staff come from fixed tables (`catalogue`), and
patient number *i* is drawn from its own seeded Random and Faker (`records`), so `--patients 30` gives the
first 30 patients of the default 200. Every row has a natural key (ODS code, email, NHS number, (source
organisation, source id), (care team, source id)) and only missing keys are inserted (`seeder`), so running
the seed again adds nothing.

Nothing here is a real person or organisation: ODS codes begin "ZZ", NHS numbers come from the 999 test
range, phone numbers from Ofcom's drama ranges and email addresses from reserved domains.
"""
