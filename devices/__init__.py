"""Built-in device profiles (``*.toml``), installed as the ``edgekit.devices`` package data; see edgekit.targets."""
