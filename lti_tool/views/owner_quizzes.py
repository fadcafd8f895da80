"""owner_quizzes: routes on the course owner blueprint (lti_tool/views/owner_pages.py)."""
