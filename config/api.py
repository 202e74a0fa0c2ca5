"""Small helpers every API view uses."""
from __future__ import annotations


def validated(serializer_class, data, **kwargs) -> dict:  # noqa: ANN001
    """Run an input serializer; a ValidationError becomes the 400 envelope with `param`."""
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
