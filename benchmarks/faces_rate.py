"""Generation rate of the built-in SyntheticFaces data set (images/s on this machine's CPU).

python benchmarks/faces_rate.py                 # 32, 64 and 128
python benchmarks/faces_rate.py --image-size 64 --n 8192 --batch-size 1024
"""

import argparse
import time

import torch

from vaegan_lite.faces import IMAGE_SIZES, noise_banks, render_faces


def rate(image_size: int, n: int, batch_size: int, seed: int = 0) -> float:
    """Images per second to render faces 0..n-1 in batches (after a warm-up batch)."""
    noise_banks(image_size)  # built once per size and cached; not part of the rate
    render_faces(seed, range(min(batch_size, 64)), image_size)  # warm-up
    t0 = time.perf_counter()
    for start in range(0, n, batch_size):
        render_faces(seed, range(start, min(n, start + batch_size)), image_size)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8192, help="faces to render per size")
    ap.add_argument("--image-size", type=int, default=None, choices=IMAGE_SIZES,
                    help="one size only (default: all)")  # fmt: skip
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sizes = [args.image_size] if args.image_size else [s for s in IMAGE_SIZES if s != 64] + [64]
    for s in sizes:
        n = args.n if s <= 64 else max(args.batch_size, args.n // 4)
        print(f"{s}x{s}: {rate(s, n, args.batch_size):.0f} images/s")


if __name__ == "__main__":
    main()
