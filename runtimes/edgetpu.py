"""LiteRT with the Coral ``libedgetpu`` delegate, for ``*_edgetpu.tflite`` models compiled by edgetpu_compiler."""
from __future__ import annotations

import ctypes.util
import glob
import platform
from pathlib import Path
from types import ModuleType

from edge_deeplab.errors import RuntimeUnavailableError
from edge_deeplab.runtimes.litert import LiteRTRuntime

LIBRARIES = {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}
INSTALL = ("add Coral's apt repository (https://coral.ai/software/#debian-packages), run "
           "`sudo apt-get install libedgetpu1-std`, and connect a Coral device (USB Accelerator, Dev Board or "
           "PCIe/M.2 module)")
CORAL_USB_VENDORS = {"1a6e", "18d1"}  # Global Unichip before firmware load, Google after


def _coral_device_present() -> bool | None:
    """True/False on Linux (USB ids in sysfs, /dev/apex_* for PCIe); None where we cannot tell cheaply."""
    if platform.system() != "Linux":
        return None
    if glob.glob("/dev/apex_*"):
        return True
    for vendor_file in glob.glob("/sys/bus/usb/devices/*/idVendor"):
        try:
            vendor = Path(vendor_file).read_text().strip()
            product = Path(vendor_file).with_name("idProduct").read_text().strip()
        except OSError:
            continue
        if vendor in CORAL_USB_VENDORS and product in {"089a", "9302"}:
            return True
    return False


class EdgeTPURuntime(LiteRTRuntime):
    name = "edgetpu"
    accepts = (".tflite",)  # compiled files are named *_edgetpu.tflite, but a renamed one still loads
    export_format = "edgetpu"
    op_profiling_unavailable = "the Edge TPU runs the compiled graph as one custom op; no per-op timing"

    @classmethod
    def library(cls) -> str:
        return LIBRARIES.get(platform.system(), "libedgetpu.so.1")

    @classmethod
    def unavailable_reason(cls) -> str | None:
        reason = super().unavailable_reason()
        if reason is not None:
            return reason
        if ctypes.util.find_library("edgetpu") is None:
            return f"the Edge TPU runtime ({cls.library()}) is not installed: {INSTALL}"
        if _coral_device_present() is False:
            return "no Coral Edge TPU device found (USB Accelerator or /dev/apex_*): connect one"
        return None

    def _delegates(self, module: ModuleType) -> list:
        reason = self.unavailable_reason()
        if reason is not None:
            raise RuntimeUnavailableError(f"cannot run {self.path} on the Edge TPU: {reason}")
        try:
            return [module.load_delegate(self.library())]
        except (ValueError, OSError) as exc:
            raise RuntimeUnavailableError(
                f"cannot load the Edge TPU delegate {self.library()} ({exc}); is a Coral device connected? "
                f"To set one up: {INSTALL}") from None
