/*
 * Unit tests of daemon/crypto.c: master key files and credentials, the
 * key-check value, data key wrapping and config sealing.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "support.h"
#include "wfvaultd.h"

struct tc_state {
	char	 ts_dir[1024];
};

static int
tc_setup(void **state)
{
	struct tc_state	*ts;

	if ((ts = calloc(1, sizeof(*ts))) == NULL)
		return -1;
	if (test_tmpdir(ts->ts_dir, sizeof(ts->ts_dir), "crypto") == -1) {
		free(ts);
		return -1;
	}
	*state = ts;
	return 0;
}

static int
tc_teardown(void **state)
{
	struct tc_state	*ts = *state;

	test_rmtree(ts->ts_dir);
	unsetenv("CREDENTIALS_DIRECTORY");
	free(ts);
	return 0;
}

static void
tc_path(struct tc_state *ts, const char *name, char *buf, size_t len)
{
	int	 n;

	n = snprintf(buf, len, "%s/%s", ts->ts_dir, name);
	assert_true(n > 0 && (size_t)n < len);
}

/* Writes exactly data (len bytes) to path with mode. */
static void
tc_write(const char *path, const void *data, size_t len, mode_t mode)
{
	int	 fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd != -1);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

/* Reads path into buf (up to len - 1 bytes, NUL-terminated). */
static size_t
tc_read(const char *path, char *buf, size_t len)
{
	ssize_t	 n;
	int	 fd;

	fd = open(path, O_RDONLY);
	assert_true(fd != -1);
	n = read(fd, buf, len - 1);
	assert_true(n >= 0);
	buf[n] = '\0';
	close(fd);
	return (size_t)n;
}

/* A key file holding the base64 of len bytes of bin, plus '\n'. */
static void
tc_write_b64(const char *path, const unsigned char *bin, size_t len,
    mode_t mode)
{
	char	 b64[256];
	size_t	 n;

	assert_true(sodium_base64_ENCODED_LEN(len,
	    sodium_base64_VARIANT_ORIGINAL) < sizeof(b64) - 1);
	sodium_bin2base64(b64, sizeof(b64), bin, len,
	    sodium_base64_VARIANT_ORIGINAL);
	n = strlen(b64);
	b64[n++] = '\n';
	tc_write(path, b64, n, mode);
}

static void
test_key_alloc(void **state)
{
	unsigned char	*k;
	unsigned char	 zero[CRYPTO_KEY_BYTES];
	(void)state;

	memset(zero, 0, sizeof(zero));
	k = crypto_key_alloc();
	assert_non_null(k);
	assert_memory_equal(k, zero, CRYPTO_KEY_BYTES);
	crypto_key_free(k);
	crypto_key_free(NULL);
}

static void
test_keyfile_roundtrip(void **state)
{
	struct tc_state	*ts = *state;
	char		 path[PATH_MAX], path2[PATH_MAX], err[256], buf[512];
	unsigned char	*k1, *k2, *k3;
	unsigned char	 raw[64];
	unsigned char	 zero[CRYPTO_KEY_BYTES];
	struct stat	 st;
	size_t		 n, rawlen;

	memset(zero, 0, sizeof(zero));
	k1 = crypto_key_alloc();
	k2 = crypto_key_alloc();
	k3 = crypto_key_alloc();
	assert_non_null(k1);
	assert_non_null(k2);
	assert_non_null(k3);
	tc_path(ts, "master.key", path, sizeof(path));
	tc_path(ts, "other.key", path2, sizeof(path2));

	assert_int_equal(crypto_key_generate_file(path, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0400);

	/* One line of base64 of 32 bytes: 44 characters and a newline. */
	n = tc_read(path, buf, sizeof(buf));
	assert_int_equal(n, 45);
	assert_int_equal(buf[44], '\n');
	assert_int_equal(sodium_base642bin(raw, sizeof(raw), buf, 44, NULL,
	    &rawlen, NULL, sodium_base64_VARIANT_ORIGINAL), 0);
	assert_int_equal(rawlen, CRYPTO_KEY_BYTES);

	assert_int_equal(crypto_key_load_file(path, 1, k1, err, sizeof(err)),
	    0);
	assert_memory_equal(k1, raw, CRYPTO_KEY_BYTES);
	assert_memory_not_equal(k1, zero, CRYPTO_KEY_BYTES);
	assert_int_equal(crypto_key_load_file(path, 0, k2, err, sizeof(err)),
	    0);
	assert_memory_equal(k1, k2, CRYPTO_KEY_BYTES);

	/* Each generated key is fresh. */
	assert_int_equal(crypto_key_generate_file(path2, err, sizeof(err)), 0);
	assert_int_equal(crypto_key_load_file(path2, 1, k3, err, sizeof(err)),
	    0);
	assert_memory_not_equal(k1, k3, CRYPTO_KEY_BYTES);

	crypto_key_free(k1);
	crypto_key_free(k2);
	crypto_key_free(k3);
}

static void
test_keyfile_refuses_overwrite(void **state)
{
	struct tc_state	*ts = *state;
	char		 path[PATH_MAX], other[PATH_MAX], link[PATH_MAX];
	char		 err[512], before[512], after[512], want[PATH_MAX + 64];
	struct stat	 st;

	tc_path(ts, "master.key", path, sizeof(path));
	assert_int_equal(crypto_key_generate_file(path, err, sizeof(err)), 0);
	tc_read(path, before, sizeof(before));

	assert_int_equal(crypto_key_generate_file(path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s exists; refusing to overwrite a "
	    "master key", path);
	assert_string_equal(err, want);
	tc_read(path, after, sizeof(after));
	assert_string_equal(before, after);

	/* Any existing file, not only a key, is left alone. */
	tc_path(ts, "notes.txt", other, sizeof(other));
	tc_write(other, "keep me\n", 8, 0644);
	assert_int_equal(crypto_key_generate_file(other, err, sizeof(err)),
	    -1);
	tc_read(other, after, sizeof(after));
	assert_string_equal(after, "keep me\n");

	/* A dangling symlink is not followed to create its target. */
	tc_path(ts, "link.key", link, sizeof(link));
	tc_path(ts, "target.key", other, sizeof(other));
	assert_int_equal(symlink(other, link), 0);
	assert_int_equal(crypto_key_generate_file(link, err, sizeof(err)), -1);
	assert_int_equal(stat(other, &st), -1);
	assert_int_equal(errno, ENOENT);

	/* A missing directory is an error, not a crash. */
	tc_path(ts, "no/such/dir.key", other, sizeof(other));
	assert_int_equal(crypto_key_generate_file(other, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "cannot create"));
}

static void
test_keyfile_strict_mode(void **state)
{
	struct tc_state	*ts = *state;
	char		 path[PATH_MAX], err[512], want[PATH_MAX + 128];
	unsigned char	 raw[CRYPTO_KEY_BYTES];
	unsigned char	*k;

	k = crypto_key_alloc();
	assert_non_null(k);
	randombytes_buf(raw, sizeof(raw));
	tc_path(ts, "loose.key", path, sizeof(path));
	tc_write_b64(path, raw, sizeof(raw), 0644);

	assert_int_equal(crypto_key_load_file(path, 1, k, err, sizeof(err)),
	    -1);
	snprintf(want, sizeof(want), "%s is readable by group or others "
	    "(mode 0644); chmod 0400 it", path);
	assert_string_equal(err, want);

	/* Group-readable alone is refused too. */
	assert_int_equal(chmod(path, 0440), 0);
	assert_int_equal(crypto_key_load_file(path, 1, k, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "(mode 0440)"));

	/* Not strict: the mode is not judged. */
	assert_int_equal(crypto_key_load_file(path, 0, k, err, sizeof(err)),
	    0);
	assert_memory_equal(k, raw, sizeof(raw));

	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(crypto_key_load_file(path, 1, k, err, sizeof(err)),
	    0);
	crypto_key_free(k);
}

/* Expects path to be refused as "not a master key". */
static void
tc_expect_not_key(const char *path)
{
	char		 err[512], want[PATH_MAX + 128];
	unsigned char	 key[CRYPTO_KEY_BYTES];

	assert_int_equal(crypto_key_load_file(path, 1, key, err, sizeof(err)),
	    -1);
	snprintf(want, sizeof(want), "%s does not hold a wfvault master key "
	    "(32 bytes of base64)", path);
	assert_string_equal(err, want);
}

static void
test_keyfile_garbage(void **state)
{
	struct tc_state	*ts = *state;
	char		 path[PATH_MAX], link[PATH_MAX], err[512];
	char		 big[400];
	unsigned char	 key[CRYPTO_KEY_BYTES];

	tc_path(ts, "garbage.key", path, sizeof(path));
	tc_write(path, "this is not base64 at all!\n", 27, 0400);
	tc_expect_not_key(path);

	tc_write(path, "", 0, 0400);
	tc_expect_not_key(path);

	tc_write(path, " \n\t\r\n", 5, 0400);
	tc_expect_not_key(path);

	/* Longer than any key file may be, even if mostly whitespace. */
	memset(big, 'A', sizeof(big));
	tc_write(path, big, sizeof(big), 0400);
	tc_expect_not_key(path);

	/* Never follows a symlink. */
	tc_path(ts, "link.key", link, sizeof(link));
	tc_path(ts, "real.key", path, sizeof(path));
	assert_int_equal(crypto_key_generate_file(path, err, sizeof(err)), 0);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(crypto_key_load_file(link, 1, key, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "cannot open"));

	/* A directory is not a regular file. */
	assert_int_equal(crypto_key_load_file(ts->ts_dir, 0, key, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "not a regular file"));

	tc_path(ts, "missing.key", path, sizeof(path));
	assert_int_equal(crypto_key_load_file(path, 0, key, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "cannot open"));
}

static void
test_keyfile_length(void **state)
{
	struct tc_state	*ts = *state;
	char		 path[PATH_MAX], err[512], text[256];
	unsigned char	 raw[64], key[CRYPTO_KEY_BYTES];
	size_t		 n;

	randombytes_buf(raw, sizeof(raw));
	tc_path(ts, "len.key", path, sizeof(path));

	tc_write_b64(path, raw, 31, 0400);
	tc_expect_not_key(path);
	tc_write_b64(path, raw, 33, 0400);
	tc_expect_not_key(path);
	tc_write_b64(path, raw, 64, 0400);
	tc_expect_not_key(path);
	tc_write_b64(path, raw, 1, 0400);
	tc_expect_not_key(path);

	/* Surrounding and embedded whitespace is fine. */
	text[0] = ' ';
	text[1] = '\t';
	sodium_bin2base64(text + 2, sizeof(text) - 2, raw, CRYPTO_KEY_BYTES,
	    sodium_base64_VARIANT_ORIGINAL);
	n = strlen(text);
	memmove(text + 22, text + 21, n - 21 + 1);
	text[21] = '\n';
	n++;
	memcpy(text + n, "\r\n\n", 3);
	n += 3;
	tc_write(path, text, n, 0400);
	assert_int_equal(crypto_key_load_file(path, 1, key, err, sizeof(err)),
	    0);
	assert_memory_equal(key, raw, CRYPTO_KEY_BYTES);

	/* The URL-safe alphabet is not the key file's. */
	sodium_bin2base64(text, sizeof(text), raw, CRYPTO_KEY_BYTES,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	if (strpbrk(text, "-_") != NULL) {
		tc_write(path, text, strlen(text), 0400);
		tc_expect_not_key(path);
	}
}

static void
test_credential(void **state)
{
	struct tc_state	*ts = *state;
	char		 path[PATH_MAX], err[512];
	unsigned char	 raw[CRYPTO_KEY_BYTES], key[CRYPTO_KEY_BYTES];

	randombytes_buf(raw, sizeof(raw));
	unsetenv("CREDENTIALS_DIRECTORY");
	assert_int_equal(crypto_key_load_credential("wfvault-master", key,
	    err, sizeof(err)), -1);
	assert_string_equal(err, "master_key_credential wfvault-master: "
	    "$CREDENTIALS_DIRECTORY is not set (run under systemd with "
	    "LoadCredential=)");

	/* systemd's credential files may be 0440 for the service group. */
	tc_path(ts, "wfvault-master", path, sizeof(path));
	tc_write_b64(path, raw, sizeof(raw), 0440);
	assert_int_equal(setenv("CREDENTIALS_DIRECTORY", ts->ts_dir, 1), 0);
	memset(key, 0, sizeof(key));
	assert_int_equal(crypto_key_load_credential("wfvault-master", key,
	    err, sizeof(err)), 0);
	assert_memory_equal(key, raw, sizeof(raw));

	assert_int_equal(crypto_key_load_credential("../wfvault-master", key,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "master_key_credential ../wfvault-master"));
	assert_int_equal(crypto_key_load_credential("a/b", key, err,
	    sizeof(err)), -1);
	assert_int_equal(crypto_key_load_credential("..", key, err,
	    sizeof(err)), -1);
	assert_int_equal(crypto_key_load_credential("", key, err,
	    sizeof(err)), -1);
	assert_int_equal(crypto_key_load_credential("absent", key, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot open"));

	tc_write(path, "garbage\n", 8, 0400);
	assert_int_equal(crypto_key_load_credential("wfvault-master", key,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "does not hold a wfvault master key"));
}

static void
test_key_check(void **state)
{
	unsigned char	 k1[CRYPTO_KEY_BYTES], k2[CRYPTO_KEY_BYTES];
	unsigned char	 c1[CRYPTO_CHECK_BYTES], c1b[CRYPTO_CHECK_BYTES];
	unsigned char	 c2[CRYPTO_CHECK_BYTES], want[CRYPTO_CHECK_BYTES];
	const char	 msg[] = "wfvault key check v1";
	(void)state;

	randombytes_buf(k1, sizeof(k1));
	memcpy(k2, k1, sizeof(k2));
	k2[31] ^= 0x01;
	crypto_key_check(k1, c1);
	crypto_key_check(k1, c1b);
	crypto_key_check(k2, c2);
	assert_memory_equal(c1, c1b, sizeof(c1));
	assert_memory_not_equal(c1, c2, sizeof(c1));
	/* The check value is not the key. */
	assert_memory_not_equal(c1, k1, sizeof(c1));
	/* The documented construction: BLAKE2b keyed by mk over the label. */
	crypto_generichash(want, sizeof(want), (const unsigned char *)msg,
	    strlen(msg), k1, sizeof(k1));
	assert_memory_equal(c1, want, sizeof(want));
}

static void
test_seal_roundtrip(void **state)
{
	unsigned char	 dek[CRYPTO_KEY_BYTES];
	const char	 text[] = "{\"api_key\":\"sk-very-secret\"}";
	unsigned char	 s1[sizeof(text) + CRYPTO_SEAL_OVERHEAD];
	unsigned char	 s2[sizeof(text) + CRYPTO_SEAL_OVERHEAD];
	unsigned char	 plain[sizeof(text)];
	unsigned char	 e[CRYPTO_SEAL_OVERHEAD], ep[1];
	size_t		 plen = 999;
	(void)state;

	crypto_dek_new(dek);
	assert_int_equal(crypto_seal(dek, "acme", 3, (const unsigned char *)
	    text, sizeof(text), s1), CRYPTO_OK);
	assert_int_equal(crypto_seal(dek, "acme", 3, (const unsigned char *)
	    text, sizeof(text), s2), CRYPTO_OK);
	/* A random nonce each time: equal plaintexts seal differently. */
	assert_memory_not_equal(s1, s2, sizeof(s1));
	assert_null(memmem(s1, sizeof(s1), "sk-very-secret", 14));

	assert_int_equal(crypto_open(dek, "acme", 3, s1, sizeof(s1), plain,
	    &plen), CRYPTO_OK);
	assert_int_equal(plen, sizeof(text));
	assert_memory_equal(plain, text, sizeof(text));
	assert_int_equal(crypto_open(dek, "acme", 3, s2, sizeof(s2), plain,
	    &plen), CRYPTO_OK);
	assert_memory_equal(plain, text, sizeof(text));

	/* An empty plaintext is just the overhead. */
	assert_int_equal(crypto_seal(dek, "acme", 1, (const unsigned char *)"",
	    0, e), CRYPTO_OK);
	assert_int_equal(crypto_open(dek, "acme", 1, e, sizeof(e), ep, &plen),
	    CRYPTO_OK);
	assert_int_equal(plen, 0);
}

static void
test_seal_tamper(void **state)
{
	unsigned char	 dek[CRYPTO_KEY_BYTES], other[CRYPTO_KEY_BYTES];
	const char	 text[] = "{\"password\":\"hunter2\"}";
	unsigned char	 sealed[sizeof(text) + CRYPTO_SEAL_OVERHEAD];
	unsigned char	 plain[sizeof(text)], zero[sizeof(text)];
	size_t		 i, plen;
	int		 bit;
	(void)state;

	memset(zero, 0, sizeof(zero));
	crypto_dek_new(dek);
	assert_int_equal(crypto_seal(dek, "acme", 7, (const unsigned char *)
	    text, sizeof(text), sealed), CRYPTO_OK);

	/* Every bit of nonce, ciphertext and tag is authenticated. */
	for (i = 0; i < sizeof(sealed); i++) {
		for (bit = 0; bit < 8; bit++) {
			sealed[i] ^= (unsigned char)(1 << bit);
			memset(plain, 0xa5, sizeof(plain));
			plen = 12345;
			assert_int_equal(crypto_open(dek, "acme", 7, sealed,
			    sizeof(sealed), plain, &plen), CRYPTO_INTEGRITY);
			assert_memory_equal(plain, zero, sizeof(plain));
			assert_int_equal(plen, 0);
			sealed[i] ^= (unsigned char)(1 << bit);
		}
	}
	assert_int_equal(crypto_open(dek, "acme", 7, sealed, sizeof(sealed),
	    plain, &plen), CRYPTO_OK);

	/* Truncated, or shorter than the overhead. */
	assert_int_equal(crypto_open(dek, "acme", 7, sealed, sizeof(sealed) - 1,
	    plain, &plen), CRYPTO_INTEGRITY);
	assert_int_equal(crypto_open(dek, "acme", 7, sealed,
	    CRYPTO_SEAL_OVERHEAD - 1, plain, &plen), CRYPTO_INTEGRITY);
	assert_int_equal(crypto_open(dek, "acme", 7, sealed, 0, plain, &plen),
	    CRYPTO_INTEGRITY);

	/* Bound to tenant and version. */
	assert_int_equal(crypto_open(dek, "acme2", 7, sealed, sizeof(sealed),
	    plain, &plen), CRYPTO_INTEGRITY);
	assert_int_equal(crypto_open(dek, "acm", 7, sealed, sizeof(sealed),
	    plain, &plen), CRYPTO_INTEGRITY);
	assert_int_equal(crypto_open(dek, "beta", 7, sealed, sizeof(sealed),
	    plain, &plen), CRYPTO_INTEGRITY);
	assert_int_equal(crypto_open(dek, "acme", 6, sealed, sizeof(sealed),
	    plain, &plen), CRYPTO_INTEGRITY);
	assert_int_equal(crypto_open(dek, "acme", 8, sealed, sizeof(sealed),
	    plain, &plen), CRYPTO_INTEGRITY);
	assert_int_equal(crypto_open(dek, "acme", 7ULL | (1ULL << 40), sealed,
	    sizeof(sealed), plain, &plen), CRYPTO_INTEGRITY);

	/* Another data key. */
	crypto_dek_new(other);
	assert_int_equal(crypto_open(other, "acme", 7, sealed, sizeof(sealed),
	    plain, &plen), CRYPTO_INTEGRITY);
	assert_memory_equal(plain, zero, sizeof(plain));
}

static void
test_wrap(void **state)
{
	unsigned char	 mk[CRYPTO_KEY_BYTES], mk2[CRYPTO_KEY_BYTES];
	unsigned char	 dek[CRYPTO_KEY_BYTES], got[CRYPTO_KEY_BYTES];
	unsigned char	 zero[CRYPTO_KEY_BYTES];
	unsigned char	 w[CRYPTO_WRAPPED_BYTES], w2[CRYPTO_WRAPPED_BYTES];
	char		 longname[PROTO_TENANT_MAX + 2];
	size_t		 i;
	(void)state;

	memset(zero, 0, sizeof(zero));
	randombytes_buf(mk, sizeof(mk));
	randombytes_buf(mk2, sizeof(mk2));
	crypto_dek_new(dek);
	assert_memory_not_equal(dek, zero, sizeof(dek));

	assert_int_equal(crypto_dek_wrap(mk, "acme", dek, w), CRYPTO_OK);
	assert_null(memmem(w, sizeof(w), dek, sizeof(dek)));
	assert_int_equal(crypto_dek_unwrap(mk, "acme", w, sizeof(w), got),
	    CRYPTO_OK);
	assert_memory_equal(got, dek, sizeof(dek));
	assert_int_equal(crypto_dek_wrap(mk, "acme", dek, w2), CRYPTO_OK);
	assert_memory_not_equal(w, w2, sizeof(w));

	/* Bound to the tenant. */
	memset(got, 0x5a, sizeof(got));
	assert_int_equal(crypto_dek_unwrap(mk, "beta", w, sizeof(w), got),
	    CRYPTO_INTEGRITY);
	assert_memory_equal(got, zero, sizeof(got));
	assert_int_equal(crypto_dek_unwrap(mk, "acmeX", w, sizeof(w), got),
	    CRYPTO_INTEGRITY);

	/* Another master key. */
	assert_int_equal(crypto_dek_unwrap(mk2, "acme", w, sizeof(w), got),
	    CRYPTO_INTEGRITY);
	assert_memory_equal(got, zero, sizeof(got));

	/* Tampered anywhere, or the wrong length. */
	for (i = 0; i < sizeof(w); i++) {
		w[i] ^= 0x80;
		assert_int_equal(crypto_dek_unwrap(mk, "acme", w, sizeof(w),
		    got), CRYPTO_INTEGRITY);
		w[i] ^= 0x80;
	}
	assert_int_equal(crypto_dek_unwrap(mk, "acme", w, sizeof(w) - 1, got),
	    CRYPTO_INTEGRITY);
	assert_int_equal(crypto_dek_unwrap(mk, "acme", w, 0, got),
	    CRYPTO_INTEGRITY);

	/* A wrapped key is not a sealed config of the same tenant. */
	assert_int_equal(crypto_open(mk, "acme", 0, w, sizeof(w), got, &i),
	    CRYPTO_INTEGRITY);

	/* Tenant ids beyond the limit are a usage error, not a key. */
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(crypto_dek_wrap(mk, longname, dek, w), CRYPTO_ERR);
	longname[PROTO_TENANT_MAX] = '\0';
	assert_int_equal(crypto_dek_wrap(mk, longname, dek, w), CRYPTO_OK);
	assert_int_equal(crypto_dek_unwrap(mk, longname, w, sizeof(w), got),
	    CRYPTO_OK);
	assert_memory_equal(got, dek, sizeof(dek));
}

int
main(void)
{
	char			 err[256];
	const struct CMUnitTest	 tests[] = {
		cmocka_unit_test(test_key_alloc),
		cmocka_unit_test_setup_teardown(test_keyfile_roundtrip,
		    tc_setup, tc_teardown),
		cmocka_unit_test_setup_teardown(test_keyfile_refuses_overwrite,
		    tc_setup, tc_teardown),
		cmocka_unit_test_setup_teardown(test_keyfile_strict_mode,
		    tc_setup, tc_teardown),
		cmocka_unit_test_setup_teardown(test_keyfile_garbage,
		    tc_setup, tc_teardown),
		cmocka_unit_test_setup_teardown(test_keyfile_length,
		    tc_setup, tc_teardown),
		cmocka_unit_test_setup_teardown(test_credential,
		    tc_setup, tc_teardown),
		cmocka_unit_test(test_key_check),
		cmocka_unit_test(test_seal_roundtrip),
		cmocka_unit_test(test_seal_tamper),
		cmocka_unit_test(test_wrap),
	};

	if (crypto_init(err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
