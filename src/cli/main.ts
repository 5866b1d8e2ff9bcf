import { runCli } from './run.ts';

// `npm run engram -- <args>` and `bin/engram.mjs` land here. The exit code is set, not forced with
// process.exit, so a large JSON report on a pipe is written out in full.
process.exitCode = await runCli(process.argv.slice(2));
