"""The Netlas emulator fixtures, defined beside the emulator so other test trees can import them."""

from tests.emulators.netlas import netlas_emulator, netlas_server

__all__ = ["netlas_emulator", "netlas_server"]
