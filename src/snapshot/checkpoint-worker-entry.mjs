// Worker threads do not inherit the TypeScript loader the main thread was started with (`--import tsx`),
// so the worker registers it before loading the TypeScript entry.
import { register } from 'tsx/esm/api';

register();
await import('./checkpoint-worker.ts');
