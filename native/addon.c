/*
 * engram's Node-API addon, built by scripts/build-native.mjs (no node-gyp): every native piece registers
 * its functions here. Each has a JS fallback, used when the addon is not built (src/native/addon.ts).
 */
#include <node_api.h>

void file_mapping_register(napi_env env, napi_value exports);
void log_seal_register(napi_env env, napi_value exports);

NAPI_MODULE_INIT() {
  file_mapping_register(env, exports);
  log_seal_register(env, exports);
  return exports;
}
