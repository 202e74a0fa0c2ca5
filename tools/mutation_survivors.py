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

_CONVERTER_ARGS = ("equivalent: the converters of these four models' fields (datetimes, JSON, booleans) read only "
                   "the value, not the column, its table alias or the connection")
_DB_ALIAS = ("equivalent: with one database (or the replica router, which ignores the model) the alias is "
             "'default' either way, and assigning the related objects sets each instance's database")

WHY: dict[str, str] = {
    # accounts/authentication.py
    "accounts.authentication.x_credentials_from__mutmut_3": (
        "equivalent: a missing header read as None or '' is falsy either way"),
    "accounts.authentication.x_credentials_from__mutmut_5": (
        "equivalent: a missing header read as None or '' is falsy either way"),
    "accounts.authentication.x__converted__mutmut_2": _CONVERTER_ARGS,
    "accounts.authentication.x__converted__mutmut_8": _CONVERTER_ARGS,
    "accounts.authentication.x__converted__mutmut_9": _CONVERTER_ARGS,
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
    "storage_app.signing.x_verify__mutmut_19": _SIG_DEFAULT.format("op"),
    "storage_app.signing.x_verify__mutmut_21": _SIG_DEFAULT.format("op"),
    "storage_app.signing.x_verify__mutmut_24": _SIG_DEFAULT.format("op"),
    "storage_app.signing.x_verify__mutmut_27": _INT_DEFAULT,
    "storage_app.signing.x_verify__mutmut_29": _INT_DEFAULT,
    "storage_app.signing.x_verify__mutmut_32": _INT_DEFAULT,
    "storage_app.signing.x_verify__mutmut_60": _SIG_DEFAULT.format("sig"),
    "storage_app.signing.x_verify__mutmut_62": _SIG_DEFAULT.format("sig"),
    "storage_app.signing.x_verify__mutmut_65": _SIG_DEFAULT.format("sig"),
}
