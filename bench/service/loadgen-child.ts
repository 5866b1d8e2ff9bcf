/**
 * The load generator's process: runs one LoadJob at a time, as asked over IPC by generator.ts, and answers
 * with its LoadResult. Exits when its parent goes away.
 */
import { type LoadJob, runLoad } from './loadgen.ts';

if (!process.send) throw new Error('loadgen-child.ts runs as a forked child of generator.ts');

process.on('message', (message: { id: number; job: LoadJob }) => {
  runLoad(message.job).then(
    (result) => process.send!({ id: message.id, result }),
    (error: Error) => process.send!({ id: message.id, error: error.stack ?? error.message }),
  );
});
process.on('disconnect', () => process.exit(0));
process.send({ ready: true });
