"""Small helpers every API view uses."""
from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from rest_framework import serializers

from config.errors import InvalidRequest

class UnknownParameter(InvalidRequest):
    code = "unknown_parameter"


def validated(serializer_class, data, *, also: Iterable[str] = (), **kwargs) -> dict:  # noqa: ANN001
    """Run an input serializer; a ValidationError becomes the 400 envelope with `param`.

    A name the serializer does not declare (nor lists in its `accepted_aliases`, nor `also`)
    is refused first as 400 `unknown_parameter`, as Stripe does: a typo (`promt`, `categroy`)
    must not be dropped silently. Declaring a field is all it takes to accept it.
    """
    serializer = serializer_class(data=data, **kwargs)
    refuse_unknown_fields(serializer, data, also=also)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def refuse_unknown_fields(serializer: serializers.Serializer, data: object, *, also: Iterable[str] = (),
                          prefix: str = "") -> None:
    """`UnknownParameter` for the first name in `data` (nested serializers too) the serializer does not take."""
    if not isinstance(data, Mapping):
        return  # the serializer itself answers a body that is not an object
    refuse_unknown(data.keys(), known_names(serializer, also), prefix=prefix)
    for name, field in serializer.fields.items():
        if isinstance(field, serializers.Serializer) and not getattr(field, "many", False) and name in data:
            refuse_unknown_fields(field, data[name], prefix=f"{prefix}{name}.")


def known_names(serializer: serializers.Serializer, also: Iterable[str] = ()) -> set[str]:
    """The declared fields (by their input names), the serializer's aliases and `also`."""
    declared = {name for name, field in serializer.fields.items() if not field.read_only}
    return declared | set(getattr(serializer, "accepted_aliases", ())) | set(also)


def refuse_unknown(names: Iterable[str], known: Iterable[str], *, prefix: str = "") -> None:
    """400 `unknown_parameter` naming the first unknown name and the nearest known one."""
    known = sorted(known)
    for name in names:
        if name in known:
            continue
        nearest = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean {prefix}{nearest[0]}?" if nearest else f" Known: {', '.join(known)}."
        raise UnknownParameter(f"Received unknown parameter: {prefix}{name}.{hint}", param=f"{prefix}{name}")
