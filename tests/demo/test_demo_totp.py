import io

import pytest
from django.core.management import CommandError, call_command

from tests import factories

pytestmark = pytest.mark.django_db


def run(email):
    out = io.StringIO()
    call_command("demo_totp", email, stdout=out)
    return out.getvalue().strip()


def test_prints_the_current_code_of_a_demo_account(settings):
    settings.DEBUG = True
    factories.UserFactory(email="gp@demo.carerecord.test")
    before = factories.totp_code()
    code = run("gp@demo.carerecord.test")
    assert code in {before, factories.totp_code()}  # the 30-second window may turn between the two


def test_refuses_when_debug_is_off(settings):
    settings.DEBUG = False
    factories.UserFactory(email="gp@demo.carerecord.test")
    with pytest.raises(CommandError, match="DEBUG"):
        run("gp@demo.carerecord.test")


def test_refuses_accounts_that_are_not_demo_accounts(settings):
    settings.DEBUG = True
    factories.UserFactory(email="real.person@nhs.test")
    with pytest.raises(CommandError, match="not a demo account"):
        run("real.person@nhs.test")
