/**
 * The Node/V8 flags and the environment balance-gate runs with (`npm start`, the benchmarks and the process
 * tests use these). Both must be set when the process starts, so `package.json`'s scripts repeat them; a
 * test checks the start script does.
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
 * `GLIBC_TUNABLES=glibc.malloc.hugetlb=1`: glibc's malloc asks for transparent huge pages
 * (madvise(MADV_HUGEPAGE)) on the large blocks it maps, and every ArrayBuffer (the state's typed-array
 * columns, the key index, a loaded snapshot) comes from malloc. On these VMs the first touch of a 4 KiB page
 * costs 12-16 µs, so a restart that fills 1.8 GB spent about half its time in page faults. Measured
 * (decision 008): restart of 11.6M holds 6.8-8.6 s vs 10.1-11.9 s, 110k vs 490k page faults. glibc before
 * 2.35 ignores the tunable.
 */
export const GATE_ENV: Readonly<Record<string, string>> = { GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1' };

/** `GATE_ENV` as the `NAME=value` words that prefix a shell command (the npm scripts). */
export const GATE_ENV_PREFIX = Object.entries(GATE_ENV)
  .map(([name, value]) => `${name}=${value}`)
  .join(' ');

/** Whether `env` asks glibc's malloc for huge pages (what GATE_ENV sets). */
export function hugePageMalloc(env: NodeJS.ProcessEnv): boolean {
  return /(^|:)glibc\.malloc\.hugetlb=[12](:|$)/.test(env.GLIBC_TUNABLES ?? '');
}
