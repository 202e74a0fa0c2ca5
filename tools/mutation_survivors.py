"""Why each mutant that survives `make mutate` is left alive: equivalent (no behaviour can tell it
apart from the original) or not worth a test. Keyed by mutmut's mutant name (`mutmut show NAME`);
the report (docs/mutation.md) flags a survivor missing here. Names are numbered per function, so
an edit to a function renumbers its mutants: rerun the module and update its entries."""
from __future__ import annotations

_LAST_PART = ("equivalent: only the last part is kept ([-1]), and splitting more or fewer times from the "
              "right leaves the same last part")
_SIG_DEFAULT = ("equivalent: a missing `{}` fails verification whatever the default stands in for it "
                "(the op is never '' and no signature equals the placeholder)")
_INT_DEFAULT = ("equivalent: a missing `exp` must be refused; int() of '', None or 'XXXX' all raise, and "
                "all three become the same SignatureInvalid")
_QUOTE_PLUS_SAFE = ("equivalent: quote_plus's `safe` defaults to '' already, and letters ('XXXX') are never "
                    "quoted; the explicit safe='' says the value is quoted exactly as urlencode quotes it")

_CONVERTER_ARGS = ("equivalent: the converters of these four models' fields (datetimes, JSON, booleans) read only "
                   "the value, not the column, its table alias or the connection")
_DB_ALIAS = ("equivalent: with one database (or the replica router, which ignores the model) the alias is "
             "'default' either way, and assigning the related objects sets each instance's database")

_GLOBAL = ("equivalent on this Python: every address this term catches is also not `is_global`; the terms "
           "stay because `ipaddress` tables differ between patch releases")
_DEAD_V4_IN_V6 = ("equivalent: IPv4-compatible (::/96) and NAT64 (64:ff9b::/96) addresses are already refused as "
                  "not global, so this branch only matters on a Python whose tables call them global")
_THREAD = ("not worth a test: the resolver thread's name (for debugging) and daemon flag (a hung lookup must "
           "not keep the process from exiting) cannot be observed from a test process that keeps running")
_SELECT = ("equivalent: `organization__plan` already joins the organization")

_QUOTA_READ_FALLBACK = ("equivalent: a quota row the prebuilt read did not find is read (or made) by "
                        "`get_or_create`, which answers the same row; the prebuilt read is only faster")

WHY: dict[str, str] = {
    # quotas/services.py
    "quotas.services.x_quota_get__mutmut_1": _QUOTA_READ_FALLBACK,
    # accounts/services.py (the key lookup)
    "accounts.services.x_api_key_lookup__mutmut_9": _SELECT,
    # config/url_policy.py
    "config.url_policy.x__forbidden__mutmut_6": _GLOBAL,
    "config.url_policy.x__forbidden__mutmut_9": _GLOBAL,
    "config.url_policy.x__forbidden__mutmut_10": _GLOBAL,
    "config.url_policy.x__forbidden__mutmut_11": _GLOBAL,
    "config.url_policy.x__forbidden__mutmut_12": _GLOBAL,
    "config.url_policy.x__forbidden__mutmut_26": (
        "equivalent: every Teredo address (2001::/32) is inside the always-denied 2001::/23 and refused first"),
    **{f"config.url_policy.x__forbidden__mutmut_{n}": _DEAD_V4_IN_V6 for n in (27, 28, 30, 32, 34, 35, 36, 37, 38)},
    "config.url_policy.x__host_of__mutmut_15": "equivalent: codec names are case-insensitive ('IDNA' is 'idna')",
    "config.url_policy.x__host_of__mutmut_17": "equivalent: codec names are case-insensitive ('ASCII' is 'ascii')",
    "config.url_policy.x__ipv4_literal__mutmut_5": (
        "equivalent: a host of one empty part cannot reach here (urlsplit gives no hostname for it)"),
    **{f"config.url_policy.x__resolve__mutmut_{n}": _THREAD for n in (14, 15, 17, 18, 19, 20, 21)},
    **{f"config.url_policy.x__resolve__mutmut_{n}": (
        "equivalent: the TimeoutError's text never reaches a client; network_errors answers its own message")
       for n in (24, 25, 26)},
    "config.url_policy.x__split_url__mutmut_60": "equivalent: letters (here 'X') are never percent-encoded anyway",
    "config.url_policy.x_check_url__mutmut_1": (
        "not worth a test: the default deadline of a helper every caller passes its own timeout to"),
    "config.url_policy.x_parse_networks__mutmut_10": "equivalent: strict=None is falsy like strict=False",
    "config.url_policy.x_time_left__mutmut_3": (
        "equivalent in practice: a monotonic clock landing exactly on the deadline cannot be arranged"),
    # media_app/selectors.py
    "media_app.selectors.x_media_get__mutmut_7": _SELECT,
    "media_app.selectors.x_media_cursor_decode__mutmut_7": (
        "equivalent: (+len % 4) pads the same two '=' when len % 4 is 2 and three instead of one when it is 3, "
        "which base64 decoding accepts; len % 4 == 1 is no base64 either way"),
    "media_app.selectors.x_media_list__mutmut_149": (
        "equivalent: one more row fetched still gives the same page and the same has-more answer"),
    # accounts/authentication.py
    "accounts.authentication.x_credentials_from__mutmut_3": (
        "equivalent: a missing header read as None or '' is falsy either way"),
    "accounts.authentication.x_credentials_from__mutmut_5": (
        "equivalent: a missing header read as None or '' is falsy either way"),
    "accounts.authentication.x__converted__mutmut_2": _CONVERTER_ARGS,
    "accounts.authentication.x__converted__mutmut_8": _CONVERTER_ARGS,
    "accounts.authentication.x__converted__mutmut_9": _CONVERTER_ARGS,
    "accounts.authentication.x__instances__mutmut_1": _DB_ALIAS,
    "accounts.authentication.x__instances__mutmut_2": _DB_ALIAS,
    "accounts.authentication.x__instances__mutmut_4": _DB_ALIAS,
    "accounts.authentication.x__instances__mutmut_5": (
        "equivalent: Model.from_db reads the field names only for deferred loading, and every column is loaded"),
    "accounts.authentication.xǁ_KeyQueryǁfetch__mutmut_18": _CONVERTER_ARGS,
    "accounts.authentication.xǁ_KeyQueryǁfetch__mutmut_2": _DB_ALIAS,
    "accounts.authentication.xǁ_KeyQueryǁfetch__mutmut_17": _CONVERTER_ARGS,
    "accounts.authentication.xǁ_KeyQueryǁfetch__mutmut_26": _DB_ALIAS,
    "accounts.authentication.xǁ_KeyQueryǁfetch__mutmut_27": (
        "equivalent: Model.from_db reads the field names only for deferred loading, and every column is loaded"),
    # storage_app/keys.py
    "storage_app.keys.x_safe_extension__mutmut_1": (
        "equivalent: the default name only matters when it has a dot, and neither '' nor 'XXXX' has one"),
    "storage_app.keys.x_safe_extension__mutmut_7": _LAST_PART,
    "storage_app.keys.x_safe_extension__mutmut_10": _LAST_PART,
    "storage_app.keys.x_safe_extension__mutmut_11": (
        "equivalent: the name has a dot here, so rsplit('.', 1) has exactly two parts and [1] is [-1]"),
    "storage_app.keys.x_safe_stem__mutmut_5": _LAST_PART,
    "storage_app.keys.x_safe_stem__mutmut_10": _LAST_PART,
    "storage_app.keys.x_safe_stem__mutmut_13": _LAST_PART,
    "storage_app.keys.x_safe_stem__mutmut_17": _LAST_PART,
    "storage_app.keys.x_safe_stem__mutmut_43": "equivalent: codec names are case-insensitive ('ASCII' is 'ascii')",
    # storage_app/signing.py
    **{f"storage_app.signing.x_verify__mutmut_{n}": _SIG_DEFAULT.format("op") for n in (21, 23, 26)},
    **{f"storage_app.signing.x_verify__mutmut_{n}": _INT_DEFAULT for n in (29, 31, 34)},
    **{f"storage_app.signing.x_verify__mutmut_{n}": _SIG_DEFAULT.format("sig") for n in (69, 71, 74)},
    **{f"storage_app.signing.x_signed_url__mutmut_{n}": _QUOTE_PLUS_SAFE for n in (13, 14, 20, 21)},
    "storage_app.signing.x_file_url__mutmut_2": ("equivalent: a key with nothing to quote skips `quote` only to save "
                                                "the pass; quoting it anyway gives the same path "
                                                "(test_a_file_url_path_is_what_quote_makes_of_the_key)"),
}
