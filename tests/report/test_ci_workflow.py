"""docs/ci/harness-pr.yml, the GitHub Actions workflow README offers: it parses, runs on pull
requests with the history needed to build the base branch, calls `harness ci` with flags that
command has, puts the summary into the job summary, uploads harness-ci, and fails with harness ci's
exit status. Its shell steps are run here under bash as the runner runs them, with a stand-in
`harness` on PATH."""
import argparse
import os
import re
import shlex
import stat
import subprocess
from pathlib import Path

import pytest
from support.paths import ROOT

yaml = pytest.importorskip("yaml")     # PyYAML comes with asv and gguf

WORKFLOW = ROOT / "docs" / "ci" / "harness-pr.yml"
# GitHub runs `run` steps on Linux with `bash --noprofile --norc -eo pipefail {0}`
RUNNER_BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]
# the inputs of benchmark-action/github-action-benchmark v1 (action.yml at v1.22.0, commit c38cce98)
ACTION_INPUTS = {"name", "tool", "output-file-path", "gh-pages-branch", "gh-repository", "benchmark-data-dir-path",
                 "github-token", "ref", "auto-push", "skip-fetch-gh-pages", "comment-always", "summary-always",
                 "save-data-file", "comment-on-alert", "alert-threshold", "fail-on-alert", "fail-threshold",
                 "alert-comment-cc-users", "external-data-json-path", "max-items-in-chart", "go-force-package-suffix"}


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


@pytest.fixture(scope="module")
def steps(workflow) -> list[dict]:
    (job,) = workflow["jobs"].values()
    return job["steps"]


def step_using(steps, action: str) -> dict:
    found = [s for s in steps if str(s.get("uses", "")).startswith(action + "@")]
    assert len(found) == 1, f"one step uses {action}"
    return found[0]


def ci_commands(steps) -> list[list[str]]:
    return [shlex.split(line.strip()) for s in steps for line in s.get("run", "").splitlines()
            if line.strip().startswith("harness ci")]


def test_runs_on_pull_requests_with_full_history_and_installs_the_package(workflow, steps):
    triggers = workflow.get("on", workflow.get(True))          # YAML 1.1 reads a bare `on` as true
    assert "pull_request" in triggers
    assert step_using(steps, "actions/checkout")["with"]["fetch-depth"] == 0
    assert "python-version" in step_using(steps, "actions/setup-python")["with"]
    installs = [line.strip() for s in steps for line in s.get("run", "").splitlines()]
    assert "pip install ." in installs
    names = [s.get("uses", s.get("run", "")) for s in steps]
    assert names.index(step_using(steps, "actions/checkout")["uses"]) < next(
        i for i, s in enumerate(steps) if "pip install ." in s.get("run", ""))


def test_harness_ci_is_called_on_the_base_branch_with_flags_the_command_has(steps):
    (cmd,) = ci_commands(steps)
    assert cmd[:2] == ["harness", "ci"]
    args = dict(zip(cmd[2::2], cmd[3::2]))
    assert args == {"--base": "origin/$BASE_REF", "--head": "HEAD", "-o": "harness-ci"}
    ab = next(s for s in steps if "harness ci" in s.get("run", ""))
    assert ab["env"]["BASE_REF"] == "${{ github.base_ref }}"
    from harness.cli.main import build_parser
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    if "ci" not in sub.choices:
        pytest.skip("`harness ci` does not exist yet")
    known = {o for a in sub.choices["ci"]._actions for o in a.option_strings}
    flags = [c for c in cmd[2:] if c.startswith("-")]
    assert flags and set(flags) <= known, sorted(set(flags) - known)
    # and the parser takes the command line as written
    parsed = build_parser().parse_args(["ci", *[c.replace("$BASE_REF", "main") for c in cmd[2:]]])
    assert (parsed.base, parsed.head, parsed.output) == ("origin/main", "HEAD", "harness-ci")


def test_the_artifact_is_uploaded_even_when_the_check_fails(steps):
    up = step_using(steps, "actions/upload-artifact")
    assert up["with"]["path"] == "harness-ci" and up["if"] == "always()"


def _fake_harness(bin_dir: Path, status: int, summary: bool) -> Path:
    bin_dir.mkdir(exist_ok=True)
    log = bin_dir / "args"
    script = bin_dir / "harness"
    write_summary = "mkdir -p harness-ci && echo '## harness ab: a significant slowdown' > harness-ci/summary.md\n"
    script.write_text("#!/bin/sh\n"
                      f"printf '%s\\n' \"$@\" > {shlex.quote(str(log))}\n"
                      + (write_summary if summary else "")
                      + f"exit {status}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return log


def _run_step(step: dict, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    script = cwd / "step.sh"
    script.write_text(step["run"])
    return subprocess.run([*RUNNER_BASH, str(script)], cwd=cwd, env={**os.environ, **env}, capture_output=True,
                          text=True)


@pytest.mark.parametrize("status, summary", [(0, True), (1, True), (2, False)])
def test_the_steps_keep_the_exit_status_write_the_summary_and_fail_the_job(steps, tmp_path, status, summary):
    log = _fake_harness(tmp_path / "bin", status, summary)
    out, job_summary = tmp_path / "github_output", tmp_path / "step_summary"
    ab = next(s for s in steps if "harness ci" in s.get("run", ""))
    r = _run_step(ab, tmp_path, {"PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "BASE_REF": "main",
                                 "GITHUB_OUTPUT": str(out), "GITHUB_STEP_SUMMARY": str(job_summary)})
    assert r.returncode == 0, r.stderr                     # the step itself goes on to the summary
    assert log.read_text().split("\n")[:-1] == ["ci", "--base", "origin/main", "--head", "HEAD", "-o", "harness-ci"]
    assert out.read_text() == f"status={status}\n"
    text = job_summary.read_text()
    assert ("## harness ab: a significant slowdown" in text) == summary
    assert ("harness ci wrote no summary (exit status 2)" in text) == (not summary)

    fail = steps[-1]
    assert fail["if"] == f"steps.{ab['id']}.outputs.status != '0'"
    assert fail["env"]["STATUS"] == f"${{{{ steps.{ab['id']}.outputs.status }}}}"
    if status:                                              # the job fails with harness ci's status
        r = _run_step(fail, tmp_path, {"STATUS": str(status)})
        assert r.returncode == status and f"exited with status {status}" in r.stdout


def test_the_commented_github_action_benchmark_steps_are_valid_when_uncommented():
    text = WORKFLOW.read_text()
    block = re.search(r"# BEGIN github-action-benchmark\n(.*?)\n\s*# END github-action-benchmark", text, re.S)
    assert block, "the optional block is marked"
    lines = [re.sub(r"^\s*# ?", "", line) for line in block.group(1).splitlines()]
    restore, bench = yaml.safe_load("\n".join(lines))
    assert restore["uses"].startswith("actions/cache/restore@") and restore["with"]["path"] == "./cache"
    assert bench["uses"] == "benchmark-action/github-action-benchmark@v1"
    w = bench["with"]
    assert set(w) <= ACTION_INPUTS, sorted(set(w) - ACTION_INPUTS)
    assert w["tool"] == "customBiggerIsBetter"
    assert w["output-file-path"] == "harness-ci/github-action-benchmark.json"
    assert w["save-data-file"] is False and "auto-push" not in w      # never push from a pull request


def test_readme_points_to_the_workflow():
    assert "docs/ci/harness-pr.yml" in (ROOT / "README.md").read_text()
