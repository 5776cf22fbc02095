"""A plugin that raises while it is imported."""

raise RuntimeError("this plugin is broken at import")
