"""Benchmark: rendering speed of the synthetic world at 64×64 (target ≥ 1,000 images/s on 2 cores).

Measures, in one run and on the same people: sampling; rendering to PIL in one process; rendering
plus JPEG encoding in one process; the same through the exporter's worker pool (2 processes).
The headline ``speedup`` is the pool's images/s over the one-process render+encode loop.

    python bench/world.py [--quick] [--n N] [--workers W]
"""

from __future__ import annotations

import argparse
import time

from _common import machine, print_result

from biaslib.world import World
from biaslib.world.export import encoded_images


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer images (≤ 60 s)")
    parser.add_argument("--n", type=int, default=None, help="images per measurement")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    n = args.n or (4000 if args.quick else 20000)
    world = World(seed=0)

    t = time.perf_counter()
    people = world.people(n, stream="bench")
    sampling = n / (time.perf_counter() - t)
    rows = people.to_dict("records")

    t = time.perf_counter()
    for row in rows:
        world.render(row)
    render = n / (time.perf_counter() - t)

    t = time.perf_counter()
    for _ in encoded_images(world, rows, workers=1):
        pass
    encode_serial = n / (time.perf_counter() - t)

    t = time.perf_counter()
    for _ in encoded_images(world, rows, workers=args.workers):
        pass
    encode_pool = n / (time.perf_counter() - t)

    result = {
        "n": n, "image_size": world.config.image_size, **machine(),
        "people_sampled_per_s": round(sampling), "rendered_per_s": round(render),
        "rendered_jpeg_per_s_1proc": round(encode_serial),
        f"rendered_jpeg_per_s_{args.workers}proc": round(encode_pool),
        "target_per_s": 1000, "meets_target": encode_pool >= 1000,
        "speedup": round(encode_pool / encode_serial, 2),
    }
    return print_result(result)


if __name__ == "__main__":
    main()
