"""Memory and CPU of a process, read from /proc."""

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Usage:
    rss_mb: float
    peak_rss_mb: float
    cpu_seconds: float

    def since(self, earlier: "Usage") -> "Usage":
        """Memory as it is now; CPU spent since `earlier`."""
        return Usage(self.rss_mb, self.peak_rss_mb, self.cpu_seconds - earlier.cpu_seconds)


def usage_of(pid: int) -> Usage:
    status = dict(
        line.split(":", 1)
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if ":" in line
    )
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat; after the command name, 12 and 13.
    cpu = (int(fields[11]) + int(fields[12])) / _TICKS
    return Usage(
        rss_mb=int(status["VmRSS"].split()[0]) / 1024,
        peak_rss_mb=int(status["VmHWM"].split()[0]) / 1024,
        cpu_seconds=cpu,
    )
