/** The merchants and requests shared by the peers' kill -9 test and its child process. */
import { generateMerchants, type Merchant, type Reservation, Workload } from '../lib/workload.ts';

export const CRASH_TEST_REQUESTS = 20_000;

export function crashTestMerchants(): Merchant[] {
  return generateMerchants(300, { seed: 9, rejectFraction: 0.2 });
}

export function crashTestRequests(): Reservation[] {
  return new Workload(crashTestMerchants(), 13, 'k', { retryMinDistance: 16, retryWindow: 1024 }).batch(
    CRASH_TEST_REQUESTS,
  );
}
