/**
 * A 64-bit fingerprint of a command's canonical string, as two independent 32-bit hashes (FNV-1a and a
 * multiplicative variant). It only has to tell "the same request retried" from "a different request under
 * the same idempotency key"; it is not a security boundary. Hashing the UTF-16 code units directly avoids
 * allocating a byte buffer per command.
 */
export function fingerprintA(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function fingerprintB(text: string): number {
  let h = 0x9e3779b9 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    h = Math.imul(h ^ text.charCodeAt(i), 0x85ebca6b);
    h ^= h >>> 13;
  }
  h = Math.imul(h ^ (h >>> 16), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
