"""Notices and reminders by e-mail: who gets which notice about a session (scheduled, moved, cancelled, the day
before), the gentle nudge to a participant behind the pacing, seats about to expire; each person's opt-out; what
was sent; the texts (through the catalogue) and the .ics invitation.

``kurspakke.models`` is imported first: it re-exports this package's models so Alembic sees every table, and
loading it first keeps the import order one way whichever module a caller imports.
"""

import kurspakke.models  # noqa: F401  (see above)
