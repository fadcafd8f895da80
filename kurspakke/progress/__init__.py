"""Quiz progress: which module quiz each linked course uses, and the module completions read from Canvas."""
