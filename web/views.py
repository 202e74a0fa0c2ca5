"""The web app's pages: parse the request, call the same selectors and services as the API, render.

Every rule (who sees what, retention within the plan, quotas) lives in the layers below; a page
only turns their refusals into sentences.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import cache, wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.forms import AuthenticationForm
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import ApiKey, Membership, Organization
from accounts.principal import SESSION_ORGANIZATION, Principal, principal_for
from accounts.services import api_key_create, api_key_revoke
from config.errors import NotFound, ServiceError
from media_app.links import MediaLinks
from media_app.models import MediaFile
from media_app.selectors import (media_cursor_encode, media_get, media_get_public, media_list,
                                 media_usage_by_category, media_variant_usage)
from media_app.services import media_delete, media_update
from media_app.transforms import Transform, transform_parse
from quotas.services import quota_get, quota_limit
from storage_app.backends import get_store
from storage_app.categories import ALL_CATEGORIES
from web import forms

PAGE_SIZE = 50
THUMB_PX = 256


@cache
def thumbnail() -> Transform:
    """The gallery's square 256 px WebP variant, rendered once per file and stored."""
    return transform_parse({"width": str(THUMB_PX), "height": str(THUMB_PX), "fit": "cover", "format": "webp"})


def signed_in(view: Callable) -> Callable:
    """A page for a signed-in person: anonymous visitors go to the sign-in page and come back."""
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:  # noqa: ANN002, ANN003
        if not request.user.is_authenticated:
            return redirect(f"/sign-in?next={request.get_full_path()}")
        return view(request, principal_for(request), *args, **kwargs)
    return wrapper


def _safe_next(request: HttpRequest, target: str) -> str:
    ok = url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                         require_https=request.is_secure())
    return target if target and ok else "/"


# -- sign-in, sign-out, organization -------------------------------------------------------
@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request, request.POST.get("next") or request.GET.get("next", ""))
    form = AuthenticationForm(request, data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        login(request, form.get_user())
        _choose_first_team(request)
        return redirect(next_url)
    return render(request, "web/sign_in.html", {"form": form, "next": next_url,
                                                "sso": settings.OIDC_LOGIN_ENABLED}, status=400 if form.errors else 200)


def _choose_first_team(request: HttpRequest) -> None:
    """Start in the first team organization the person joined (the demo's `demo`), not their
    personal one; they switch on the account page."""
    first = (Membership.objects.filter(user=request.user, organization__kind=Organization.Kind.ORGANIZATION)
             .order_by("created_at").values_list("organization_id", flat=True).first())
    if first is not None:
        request.session[SESSION_ORGANIZATION] = first


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("/sign-in")


@require_POST
@signed_in
def organization_switch(request: HttpRequest, principal: Principal) -> HttpResponse:
    form = forms.OrganizationForm(request.POST)
    if not form.is_valid() or not Membership.objects.filter(
            user=request.user, organization_id=form.cleaned_data["organization"]).exists():
        raise Http404("No such organization.")
    request.session[SESSION_ORGANIZATION] = form.cleaned_data["organization"]
    return redirect(_safe_next(request, form.cleaned_data["next"]))


# -- gallery -------------------------------------------------------------------------------
def _list_query(form: forms.GalleryFilters, principal: Principal) -> dict:
    data = form.cleaned_data if form.is_valid() else {}
    query = {name: data[name] for name in ("search", "media", "model", "provider", "visibility", "category", "cursor")
             if data.get(name)}
    member = data.get("user") if principal.sees_whole_organization else ""
    # Owners and admins see the whole organization unless they pick a member; members see their own.
    query["user"] = member or ("*" if principal.sees_whole_organization else "me")
    query["limit"] = PAGE_SIZE
    return query


def _tile(media: MediaFile, links: MediaLinks) -> dict:
    thumb = links.variant_download(media)[0] if links.variant(media) is not None else None
    return {"media": media, "thumb": thumb, "alt": media.prompt or media.original_name or media.media_kind}


@require_GET
@signed_in
def gallery(request: HttpRequest, principal: Principal) -> HttpResponse:
    form = forms.GalleryFilters(request.GET)
    try:
        page, more = media_list(principal, _list_query(form, principal))
    except NotFound:  # a member name that is not in the organization: nothing to show
        page, more = [], False
    links = MediaLinks(absolute=request.build_absolute_uri, transform=thumbnail())
    links.prefetch(page)
    params = request.GET.copy()
    params.pop("cursor", None)
    if page and more:
        params["cursor"] = media_cursor_encode(page[-1])
    context = {"tiles": [_tile(m, links) for m in page], "more": more, "next_query": params.urlencode(),
               "filters": form, "principal": principal, "filtered": any(v for k, v in request.GET.items()
                                                                        if k != "cursor")}
    fragment = request.GET.get("fragment") == "1" or request.headers.get("X-Fragment") == "1"
    return render(request, "web/_tiles.html" if fragment else "web/gallery.html", context)


# -- detail and its actions ----------------------------------------------------------------
def _visible(principal: Principal, media_id: str) -> MediaFile:
    try:
        return media_get(principal, media_id)
    except NotFound:
        raise Http404("No such file.") from None


def _detail(request: HttpRequest, principal: Principal, media: MediaFile, **extra) -> HttpResponse:  # noqa: ANN003
    links = MediaLinks(absolute=request.build_absolute_uri)
    plan = media.organization.plan
    status = extra.pop("status", 200)
    context = {
        "media": media, "principal": principal, "preview": links.download(media, attachment_name=False)[0],
        "share_url": request.build_absolute_uri(f"/p/{media.pk}"),
        "link_form": extra.pop("link_form", forms.SignedLinkForm()),
        "retention_form": forms.RetentionForm(initial={"retain_until": media.retain_until and media.retain_until.date()}),
        "keep_forever_allowed": plan.allow_keep_forever, "max_retention_days": plan.max_retention_days,
        "generation": sorted(media.generation.items()) if isinstance(media.generation, dict) else [],
        **extra,
    }
    return render(request, "web/detail.html", context, status=status)


@require_GET
@signed_in
def detail(request: HttpRequest, principal: Principal, media_id: str) -> HttpResponse:
    return _detail(request, principal, _visible(principal, media_id))


@require_GET
@signed_in
def download(request: HttpRequest, principal: Principal, media_id: str) -> HttpResponse:
    url, _ = MediaLinks(absolute=request.build_absolute_uri).download(_visible(principal, media_id))
    return HttpResponseRedirect(url)


@require_POST
@signed_in
def signed_link(request: HttpRequest, principal: Principal, media_id: str) -> HttpResponse:
    media = _visible(principal, media_id)
    form = forms.SignedLinkForm(request.POST)
    if not form.is_valid():
        return _detail(request, principal, media, link_form=form, status=400)
    url, expires_at = MediaLinks(absolute=request.build_absolute_uri).download(media, form.cleaned_data["ttl"])
    return _detail(request, principal, media, link_form=form, signed_url=url, signed_expires_at=expires_at)


@require_POST
@signed_in
def visibility(request: HttpRequest, principal: Principal, media_id: str) -> HttpResponse:
    media = _visible(principal, media_id)
    form = forms.VisibilityForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose public or private.")
        return redirect(f"/m/{media.pk}")
    media_update(media=media, changes={"visibility": form.cleaned_data["visibility"]})
    messages.success(request, "Anyone with the share link can now see this file." if media.visibility == "public"
                     else "Only your organization can see this file now.")
    return redirect(f"/m/{media.pk}")


@require_POST
@signed_in
def retention(request: HttpRequest, principal: Principal, media_id: str) -> HttpResponse:
    media = _visible(principal, media_id)
    form = forms.RetentionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick a day to keep the file until, or keep it forever.")
        return redirect(f"/m/{media.pk}")
    try:
        media_update(media=media, changes={"retain_until": form.until()})
    except ServiceError as exc:
        messages.error(request, sentence(exc))
    else:
        messages.success(request, "The file's retention was changed.")
    return redirect(f"/m/{media.pk}")


@require_http_methods(["GET", "POST"])
@signed_in
def delete(request: HttpRequest, principal: Principal, media_id: str) -> HttpResponse:
    media = _visible(principal, media_id)
    if request.method == "GET":
        return render(request, "web/delete.html", {"media": media, "principal": principal})
    media_delete(media=media)
    messages.success(request, f"{media.original_name or media.pk} was deleted.")
    return redirect("/")


# -- upload --------------------------------------------------------------------------------
@require_GET
@signed_in
def upload(request: HttpRequest, principal: Principal) -> HttpResponse:
    plan = principal.organization.plan
    return render(request, "web/upload.html", {
        "principal": principal, "max_file_bytes": min(plan.max_file_bytes, settings.MEDIA_MAX_BYTES),
        "categories": ALL_CATEGORIES, "direct": direct_upload_sizes(plan.max_file_bytes)})


def direct_upload_sizes(plan_max_bytes: int) -> dict | None:
    """From which sizes the page sends a file straight to the bucket (presigned, then completed) and
    as a multipart upload, and the largest it may send so (the plan's: no request carries the file);
    None when the backend takes no direct uploads (every file goes to the API)."""
    if not get_store().takes_direct_uploads():
        return None
    return {"min_bytes": settings.WEB_DIRECT_UPLOAD_MIN_BYTES, "multipart_min_bytes": settings.WEB_MULTIPART_MIN_BYTES,
            "max_bytes": plan_max_bytes}


# -- public share page ---------------------------------------------------------------------
@require_GET
def share(request: HttpRequest, media_id: str) -> HttpResponse:
    try:
        media = media_get_public(media_id)
    except NotFound:
        raise Http404("No such file.") from None
    links = MediaLinks(absolute=request.build_absolute_uri)
    return render(request, "web/share.html", {
        "media": media, "content_url": links.content_url(media), "page_url": request.build_absolute_uri(),
        "title": media.prompt[:120] or media.original_name or "A shared file"})


# -- account -------------------------------------------------------------------------------
def usage_of(principal: Principal) -> dict:
    """The organization's usage against its quota, by category (the numbers the usage API reports)."""
    org = principal.organization
    quota = quota_get(organization=org)
    limit = quota_limit(organization=org, quota=quota)
    used = media_usage_by_category(organization=org)
    categories = [{"name": c.name, "bytes": used.get(c.name, {}).get("bytes", 0),
                   "files": used.get(c.name, {}).get("files", 0)} for c in ALL_CATEGORIES]
    for row in categories:
        row["percent"] = round(100 * row["bytes"] / limit, 1) if limit else 0
    return {"used_bytes": quota.used_bytes, "limit_bytes": limit, "file_count": quota.file_count,
            "percent": min(round(100 * quota.used_bytes / limit, 1), 100) if limit else 0,
            "categories": categories, **media_variant_usage(organization=org)}


def _account(request: HttpRequest, principal: Principal, **extra) -> HttpResponse:  # noqa: ANN003
    keys = ApiKey.objects.filter(user=request.user, organization=principal.organization)
    memberships = Membership.objects.filter(user=request.user).select_related("organization").order_by(
        "organization__name")
    return render(request, "web/account.html", {"principal": principal, "usage": usage_of(principal), "keys": keys,
                                                "memberships": memberships,
                                                "key_form": forms.ApiKeyForm(), **extra})


@require_GET
@signed_in
def account(request: HttpRequest, principal: Principal) -> HttpResponse:
    return _account(request, principal)


@require_POST
@signed_in
def key_create(request: HttpRequest, principal: Principal) -> HttpResponse:
    form = forms.ApiKeyForm(request.POST)
    if not form.is_valid():
        return _account(request, principal, key_form=form)
    issued = api_key_create(organization=principal.organization, user=request.user, name=form.cleaned_data["name"])
    # The secret is shown on this response only; it is never stored, so it cannot be shown again.
    return _account(request, principal, new_secret=issued.secret, new_key=issued.api_key)


@require_POST
@signed_in
def key_revoke(request: HttpRequest, principal: Principal, key_id: int) -> HttpResponse:
    key = ApiKey.objects.filter(pk=key_id, user=request.user, organization=principal.organization).first()
    if key is None:
        raise Http404("No such key.")
    api_key_revoke(api_key=key)
    messages.success(request, f"The key {key.prefix}… was revoked; calls with it now fail.")
    return redirect("/account")


# -- refusals in words ---------------------------------------------------------------------
SENTENCES = {
    "retention_not_allowed": "Your plan does not allow keeping this file that long.",
    "invalid_retention": "The date to keep the file until must be in the future.",
}


def sentence(exc: ServiceError) -> str:
    return SENTENCES.get(exc.code, str(exc))
