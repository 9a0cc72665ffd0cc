"""Devices: SSH transport, `deploy`, benchmark and evaluate on a device, the programs run there, and the emulated
Raspberry Pi."""
