/*
 * log_seal: sealGroup(buf, end, firstLsn, chain, out) -> frames, the checksums of one group commit in one
 * call: each frame's CRC-32C (written into its header), the chain folded over them, and the CRC-32C of the
 * whole group (what the commit marker carries). src/log/group-seal.ts has the same function in JS and
 * says what each value is; the two must agree byte for byte (group-seal.test.ts).
 *
 * Why: checksumming each record in JS as it was sealed took 8-9% of the main thread at saturation (a
 * table-driven loop, ~230 ns a record). @node-rs/crc32 is SIMD-fast but costs ~200 ns a call, so it cannot
 * help a 100-byte record; one call per group (hundreds of records) and the CPU's crc32 instruction can.
 *
 * Returns the number of frames sealed, or a negative code when the bytes are not a run of frames with
 * consecutive LSNs from firstLsn filling [0, end): -1 a frame length out of range or past end, -2 an LSN out
 * of sequence. Nothing is written to `out` then (frames before the bad one are already sealed; the caller
 * fails the write path).
 */
#include <node_api.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define FRAME_HEADER_BYTES 24
#define FRAME_BYTES_MAX (64u * 1024u * 1024u)
#define POLY_REVERSED 0x82f63b78u

static uint32_t table[256];

static void init_table(void) {
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = n;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ POLY_REVERSED : c >> 1;
    table[n] = c;
  }
}

/* Both take and return the raw (not inverted) register value. */
static uint32_t crc_bytes_table(uint32_t crc, const uint8_t *p, size_t n) {
  while (n-- > 0) crc = (crc >> 8) ^ table[(crc ^ *p++) & 0xff];
  return crc;
}

#if defined(__x86_64__)
#include <nmmintrin.h>
__attribute__((target("sse4.2"))) static uint32_t crc_bytes_hw(uint32_t crc, const uint8_t *p, size_t n) {
  uint64_t c = crc;
  while (n >= 8) {
    uint64_t word;
    memcpy(&word, p, 8);
    c = _mm_crc32_u64(c, word);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = (uint32_t)c;
  while (n-- > 0) c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}
#endif

static uint32_t (*crc_bytes)(uint32_t, const uint8_t *, size_t) = crc_bytes_table;

static uint32_t read_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t read_u64(const uint8_t *p) { return (uint64_t)read_u32(p) | (uint64_t)read_u32(p + 4) << 32; }

static void write_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static napi_value seal_group_with(napi_env env, napi_callback_info info,
                                  uint32_t (*crc)(uint32_t, const uint8_t *, size_t)) {
  size_t argc = 5;
  napi_value argv[5];
  napi_typedarray_type type, out_type;
  size_t length, out_length;
  void *data, *out_data;
  double end_arg, first_arg;
  uint32_t chain;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 ||
      napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_uint8_array || napi_get_value_double(env, argv[1], &end_arg) != napi_ok ||
      napi_get_value_double(env, argv[2], &first_arg) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &chain) != napi_ok ||
      napi_get_typedarray_info(env, argv[4], &out_type, &out_length, &out_data, NULL, NULL) != napi_ok ||
      out_type != napi_uint32_array || out_length < 2) {
    napi_throw_type_error(env, NULL,
                          "sealGroup(buf: Uint8Array, end: number, firstLsn: number, chain: number, out: "
                          "Uint32Array(2)) got arguments of the wrong types");
    return NULL;
  }
  if (!(end_arg >= 0 && end_arg <= (double)length) || !(first_arg >= 0 && first_arg < 9007199254740992.0)) {
    napi_throw_range_error(env, NULL, "sealGroup: end must lie within buf and firstLsn be a safe integer");
    return NULL;
  }
  uint8_t *buf = data;
  size_t end = (size_t)end_arg;
  uint64_t lsn = (uint64_t)first_arg;
  int64_t frames = 0;
  size_t offset = 0;
  while (offset < end) {
    if (end - offset < FRAME_HEADER_BYTES) {
      frames = -1;
      break;
    }
    uint32_t frame_length = read_u32(buf + offset);
    if (frame_length < FRAME_HEADER_BYTES || frame_length > FRAME_BYTES_MAX || frame_length > end - offset) {
      frames = -1;
      break;
    }
    if (read_u64(buf + offset + 8) != lsn) {
      frames = -2;
      break;
    }
    uint32_t frame_crc = ~crc(~0u, buf + offset + 8, frame_length - 8);
    write_u32(buf + offset + 4, frame_crc);
    uint8_t crc_bytes_le[4];
    write_u32(crc_bytes_le, frame_crc);
    chain = ~crc(~chain, crc_bytes_le, 4);
    frames++;
    lsn++;
    offset += (frame_length + 7u) & ~(size_t)7u;
  }
  if (frames >= 0 && offset != end) frames = -1; /* the last frame's padding runs past end */
  if (frames >= 0) {
    uint32_t *out = out_data;
    out[0] = chain;
    out[1] = ~crc(~0u, buf, end);
  }
  napi_value result;
  napi_create_int64(env, frames, &result);
  return result;
}

static napi_value seal_group(napi_env env, napi_callback_info info) {
  return seal_group_with(env, info, crc_bytes);
}

/* sealGroup with the table whatever the CPU: what a CPU without SSE4.2 runs, so that tests can check it. */
static napi_value seal_group_table(napi_env env, napi_callback_info info) {
  return seal_group_with(env, info, crc_bytes_table);
}

/* Which checksum code runs: "sse4.2" or "table"; the tests name it in their output. */
static napi_value seal_kind(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  napi_create_string_utf8(env, crc_bytes == crc_bytes_table ? "table" : "sse4.2", NAPI_AUTO_LENGTH, &result);
  return result;
}

static void init_once(void) {
  init_table();
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("sse4.2")) crc_bytes = crc_bytes_hw;
#endif
}

/* Worker threads load the addon too: the table and the choice of code are set up once per process. */
static pthread_once_t once = PTHREAD_ONCE_INIT;

void log_seal_register(napi_env env, napi_value exports) {
  pthread_once(&once, init_once);
  napi_value fn;
  napi_create_function(env, "sealGroup", NAPI_AUTO_LENGTH, seal_group, NULL, &fn);
  napi_set_named_property(env, exports, "sealGroup", fn);
  napi_create_function(env, "sealGroupTable", NAPI_AUTO_LENGTH, seal_group_table, NULL, &fn);
  napi_set_named_property(env, exports, "sealGroupTable", fn);
  napi_create_function(env, "sealKind", NAPI_AUTO_LENGTH, seal_kind, NULL, &fn);
  napi_set_named_property(env, exports, "sealKind", fn);
}
