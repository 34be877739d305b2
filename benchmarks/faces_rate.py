"""Generation rate of the built-in SyntheticFaces data set (images/s on this machine's CPU).

python benchmarks/faces_rate.py                 # 32, 64 and 128
python benchmarks/faces_rate.py --image-size 64 --n 8192 --batch-size 1024 --repeats 7
python benchmarks/faces_rate.py --renderer torch # the torch reference (faces.draw_faces)

The renderer is faces_jit's numba kernel when it is usable (faces.USE_JIT), else torch; both
draw the same pixels. The kernel's one-off compile (or cache load) happens in the warm-up.

Two figures per size, medians over --repeats runs:
  wall  images per second of elapsed time: what a training loop sees, but on a machine shared
        with other jobs it mostly measures their load.
  cpu   images per second of this process's CPU time (time.process_time, all threads). The
        machine's load barely changes it, so `cpu x workers` estimates the wall rate on an idle
        machine with one free core per render worker (faces.RENDER_WORKERS, default 2).
"""

import os
import statistics
import time

import torch

from vaegan_lite.cli import OneLineParser
from vaegan_lite.data import faces
from vaegan_lite.data.faces import IMAGE_SIZES, noise_banks, render_faces


def rate(image_size: int, n: int, batch_size: int, repeats: int, seed: int = 0):
    """Median (wall images/s, CPU images/s) to render faces 0..n-1 in batches, after a warm-up."""
    noise_banks(image_size)  # built once per size and cached; not part of the rate
    render_faces(seed, range(min(n, 2 * batch_size)), image_size)  # warm-up (threads, caches)
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for start in range(0, n, batch_size):
            render_faces(seed, range(start, min(n, start + batch_size)), image_size)
        wall.append(n / (time.perf_counter() - t0))
        cpu.append(n / (time.process_time() - c0))
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    ap = OneLineParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8192, help="faces to render per size (64x64)")
    ap.add_argument("--image-size", type=int, default=None, choices=IMAGE_SIZES,
                    help="one size only (default: all)")  # fmt: skip
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--workers", type=int, default=getattr(faces, "RENDER_WORKERS", 1),
                    help="render threads (faces.RENDER_WORKERS)")  # fmt: skip
    ap.add_argument("--threads", type=int, default=2, help="caller's torch intra-op threads")
    ap.add_argument("--renderer", choices=["auto", "numba", "torch"], default="auto",
                    help="auto: numba when usable (faces.USE_JIT)")  # fmt: skip
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    faces.RENDER_WORKERS = args.workers
    if args.renderer == "numba" and not faces.USE_JIT:
        ap.error("--renderer numba: numba is not installed, or this torch has no MKL vsSqrt")
    faces.USE_JIT = faces.USE_JIT and args.renderer != "torch"
    load = os.getloadavg()[0]
    renderer = "numba kernel (faces_jit)" if faces.USE_JIT else "torch (faces.draw_faces)"
    print(f"{os.cpu_count()} cores, load average {load:.1f}, {renderer}, {args.workers} render "
          f"workers, median of {args.repeats}")  # fmt: skip
    sizes = [args.image_size] if args.image_size else IMAGE_SIZES
    for s in sizes:
        n = max(args.batch_size, args.n * 64 * 64 // (s * s))  # ~the same time per size
        wall, cpu = rate(s, n, args.batch_size, args.repeats)
        idle = cpu * min(args.workers, os.cpu_count() or 1)
        print(f"{s:>3}x{s:<3}: wall {wall:6.0f} images/s | cpu {1e3 / cpu:.3f} ms/image "
              f"= {cpu:6.0f} images/cpu-s | idle estimate {idle:6.0f} images/s")  # fmt: skip


if __name__ == "__main__":
    main()
