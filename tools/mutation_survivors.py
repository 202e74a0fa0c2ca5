"""Why each mutant that survives `make mutate` is left alive: equivalent (no behaviour can tell
it apart from the original) or not worth a test. Keyed by mutmut's mutant name; the report
(docs/mutation.md) flags a survivor missing here."""
from __future__ import annotations

WHY: dict[str, str] = {
}
