"""django-allauth adapter: accounts are provisioned by IG in admin, so there is no public sign-up."""

from allauth.account.adapter import DefaultAccountAdapter


class ProvisionedAccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request):
        return False
