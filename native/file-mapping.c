/*
 * file_mapping: one function, map(path) -> ArrayBuffer, a private copy-on-write mapping of a whole
 * file, unmapped when the ArrayBuffer is collected.
 *
 * Why: a snapshot read with read(2) lands in fresh anonymous memory, and on these VMs the first touch of a
 * fresh page costs 11-24 us (guest and host fault, decisions 008 and 010): 4-5 s for a 1 GB snapshot. A
 * mapping of a file that is in the page cache costs no fresh memory: its pages are the cache's until one
 * is written, and only then copied (decision 015). Node has no mmap, and the npm bindings for it do not
 * build on Node 20, so this is ours: Node-API only, no node-gyp, built into the addon by
 * scripts/build-native.mjs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void unmap(napi_env env, void *data, void *hint) {
  (void)env;
  munmap(data, (size_t)(uintptr_t)hint);
}

/* Throws an Error like node:fs's: message "<CODE>: <strerror>, <syscall> '<path>'", with .code and .syscall. */
static napi_value throw_errno(napi_env env, int error, const char *syscall, const char *path) {
  const char *name = strerrorname_np(error);
  char message[4200];
  snprintf(message, sizeof message, "%s: %s, %s '%s'", name ? name : "EUNKNOWN", strerror(error), syscall, path);
  napi_value code, msg, err, sys;
  napi_create_string_utf8(env, name ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &err);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sys);
  napi_set_named_property(env, err, "syscall", sys);
  napi_throw(env, err);
  return NULL;
}

static napi_value map_file(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) {
    napi_throw_type_error(env, NULL, "map(path) needs the path of a file");
    return NULL;
  }
  char path[4096];
  size_t length = 0;
  if (napi_get_value_string_utf8(env, argv[0], path, sizeof path, &length) != napi_ok) {
    napi_throw_type_error(env, NULL, "map(path): path must be a string");
    return NULL;
  }
  if (length >= sizeof path - 1) {
    napi_throw_range_error(env, NULL, "map(path): path longer than 4095 bytes");
    return NULL;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, errno, "open", path);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int error = errno;
    close(fd);
    return throw_errno(env, error, "fstat", path);
  }
  napi_value result;
  if (S_ISREG(st.st_mode) && st.st_size == 0) {
    close(fd);
    void *none;
    napi_create_arraybuffer(env, 0, &none, &result);
    return result;
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return throw_errno(env, S_ISDIR(st.st_mode) ? EISDIR : EINVAL, "mmap", path);
  }
  size_t size = (size_t)st.st_size;
  /* Writable but private: the state may write into what it keeps of a snapshot (a copy is made then, of
     that page alone); nothing is ever written back to the file. */
  void *data = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  int error = errno;
  close(fd);
  if (data == MAP_FAILED) return throw_errno(env, error, "mmap", path);
  madvise(data, size, MADV_WILLNEED);
  if (napi_create_external_arraybuffer(env, data, size, unmap, (void *)(uintptr_t)size, &result) != napi_ok) {
    munmap(data, size);
    napi_throw_error(env, NULL, "map(path): the mapping could not be wrapped in an ArrayBuffer");
    return NULL;
  }
  return result;
}

void file_mapping_register(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "map", NAPI_AUTO_LENGTH, map_file, NULL, &fn);
  napi_set_named_property(env, exports, "map", fn);
}
