"""Course certificates (kursbevis): eligibility, issuing exactly once, the PDF, the Open Badges 3.0 credential,
verification codes, revocation and re-issue.

``kurspakke.models`` is imported first: it re-exports this package's models so Alembic sees every table, and
loading it first keeps the import order one way whichever module a caller imports.
"""

import kurspakke.models  # noqa: F401  (see above)
