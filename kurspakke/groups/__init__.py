"""Mentor groups: groups of one organisation's participants in one programme, each led by one or more mentors.
Mirrored to Canvas later through the outbox (``group.sync`` steps written with each change).

``kurspakke.models`` is imported first: it re-exports this package's models so Alembic sees every table.
"""

import kurspakke.models  # noqa: F401  (see above)
