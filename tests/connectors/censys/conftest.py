"""The Censys emulator fixtures, defined beside the emulator so other test trees can import them."""

from tests.emulators.censys import censys_emulator, censys_server

__all__ = ["censys_emulator", "censys_server"]
