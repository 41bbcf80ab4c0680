from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from workforce.admin_auth import audited_password_change

urlpatterns = [
    # Before the admin's own URLs, so its "Change password" page (admin:password_change) is the audited one.
    path("admin/password_change/", admin.site.admin_view(audited_password_change, cacheable=True)),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/", include("tasks.api.urls")),
    path("qualifications/", include("qualification.urls")),
    path("", include("workforce.urls")),
    path("", include("tasks.urls")),
]
