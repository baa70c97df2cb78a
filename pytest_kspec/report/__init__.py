"""Reports of a run: the model (what happened) apart from its renderers (JSON, JUnit, HTML)."""
