"""Active verification: port scanning (tcp, udp), port lists (ports) and fingerprinting.

Nothing here checks scope: callers pass only in-scope hosts, and the scanners never
touch a host or port they were not given.
"""
