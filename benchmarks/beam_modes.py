"""Seconds per Beam component under each DirectRunner running mode, one run per mode, back to back.

Runs the whole local pipeline (`python -m pipeline run`, fresh output dir, nothing cached) once
per mode with a short Trainer (`--epochs 1 --steps-per-epoch 5`), and reads each component's
"done in N s" from the console. Modes: in_memory; multi_threading with 1 and 2 workers;
multi_processing with 2 workers (what a compiled Kubeflow step ran before). Prints a table of
seconds for ExampleGen, StatisticsGen, Transform, the Evaluator and the whole run, with the CPU
from /proc/cpuinfo, the peak memory of the largest process, how many SDK worker processes
aborted at exit ("pure virtual method called" in the run's log) and how each run ended (a run
killed midway keeps the components it finished). Timings are comparable only within one
invocation: the machine may be shared.

    python -m benchmarks.beam_modes                       # the built-in digits
    python -m benchmarks.beam_modes --data /usr/share/datasets/fashion-mnist
    python -m benchmarks.beam_modes --synthetic 60000,10000   # Fashion-MNIST-sized IDX files
    python -m benchmarks.beam_modes --modes in_memory,multi_processing:2 --repeats 2

--synthetic writes MNIST-format files of that many train and test images (28 x 28, 10 labels:
the digits, upscaled, shifted and noised), for a machine without Fashion-MNIST; a Beam step's
cost follows the image count and bytes, not what the images show.
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPONENTS = ("ExampleGen", "StatisticsGen", "Transform", "Evaluator")
DEFAULT_MODES = "in_memory,multi_threading:1,multi_threading:2,multi_processing:2"
SHORT_TRAINER = ["--epochs", "1", "--steps-per-epoch", "5", "--min-training-steps", "0"]
SHORT_TRAINER += ["--lower-bound", "0", "--report-examples", "200"]
_DONE = re.compile(r"(?:^|\n)(\w+) (?:started \.\.\. )?done in ([0-9.]+) s")
_ABORT = "pure virtual method called"


def cpu_name() -> str:
    with open("/proc/cpuinfo") as f:
        names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    flags = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags = " (AVX-512 BF16)" if "avx512_bf16" in line.split() else ""
                break
    return f"{names[0] if names else 'unknown CPU'}{flags}, {os.cpu_count()} cores"


def beam_args(mode: str) -> list[str]:
    """'in_memory', 'multi_threading:2' or 'multi_processing:2' as DirectRunner flags."""
    name, _, workers = mode.partition(":")
    return [f"--direct_running_mode={name}", f"--direct_num_workers={workers or 1}"]


def write_synthetic(directory: str, train: int, test: int, seed: int = 0) -> str:
    """Fashion-MNIST-shaped IDX files: 28 x 28 uint8 images with 10 labels."""
    from PIL import Image
    from sklearn.datasets import load_digits

    from components.example_gen import idx

    os.makedirs(directory, exist_ok=True)
    digits = load_digits()
    base = np.stack(
        [
            np.asarray(Image.fromarray((d * 255 / 16).astype(np.uint8)).resize((20, 20)))
            for d in digits.images
        ]
    )
    rng = np.random.default_rng(seed)
    for prefix, count in (("train", train), ("t10k", test)):
        chosen = rng.integers(0, len(base), count)
        images = np.zeros((count, 28, 28), np.uint8)
        shifts = rng.integers(0, 9, (count, 2))
        for n, (i, (dy, dx)) in enumerate(zip(chosen, shifts, strict=True)):
            images[n, dy : dy + 20, dx : dx + 20] = base[i]
        noise = rng.integers(0, 24, images.shape, dtype=np.uint8) * (images > 0)
        images = np.clip(images.astype(np.int16) + noise, 0, 255).astype(np.uint8)
        idx.write_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte"), images)
        labels = digits.target[chosen].astype(np.uint8)
        idx.write_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte"), labels)
    return directory


def tree_rss_gb(pid: int) -> float:
    """Resident memory of a process and all its descendants, from /proc (GB)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += rss.get(current, 0)
        todo += children.get(current, [])
    return total / 2**30


def _watch(process: subprocess.Popen, max_gb: float, exceeded: list) -> None:
    """Kills the run (and its workers) once their memory passes max_gb: on a shared machine
    the kernel's OOM killer would pick any process."""
    while process.poll() is None:
        if tree_rss_gb(process.pid) > max_gb:
            exceeded.append(True)
            os.killpg(process.pid, signal.SIGKILL)
            return
        time.sleep(1)


def run_mode(mode: str, data: str, output_dir: str, timeout: float, max_gb: float) -> dict:
    """Runs the pipeline once; returns seconds per component, the total, the peak memory of the
    largest process (GB) and how many workers aborted. A run that fails (the OOM killer, say)
    keeps the components it finished and says how it ended."""
    argv = [sys.executable, "-m", "pipeline", "run", "--data", data, "--output-dir", output_dir]
    argv += ["--serving-dir", os.path.join(output_dir, "serving_model")]
    argv += [*SHORT_TRAINER, "--", *beam_args(mode)]
    os.makedirs(output_dir, exist_ok=True)
    console = os.path.join(output_dir, "console.txt")
    started = time.monotonic()
    with open(console, "w+") as out:
        process = subprocess.Popen(
            argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        timer = threading.Timer(timeout, os.killpg, (process.pid, signal.SIGKILL))
        timer.start()
        exceeded: list = []
        threading.Thread(target=_watch, args=(process, max_gb, exceeded), daemon=True).start()
        _, status, usage = os.wait4(process.pid, 0)  # usage: the run and its waited children.
        timer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    total = time.monotonic() - started
    seconds = {name: float(value) for name, value in _DONE.findall(text)}
    log = os.path.join(output_dir, "logs", "run.log")
    aborts = 0
    if os.path.exists(log):
        with open(log, errors="replace") as f:
            aborts = f.read().count(_ABORT)
    ended = "ok" if process.returncode == 0 else f"exit {process.returncode}"
    if exceeded:
        ended = f"killed above --max-gb {max_gb:g}"
    elif process.returncode == -9:
        ended = "killed (SIGKILL: the OOM killer or --timeout)"
    result = {**seconds, "aborts": aborts, "peak_gb": usage.ru_maxrss / 2**20, "ended": ended}
    if process.returncode == 0:
        result["total"] = total
    return result


def table(results: list[tuple[str, dict]], cpu: str, data: str) -> str:
    columns = [*COMPONENTS, "total"]
    lines = [
        f"CPU: {cpu}; data: {data}; Trainer: {' '.join(SHORT_TRAINER)}",
        "",
        "| mode | " + " | ".join(f"{c} s" for c in columns) + " | peak GB | aborted | ended |",
        "|---|" + "---:|" * (len(columns) + 2) + "---|",
    ]
    for mode, seconds in results:
        cells = [f"{seconds[c]:.1f}" if c in seconds else "-" for c in columns]
        tail = f" | {seconds['peak_gb']:.1f} | {seconds['aborts']} | {seconds['ended']} |"
        lines.append(f"| {mode} | " + " | ".join(cells) + tail)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits", help="what `run --data` takes")
    parser.add_argument(
        "--synthetic", metavar="TRAIN,TEST", help="write and use IDX files of this many images"
    )
    parser.add_argument("--modes", default=DEFAULT_MODES, help="default %(default)s")
    parser.add_argument("--repeats", type=int, default=1, help="rounds, the order rotated")
    parser.add_argument("--work", help="scratch folder (default: a new temporary one)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    parser.add_argument(
        "--max-gb",
        type=float,
        default=12.0,
        help="kill a run whose processes hold more memory than this (default %(default)s)",
    )
    args = parser.parse_args(argv)
    work = args.work or tempfile.mkdtemp(prefix="beam_modes-")
    data = args.data
    if args.synthetic:
        train, test = (int(n) for n in args.synthetic.split(","))
        data = write_synthetic(os.path.join(work, f"synthetic-{train}-{test}"), train, test)
    modes = args.modes.split(",")
    cpu = cpu_name()
    results = []
    for round_ in range(args.repeats):
        for mode in modes[round_ % len(modes) :] + modes[: round_ % len(modes)]:
            output_dir = os.path.join(work, f"{mode.replace(':', '-')}-{round_}")
            seconds = run_mode(mode, data, output_dir, args.timeout, args.max_gb)
            print(mode, seconds, flush=True)
            results.append((mode, seconds))
    print()
    print(table(results, cpu, data))


if __name__ == "__main__":
    main()
