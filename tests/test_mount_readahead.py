"""The mount's read-ahead decisions (mount/readahead.py) without a kernel:
a random reader fetches what it reads, a sequential one gets a window that
grows in pieces sized by what a GET costs, and a seek starts over."""

from __future__ import annotations

import random

from artifactfs.mount.readahead import MiB, Pattern, ReadAhead, RequestCost

CONFIG = ReadAhead()
BLOCK = MiB


def fetched(pattern: Pattern, cost: RequestCost, reads: list[tuple[int, int]], size: int) -> int:
    """Bytes a handle asks the store for over ``reads`` (each block once)."""
    asked: set[int] = set()
    for offset, length in reads:
        end = min(offset + length, size)
        pattern.observe(offset, end, BLOCK, CONFIG)
        upto, _ = pattern.plan(offset, end, size, BLOCK, cost, CONFIG)
        asked.update(range(offset // BLOCK, (max(upto, end) - 1) // BLOCK + 1))
    return len(asked) * BLOCK


def slow_store() -> RequestCost:
    """A store whose every GET costs 0.7 s (moto with a large object, on a busy machine)."""
    cost = RequestCost()
    cost.record(4 * MiB, 0.7, CONFIG)
    return cost


def test_random_reader_fetches_what_it_reads():
    """4 KiB reads at random places of a 1 GiB object, on a store where a
    GET is costly (the case where read-ahead pieces are largest): only the
    blocks read are asked for."""
    size = 1 << 30
    rng = random.Random(23)
    reads = [(rng.randrange(size - 4096), 4096) for _ in range(200)]
    blocks_read = {offset // BLOCK for offset, _ in reads}
    assert fetched(Pattern(), slow_store(), reads, size) <= len(blocks_read) * BLOCK + CONFIG.initial


def test_reads_in_pairs_do_not_grow_the_window():
    """Two adjacent reads then a jump (a reader of small records): at most
    the first window per pair, never a window sized for a slow store."""
    size = 1 << 30
    rng = random.Random(5)
    reads = []
    for _ in range(50):
        offset = rng.randrange(size - 2 * MiB) // 4096 * 4096
        reads += [(offset, 64 << 10), (offset + (64 << 10), 64 << 10), (offset + (128 << 10), 64 << 10)]
    assert fetched(Pattern(), slow_store(), reads, size) <= 50 * (CONFIG.initial + 2 * BLOCK)


def test_sequential_reader_on_a_slow_store_gets_few_large_pieces():
    """1 MiB reads from the start: the first window is one GET; once half of
    it is read, pieces as large as a slow store needs, the window running
    to the end of a 256 MiB object."""
    size = 256 * MiB
    pattern, cost = Pattern(), RequestCost()
    pattern.observe(0, MiB, BLOCK, CONFIG)
    assert pattern.plan(0, MiB, size, BLOCK, cost, CONFIG) == (CONFIG.initial, CONFIG.initial)
    cost.record(CONFIG.initial, 0.7, CONFIG)  # that GET took 0.7 s
    pattern.observe(MiB, 2 * MiB, BLOCK, CONFIG)
    upto, piece = pattern.plan(MiB, 2 * MiB, size, BLOCK, cost, CONFIG)
    assert piece == CONFIG.max_piece and upto == size


def test_sequential_reader_on_a_fast_store_gets_small_pieces_and_a_growing_window():
    size = 1 << 30
    pattern, cost = Pattern(), RequestCost()
    cost.record(CONFIG.initial, 0.01, CONFIG)  # 10 ms for the first window
    pieces, windows = set(), []
    for offset in range(0, 200 * MiB, MiB):
        pattern.observe(offset, offset + MiB, BLOCK, CONFIG)
        upto, piece = pattern.plan(offset, offset + MiB, size, BLOCK, cost, CONFIG)
        if piece and offset:
            pieces.add(piece)
            windows.append(upto - offset)
    assert pieces == {CONFIG.min_piece}
    assert windows == sorted(windows) or max(windows) == CONFIG.max_window  # grows while sequential...
    assert max(windows) <= CONFIG.max_window + MiB  # ...up to its cap
    assert max(windows) >= 128 * MiB


def test_a_seek_starts_over():
    size = 1 << 30
    pattern, cost = Pattern(), slow_store()
    for offset in range(0, 8 * MiB, MiB):
        pattern.observe(offset, offset + MiB, BLOCK, CONFIG)
        pattern.plan(offset, offset + MiB, size, BLOCK, cost, CONFIG)
    assert pattern.window == CONFIG.max_window
    assert not pattern.observe(700 * MiB, 701 * MiB, BLOCK, CONFIG)  # a seek
    assert pattern.plan(700 * MiB, 701 * MiB, size, BLOCK, cost, CONFIG) == (701 * MiB, 0)
    assert pattern.window == 0 and pattern.ahead == 0


def test_request_cost_piece_only_grows_within_bounds():
    cost = RequestCost()
    assert cost.piece_size(CONFIG) == CONFIG.min_piece  # nothing learned yet
    cost.record(CONFIG.initial, 0.2, CONFIG)
    first = cost.piece_size(CONFIG)
    assert CONFIG.min_piece < first <= CONFIG.max_piece
    cost.record(CONFIG.initial, 0.001, CONFIG)  # a faster answer later does not shrink it
    assert cost.piece_size(CONFIG) == first
    cost.record(64 * MiB, 10.0, CONFIG)
    assert cost.piece_size(CONFIG) <= CONFIG.max_piece


def test_sequential_reader_on_a_streaming_store_gets_one_get_per_half_window():
    """A store that hands a GET's bytes over as they arrive: the first window
    is the usual small GET (a reader of the first bytes asks for no more);
    once half of it is read, ONE GET reaches the whole window ahead, before
    any request said what a GET costs, then one GET per half window."""
    size = 1 << 30
    pattern, cost = Pattern(), RequestCost()  # no GET has finished yet: no cost known
    gets = []
    for offset in range(0, 600 * MiB, MiB):
        pattern.observe(offset, offset + MiB, BLOCK, CONFIG)
        upto, piece = pattern.plan(offset, offset + MiB, size, BLOCK, cost, CONFIG, streamed=True)
        if piece:
            assert upto - piece == (gets[-1][1] if gets else 0)  # each GET starts where the last one ended
            gets.append((upto - piece, upto))
    assert gets[0] == (0, CONFIG.initial)
    assert gets[1] == (CONFIG.initial, CONFIG.initial // 2 + CONFIG.max_window)  # asked by the read ending at 2 MiB
    assert {end - start for start, end in gets[2:]} == {CONFIG.max_window // 2}
    reader_of_the_first_bytes = Pattern()
    assert fetched(reader_of_the_first_bytes, RequestCost(), [(0, 4096)], size) == CONFIG.initial
