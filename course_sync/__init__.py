"""Everything that talks to Canvas over HTTP: platform keys, LTI service tokens, later the REST client."""
