import asyncio
import os
import subprocess
import sys

from tests.support.fleet import ROOT


async def backorder(*args: str, expect: int = 0, env: dict[str, str] | None = None) -> str:
    """Runs the `backorder` command line as an operator would; returns what it printed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services",
        *args,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "250", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode == expect, out.decode()
    return out.decode()
