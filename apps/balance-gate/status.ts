/** A reservation's lifecycle: held, then captured, released or expired; or rejected at decision. */
export enum Status {
  Held = 0,
  Captured = 1,
  Released = 2,
  Expired = 3,
  Rejected = 4,
}

export const STATUS_NAMES = ['held', 'captured', 'released', 'expired', 'rejected'] as const;
export type StatusName = (typeof STATUS_NAMES)[number];
