"""Beyond one machine, on one machine: hosts are network namespaces on a bridge.

A sweep's PostgreSQL server runs on one host and its workers on two others, so every
query crosses a network interface; one worker is killed mid-trial and the heartbeat
hands its trial to the other. Two torchrun nodes train as one process would, and a
node killed mid-run ends the job with an error and a checkpoint that resumes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import pytest
from ddp_train import same_curves, train
from hosts import INTERFACE, Hosts
from optuna.trial import TrialState
from pgserver import postgres

from atlas_core.engine.checkpoints import checkpoint_paths

pytestmark = pytest.mark.cluster

STUDY = '''"""Tiny study: the core MLP's learning rate."""

from atlas_core.sweep import set_param


def space(trial, config):
    set_param(config, "train.lr", trial.suggest_float("lr", 1e-3, 1e-2, log=True))
'''
TINY = [
    "--set", "eval.views=1", "--set", "train.batch_rays=128", "--set", "sampler.samples=8",
    "--set", "eval.video_frames=0", "--set", "field.width=8",
]  # fmt: skip
ENV = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="disabled")


@pytest.fixture
def hosts(request: pytest.FixtureRequest) -> Iterator[Hosts]:
    """Three hosts; skipped with the reason where namespaces cannot be made."""
    reason = Hosts.skip_reason()
    if reason:
        pytest.skip(f"network namespaces: {reason}")
    with Hosts(3) as made:
        yield made


def wait_for(found: Callable[[], object], procs: list[subprocess.Popen], timeout: float) -> object:
    """Poll ``found()`` until it is truthy; fail if a process ends or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        for proc in procs:
            if proc.poll() is not None:
                _, err = proc.communicate()
                pytest.fail(f"{proc.args[4:8]} ended early ({proc.returncode}): {err[-2000:]}")
        time.sleep(0.2)
    pytest.fail(f"nothing after {timeout} s")


def sent_bytes(hosts: Hosts, host: int) -> int:
    """Bytes ``host`` sent through its network interface."""
    path = f"/sys/class/net/{INTERFACE}/statistics/tx_bytes"
    return int(subprocess.check_output(hosts.command(host, ["cat", path]), text=True))


def test_sweep_workers_on_two_hosts_survive_a_kill(
    hosts: Hosts, atlas_scene: Path, tmp_path: Path
) -> None:
    """PostgreSQL on host 0, workers on 1 and 2; SIGKILL of 1 mid-trial: 2 reruns it."""
    study_file = tmp_path / "hosts.py"
    study_file.write_text(STUDY)
    with postgres(hosts.address(0), 5432, hosts.command(0, [])) as (port, sockets):
        url = f"postgresql://postgres@{hosts.address(0)}:{port}/postgres"
        argv = [sys.executable, "-m", "atlas_core", "sweep", str(study_file), "--data"]
        argv += [str(atlas_scene), "--trials", "3", "--storage", url, "--logger", "none"]
        argv += ["--pruner", "none", "--grace", "4", "--time-budget", "5", *TINY]
        workers = [
            subprocess.Popen(
                hosts.command(k, [*argv, "--out", str(tmp_path / f"host{k}")]),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=ENV,
            )
            for k in (1, 2)
        ]
        try:
            # the test's own view of the study, through the server's socket folder
            local = f"postgresql+psycopg://postgres@/postgres?host={sockets}&port={port}"

            def training_on_host1() -> optuna.trial.FrozenTrial | None:
                try:
                    study = optuna.load_study(study_name="hosts", storage=local)
                except KeyError:  # not created yet
                    return None
                for trial in study.get_trials(states=(TrialState.RUNNING,)):
                    run = Path(trial.user_attrs.get("run_dir", "/none"))
                    if run.parent.parent.name == "host1" and (run / "config.toml").exists():
                        return trial
                return None

            victim = wait_for(training_on_host1, workers, timeout=180)
            time.sleep(1.0)  # mid-trial: it trains for 5 s
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait(timeout=30)
            out, err = workers[1].communicate(timeout=300)
        finally:
            for proc in workers:
                proc.kill()
        assert workers[1].returncode == 0, err[-2000:]
        trials = optuna.load_study(study_name="hosts", storage=local).trials
        assert sent_bytes(hosts, 1) > 10_000 and sent_bytes(hosts, 2) > 10_000
    real = [t for t in trials if not t.user_attrs.get("surplus")]
    done = [t for t in real if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    failed = [t for t in real if t.state == TrialState.FAIL]
    assert len(done) == 3, [(t.number, t.state) for t in trials]
    assert [t.number for t in failed] == [victim.number]  # marked failed by the heartbeat
    assert not [t for t in real if t.state == TrialState.RUNNING]
    retries = [t for t in done if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retries) == 1 and retries[0].params == victim.params
    assert "host2" in retries[0].user_attrs["run_dir"]  # the surviving host reran it
    waited = (retries[0].datetime_start - victim.datetime_start).total_seconds()
    assert waited < 45, waited  # --grace 4, not the default 60 s
    assert len({t.user_attrs["run_dir"] for t in done}) == 3  # none counted twice
    assert f"trial {retries[0].number}: COMPLETE" in out


def torchrun(hosts: Hosts, node: int, argv: list[str], port: int = 29400) -> subprocess.Popen:
    """Start node ``node`` of a 2-node x 1-process torchrun job (c10d rendezvous on host 0)."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
        "--rdzv-backend", "c10d", "--rdzv-endpoint", f"{hosts.address(0)}:{port}",
        "--rdzv-id", "atlas-test", "--local-addr", hosts.address(node),
        # the store's host: torchrun cannot tell that an address of a namespace is its own
        "--rdzv-conf", f"is_host={int(node == 0)}", *argv,
    ]  # fmt: skip
    env = dict(ENV, GLOO_SOCKET_IFNAME=INTERFACE)
    return subprocess.Popen(
        hosts.command(node, command),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own process group: agent and worker die together
    )


def test_torchrun_two_nodes_match_one_process(
    hosts: Hosts, atlas_scene: Path, tmp_path: Path
) -> None:
    """2 nodes x 1 process over the bridge: loss and gradient norm as one process."""
    single, double = tmp_path / "single", tmp_path / "double"
    train(0, 1, 0, str(atlas_scene), str(single))
    script = str(Path(__file__).with_name("ddp_train.py"))
    nodes = [torchrun(hosts, k, [script, str(atlas_scene), str(double)]) for k in (0, 1)]
    results = [node.communicate(timeout=300) for node in nodes]
    for node, (_, err) in zip(nodes, results, strict=True):
        assert node.returncode == 0, err[-3000:]
    same_curves(single, double)
    assert sent_bytes(hosts, 1) > 10_000  # the gradients crossed the link


def test_torchrun_node_killed_mid_run(hosts: Hosts, atlas_scene: Path, tmp_path: Path) -> None:
    """Node 1 dies: node 0 stops with a one-line error and a checkpoint; --resume finishes."""
    out = tmp_path / "run"
    argv = ["-m", "atlas_core", "run", "--data", str(atlas_scene), "--out", str(out)]
    argv += ["--device", "cpu", "--max-steps", "300", "--save-every", "5", *TINY]
    nodes = [torchrun(hosts, k, argv, port=29401) for k in (0, 1)]
    try:
        wait_for(lambda: checkpoint_paths(out / "checkpoints"), nodes, timeout=180)
        hosts.kill(1)  # the agent and its worker (torchrun starts it in its own session)
        nodes[1].wait(timeout=30)
        started = time.monotonic()
        _, err = nodes[0].communicate(timeout=120)  # a hang fails here
    finally:
        for node in nodes:
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGKILL)
    assert time.monotonic() - started < 60
    assert nodes[0].returncode != 0
    lines = [line for line in err.splitlines() if line.startswith("atlas: error:")]
    assert len(lines) == 1, err[-3000:]
    assert "lost contact with another rank" in lines[0] and "--resume" in lines[0]
    step = max(int(path.stem.split("-")[-1]) for path in checkpoint_paths(out / "checkpoints"))
    assert 0 < step < 300
    resumed = subprocess.run(
        [sys.executable, "-m", "atlas_core", "run", "--resume", "--out", str(out)],
        capture_output=True, text=True, env=ENV, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((out / "metrics.json").read_text())["steps"] == 300
