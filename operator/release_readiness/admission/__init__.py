"""Admission: signoff stamping and validation, release and checklist validation, the production gate."""
