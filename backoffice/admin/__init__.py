"""The operators' admin, one module per app whose models it shows (autodiscovered as `backoffice.admin`)."""
from backoffice.admin import accounts, events, media, quotas  # noqa: F401 - each registers its ModelAdmins
