"""``berth``, the command line client: pflag-style flags, a lazy command table, docker's output.

Imports nothing daemon-side (only ``berth.http``'s client and frames, ``berth.errors``,
``berth.oci``), so that it starts in the time Python itself needs.
"""
