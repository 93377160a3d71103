"""One module per tab of the demo; each has ``build(cache)`` that lays it out and wires it."""
