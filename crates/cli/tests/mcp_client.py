"""Drives `ao mcp serve` with the official Python MCP SDK (a client `ao` did not write).

usage: mcp_client.py AO_BINARY PROJECT_ROOT MODE
  MODE: legacy (the `initialize` handshake) or 2026-07-28 (per-request `_meta`, no handshake)

The server's environment comes from this process's environment: AO_STATE_DIR, the
LEADER_MODEL_* of a local stub model, MCP_SERVER_NAME / MCP_SERVER_VERSION.

Checks, and exits non-zero on the first that fails. The last line of its output is a JSON
object with the ids of the runs it started, for the Rust test to check with the `ao` CLI.
"""

from __future__ import annotations

import json
import os
import sys

import anyio
import jsonschema
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

AO, ROOT, MODE = sys.argv[1], sys.argv[2], sys.argv[3]
PASSED_ENV = [
    "AO_STATE_DIR",
    "LEADER_MODEL_PROVIDER",
    "LEADER_MODEL_NAME",
    "LEADER_MODEL_BASE_URL",
    "LEADER_MODEL_API_KEY",
    "MCP_SERVER_NAME",
    "MCP_SERVER_VERSION",
    "PATH",
    "HOME",
]

ALL_TOOLS = [
    "ao_plan", "ao_run_workflow", "ao_get_run", "ao_list_runs", "ao_wait_for_run",
    "ao_resume_run", "ao_cancel_run", "ao_review_diff", "ao_fix_error", "ao_get_changeset",
    "ao_apply_changeset", "ao_list_workflows", "ao_describe_workflow", "ao_list_models",
    "ao_interview_worker", "ao_list_workers", "ao_get_worker_profile", "ao_list_tools",
    "ao_doctor",
]

summary: dict = {"mode": MODE}


def check(cond: bool, what: str, detail: object = "") -> None:
    print(("ok   " if cond else "FAIL ") + what + (f": {detail}" if detail and not cond else ""), flush=True)
    if not cond:
        raise SystemExit(1)


def server(*extra: str, env: dict[str, str] | None = None) -> StdioServerParameters:
    # The SDK passes only a few variables to the server by default: pass what it needs.
    full = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    full.update(env or {})
    return StdioServerParameters(command=AO, args=["--root", ROOT, "mcp", "serve", *extra], env=full)


def connect(params: StdioServerParameters) -> Client:
    return Client(params, mode=MODE, read_timeout_seconds=60)


class Tools:
    """The listed tools, and calls whose results are checked against their output schemas."""

    def __init__(self, client: Client, listed) -> None:
        self.client = client
        self.by_name = {t.name: t for t in listed}

    async def ok(self, name: str, args: dict, **kw) -> dict:
        r = await self.client.call_tool(name, args, **kw)
        text = r.content[0].text if r.content else ""
        check(not r.is_error, f"{name} succeeds", text[:500])
        self.conforms(name, r)
        return r.structured_content

    def conforms(self, name: str, r) -> None:
        s = r.structured_content
        check(isinstance(s, dict), f"{name}: structuredContent is an object", s)
        check(json.loads(r.content[0].text) == s, f"{name}: the text block holds the same JSON")
        schema = self.by_name[name].output_schema
        errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(s), key=str)
        check(not errors, f"{name}: result validates against its output schema", [e.message for e in errors[:3]])

    async def error(self, name: str, args: dict, *expected: str) -> str:
        r = await self.client.call_tool(name, args)
        text = r.content[0].text if r.content else ""
        check(r.is_error is True, f"{name} {json.dumps(args)[:80]} is an isError result", text)
        for e in expected:
            check(e in text, f"  ... whose message says {e!r}", text)
        return text


async def listing(client: Client, expected: list[str]) -> Tools:
    tools = (await client.list_tools()).tools
    names = [t.name for t in tools]
    check(names == expected, "tools/list gives every tool in the fixed order", names)
    for t in tools:
        a = t.annotations
        hints = None if a is None else (a.read_only_hint, a.destructive_hint, a.idempotent_hint, a.open_world_hint)
        check(hints is not None and None not in hints, f"{t.name}: all four annotations", hints)
        check(bool(t.title) and bool(t.description), f"{t.name}: a title and a description")
        check(t.input_schema.get("additionalProperties") is False, f"{t.name}: input schema with additionalProperties false")
        check(isinstance(t.output_schema, dict) and t.output_schema.get("type") == "object", f"{t.name}: an output schema")
        jsonschema.Draft202012Validator.check_schema(t.output_schema)
    return Tools(client, tools)


def read_only_names(tools: Tools) -> list[str]:
    return [n for n in ALL_TOOLS if tools.by_name[n].annotations.read_only_hint]


async def main() -> None:
    async with connect(server()) as client:
        print(f"mode={MODE} negotiated={client.protocol_version} server_info={client.server_info}")
        if MODE == "legacy":
            check(client.protocol_version == "2025-11-25", "legacy handshake negotiates 2025-11-25", client.protocol_version)
            check(client.server_info is not None and client.server_info.name == "ao-under-test"
                  and client.server_info.version == "9.8.7", "serverInfo is MCP_SERVER_NAME / MCP_SERVER_VERSION", client.server_info)
        else:
            check(client.protocol_version == "2026-07-28", "the 2026-07-28 revision is in use", client.protocol_version)
        tools = await listing(client, ALL_TOOLS)
        await read_only_tools(tools)
        await runs(tools)
        await answers(tools)
        await cancelling(tools)
        await bad_arguments(tools)
        await builtin_workflow_tools(tools)
        ro = read_only_names(tools)

    if MODE != "legacy":
        # A client pinned to 2026-07-28 never asks who the server is; one that discovers does.
        async with Client(server(), mode="auto", read_timeout_seconds=60) as client:
            check(client.protocol_version == "2026-07-28", "discovery adopts 2026-07-28", client.protocol_version)
            check(client.server_info is not None and client.server_info.name == "ao-under-test"
                  and client.server_info.version == "9.8.7", "server/discover reports MCP_SERVER_NAME / MCP_SERVER_VERSION", client.server_info)

    await read_only_server(ro)
    await disconnect()
    print(json.dumps(summary), flush=True)


async def read_only_tools(tools: Tools) -> None:
    for name, args in [
        ("ao_list_runs", {}),
        ("ao_list_workflows", {}),
        ("ao_describe_workflow", {"workflow": "plain"}),
        ("ao_list_models", {}),
        ("ao_list_workers", {}),
        ("ao_list_tools", {}),
        ("ao_doctor", {}),
    ]:
        await tools.ok(name, args)
    wfs = await tools.ok("ao_list_workflows", {})
    check({"plain", "stubbed", "asking", "sleepy"} <= {w["name"] for w in wfs["workflows"]}, "ao_list_workflows lists the project's workflows")
    described = await tools.ok("ao_describe_workflow", {"workflow": "stubbed"})
    check("flowchart" in described["mermaid"] and any(n["kind"] == "llm" for n in described["nodes"]), "ao_describe_workflow gives nodes and Mermaid")
    models = await tools.ok("ao_list_models", {})
    check(models["leader_configured"] and models["models"][0]["api_key"] == "set", "ao_list_models shows the leader, never its key")
    check("sk-mcp-test" not in json.dumps(models), "no key in ao_list_models")
    doctor = await tools.ok("ao_doctor", {})
    check(doctor["policy"]["mode"] == "dry_run" and "sk-mcp-test" not in json.dumps(doctor), "ao_doctor: dry-run policy, no key")


async def runs(tools: Tools) -> None:
    # A workflow with an `llm` node against the local stub model, run to completion, with progress.
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        progress.append((p, total, message))

    done = await tools.ok("ao_run_workflow", {"workflow": "stubbed", "input": {"topic": "mcp"}, "wait_seconds": 60},
                          progress_callback=on_progress)
    run = done["run"]
    check(run["status"] == "completed", "ao_run_workflow runs the model workflow to completion", run)
    check(run["output"] == {"reply": "stub says hello", "shout": "STUB SAYS HELLO"}, "its output comes from the stub model", run["output"])
    check(run["usage"] is not None and run["usage"]["calls"] == 1, "usage counts the model call", run["usage"])
    check(done["mode"] == "dry_run" and run["state"] is None, "dry-run; state left out")
    print("  progress:", [m for _, _, m in progress])
    check(len(progress) >= 3, "progress notifications arrived", progress)
    check([p for p, _, _ in progress] == sorted({p for p, _, _ in progress}), "progress increases")
    check(any("model call" in (m or "") for _, _, m in progress), "progress names the model call")
    summary["completed"] = run["run_id"]

    plain = await tools.ok("ao_run_workflow", {"workflow": "plain", "input": {"n": 4}, "wait_seconds": 30})
    check(plain["run"]["status"] == "completed" and plain["run"]["output"] == {"doubled": 8}, "a workflow without models completes", plain["run"])
    summary["plain"] = plain["run"]["run_id"]

    got = await tools.ok("ao_get_run", {"run_id": summary["completed"], "detail": "full"})
    check(got["run"]["state"]["reply"] == "stub says hello", "ao_get_run with detail full has the state", got["run"]["state"])
    await tools.ok("ao_get_changeset", {"run_id": summary["completed"]})
    waited = await tools.ok("ao_wait_for_run", {"run_id": summary["plain"], "wait_seconds": 1})
    check(waited["run"]["status"] == "completed" and not waited["timed_out"], "ao_wait_for_run returns a finished run at once")
    listed = await tools.ok("ao_list_runs", {"limit": 50})
    ids = [r["run_id"] for r in listed["runs"]]
    check(summary["completed"] in ids and summary["plain"] in ids, "ao_list_runs lists the runs")

    # wait_seconds 0 returns at once with a running run; the long-poll returns when it ends.
    started = await tools.ok("ao_run_workflow", {"workflow": "sleepy", "input": {"ms": 1500}})
    check(started["run"]["status"] == "running" and "ao_wait_for_run" in started["next"], "wait_seconds 0 returns the running run", started)
    timed = await tools.ok("ao_wait_for_run", {"run_id": started["run"]["run_id"], "wait_seconds": 0})
    check(timed["timed_out"] and timed["run"]["status"] == "running", "a wait whose time is up says so")
    with anyio.fail_after(30):
        ended = await tools.ok("ao_wait_for_run", {"run_id": started["run"]["run_id"], "wait_seconds": 60})
    check(ended["run"]["status"] == "completed" and not ended["timed_out"], "ao_wait_for_run returns once the run ends", ended["run"])


async def answers(tools: Tools) -> None:
    asked = await tools.ok("ao_run_workflow", {"workflow": "asking", "wait_seconds": 30})
    run = asked["run"]
    check(run["status"] == "interrupted" and run["interrupt"]["node"] == "first", "the run waits for an answer", run)
    check(run["interrupt"]["schema"] == {"type": "integer"}, "the question carries its answer schema")
    rid = run["run_id"]
    summary["answered"] = rid
    await tools.error("ao_resume_run", {"run_id": rid, "answer": "one", "request_id": "a-1"}, "invalid_answer", "interrupt.schema")
    first = await tools.ok("ao_resume_run", {"run_id": rid, "answer": 1, "request_id": "a-1", "wait_seconds": 30})
    check(not first["replayed"] and first["run"]["interrupt"]["node"] == "second", "the answer is taken; the run asks its next question", first)
    # A retry of the same request must not answer the second question.
    again = await tools.ok("ao_resume_run", {"run_id": rid, "answer": 1, "request_id": "a-1", "wait_seconds": 30})
    check(again["replayed"] and again["run"] == first["run"], "a repeated request_id returns the first result", again)
    now = await tools.ok("ao_get_run", {"run_id": rid, "detail": "full"})
    check(now["run"]["status"] == "interrupted" and now["run"]["interrupt"]["node"] == "second"
          and now["run"]["state"]["second"] is None, "... and did not answer twice", now["run"])
    await tools.error("ao_resume_run", {"run_id": rid, "answer": 5, "request_id": "a-1"}, "different answer")
    last = await tools.ok("ao_resume_run", {"run_id": rid, "answer": 2, "request_id": "a-2", "wait_seconds": 30})
    check(last["run"]["status"] == "completed" and last["run"]["output"] == {"sum": 3}, "a new request_id answers", last["run"])


async def cancelling(tools: Tools) -> None:
    # Cancelling the request (the SDK sends notifications/cancelled) cancels the run.
    started = anyio.Event()
    run_ids: list[str] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        if message and message.startswith("run ") and " of `sleepy` started" in message:
            run_ids.append(message.split()[1])
        if message and "`nap` started" in message:
            started.set()

    async with anyio.create_task_group() as tg:
        async def call() -> None:
            await tools.client.call_tool("ao_run_workflow", {"workflow": "sleepy", "input": {"ms": 60000}, "wait_seconds": 120},
                                         progress_callback=on_progress)
            check(False, "a cancelled call returns nothing")

        tg.start_soon(call)
        with anyio.fail_after(20):
            await started.wait()
        tg.cancel_scope.cancel()
    check(len(run_ids) == 1, "the progress named the run", run_ids)
    rid = run_ids[0]
    with anyio.fail_after(20):
        while True:
            got = await tools.ok("ao_get_run", {"run_id": rid})
            if got["run"]["status"] != "running":
                break
            await anyio.sleep(0.1)
    err = got["run"]["error"] or {}
    check(got["run"]["status"] == "cancelled", "cancelling the request cancels the run", got["run"])
    check("mcp client" in err.get("message", "") and "ao_run_workflow request" in err.get("message", ""),
          "the run records who cancelled it", err)
    summary["cancelled_by_request"] = rid

    # ao_cancel_run records the reason.
    running = await tools.ok("ao_run_workflow", {"workflow": "sleepy", "input": {"ms": 60000}})
    rid = running["run"]["run_id"]
    cancelled = await tools.ok("ao_cancel_run", {"run_id": rid, "reason": "not needed any more"})
    check(cancelled["result"] == "cancelled" and cancelled["run"]["status"] == "cancelled", "ao_cancel_run cancels", cancelled)
    check(cancelled["run"]["error"]["message"] == "cancelled by mcp client: not needed any more", "... with who and why", cancelled["run"]["error"])
    twice = await tools.ok("ao_cancel_run", {"run_id": rid})
    check(twice["result"] == "already_cancelled", "cancelling twice is not an error")
    await tools.error("ao_resume_run", {"run_id": rid}, "not_resumable", "cancelled")
    summary["cancelled"] = rid


async def bad_arguments(tools: Tools) -> None:
    await tools.error("ao_get_run", {}, "run_id", "required")
    await tools.error("ao_get_run", {"run_id": "r", "detail": "everything"}, "argument `detail`", "summary")
    await tools.error("ao_list_runs", {"status": "weird", "limit": 0}, "argument `status`", "argument `limit`")
    await tools.error("ao_run_workflow", {"workflow": "plain", "bogus": 1}, "'bogus' was unexpected")
    await tools.error("ao_run_workflow", {"workflow": "plain", "wait_seconds": -1}, "argument `wait_seconds`")
    await tools.error("ao_run_workflow", {"workflow": "plain", "input": {"n": "four"}}, "invalid_input", "ao_describe_workflow")
    await tools.error("ao_run_workflow", {"workflow": "no-such-flow"}, "workflow_not_found", "ao_list_workflows")
    await tools.error("ao_run_workflow", {"workflow": "plain", "input": {"n": 1}, "apply": True},
                      "not allowed", "AO_DRY_RUN=false and AO_ALLOW_WRITE=true", "--allow-apply")
    await tools.error("ao_apply_changeset", {"run_id": summary["plain"]}, "not allowed", "AO_ALLOW_WRITE=true")
    await tools.error("ao_get_run", {"run_id": "01NOSUCHRUN"}, "run_not_found", "ao_list_runs")
    await tools.error("ao_get_worker_profile", {"worker_id": "nobody"}, "ao_interview_worker")
    try:
        await tools.client.call_tool("ao_no_such_tool", {})
        check(False, "an unknown tool is a protocol error")
    except MCPError as e:
        check(e.code == -32602 and "unknown tool" in e.error.message, "an unknown tool is a protocol error (-32602)", (e.code, e.error.message))


async def builtin_workflow_tools(tools: Tools) -> None:
    await tools.error("ao_plan", {}, "goal", "required")
    await tools.error("ao_plan", {"goal": ""}, "argument `goal`")
    await tools.error("ao_review_diff", {"range": "HEAD~1", "diff": "x"}, "exactly one of `range`")
    await tools.error("ao_review_diff", {}, "exactly one of `range`")
    await tools.error("ao_review_diff", {"range": "HEAD~1", "fail_on": "extreme"}, "argument `fail_on`")
    await tools.error("ao_fix_error", {"log": ""}, "argument `log`")
    await tools.error("ao_fix_error", {"log": "x", "max_attempts": 99}, "argument `max_attempts`")
    await tools.error("ao_interview_worker", {}, "name the worker")
    await tools.error("ao_interview_worker", {"worker": "w", "provider": "openai"}, "either `worker`")
    # With valid arguments each starts its built-in workflow by name: a clear error where this
    # build has no such workflow, a run where it has one.
    builtins = {w["name"] for w in (await tools.ok("ao_list_workflows", {}))["workflows"]}
    for tool, args, workflow in [
        ("ao_plan", {"goal": "add a flag"}, "plan"),
        ("ao_review_diff", {"diff": "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"}, "review"),
        ("ao_fix_error", {"log": "src/x.rs:1:1: error"}, "fix-error"),
        ("ao_interview_worker", {"provider": "openai-compatible", "model": "m", "base_url": "http://127.0.0.1:9/v1"}, "worker-interview"),
    ]:
        if workflow in builtins:
            started = await tools.ok(tool, args)
            check(started["run"]["workflow"] == workflow, f"{tool} starts `{workflow}`", started["run"])
            await tools.ok("ao_cancel_run", {"run_id": started["run"]["run_id"], "reason": "test"})
        else:
            await tools.error(tool, args, "workflow_not_found", f"`{workflow}`")


async def read_only_server(read_only: list[str]) -> None:
    for extra, env in [(("--read-only",), None), ((), {"AO_MCP_READ_ONLY": "true"})]:
        async with connect(server(*extra, env=env)) as client:
            tools = await listing(client, read_only)
            check(all(t.annotations.read_only_hint for t in tools.by_name.values()), "read-only: every listed tool is read-only")
            await tools.ok("ao_list_runs", {})
            for hidden in ["ao_run_workflow", "ao_cancel_run", "ao_apply_changeset"]:
                try:
                    await client.call_tool(hidden, {"run_id": "x", "workflow": "plain"})
                    check(False, f"read-only: {hidden} is not served")
                except MCPError as e:
                    check(e.code == -32602 and "read-only" in e.error.message, f"read-only: {hidden} is not served", e.error.message)


async def disconnect() -> None:
    # A run still going when the client goes away is stopped, resumable (checked by the caller).
    async with connect(server()) as client:
        r = await client.call_tool("ao_run_workflow", {"workflow": "sleepy", "input": {"ms": 60000}})
        check(not r.is_error and r.structured_content["run"]["status"] == "running", "a background run is going")
        summary["left_running"] = r.structured_content["run"]["run_id"]


anyio.run(main)
