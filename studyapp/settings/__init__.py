"""Settings modules: `base` reads everything from the environment; `test` adds test conveniences."""
