"""Course certificates (kursbevis): eligibility, issuing exactly once, the PDF, the Open Badges 3.0 credential,
verification codes, revocation and re-issue."""
