"""allauth's sign-in step that asks for the authenticator app's code, made to follow the "authentication
assurance" rule: one setting (SSO_STRONG_ACR), not code. A single sign-on the provider reports as strong (a
smartcard: CIS2's AAL3 `acr`) has had its second factor already; any other sign-in still needs TOTP."""

from allauth.mfa.stages import AuthenticateStage

from .adapters import STATE_KEY


def strong_single_sign_on(login) -> bool:
    sociallogin = (login.signal_kwargs or {}).get("sociallogin")
    return sociallogin is not None and bool((sociallogin.state.get(STATE_KEY) or {}).get("strong"))


class AssuredAuthenticateStage(AuthenticateStage):
    def _should_handle(self, request) -> bool:
        if strong_single_sign_on(self.login):
            return False
        return super()._should_handle(request)
