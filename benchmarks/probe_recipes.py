"""Training-recipe probes at an equal CPU budget: validation PSNR gained per CPU-hour.

    python benchmarks/probe_recipes.py --cpu_minutes 30 --output_dir results/probes
    python benchmarks/probe_recipes.py --variants lr2e-4,charbonnier --cpu_minutes 5 \\
        --base_flags "--data_dir DATA --n_filters 32"

Each variant is one ``scripts/train.py`` run (in OUTPUT_DIR/VARIANT, with ``--val_images 0``: the
probe scores, not the run), started from the same generator on the same data: the common flags
(``--base_flags``, after this probe's defaults ``DEFAULT_BASE``), then the variant's own. When the
child's CPU time (user + system, all its threads, from /proc/PID/stat) reaches ``--cpu_minutes``,
it gets SIGINT, which train.py answers by saving its position. The generator at that position
(batch-norm statistics recalibrated as an epoch's checkpoint) and the starting generator are scored
on ``--val_dir`` with deblurgan.evaluate (8-bit PSNR, whole images, as scripts/test.py), and one
markdown table row per variant is printed. A variant whose directory already holds ``result.json``
is not run again (so an interrupted probe continues where it stopped) when that result was made
with the same settings (common flags, budget, validation folder); one made with others is refused.
A failed or interrupted variant writes none, and the next probe runs it again from the start.
Paths in the flags are read from the folder the probe is started in.
"""

import argparse
import importlib.util
import json
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# The standing recipe (weights/README.md): content-only L1 from the identity generator, 128 crops.
DEFAULT_BASE = (
    "--gan_mode none --content_loss l1 --batch_size 4 --crop_size 128 --lr 2e-4 --norm none "
    "--output_mode clip --dropout_rate 0 --zero_init_output --steps_per_epoch 150 --n_epochs 20 --seed 1"
)
# name -> train.py flags after the base ones. --clip_norm 50: the generator's global gradient norm
# (content weight 100) was 10-30 for weights/generator.h5 on images/train and 10-520 in the first
# steps from the identity start, so it cuts the early spikes only; a run logs it as
# generator/grad_norm. Cosine decays over --n_epochs x --steps_per_epoch.
VARIANTS = {
    "lr2e-4": "--lr 2e-4",
    # the standing rate with the same schedule: separates a higher rate from the cosine's annealing
    "lr2e-4+cos+clip": "--lr 2e-4 --lr_schedule cosine --warmup_steps 100 --clip_norm 50",
    "lr5e-4+cos+clip": "--lr 5e-4 --lr_schedule cosine --warmup_steps 100 --clip_norm 50",
    "lr1e-3+cos+clip": "--lr 1e-3 --lr_schedule cosine --warmup_steps 100 --clip_norm 50",
    "charbonnier": "--content_loss charbonnier",
    "l1+fft": "--content_loss l1+fft",
    "res_scale0.1": "--residual_scale 0.1",  # generator options of another branch
    "zero_init_blocks": "--zero_init_blocks",
    "crop192": "--crop_size 192",
    # Adversarial fine-tuning (issue 10 item 7), from a content-trained generator: WGAN-GP with a
    # fresh PatchGAN critic. The penalty holds the gradient of each image's summed patch scores near
    # norm 1, and the generator's loss is their mean, so per batch of B images and P patches (14 x 14
    # at 128x128) the adversarial gradient is about weight / (sqrt(B) P): 0.003 at weight 1 (the
    # paper's and Sicara's), against 100 / sqrt(pixel values) = 0.23 for L1 at weight 100.
    "wgan-gp-adv1": "--gan_mode wgan-gp --adversarial_weight 1",
    "wgan-gp-adv10": "--gan_mode wgan-gp --adversarial_weight 10",
    # Second attempt: the critic trains alone for 100 steps first (500 updates against the fixed
    # generator), then 150 generator steps at a tenth of the content phase's rate while the critic
    # keeps 1e-4; the control is content L1 at that rate for the same 150 generator steps.
    "finetune-l1": "--lr 2e-5 --steps_per_epoch 50 --n_epochs 3",
    "wgan-gp-warmup-adv10": "--gan_mode wgan-gp --lr 2e-5 --critic_lr 1e-4 --critic_warmup_steps 100 "
    "--adversarial_weight 10 --steps_per_epoch 50 --n_epochs 5",
    "wgan-gp-warmup-adv1": "--gan_mode wgan-gp --lr 2e-5 --critic_lr 1e-4 --critic_warmup_steps 100 "
    "--adversarial_weight 1 --steps_per_epoch 50 --n_epochs 5",
    # DeblurGAN-v2's relativistic least-squares GAN (no penalty, one critic update per step as
    # there): 300 critic-only steps, then the same 150 generator steps.
    "ragan-ls-warmup": "--gan_mode ragan-ls --critic_updates 1 --lr 2e-5 --critic_lr 1e-4 "
    "--critic_warmup_steps 300 --adversarial_weight 1 --steps_per_epoch 50 --n_epochs 9",
}
SIGINT_EXIT = 128 + signal.SIGINT  # train.py's exit code after saving on SIGINT


def _train_command():
    spec = importlib.util.spec_from_file_location("train_script", REPO / "scripts" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def parse_flags(args):
    """train.py's parameters for ``args`` (click's parser: the last of a repeated flag wins);
    a ValueError naming the flag for one train.py lacks."""
    import click

    # A plain click command with train.py's options: train.py's own prints usage errors and exits.
    command = click.Command("train.py", params=_train_command().params)
    try:
        return command.make_context("train.py", list(args)).params
    except click.UsageError as error:
        raise ValueError(error.format_message()) from None


def config_of(params):
    from deblurgan.config import TrainingConfig

    # train.py's options that are not the run's definition: --resume and where the run executes
    not_config = {
        "resume",
        "devices",
        "coordinator_address",
        "num_processes",
        "process_id",
        "coordinator_timeout",
    }
    return TrainingConfig.from_flags(**{k: v for k, v in params.items() if k not in not_config})


def cpu_seconds(pid):
    """User + system CPU seconds of process ``pid`` so far, all threads (Linux /proc)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()  # after "pid (comm)": state is fields[0]
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_with_cpu_budget(command, budget_seconds, log_path, poll=0.25, desc=None):
    """Runs ``command``, SIGINT once its CPU time reaches ``budget_seconds``; (exit code, CPU
    seconds it used in all, whether it was stopped). A Ctrl-C of the probe (which the child gets
    too, as the terminal's foreground group) waits for the child to save its position."""
    from tqdm import tqdm

    paths = (str(REPO), os.environ.get("PYTHONPATH"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    before, stopped = _children_cpu(), False
    bar = tqdm(total=round(budget_seconds), desc=desc, unit="CPU-s", disable=desc is None)
    with open(log_path, "w") as log, bar:
        child = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            while child.poll() is None:
                try:
                    used = cpu_seconds(child.pid)
                except (OSError, IndexError, ValueError):  # it exited between poll and read
                    continue
                bar.update(min(round(used), bar.total) - bar.n)
                if not stopped and used >= budget_seconds:
                    child.send_signal(signal.SIGINT)
                    stopped = True
                time.sleep(poll)
        except KeyboardInterrupt:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
            child.wait()
            raise
    return child.returncode, _children_cpu() - before, stopped


def score(generator, val_dir, output_dir):
    """Mean 8-bit PSNR of ``generator``'s outputs and of the blurred inputs on ``val_dir``."""
    from deblurgan.evaluate import evaluate_folder

    psnr = evaluate_folder(generator, val_dir, output_dir, progress=False).summary["psnr"]
    return psnr["restored"], psnr["blurred"]


def probe(name, flags, args, base):
    """One variant: train within the budget, score; the ``result.json`` dict."""
    run_dir = Path(args.output_dir) / name
    result_path = run_dir / "result.json"
    if result_path.is_file():  # made with these settings: main checked
        return json.loads(result_path.read_text())
    for partial in ("weights", "logs", "scores", "start_scores"):  # of a failed or interrupted attempt
        shutil.rmtree(run_dir / partial, ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    dirs = ["--weights_dir", str(run_dir / "weights"), "--log_dir", str(run_dir / "logs")]
    train_args = ["--val_images", "0", "--no_progress", *base, *shlex.split(flags), *dirs]
    params = parse_flags(train_args)
    command = [sys.executable, str(REPO / "scripts" / "train.py"), *train_args]
    code, cpu, stopped = run_with_cpu_budget(
        command, args.cpu_minutes * 60, run_dir / "train.log", desc=f"{name}: training"
    )
    result = {"variant": name, "flags": flags, "exit_code": code, "stopped": stopped,
              "cpu_minutes": cpu / 60, "steps": 0, "settings": settings(args, base)}  # fmt: skip
    if code not in (0, SIGINT_EXIT):
        result["error"] = (run_dir / "train.log").read_text()[-2000:]
    elif code == SIGINT_EXIT and not stopped:  # stopped by someone else before its budget
        result["error"] = "interrupted before its budget was spent"
    val_dir = _val_dir(args, params)
    if (run_dir / "weights" / "training_state.npz").is_file():
        import numpy as np

        from deblurgan.training_loop import saved_generator

        generator, _, _ = saved_generator(run_dir / "weights")
        with np.load(run_dir / "weights" / "training_state.npz") as state:
            result["steps"] = int(state["generator_optimizer/0"])  # Adam's iteration counter
        result["psnr"], result["psnr_blurred"] = score(generator, val_dir, run_dir / "scores")
    result["start_psnr"], result["psnr_blurred"] = _start_score(params, val_dir, run_dir / "start_scores")
    result.setdefault("psnr", result["start_psnr"])  # no step saved: the starting generator
    if "error" not in result:  # a failure is reported, not kept as this variant's result
        result_path.write_text(json.dumps(result, indent=2) + "\n")
    return result


def settings(args, base):
    """What a variant's result depends on besides its own flags (kept in its result.json)."""
    return {"base_flags": base, "cpu_minutes": args.cpu_minutes, "val_dir": args.val_dir}


def stale_results(names, args, base):
    """``(variant, why)`` of the kept results in ``args.output_dir`` made with other settings."""
    stale = []
    for name in names:
        path = Path(args.output_dir) / name / "result.json"
        if path.is_file():
            kept = json.loads(path.read_text()).get("settings")
            if kept != settings(args, base):
                stale.append((name, f"{path} was made with {kept or 'unrecorded settings'}"))
    return stale


def _val_dir(args, params):
    """The pairs the variants are scored on: ``--val_dir``, or the run's DATA_DIR/test."""
    return args.val_dir or str(Path(params["data_dir"]) / "test")


_START_SCORES = {}


def _start_score(params, val_dir, output_dir):
    """Scores of the generator the run started from (cached: variants mostly share it)."""
    from deblurgan.training_loop import initial_generator, resolve

    config = resolve(config_of(params))
    key = json.dumps([repr(config.generator), config.data.seed, config.run.init_generator, val_dir])
    if key not in _START_SCORES:
        _START_SCORES[key] = score(initial_generator(config), val_dir, output_dir)
    return _START_SCORES[key]


def table(results):
    """The markdown table of ``results`` (probe's dicts)."""
    lines = [
        "| variant | flags | steps | CPU-min | val PSNR (dB) | gain (dB) | dB per CPU-hour |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        gain = r["psnr"] - r["start_psnr"]
        rate = gain / (r["cpu_minutes"] / 60) if r["cpu_minutes"] > 0 else float("nan")
        note = f" ({'interrupted' if r['exit_code'] == SIGINT_EXIT else 'failed'})" if "error" in r else ""
        note = note or ("" if r["stopped"] else " (ran to the end)")
        lines.append(
            f"| {r['variant']}{note} | `{r['flags']}` | {r['steps']} | {r['cpu_minutes']:.1f} | "
            f"{r['psnr']:.2f} | {gain:+.2f} | {rate:+.2f} |"
        )
    return "\n".join(lines)


def cpu_description():
    from deblurgan.precision import cpu_flags

    flags = cpu_flags()
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return ", ".join(f"{flag}={'yes' if flag in flags else 'no'}" for flag in wanted)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu_minutes", type=float, default=30.0, help="CPU budget of each variant")
    parser.add_argument("--output_dir", default="results/probes")
    parser.add_argument("--base_flags", default="", help="train.py flags common to every variant")
    parser.add_argument("--variants", default=None, help="comma-separated names (default: all)")
    parser.add_argument("--val_dir", default=None, help="A/ and B/ pairs to score on; default DATA_DIR/test")
    args = parser.parse_args(argv)
    args.output_dir = str(Path(args.output_dir).resolve())
    args.val_dir = args.val_dir and str(Path(args.val_dir).resolve())
    if not args.cpu_minutes > 0:
        parser.error(f"--cpu_minutes {args.cpu_minutes:g}: must be above 0")
    names = [n for n in (args.variants or ",".join(VARIANTS)).split(",") if n]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    # the repository's sample data unless the flags name other data (read from this folder)
    base = ["--data_dir", str(REPO / "images"), *shlex.split(DEFAULT_BASE), *shlex.split(args.base_flags)]
    print(f"CPU: {os.cpu_count()} cores; {cpu_description()}")
    for name in list(names):  # every variant's flags must parse before hours are spent on the first
        try:
            params = parse_flags([*base, *shlex.split(VARIANTS[name])])
            val_dir = Path(_val_dir(args, params))
            if not ((val_dir / "A").is_dir() and (val_dir / "B").is_dir()):
                parser.error(f"--val_dir {val_dir}: holds no A/ and B/ pairs to score on")
        except ValueError as error:
            if args.variants:  # asked for by name
                parser.error(f"variant {name}: {error} (this checkout's scripts/train.py lacks it)")
            print(f"skipped {name}: {error} (this checkout's scripts/train.py lacks it)")
            names.remove(name)
    from deblurgan.io import writable_folder

    writable_folder(args.output_dir, "output_dir")
    for name, why in stale_results(names, args, base)[:1]:
        parser.error(f"--output_dir {args.output_dir}: variant {name}: {why}; choose another --output_dir")
    print(f"budget {args.cpu_minutes:g} CPU-minutes per variant; base flags: {shlex.join(base)}\n")
    results = [probe(name, VARIANTS[name], args, base) for name in names]
    print(f"blurred input: {results[0]['psnr_blurred']:.2f} dB; start: {results[0]['start_psnr']:.2f} dB\n")
    print(table(results))
    return results


if __name__ == "__main__":
    from deblurgan.errors import DeblurGANError

    try:
        main()
    except DeblurGANError as error:  # a bad --base_flags file, an output folder under a file
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("\ninterrupted; the same command goes on with the variants that have no result.json")
        sys.exit(130)
