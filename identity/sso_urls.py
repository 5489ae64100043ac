"""Single sign-on's steps under /accounts/ (identity.views_sso). The callback's path and name are allauth's own
(openid_connect_callback), listed first so that carerecord's adapter answers it."""

from django.urls import path

from . import views_sso

urlpatterns = [
    path("oidc/<str:provider_id>/login/callback/", views_sso.callback, name="openid_connect_callback"),
    path("role/", views_sso.change_role, name="change-role"),
    path("signed-out/", views_sso.signed_out, name="signed-out"),
    # Not offered: email addresses are set by IG in admin, and unlinking one's NHS identity here would undo the
    # subject link IG made (allauth's pages, at their own paths and names, answer 404).
    path("email/", views_sso.not_offered, name="account_email"),
    path("3rdparty/", views_sso.not_offered, name="socialaccount_connections"),
]
