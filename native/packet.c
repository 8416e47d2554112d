/*
 * fnhost's native packet path: AES-128-CBC with a zero IV in place (the Flash-profile packet
 * cipher, RFC 7425 §4.6.5 / RFC 7016 §2.2) on AES-NI, and sendto(2) on the node's own UDP
 * socket. Node's Cipher.update() allocates and later frees an output buffer on every call; at
 * fan-out rates that allocation, not the AES, is most of a packet's crypto cost (PERF-NOTES).
 *
 * Node-API only, so one build loads in any Node with Node-API 8. Everything is synchronous and
 * keeps no state: round keys live in a Buffer the caller owns.
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <arpa/inet.h>
#include <cpuid.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <wmmintrin.h>

#define BLOCK 16
#define ROUNDS 10
/* Encryption round keys 0..10, then the decryption ones (InvMixColumns of 9..1, see decrypt). */
#define KEYS_BYTES (2 * (ROUNDS + 1) * BLOCK)

static int has_aesni(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  return (c & bit_AES) != 0 && (c & bit_SSE2) != 0;
}

/* FIPS 197 §5.2 key expansion, one round: the new word 0 is the assisted rotate/sub/rcon of
 * the last word; each following word XORs in its predecessor. */
static __m128i next_round_key(__m128i key, __m128i assisted) {
  assisted = _mm_shuffle_epi32(assisted, 0xff);
  key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
  key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
  key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
  return _mm_xor_si128(key, assisted);
}

#define EXPAND(i, rcon) enc[i] = next_round_key(enc[i - 1], _mm_aeskeygenassist_si128(enc[i - 1], rcon))

static void expand_key(const uint8_t *key, __m128i *enc, __m128i *dec) {
  enc[0] = _mm_loadu_si128((const __m128i *)key);
  EXPAND(1, 0x01); EXPAND(2, 0x02); EXPAND(3, 0x04); EXPAND(4, 0x08); EXPAND(5, 0x10);
  EXPAND(6, 0x20); EXPAND(7, 0x40); EXPAND(8, 0x80); EXPAND(9, 0x1b); EXPAND(10, 0x36);
  /* The equivalent inverse cipher (FIPS 197 §5.3.5): reversed keys, inner ones through
   * InvMixColumns, which is what AESDEC expects. */
  dec[0] = enc[ROUNDS];
  for (int i = 1; i < ROUNDS; i++) dec[i] = _mm_aesimc_si128(enc[ROUNDS - i]);
  dec[ROUNDS] = enc[0];
}

static __m128i encrypt_block(const __m128i *k, __m128i b) {
  b = _mm_xor_si128(b, k[0]);
  for (int i = 1; i < ROUNDS; i++) b = _mm_aesenc_si128(b, k[i]);
  return _mm_aesenclast_si128(b, k[ROUNDS]);
}

static __m128i decrypt_block(const __m128i *k, __m128i b) {
  b = _mm_xor_si128(b, k[0]);
  for (int i = 1; i < ROUNDS; i++) b = _mm_aesdec_si128(b, k[i]);
  return _mm_aesdeclast_si128(b, k[ROUNDS]);
}

/* ---- argument plumbing: every entry point validates before it touches memory ---- */

static napi_value fail(napi_env env, const char *code, const char *message) {
  napi_throw_range_error(env, code, message);
  return NULL;
}

static int get_buffer(napi_env env, napi_value v, uint8_t **data, size_t *length) {
  bool is;
  if (napi_is_buffer(env, v, &is) != napi_ok || !is) return 0;
  return napi_get_buffer_info(env, v, (void **)data, length) == napi_ok;
}

static int get_index(napi_env env, napi_value v, int64_t *out) {
  return napi_get_value_int64(env, v, out) == napi_ok;
}

/* (keys, buf, start, end): the round keys and a block-aligned range inside buf. */
static int cbc_args(napi_env env, napi_callback_info info, const __m128i **keys, uint8_t **at, size_t *blocks) {
  size_t argc = 4;
  napi_value argv[4];
  uint8_t *k, *buf;
  size_t klen, blen;
  int64_t start, end;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      !get_buffer(env, argv[0], &k, &klen) || klen < KEYS_BYTES || !get_buffer(env, argv[1], &buf, &blen) ||
      !get_index(env, argv[2], &start) || !get_index(env, argv[3], &end) || start < 0 || end < start ||
      (uint64_t)end > blen || (end - start) % BLOCK != 0)
    return 0;
  *keys = (const __m128i *)k;
  *at = buf + start;
  *blocks = (size_t)(end - start) / BLOCK;
  return 1;
}

/* expandKey(key: 16-byte Buffer, out: Buffer of KEYS_BYTES) */
static napi_value js_expand_key(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  uint8_t *key, *out;
  size_t klen, olen;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      !get_buffer(env, argv[0], &key, &klen) || klen != BLOCK || !get_buffer(env, argv[1], &out, &olen) ||
      olen < KEYS_BYTES)
    return fail(env, "ERR_FNHOST_NATIVE_ARGS", "expandKey(key: 16-byte Buffer, out: Buffer of 352 bytes)");
  __m128i enc[ROUNDS + 1], dec[ROUNDS + 1];
  expand_key(key, enc, dec);
  for (int i = 0; i <= ROUNDS; i++) {
    _mm_storeu_si128((__m128i *)(out + i * BLOCK), enc[i]);
    _mm_storeu_si128((__m128i *)(out + (ROUNDS + 1 + i) * BLOCK), dec[i]);
  }
  return NULL;
}

/* encryptCbc(keys, buf, start, end): in place, zero IV. */
static napi_value js_encrypt_cbc(napi_env env, napi_callback_info info) {
  const __m128i *keys;
  uint8_t *at;
  size_t blocks;
  if (!cbc_args(env, info, &keys, &at, &blocks))
    return fail(env, "ERR_FNHOST_NATIVE_ARGS", "encryptCbc(keys, buf, start, end): a whole number of blocks inside buf");
  __m128i k[ROUNDS + 1];
  for (int i = 0; i <= ROUNDS; i++) k[i] = _mm_loadu_si128(keys + i);
  __m128i chain = _mm_setzero_si128();
  for (size_t i = 0; i < blocks; i++, at += BLOCK) {
    chain = encrypt_block(k, _mm_xor_si128(_mm_loadu_si128((const __m128i *)at), chain));
    _mm_storeu_si128((__m128i *)at, chain);
  }
  return NULL;
}

/* decryptCbc(keys, buf, start, end): in place, zero IV. */
static napi_value js_decrypt_cbc(napi_env env, napi_callback_info info) {
  const __m128i *keys;
  uint8_t *at;
  size_t blocks;
  if (!cbc_args(env, info, &keys, &at, &blocks))
    return fail(env, "ERR_FNHOST_NATIVE_ARGS", "decryptCbc(keys, buf, start, end): a whole number of blocks inside buf");
  __m128i k[ROUNDS + 1];
  for (int i = 0; i <= ROUNDS; i++) k[i] = _mm_loadu_si128(keys + ROUNDS + 1 + i);
  __m128i previous = _mm_setzero_si128();
  for (size_t i = 0; i < blocks; i++, at += BLOCK) {
    __m128i cipher = _mm_loadu_si128((const __m128i *)at);
    _mm_storeu_si128((__m128i *)at, _mm_xor_si128(decrypt_block(k, cipher), previous));
    previous = cipher;
  }
  return NULL;
}

/*
 * sendTo(fd, buf, start, end, address: IPv4 or IPv6 text, port) → 0, or the errno of a send
 * that did not go out (EAGAIN when the socket buffer is full: the caller queues it instead).
 * Never blocks: MSG_DONTWAIT, whatever the descriptor's own mode.
 */
static napi_value js_send_to(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  int64_t fd, start, end, port;
  uint8_t *buf;
  size_t blen;
  char text[INET6_ADDRSTRLEN + 1];
  size_t tlen;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6 || !get_index(env, argv[0], &fd) ||
      fd < 0 || fd > INT_MAX || !get_buffer(env, argv[1], &buf, &blen) || !get_index(env, argv[2], &start) ||
      !get_index(env, argv[3], &end) || start < 0 || end < start || (uint64_t)end > blen ||
      napi_get_value_string_latin1(env, argv[4], NULL, 0, &tlen) != napi_ok || tlen >= sizeof text ||
      napi_get_value_string_latin1(env, argv[4], text, sizeof text, &tlen) != napi_ok ||
      !get_index(env, argv[5], &port) || port < 1 || port > 65535)
    return fail(env, "ERR_FNHOST_NATIVE_ARGS", "sendTo(fd, buf, start, end, address, port)");
  struct sockaddr_storage to;
  socklen_t tolen;
  memset(&to, 0, sizeof to);
  if (memchr(text, ':', tlen)) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&to;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, text, &a->sin6_addr) != 1) return fail(env, "ERR_FNHOST_NATIVE_ARGS", "sendTo: not an IP address");
    tolen = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&to;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, text, &a->sin_addr) != 1) return fail(env, "ERR_FNHOST_NATIVE_ARGS", "sendTo: not an IP address");
    tolen = sizeof *a;
  }
  int err = 0;
  for (;;) {
    ssize_t n = sendto((int)fd, buf + start, (size_t)(end - start), MSG_DONTWAIT, (struct sockaddr *)&to, tolen);
    if (n >= 0) break;
    if (errno == EINTR) continue;
    err = errno;
    break;
  }
  napi_value result;
  napi_create_int32(env, err, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  if (!has_aesni()) return exports; /* no functions: the loader falls back to the JS path */
  napi_property_descriptor p[] = {
    {"expandKey", NULL, js_expand_key, NULL, NULL, NULL, napi_enumerable, NULL},
    {"encryptCbc", NULL, js_encrypt_cbc, NULL, NULL, NULL, napi_enumerable, NULL},
    {"decryptCbc", NULL, js_decrypt_cbc, NULL, NULL, NULL, napi_enumerable, NULL},
    {"sendTo", NULL, js_send_to, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof p / sizeof *p, p);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
