"""Resources per trial when none are given: GPUs used where the cluster has them, CPUs to match."""

from __future__ import annotations

from rtune_fashion.resources import TRIALS_PER_GPU, GpuNode, choose


def test_gpus_are_shared_four_ways_with_the_cpus_divided_among_the_trials() -> None:
    workstation = [GpuNode("1 GPU", cpus=16, gpus=1, runs_driver=True)]
    chosen = choose(None, None, workstation)
    assert (chosen.cpus_per_trial, chosen.gpus_per_trial) == (3, 1 / TRIALS_PER_GPU) == (3, 0.25)  # (16 - 1) // 4
    assert chosen.line.startswith("4 trials per GPU on 1 GPU(s), 3 CPUs each (the default where there are GPUs: "
                                  "--gpus-per-trial 0 keeps the trials on the CPUs")  # fmt: skip
    two = choose(None, None, [GpuNode("2 GPU", cpus=16, gpus=2), GpuNode("1 GPU", cpus=4, gpus=1, runs_driver=True)])
    assert two.cpus_per_trial == 1 and two.line.startswith(  # the smaller node decides: 3 of its 4 CPUs for trials
        "a quarter GPU per trial on 3 GPU(s), 1 CPUs each: 3 trial(s) per GPU at a time, as the CPUs allow")
    types = [GpuNode("node type gpu_worker (8 CPU, 1 GPU)", cpus=8, gpus=1)]
    assert choose(None, None, types).cpus_per_trial == 2  # cluster.yaml's worker: the README's --cpus-per-trial 2
    assert "on node type gpu_worker (8 CPU, 1 GPU), which the autoscaler starts" in choose(None, None, types).line
    assert choose(None, None, [GpuNode("1 GPU", cpus=2, gpus=1, runs_driver=True)]).cpus_per_trial == 1  # at least 1


def test_what_the_user_gives_is_kept_and_cpu_only_clusters_keep_the_old_defaults() -> None:
    gpu = [GpuNode("1 GPU", cpus=16, gpus=1)]
    cpu_only = choose(None, None, [])
    assert (cpu_only.cpus_per_trial, cpu_only.gpus_per_trial, cpu_only.line) == (1, 0, None)
    forced_cpu = choose(None, 0.0, gpu)
    assert (forced_cpu.cpus_per_trial, forced_cpu.gpus_per_trial, forced_cpu.line) == (1, 0, None)
    assert (choose(2.0, 0.5, gpu).cpus_per_trial, choose(2.0, 0.5, gpu).gpus_per_trial) == (2, 0.5)
    given_cpus = choose(0.5, None, gpu)
    assert (given_cpus.cpus_per_trial, given_cpus.gpus_per_trial) == (0.5, 0.25) and "0.5 CPUs each" in given_cpus.line


def test_the_line_says_how_many_trials_the_cpus_let_run_and_cpu_less_gpu_nodes_run_none() -> None:
    workstation = [GpuNode("1 GPU", cpus=16, gpus=1, runs_driver=True)]
    eight = choose(8.0, None, workstation)
    assert eight.gpus_per_trial == 0.25 and eight.line.startswith(
        "a quarter GPU per trial on 1 GPU(s), 8 CPUs each: 1 trial(s) per GPU at a time, as the CPUs allow")
    laptop = choose(None, None, [GpuNode("1 GPU", cpus=2, gpus=1, runs_driver=True)])
    assert laptop.cpus_per_trial == 1 and "1 trial(s) per GPU at a time" in laptop.line
    no_cpus = choose(None, None, [GpuNode("1 GPU", cpus=0, gpus=1)])
    assert (no_cpus.cpus_per_trial, no_cpus.gpus_per_trial, no_cpus.line) == (1, 0, None)
