"""The entry points' command line through Hydra (solo_ossl/args/cli.py): --cfg job, --help, -m sweeps into a folder
per job, the submitit launcher, and our one-line errors with exit code 2 before Hydra starts."""

from pathlib import Path

import pytest
import yaml
from lightning_utilities.core.imports import module_available

from .conftest import TINY, run_script

TINY_RUN = [*TINY, "++data.synthetic_per_class=8", "++max_epochs=1"]


def test_cfg_job_prints_the_composed_config_with_the_overrides_and_runs_nothing(tmp_path):
    result = run_script(
        "main_pretrain.py", "--config-name", "online/embedded/barlow_rals", "++seed=7", f"++output_dir={tmp_path}",
        "--cfg", "job",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    cfg = yaml.safe_load(result.stdout)
    assert cfg["seed"] == 7 and cfg["regime"] == "online" and cfg["online"]["selection"] == "rals"
    assert cfg["name"] == "barlow-embedded-online-rals"  # the YAML's defaults chain, merged over the typed schema
    assert cfg["optimizer"]["name"] == "lars" and "dist_timeout_s" in cfg  # every schema key (enums by name)
    assert not any(tmp_path.iterdir())


def test_help_names_the_usage_and_the_config():
    result = run_script("main_linear.py", "--config-name", "linear/embedded", "--help")
    assert result.returncode == 0
    assert "Usage: python main_linear.py --config-name NAME" in result.stdout and "pretrained_ckpt:" in result.stdout


@pytest.mark.parametrize(
    "override, message",
    [
        ("++no_such_key=1", "key 'no_such_key'"),
        ("++seed=0,x", "key 'seed'"),  # the second value of a sweep
        ("++optimizer.name=lars,adamx", "optimizer.name"),  # a value outside the choices
    ],
)
def test_a_bad_override_is_one_error_line_before_any_job(tmp_path, override, message):
    result = run_script(
        "main_pretrain.py", "--config-name", "online/embedded/barlow_rals", f"++output_dir={tmp_path}", "-m", override
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.stderr
    assert not any(tmp_path.iterdir())


def test_a_sweep_runs_each_job_in_its_own_folder_and_a_rerun_resumes_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing of Hydra's lands in the working directory
    args = ["--config-name", "pretrain/embedded/barlow", *TINY_RUN, f"++output_dir={tmp_path / 'runs'}", "-m"]
    result = run_script("main_pretrain.py", *args, "++seed=0,1")
    assert result.returncode == 0, result.stderr
    run = tmp_path / "runs" / "barlow-embedded-task1"
    assert sorted(p.name for p in run.iterdir()) == ["seed=0", "seed=1"]
    seeds = [yaml.safe_load((run / f"seed={s}" / "config.yaml").read_text())["seed"] for s in (0, 1)]
    assert seeds == [0, 1]
    assert {p.name for p in tmp_path.iterdir()} == {"runs"}
    again = run_script("main_pretrain.py", *args, "++seed=0,1")
    assert again.returncode == 0 and again.stdout.count("finished before:") == 2


# slow (-m slow): hydra's submitit plugin itself. The sweep's folders and reruns are tested above, in-process.
@pytest.mark.slow
@pytest.mark.long
@pytest.mark.skipif(
    not module_available("hydra_plugins.hydra_submitit_launcher"),
    reason="needs the cluster extra (hydra-submitit-launcher)",
)
def test_a_sweep_runs_as_submitit_jobs_with_the_local_executor(tmp_path):
    result = run_script(
        "main_pretrain.py", "--config-name", "pretrain/embedded/barlow", *TINY_RUN, f"++output_dir={tmp_path}",
        "-m", "++seed=0,1", "hydra/launcher=submitit_local", process=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    run = tmp_path / "barlow-embedded-task1"
    assert all((run / f"seed={s}" / "final.ckpt").is_file() for s in (0, 1))
    logs = list(Path(tmp_path, "multirun").rglob("*_log.out"))  # submitit's job logs, in the sweep folder
    assert len(logs) == 2 and all("checkpoint:" in log.read_text() for log in logs)


# slow (-m slow): submitit's local executor itself. The runner's runs, skips and reports: tests/test_cassle_compare.py.
@pytest.mark.slow
@pytest.mark.long
@pytest.mark.skipif(not module_available("submitit"), reason="needs the cluster extra (hydra-submitit-launcher)")
def test_the_comparison_runner_sends_each_run_as_a_submitit_job(tmp_path, capsys, monkeypatch):
    from solo_ossl.compare.cli import compare

    # The local executor runs the two runs' jobs at once: one thread each, as a cluster gives each its cores (two
    # 2-thread processes on 2 cores took 44 to 110 s here, one thread each 30 to 37 s).
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    from .test_cassle_compare import tiny_compare_args

    args = [*tiny_compare_args(tmp_path), "--seeds", "0", "--strategies", "offline", "ours_no_rals"]
    results = compare([*args, "--launcher", "local", "--launcher-param", "timeout_min=30"])
    out = capsys.readouterr().out
    assert out.count("[compare] submitted 1 job(s)") == 1 and "[compare] submitted 2 job(s)" in out  # start, runs
    assert {(r["strategy"], r["seed"]) for r in results} == {("offline", 0), ("ours_no_rals", 0)}
    logs = sorted((tmp_path / "submitit").rglob("*_log.out"))
    assert len(logs) == 3 and any("training the task-1 checkpoint" in log.read_text() for log in logs)
    # The runs are the runner's own, in their usual folders: the same command inline finds them finished.
    again = compare(args)
    assert capsys.readouterr().out.count("done before, skipped") == 2  # both runs
    assert again == results
