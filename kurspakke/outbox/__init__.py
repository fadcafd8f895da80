"""The outbox: every change that needs Canvas (or an e-mail) is written as a step in the same transaction as the
change, and workers execute the steps. Periodic jobs (reconciliation, digests) run once per period however many
workers run.

``kurspakke.models`` is imported first: it re-exports this package's models so Alembic sees every table.
"""

import kurspakke.models  # noqa: F401  (see above)
