"""How a conversion is checked: execution on a device, a faithful model copy, one snapshot, numeric/layer/wiring/speed checks, one case run (no pytest)."""
