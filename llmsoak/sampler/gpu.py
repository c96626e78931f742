"""GPU memory and utilisation of the watched tree through NVML (optional: ``pip install nvidia-ml-py``).

``gpu_memory_bytes`` is the sum of ``usedGpuMemory`` over the compute and graphics processes
whose pid is in the tree, on every device; ``gpu_util_percent`` is the mean
``nvmlDeviceGetUtilizationRates().gpu`` of the devices those processes use (device-wide, as NVML
reports utilisation per device, not per process). Without nvidia-ml-py or a driver, both cells
stay empty and one info line says why. In a container with its own pid namespace, NVML reports
host pids; run the sampler on the host (or with ``--pid=host``) to see per-process GPU memory.

Driver-level GPU memory is what the process holds from the driver: servers that preallocate a
KV cache (vLLM) are flat here by design.
"""

from __future__ import annotations

from typing import Any


class NvmlReader:
    """Reads per-tree GPU memory (bytes) and device utilisation (percent) from an NVML module."""

    def __init__(self, nvml: Any) -> None:
        self._nvml = nvml
        count = nvml.nvmlDeviceGetCount()
        self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]

    def _processes(self, handle: Any) -> list[Any]:
        procs: list[Any] = []
        for fn_name in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
            fn = getattr(self._nvml, fn_name, None)
            if fn is None:
                continue
            try:
                procs.extend(fn(handle))
            except self._nvml.NVMLError:
                continue  # not supported on this device or driver
        return procs

    def read(self, pids: set[int]) -> tuple[int | None, float | None]:
        """(gpu_memory_bytes, gpu_util_percent) for the processes ``pids``; (0, None) when none uses a GPU."""
        total_bytes: int | None = 0
        utils: list[float] = []
        seen: set[tuple[int, int]] = set()
        for index, handle in enumerate(self._handles):
            on_device = False
            for proc in self._processes(handle):
                if proc.pid not in pids or (index, proc.pid) in seen:
                    continue  # a process listed as both compute and graphics counts once
                seen.add((index, proc.pid))
                on_device = True
                used = getattr(proc, "usedGpuMemory", None)
                if used is not None and total_bytes is not None:
                    total_bytes += int(used)
                elif used is None:
                    total_bytes = None  # NVML hides per-process memory (e.g. Windows WDDM, no permission)
            if on_device:
                try:
                    utils.append(float(self._nvml.nvmlDeviceGetUtilizationRates(handle).gpu))
                except self._nvml.NVMLError:
                    pass
        return total_bytes, (round(sum(utils) / len(utils), 1) if utils else None)

    def close(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except Exception:  # noqa: BLE001 - shutting down a driver library must never fail the sampler
            pass


def open_gpu_reader() -> tuple[NvmlReader | None, str | None]:
    """(reader, None) when NVML works; (None, one info line) when it is absent or fails."""
    try:
        import pynvml  # provided by nvidia-ml-py
    except ImportError:
        return None, "nvidia-ml-py not installed: gpu_memory_bytes and gpu_util_percent stay empty"
    try:
        pynvml.nvmlInit()
    except Exception as err:  # noqa: BLE001 - NVMLError subclasses vary by driver
        return None, f"NVML unavailable ({err}): gpu_memory_bytes and gpu_util_percent stay empty"
    try:
        reader = NvmlReader(pynvml)
    except Exception as err:  # noqa: BLE001
        return None, f"NVML devices unreadable ({err}): GPU columns stay empty"
    if not reader._handles:
        reader.close()
        return None, "NVML found no GPU: gpu_memory_bytes and gpu_util_percent stay empty"
    return reader, None
