"""Launches an MCP server entry the way a client does and prints what the
server's `getenv` tool reports for each variable named on the command line.

    client.py SPEC.json NAME...

SPEC is {"command", "args", "env", "env_vars", "mode"}, the entry as the
config file writes it; mode is the client's environment rule:
  inherit  the client's whole environment plus `env` (OpenCode, Claude Code, Cursor…)
  default  the SDK's short default environment plus `env` (Claude Desktop)
  codex    Codex's allowlist plus `env_vars` plus `env`, nothing else
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

CODEX_ALLOWLIST = ["HOME", "LOGNAME", "PATH", "SHELL", "USER", "__CF_USER_TEXT_ENCODING",
                   "LANG", "LC_ALL", "TERM", "TMPDIR", "TZ"]


def environment(spec):
    mode = spec["mode"]
    env = dict(spec.get("env") or {})
    if mode == "inherit":
        return {**os.environ, **env}
    if mode == "default":
        return env
    if mode == "codex":
        names = CODEX_ALLOWLIST + list(spec.get("env_vars") or [])
        passed = {k: os.environ[k] for k in names if k in os.environ}
        return {**passed, **env}
    raise SystemExit(f"unknown mode {mode}")


async def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    params = StdioServerParameters(command=spec["command"], args=spec["args"], env=environment(spec))
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            for name in sys.argv[2:]:
                result = await session.call_tool("getenv", {"name": name})
                print(result.content[0].text)


asyncio.run(main())
