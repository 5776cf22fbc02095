"""Built-in gw plugins, registered through the `gw` entry-point group."""
