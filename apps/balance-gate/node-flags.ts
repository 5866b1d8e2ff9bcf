/**
 * The Node/V8 flags balance-gate runs with (`npm start`, the benchmarks and the process tests use these).
 *
 * `--single-threaded-gc`: on this project's 2-core machines the parallel scavenger's main thread waits for
 * helper threads that share the cores with the log's thread pool and the load generator: a scavenge of
 * under 1 MB of survivors took 3-5 ms. Measured (decision 007): embedded memory-ack p99 at 88k/s offered
 * 3.3-4.3 ms vs 5.3-6.0 ms (3 runs each), throughput +4%; balance-gate over HTTP at saturation 20.8k and
 * 24.6k vs 15.4k and 15.7k reservations/s. V8 flags must be given at start (setting this one at run time
 * crashed the process), so `package.json`'s start script repeats them; a test checks it does.
 */
export const GATE_NODE_FLAGS: readonly string[] = ['--single-threaded-gc'];
