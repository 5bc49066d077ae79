/*
 * wfvaultd's cryptography: the master key file and credential, the key-check
 * value, wrapping of per-tenant data keys and sealing of config versions,
 * all with libsodium's XChaCha20-Poly1305-IETF.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "wfvaultd.h"

#define CRYPTO_NONCE_BYTES	crypto_aead_xchacha20poly1305_ietf_NPUBBYTES

#define CRYPTO_TAG_BYTES	crypto_aead_xchacha20poly1305_ietf_ABYTES

/* The sizes in wfvaultd.h are this cipher's. */
_Static_assert(CRYPTO_WRAPPED_BYTES ==
    CRYPTO_NONCE_BYTES + CRYPTO_KEY_BYTES + CRYPTO_TAG_BYTES, "wrapped key");
_Static_assert(CRYPTO_SEAL_OVERHEAD == CRYPTO_NONCE_BYTES + CRYPTO_TAG_BYTES,
    "sealed layout");
_Static_assert(CRYPTO_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
    "key size");

/* Longer files cannot hold a key; reading stops there. */
#define CRYPTO_KEYFILE_MAX	256

/* Domain-separation strings: a value made for one use never opens as another. */
static const char crypto_check_ctx[] = "wfvault key check v1";
static const char crypto_dek_ad[] = "wfvault dek v1";
static const char crypto_config_ad[] = "wfvault config v1";

/* Largest additional data: the config label, NUL, tenant, NUL, version. */
#define CRYPTO_AD_MAX	(sizeof(crypto_config_ad) + PROTO_TENANT_MAX + 1 + 8)

static int	crypto_isspace(char);
static int	crypto_fsync_dir(const char *path, char *err, size_t errlen);
static int	crypto_read_key(int fd, const char *path, unsigned char *key,
		    char *err, size_t errlen);
static size_t	crypto_dek_adata(const char *tenant, unsigned char *ad);
static size_t	crypto_config_adata(const char *tenant, uint64_t version,
		    unsigned char *ad);

int
crypto_init(char *err, size_t errlen)
{
	if (sodium_init() < 0) {
		snprintf(err, errlen, "cannot initialise libsodium");
		return -1;
	}
	return 0;
}

unsigned char *
crypto_key_alloc(void)
{
	unsigned char	*key;

	if ((key = sodium_malloc(CRYPTO_KEY_BYTES)) == NULL)
		return NULL;
	sodium_memzero(key, CRYPTO_KEY_BYTES);
	return key;
}

void
crypto_key_free(unsigned char *key)
{
	/* sodium_free wipes the block before unmapping it. */
	if (key != NULL)
		sodium_free(key);
}

/* The whitespace a key file may carry around its base64 (no locale). */
static int
crypto_isspace(char c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* Makes a new directory entry durable: fsync the directory holding path. */
static int
crypto_fsync_dir(const char *path, char *err, size_t errlen)
{
	char	 copy[PATH_MAX];
	char	*dir;
	int	 fd, rc = -1;

	if (strlen(path) >= sizeof(copy)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	memcpy(copy, path, strlen(path) + 1);
	dir = dirname(copy);
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "cannot open directory %s: %s", dir,
		    strerror(errno));
		return -1;
	}
	if (fsync(fd) == -1) {
		snprintf(err, errlen, "cannot fsync directory %s: %s", dir,
		    strerror(errno));
		goto done;
	}
	rc = 0;
done:
	close(fd);
	return rc;
}

int
crypto_key_generate_file(const char *path, char *err, size_t errlen)
{
	unsigned char	 key[CRYPTO_KEY_BYTES];
	char		 line[sodium_base64_ENCODED_LEN(CRYPTO_KEY_BYTES,
			    sodium_base64_VARIANT_ORIGINAL) + 1];
	size_t		 len, off;
	ssize_t		 n;
	int		 fd, rc = -1;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0400);
	if (fd == -1) {
		if (errno == EEXIST)
			snprintf(err, errlen, "%s exists; refusing to "
			    "overwrite a master key", path);
		else
			snprintf(err, errlen, "cannot create %s: %s", path,
			    strerror(errno));
		return -1;
	}

	randombytes_buf(key, sizeof(key));
	sodium_bin2base64(line, sizeof(line) - 1, key, sizeof(key),
	    sodium_base64_VARIANT_ORIGINAL);
	len = strlen(line);
	line[len++] = '\n';

	/* The umask may have taken bits we want; 0400 exactly. */
	if (fchmod(fd, 0400) == -1) {
		snprintf(err, errlen, "cannot chmod %s: %s", path,
		    strerror(errno));
		goto fail;
	}
	for (off = 0; off < len; off += (size_t)n) {
		n = write(fd, line + off, len - off);
		if (n == -1 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0) {
			snprintf(err, errlen, "cannot write %s: %s", path,
			    n == 0 ? "short write" : strerror(errno));
			goto fail;
		}
	}
	if (fsync(fd) == -1) {
		snprintf(err, errlen, "cannot fsync %s: %s", path,
		    strerror(errno));
		goto fail;
	}
	if (close(fd) == -1) {
		fd = -1;
		snprintf(err, errlen, "cannot close %s: %s", path,
		    strerror(errno));
		goto fail;
	}
	fd = -1;
	if (crypto_fsync_dir(path, err, errlen) == -1)
		goto fail;
	rc = 0;
	goto done;

fail:
	/* A half-written key file would only be refused later: remove it. */
	if (fd != -1)
		close(fd);
	unlink(path);
done:
	sodium_memzero(key, sizeof(key));
	sodium_memzero(line, sizeof(line));
	return rc;
}

/* Reads and decodes the key in the open file fd; path is for messages. */
static int
crypto_read_key(int fd, const char *path, unsigned char *key, char *err,
    size_t errlen)
{
	char		 buf[CRYPTO_KEYFILE_MAX + 1];
	unsigned char	 bin[CRYPTO_KEYFILE_MAX];
	size_t		 len = 0, start, end, binlen = 0;
	ssize_t		 n;
	int		 rc = -1;

	for (;;) {
		n = read(fd, buf + len, sizeof(buf) - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(err, errlen, "cannot read %s: %s", path,
			    strerror(errno));
			goto done;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == sizeof(buf))
			break;
	}
	if (len > CRYPTO_KEYFILE_MAX)
		goto bad;

	for (start = 0; start < len && crypto_isspace(buf[start]); start++)
		;
	for (end = len; end > start && crypto_isspace(buf[end - 1]); end--)
		;
	if (start == end)
		goto bad;
	if (sodium_base642bin(bin, sizeof(bin), buf + start, end - start,
	    " \n\r\t", &binlen, NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
		goto bad;
	if (binlen != CRYPTO_KEY_BYTES)
		goto bad;
	memcpy(key, bin, CRYPTO_KEY_BYTES);
	rc = 0;
	goto done;

bad:
	snprintf(err, errlen, "%s does not hold a wfvault master key "
	    "(32 bytes of base64)", path);
done:
	sodium_memzero(buf, sizeof(buf));
	sodium_memzero(bin, sizeof(bin));
	return rc;
}

int
crypto_key_load_file(const char *path, int strict, unsigned char *key,
    char *err, size_t errlen)
{
	struct stat	 st;
	int		 fd, rc = -1;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "cannot stat %s: %s", path,
		    strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
		goto done;
	}
	if (strict && (st.st_mode & 077) != 0) {
		snprintf(err, errlen, "%s is readable by group or others "
		    "(mode %04o); chmod 0400 it", path,
		    (unsigned)(st.st_mode & 07777));
		goto done;
	}
	rc = crypto_read_key(fd, path, key, err, errlen);
done:
	close(fd);
	return rc;
}

int
crypto_key_load_credential(const char *name, unsigned char *key, char *err,
    size_t errlen)
{
	const char	*dir;
	char		 path[PATH_MAX];
	int		 n;

	dir = getenv("CREDENTIALS_DIRECTORY");
	if (dir == NULL || *dir == '\0') {
		snprintf(err, errlen, "master_key_credential %s: "
		    "$CREDENTIALS_DIRECTORY is not set (run under systemd "
		    "with LoadCredential=)", name);
		return -1;
	}
	if (*name == '\0' || strchr(name, '/') != NULL ||
	    strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
		snprintf(err, errlen, "master_key_credential %s: must be a "
		    "credential name, not a path", name);
		return -1;
	}
	n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(err, errlen, "master_key_credential %s: path too "
		    "long", name);
		return -1;
	}
	/* systemd owns the mode of credential files; do not judge it. */
	return crypto_key_load_file(path, 0, key, err, errlen);
}

void
crypto_key_check(const unsigned char *mk, unsigned char out[CRYPTO_CHECK_BYTES])
{
	crypto_generichash(out, CRYPTO_CHECK_BYTES,
	    (const unsigned char *)crypto_check_ctx,
	    sizeof(crypto_check_ctx) - 1, mk, CRYPTO_KEY_BYTES);
}

void
crypto_dek_new(unsigned char *dek)
{
	randombytes_buf(dek, CRYPTO_KEY_BYTES);
}

/* "wfvault dek v1" NUL tenant; returns the length, 0 if tenant is too long. */
static size_t
crypto_dek_adata(const char *tenant, unsigned char *ad)
{
	size_t	 tlen;

	if (tenant == NULL || (tlen = strlen(tenant)) > PROTO_TENANT_MAX)
		return 0;
	memcpy(ad, crypto_dek_ad, sizeof(crypto_dek_ad));
	memcpy(ad + sizeof(crypto_dek_ad), tenant, tlen);
	return sizeof(crypto_dek_ad) + tlen;
}

/* "wfvault config v1" NUL tenant NUL version (8 bytes, big-endian). */
static size_t
crypto_config_adata(const char *tenant, uint64_t version, unsigned char *ad)
{
	size_t	 tlen, off;
	int	 i;

	if (tenant == NULL || (tlen = strlen(tenant)) > PROTO_TENANT_MAX)
		return 0;
	memcpy(ad, crypto_config_ad, sizeof(crypto_config_ad));
	off = sizeof(crypto_config_ad);
	memcpy(ad + off, tenant, tlen);
	off += tlen;
	ad[off++] = '\0';
	for (i = 7; i >= 0; i--)
		ad[off++] = (unsigned char)(version >> (i * 8));
	return off;
}

int
crypto_dek_wrap(const unsigned char *mk, const char *tenant,
    const unsigned char *dek, unsigned char out[CRYPTO_WRAPPED_BYTES])
{
	unsigned char	 ad[CRYPTO_AD_MAX];
	size_t		 adlen;

	if ((adlen = crypto_dek_adata(tenant, ad)) == 0)
		return CRYPTO_ERR;
	randombytes_buf(out, CRYPTO_NONCE_BYTES);
	if (crypto_aead_xchacha20poly1305_ietf_encrypt(out + CRYPTO_NONCE_BYTES,
	    NULL, dek, CRYPTO_KEY_BYTES, ad, adlen, NULL, out, mk) != 0)
		return CRYPTO_ERR;
	return CRYPTO_OK;
}

int
crypto_dek_unwrap(const unsigned char *mk, const char *tenant,
    const unsigned char *in, size_t inlen, unsigned char *dek)
{
	unsigned char	 ad[CRYPTO_AD_MAX];
	size_t		 adlen;

	if ((adlen = crypto_dek_adata(tenant, ad)) == 0)
		return CRYPTO_ERR;
	if (inlen != CRYPTO_WRAPPED_BYTES)
		return CRYPTO_INTEGRITY;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(dek, NULL, NULL,
	    in + CRYPTO_NONCE_BYTES, inlen - CRYPTO_NONCE_BYTES, ad, adlen,
	    in, mk) != 0) {
		sodium_memzero(dek, CRYPTO_KEY_BYTES);
		return CRYPTO_INTEGRITY;
	}
	return CRYPTO_OK;
}

int
crypto_seal(const unsigned char *dek, const char *tenant, uint64_t version,
    const unsigned char *plain, size_t plen, unsigned char *out)
{
	unsigned char	 ad[CRYPTO_AD_MAX];
	size_t		 adlen;

	if ((adlen = crypto_config_adata(tenant, version, ad)) == 0)
		return CRYPTO_ERR;
	if (plen > crypto_aead_xchacha20poly1305_ietf_MESSAGEBYTES_MAX)
		return CRYPTO_ERR;
	randombytes_buf(out, CRYPTO_NONCE_BYTES);
	if (crypto_aead_xchacha20poly1305_ietf_encrypt(out + CRYPTO_NONCE_BYTES,
	    NULL, plain, plen, ad, adlen, NULL, out, dek) != 0)
		return CRYPTO_ERR;
	return CRYPTO_OK;
}

int
crypto_open(const unsigned char *dek, const char *tenant, uint64_t version,
    const unsigned char *in, size_t inlen, unsigned char *plain, size_t *plen)
{
	unsigned char		 ad[CRYPTO_AD_MAX];
	unsigned long long	 mlen = 0;
	size_t			 adlen;

	*plen = 0;
	if ((adlen = crypto_config_adata(tenant, version, ad)) == 0)
		return CRYPTO_ERR;
	if (inlen < CRYPTO_SEAL_OVERHEAD)
		return CRYPTO_INTEGRITY;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &mlen, NULL,
	    in + CRYPTO_NONCE_BYTES, inlen - CRYPTO_NONCE_BYTES, ad, adlen,
	    in, dek) != 0) {
		sodium_memzero(plain, inlen - CRYPTO_SEAL_OVERHEAD);
		return CRYPTO_INTEGRITY;
	}
	*plen = (size_t)mlen;
	return CRYPTO_OK;
}
