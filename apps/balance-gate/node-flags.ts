/**
 * The Node/V8 flags balance-gate runs with (`npm start`, the benchmarks and the process tests use them).
 * They must be set when the process starts, so `package.json`'s scripts repeat them; a test checks they do.
 *
 * `--no-parallel-scavenge`: on this project's 2-core machines the parallel scavenger's main thread waits for
 * helper threads that share the cores with the log's thread pool and the load generator: a scavenge of
 * under 1 MB of survivors took 3-5 ms (decision 007). It replaced `--single-threaded-gc`, which also moved
 * major-GC marking onto the main thread: embedded memory-ack p99 at 120k/s offered was 27-112 ms with that
 * flag (incremental marking steps of 25-60 ms) and 15-20 ms with this one (4-5 runs each); balance-gate's
 * HTTP saturation was the same within noise (16.8k vs 18.0k reservations/s, mean of 4 alternating runs).
 */
export const GATE_NODE_FLAGS: readonly string[] = ['--no-parallel-scavenge'];

/**
 * No environment is set: `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` was, from decision 008 until it was
 * measured again (decision 008, superseded). With it, the first write to each fresh 2 MiB of a growing table
 * faulted in a whole huge page, and the event loop stalled ~30 ms every 65,536 holds: embedded memory-ack
 * p99 at 120k/s 53-103 ms vs 17-39 ms without (3 alternating runs), and restart of 11.7M holds was no
 * faster (7.6-10.4 s vs 5.8-8.2 s, 6 alternating pairs).
 */
