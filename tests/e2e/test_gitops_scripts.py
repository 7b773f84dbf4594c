"""The templates' `actions/github-script` steps, run under Node against an in-memory GitHub.

GitHub Actions cannot run here, but these scripts hold the templates' logic (one plan
comment per pull request, one drift issue, which plan apply picks), so they run as
written: the same async-function wrapper github-script uses, with `github`, `context`
and `core` replaced by fakes that record every call.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.conftest import REPO

TEMPLATES = REPO / "examples" / "github-actions"

HARNESS = r"""
const fs = require("fs");
const world = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const script = fs.readFileSync(process.argv[3], "utf8");
let nextId = 1000;
const calls = [];
const page = (items) => ({ data: items });
const github = {
  paginate: async (method, params) => (await method(params)).data,
  rest: {
    issues: {
      listComments: async ({ issue_number }) =>
        page(world.comments.filter((c) => c.issue_number === issue_number)),
      createComment: async ({ issue_number, body }) => {
        calls.push(["createComment", issue_number]);
        world.comments.push({ id: nextId++, issue_number, body,
          user: { login: "github-actions[bot]", type: "Bot" } });
        return page({});
      },
      updateComment: async ({ comment_id, body }) => {
        calls.push(["updateComment", comment_id]);
        world.comments.find((c) => c.id === comment_id).body = body;
        return page({});
      },
      listForRepo: async ({ state, labels }) =>
        page(world.issues.filter((i) => i.state === state && i.labels.includes(labels))),
      create: async ({ title, body, labels }) => {
        calls.push(["create", title]);
        world.issues.push({ number: nextId++, title, body, labels, state: "open" });
        return page({});
      },
      update: async ({ issue_number, ...change }) => {
        calls.push(["update", issue_number, change.state || "body"]);
        Object.assign(world.issues.find((i) => i.number === issue_number), change);
        return page({});
      },
    },
    repos: {
      listPullRequestsAssociatedWithCommit: async ({ commit_sha }) =>
        page(world.pulls.filter((p) => p.commits.includes(commit_sha))),
    },
  },
};
const core = { setFailed: (message) => { world.failed = message; } };
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
new AsyncFunction("require", "github", "context", "core", script)(
  require, github, world.context, core,
).then((result) => {
  world.result = result === undefined ? null : result;
  world.calls = calls;
  process.stdout.write(JSON.stringify(world));
});
"""


def script_of(template: str, step_name: str) -> str:
    document = yaml.safe_load((TEMPLATES / template).read_text())
    (job,) = document["jobs"].values()
    step = next(s for s in job["steps"] if s.get("name") == step_name)
    assert step["uses"].startswith("actions/github-script@")
    return str(step["with"]["script"])


def run(tmp_path: Path, script: str, world: dict[str, Any],
        env: dict[str, str] | None = None) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "Node.js runs the github-script steps (it is on every GitHub runner)"
    (tmp_path / "harness.js").write_text(HARNESS)
    (tmp_path / "world.json").write_text(json.dumps(world))
    (tmp_path / "script.js").write_text(script)
    done = subprocess.run([node, "harness.js", "world.json", "script.js"], cwd=tmp_path,
                          capture_output=True, text=True, env=dict(env or {}), check=False,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


CONTEXT = {"repo": {"owner": "acme", "repo": "licenses"}, "payload": {"pull_request":
           {"number": 7}}, "sha": "merge-sha", "serverUrl": "https://github.com", "runId": 42}


def test_the_plan_comment_is_posted_once_and_updated_on_each_push(tmp_path):
    script = script_of("reconciler-plan.yml", "Post or update the plan comment")
    human = {"id": 1, "issue_number": 7, "body": "<!-- reconciler-plan -->\nquoted by a human",
             "user": {"login": "dana", "type": "User"}}
    world = {"context": CONTEXT, "comments": [human], "issues": [], "pulls": []}
    (tmp_path / "plan.md").write_text("## reconciler plan\n\nfirst push\n")
    world = run(tmp_path, script, world)
    assert world["calls"] == [["createComment", 7]]
    (tmp_path / "plan.md").write_text("## reconciler plan\n\nsecond push\n")
    world = run(tmp_path, script, world)
    mine = [c for c in world["comments"] if c["user"]["type"] == "Bot"]
    assert world["calls"] == [["updateComment", mine[0]["id"]]] and len(mine) == 1
    assert mine[0]["body"] == "<!-- reconciler-plan -->\n## reconciler plan\n\nsecond push\n"
    assert world["comments"][0] == human, "a person's comment is never edited"


def test_one_drift_issue_is_opened_updated_and_closed(tmp_path):
    script = script_of("reconciler-drift.yml", "Open, update or close the drift issue")
    world = {"context": CONTEXT, "comments": [], "issues": [], "pulls": []}
    (tmp_path / "drift.md").write_text("## reconciler plan\n\n- `- remove` x\n")
    world = run(tmp_path, script, world, {"DRIFT_CODE": "2"})
    world = run(tmp_path, script, world, {"DRIFT_CODE": "2"})
    (issue,) = world["issues"]
    assert issue["state"] == "open" and issue["labels"] == ["reconciler-drift"]
    assert world["calls"] == [["update", issue["number"], "body"]], "updated, not a second one"
    assert "- `- remove` x" in issue["body"] and "actions/runs/42" in issue["body"]
    world = run(tmp_path, script, world, {"DRIFT_CODE": "0"})
    assert world["issues"][0]["state"] == "closed"
    assert world["calls"] == [["createComment", issue["number"]],
                              ["update", issue["number"], "closed"]]
    world = run(tmp_path, script, world, {"DRIFT_CODE": "0"})
    assert world["calls"] == [], "in sync and no open issue: nothing to do"


def test_apply_picks_the_head_commit_of_the_pull_request_merged_into_main(tmp_path):
    script = script_of("reconciler-apply.yml", "Find the merged pull request's head commit")
    pulls = [
        {"number": 5, "merged_at": None, "base": {"ref": "main"}, "head": {"sha": "open-pr"},
         "commits": ["merge-sha"]},
        {"number": 6, "merged_at": "2026-11-24T10:00:00Z", "base": {"ref": "release"},
         "head": {"sha": "other-base"}, "commits": ["merge-sha"]},
        {"number": 7, "merged_at": "2026-11-24T11:00:00Z", "base": {"ref": "main"},
         "head": {"sha": "reviewed-head"}, "commits": ["merge-sha"]},
    ]
    world = run(tmp_path, script, {"context": CONTEXT, "comments": [], "issues": [],
                                   "pulls": pulls})
    assert world["result"] == "reviewed-head" and "failed" not in world
    world = run(tmp_path, script, {"context": CONTEXT, "comments": [], "issues": [],
                                   "pulls": pulls[:2]})
    assert world["result"] == "" and "nothing is applied" in world["failed"]
